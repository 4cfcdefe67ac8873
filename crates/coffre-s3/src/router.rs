//! From method, host, path and query to an S3 operation. Unknown operations are
//! `NotImplemented`, never a 404.

use crate::encoding::{parse_query, percent_decode};
use crate::S3Error;
use http::{HeaderMap, Method};

/// An S3 operation and the resource it names.
pub enum Op {
    ListBuckets,
    CreateBucket(String),
    HeadBucket(String),
    DeleteBucket(String),
    GetBucketLocation(String),
    GetBucketVersioning(String),
    ListObjects { bucket: String, v2: bool },
    DeleteObjects(String),
    PutObject(String, String),
    CopyObject(String, String),
    GetObject(String, String),
    HeadObject(String, String),
    DeleteObject(String, String),
    GetObjectTagging(String, String),
    PutObjectTagging(String, String),
    DeleteObjectTagging(String, String),
    CreateMultipartUpload(String, String),
    UploadPart(String, String),
    UploadPartCopy(String, String),
    CompleteMultipartUpload(String, String),
    AbortMultipartUpload(String, String),
    ListParts(String, String),
    ListMultipartUploads(String),
    PutBucketCors(String),
    GetBucketCors(String),
    DeleteBucketCors(String),
    PutBucketEncryption(String),
    GetBucketEncryption(String),
    DeleteBucketEncryption(String),
    PutBucketOwnershipControls(String),
    GetBucketOwnershipControls(String),
    DeleteBucketOwnershipControls(String),
    GetObjectAttributes(String, String),
    PutBucketPolicy(String),
    GetBucketPolicy(String),
    DeleteBucketPolicy(String),
    GetBucketPolicyStatus(String),
    GetBucketAcl(String),
    PutBucketAcl(String),
    GetObjectAcl(String, String),
    PutObjectAcl(String, String),
    PutBucketVersioning(String),
    ListObjectVersions(String),
    GetObjectLockConfiguration(String),
    PutObjectLockConfiguration(String),
    GetObjectRetention(String, String),
    PutObjectRetention(String, String),
    GetObjectLegalHold(String, String),
    PutObjectLegalHold(String, String),
    PutBucketLifecycle(String),
    GetBucketLifecycle(String),
    DeleteBucketLifecycle(String),
}

impl Op {
    /// The bucket the operation acts on (none for ListBuckets).
    pub fn bucket(&self) -> Option<&str> {
        use Op::*;
        match self {
            ListBuckets => None,
            CreateBucket(b)
            | HeadBucket(b)
            | DeleteBucket(b)
            | GetBucketLocation(b)
            | GetBucketVersioning(b)
            | ListObjects { bucket: b, .. }
            | DeleteObjects(b)
            | ListMultipartUploads(b)
            | PutBucketCors(b)
            | GetBucketCors(b)
            | DeleteBucketCors(b)
            | PutBucketEncryption(b)
            | GetBucketEncryption(b)
            | DeleteBucketEncryption(b)
            | PutBucketOwnershipControls(b)
            | GetBucketOwnershipControls(b)
            | DeleteBucketOwnershipControls(b)
            | PutBucketPolicy(b)
            | GetBucketPolicy(b)
            | DeleteBucketPolicy(b)
            | GetBucketPolicyStatus(b)
            | GetBucketAcl(b)
            | PutBucketAcl(b)
            | PutBucketVersioning(b)
            | ListObjectVersions(b)
            | GetObjectLockConfiguration(b)
            | PutObjectLockConfiguration(b)
            | PutBucketLifecycle(b)
            | GetBucketLifecycle(b)
            | DeleteBucketLifecycle(b) => Some(b),
            PutObject(b, _)
            | CopyObject(b, _)
            | GetObject(b, _)
            | HeadObject(b, _)
            | DeleteObject(b, _)
            | GetObjectTagging(b, _)
            | PutObjectTagging(b, _)
            | DeleteObjectTagging(b, _)
            | CreateMultipartUpload(b, _)
            | UploadPart(b, _)
            | UploadPartCopy(b, _)
            | CompleteMultipartUpload(b, _)
            | AbortMultipartUpload(b, _)
            | ListParts(b, _)
            | GetObjectAttributes(b, _)
            | GetObjectAcl(b, _)
            | PutObjectAcl(b, _)
            | GetObjectRetention(b, _)
            | PutObjectRetention(b, _)
            | GetObjectLegalHold(b, _)
            | PutObjectLegalHold(b, _) => Some(b),
        }
    }

    /// The object key the operation acts on, if it acts on one.
    pub fn key(&self) -> Option<&str> {
        use Op::*;
        match self {
            PutObject(_, k)
            | CopyObject(_, k)
            | GetObject(_, k)
            | HeadObject(_, k)
            | DeleteObject(_, k)
            | GetObjectTagging(_, k)
            | PutObjectTagging(_, k)
            | DeleteObjectTagging(_, k)
            | CreateMultipartUpload(_, k)
            | UploadPart(_, k)
            | UploadPartCopy(_, k)
            | CompleteMultipartUpload(_, k)
            | AbortMultipartUpload(_, k)
            | ListParts(_, k)
            | GetObjectAttributes(_, k)
            | GetObjectAcl(_, k)
            | PutObjectAcl(_, k)
            | GetObjectRetention(_, k)
            | PutObjectRetention(_, k)
            | GetObjectLegalHold(_, k)
            | PutObjectLegalHold(_, k) => Some(k),
            _ => None,
        }
    }

    /// The policy action that authorizes the operation (as AWS names it). DeleteObjects has
    /// none of its own: each key it names is authorized as `s3:DeleteObject`.
    pub fn action(&self) -> Option<&'static str> {
        use Op::*;
        Some(match self {
            ListBuckets => "s3:ListAllMyBuckets",
            CreateBucket(_) => "s3:CreateBucket",
            HeadBucket(_) | ListObjects { .. } => "s3:ListBucket",
            DeleteBucket(_) => "s3:DeleteBucket",
            GetBucketLocation(_) => "s3:GetBucketLocation",
            GetBucketVersioning(_) => "s3:GetBucketVersioning",
            DeleteObjects(_) => return None,
            PutObject(..)
            | CopyObject(..)
            | CreateMultipartUpload(..)
            | UploadPart(..)
            | UploadPartCopy(..)
            | CompleteMultipartUpload(..) => "s3:PutObject",
            GetObject(..) | HeadObject(..) => "s3:GetObject",
            DeleteObject(..) => "s3:DeleteObject",
            GetObjectTagging(..) => "s3:GetObjectTagging",
            PutObjectTagging(..) => "s3:PutObjectTagging",
            DeleteObjectTagging(..) => "s3:DeleteObjectTagging",
            AbortMultipartUpload(..) => "s3:AbortMultipartUpload",
            ListParts(..) => "s3:ListMultipartUploadParts",
            ListMultipartUploads(_) => "s3:ListBucketMultipartUploads",
            PutBucketCors(_) | DeleteBucketCors(_) => "s3:PutBucketCORS",
            GetBucketCors(_) => "s3:GetBucketCORS",
            PutBucketEncryption(_) | DeleteBucketEncryption(_) => "s3:PutEncryptionConfiguration",
            GetBucketEncryption(_) => "s3:GetEncryptionConfiguration",
            PutBucketOwnershipControls(_) | DeleteBucketOwnershipControls(_) => "s3:PutBucketOwnershipControls",
            GetBucketOwnershipControls(_) => "s3:GetBucketOwnershipControls",
            GetObjectAttributes(..) => "s3:GetObjectAttributes",
            PutBucketPolicy(_) => "s3:PutBucketPolicy",
            GetBucketPolicy(_) => "s3:GetBucketPolicy",
            DeleteBucketPolicy(_) => "s3:DeleteBucketPolicy",
            GetBucketPolicyStatus(_) => "s3:GetBucketPolicyStatus",
            GetBucketAcl(_) => "s3:GetBucketAcl",
            PutBucketAcl(_) => "s3:PutBucketAcl",
            GetObjectAcl(..) => "s3:GetObjectAcl",
            PutObjectAcl(..) => "s3:PutObjectAcl",
            PutBucketVersioning(_) => "s3:PutBucketVersioning",
            ListObjectVersions(_) => "s3:ListBucketVersions",
            GetObjectLockConfiguration(_) => "s3:GetBucketObjectLockConfiguration",
            PutObjectLockConfiguration(_) => "s3:PutBucketObjectLockConfiguration",
            GetObjectRetention(..) => "s3:GetObjectRetention",
            PutObjectRetention(..) => "s3:PutObjectRetention",
            GetObjectLegalHold(..) => "s3:GetObjectLegalHold",
            PutObjectLegalHold(..) => "s3:PutObjectLegalHold",
            PutBucketLifecycle(_) | DeleteBucketLifecycle(_) => "s3:PutLifecycleConfiguration",
            GetBucketLifecycle(_) => "s3:GetLifecycleConfiguration",
        })
    }

    /// The action when the request names a version (`versionId`): S3's `…Version…` actions.
    pub fn version_action(&self) -> Option<&'static str> {
        use Op::*;
        Some(match self {
            GetObject(..) | HeadObject(..) => "s3:GetObjectVersion",
            DeleteObject(..) => "s3:DeleteObjectVersion",
            GetObjectTagging(..) => "s3:GetObjectVersionTagging",
            PutObjectTagging(..) => "s3:PutObjectVersionTagging",
            DeleteObjectTagging(..) => "s3:DeleteObjectVersionTagging",
            GetObjectAcl(..) => "s3:GetObjectVersionAcl",
            PutObjectAcl(..) => "s3:PutObjectVersionAcl",
            GetObjectAttributes(..) => "s3:GetObjectVersionAttributes",
            _ => return self.action(),
        })
    }
}

pub struct Routed {
    pub op: Op,
    pub query: Vec<(String, String)>,
}

impl Routed {
    /// The policy action that authorizes the request.
    pub fn action(&self) -> Option<&'static str> {
        match self.query.iter().any(|(k, _)| k == "versionId") {
            true => self.op.version_action(),
            false => self.op.action(),
        }
    }
}

/// Query parameters that name a sub-resource we do not serve.
const UNSUPPORTED: &[&str] = &[
    "website",
    "logging",
    "notification",
    "replication",
    "accelerate",
    "requestPayment",
    "analytics",
    "metrics",
    "inventory",
    "intelligent-tiering",
    "publicAccessBlock",
    "restore",
    "select",
    "torrent",
];

/// Sub-resources of a bucket only: on an object they name nothing we serve.
const BUCKET_ONLY: &[&str] = &[
    "cors",
    "encryption",
    "ownershipControls",
    "policy",
    "policyStatus",
    "versioning",
    "versions",
    "object-lock",
    "lifecycle",
];

/// The bucket and key a request names (path-style, or virtual-hosted under `domain`); both
/// empty for the service itself.
pub fn target(headers: &HeaderMap, raw_path: &str, domain: Option<&str>) -> Result<(String, String), S3Error> {
    let path =
        String::from_utf8(percent_decode(raw_path)).map_err(|_| S3Error::invalid_argument("the path is not UTF-8"))?;
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
    let host = host.rsplit_once(':').map_or(
        host,
        |(h, p)| {
            if p.bytes().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        },
    );
    let vhost_bucket = domain
        .and_then(|d| host.strip_suffix(d)?.strip_suffix('.'))
        .filter(|b| !b.is_empty());
    let rest = path.strip_prefix('/').unwrap_or(&path);
    Ok(match vhost_bucket {
        Some(b) => (b.to_string(), rest.to_string()),
        None => match rest.split_once('/') {
            Some((b, k)) => (b.to_string(), k.to_string()),
            None => (rest.to_string(), String::new()),
        },
    })
}

pub fn route(
    method: &Method,
    headers: &HeaderMap,
    raw_path: &str,
    raw_query: &str,
    domain: Option<&str>,
) -> Result<Routed, S3Error> {
    let query = parse_query(raw_query)?;
    let has = |n: &str| query.iter().any(|(k, _)| k == n);
    let (bucket, key) = target(headers, raw_path, domain)?;
    if let Some(u) = UNSUPPORTED.iter().find(|u| has(u)) {
        return Err(S3Error::not_implemented(format!(
            "The '{u}' operation is not implemented by Coffre"
        )));
    }
    let object = !key.is_empty();
    if let Some(u) = BUCKET_ONLY.iter().find(|u| object && has(u)) {
        return Err(S3Error::not_implemented(format!(
            "The '{u}' sub-resource of an object is not implemented by Coffre"
        )));
    }
    if object && key.len() > coffre_types::limits::MAX_KEY_LEN {
        return Err(S3Error::key_too_long("Your key is too long: at most 1024 bytes"));
    }
    let op = match (method.as_str(), bucket.is_empty(), object) {
        ("GET", true, _) => Op::ListBuckets,
        (_, true, _) => {
            return Err(S3Error::method_not_allowed(
                "The specified method is not allowed against the service",
            ))
        }
        ("PUT", _, false) if query.is_empty() => Op::CreateBucket(bucket),
        ("HEAD", _, false) => Op::HeadBucket(bucket),
        ("DELETE", _, false) if query.is_empty() => Op::DeleteBucket(bucket),
        ("GET", _, false) if has("location") => Op::GetBucketLocation(bucket),
        ("GET", _, false) if has("versioning") => Op::GetBucketVersioning(bucket),
        ("PUT", _, false) if has("versioning") => Op::PutBucketVersioning(bucket),
        ("GET", _, false) if has("versions") => Op::ListObjectVersions(bucket),
        ("PUT", _, false) if has("lifecycle") => Op::PutBucketLifecycle(bucket),
        ("GET", _, false) if has("lifecycle") => Op::GetBucketLifecycle(bucket),
        ("DELETE", _, false) if has("lifecycle") => Op::DeleteBucketLifecycle(bucket),
        ("GET", _, false) if has("object-lock") => Op::GetObjectLockConfiguration(bucket),
        ("PUT", _, false) if has("object-lock") => Op::PutObjectLockConfiguration(bucket),
        ("GET", _, true) if has("retention") => Op::GetObjectRetention(bucket, key),
        ("PUT", _, true) if has("retention") => Op::PutObjectRetention(bucket, key),
        ("GET", _, true) if has("legal-hold") => Op::GetObjectLegalHold(bucket, key),
        ("PUT", _, true) if has("legal-hold") => Op::PutObjectLegalHold(bucket, key),
        ("PUT", _, false) if has("cors") => Op::PutBucketCors(bucket),
        ("GET", _, false) if has("cors") => Op::GetBucketCors(bucket),
        ("DELETE", _, false) if has("cors") => Op::DeleteBucketCors(bucket),
        ("PUT", _, false) if has("encryption") => Op::PutBucketEncryption(bucket),
        ("GET", _, false) if has("encryption") => Op::GetBucketEncryption(bucket),
        ("DELETE", _, false) if has("encryption") => Op::DeleteBucketEncryption(bucket),
        ("PUT", _, false) if has("ownershipControls") => Op::PutBucketOwnershipControls(bucket),
        ("GET", _, false) if has("ownershipControls") => Op::GetBucketOwnershipControls(bucket),
        ("DELETE", _, false) if has("ownershipControls") => Op::DeleteBucketOwnershipControls(bucket),
        ("GET", _, true) if has("attributes") => Op::GetObjectAttributes(bucket, key),
        ("PUT", _, false) if has("policy") => Op::PutBucketPolicy(bucket),
        ("GET", _, false) if has("policy") => Op::GetBucketPolicy(bucket),
        ("DELETE", _, false) if has("policy") => Op::DeleteBucketPolicy(bucket),
        ("GET", _, false) if has("policyStatus") => Op::GetBucketPolicyStatus(bucket),
        ("GET", _, false) if has("acl") => Op::GetBucketAcl(bucket),
        ("PUT", _, false) if has("acl") => Op::PutBucketAcl(bucket),
        ("GET", _, true) if has("acl") => Op::GetObjectAcl(bucket, key),
        ("PUT", _, true) if has("acl") => Op::PutObjectAcl(bucket, key),
        ("GET", _, false) if has("tagging") => {
            return Err(S3Error::not_implemented("bucket tagging is not implemented"))
        }
        ("GET", _, false) if has("uploads") => Op::ListMultipartUploads(bucket),
        ("GET", _, false) => Op::ListObjects {
            v2: query.iter().any(|(k, v)| k == "list-type" && v == "2"),
            bucket,
        },
        ("POST", _, false) if has("delete") => Op::DeleteObjects(bucket),
        ("PUT", _, true) if has("tagging") => Op::PutObjectTagging(bucket, key),
        ("GET", _, true) if has("tagging") => Op::GetObjectTagging(bucket, key),
        ("DELETE", _, true) if has("tagging") => Op::DeleteObjectTagging(bucket, key),
        ("POST", _, true) if has("uploads") => Op::CreateMultipartUpload(bucket, key),
        ("POST", _, true) if has("uploadId") => Op::CompleteMultipartUpload(bucket, key),
        ("PUT", _, true) if has("uploadId") && headers.contains_key("x-amz-copy-source") => {
            Op::UploadPartCopy(bucket, key)
        }
        ("PUT", _, true) if has("uploadId") => Op::UploadPart(bucket, key),
        ("DELETE", _, true) if has("uploadId") => Op::AbortMultipartUpload(bucket, key),
        ("GET", _, true) if has("uploadId") => Op::ListParts(bucket, key),
        ("PUT", _, true) if headers.contains_key("x-amz-copy-source") => Op::CopyObject(bucket, key),
        ("PUT", _, true) => Op::PutObject(bucket, key),
        ("GET", _, true) => Op::GetObject(bucket, key),
        ("HEAD", _, true) => Op::HeadObject(bucket, key),
        ("DELETE", _, true) => Op::DeleteObject(bucket, key),
        (m, _, _) => {
            return Err(S3Error::not_implemented(format!(
                "{m} on this resource is not implemented"
            )))
        }
    };
    Ok(Routed { op, query })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any method, path, query and host: an operation or an S3 error, never a panic.
        #[test]
        fn routing_never_panics(method in "GET|PUT|POST|DELETE|HEAD|PATCH|[A-Z]{1,7}",
                                path in "/[ -~]{0,60}|/%[0-9A-Fa-f]{0,2}[ -~]{0,10}",
                                query in "[ -~]{0,80}",
                                host in "[a-z0-9.:-]{0,30}",
                                domain in proptest::option::of("[a-z.]{1,12}")) {
            let Ok(m) = Method::from_bytes(method.as_bytes()) else { return Ok(()) };
            let mut h = HeaderMap::new();
            if let Ok(v) = host.parse() {
                h.insert("host", v);
            }
            let _ = route(&m, &h, &path, &query, domain.as_deref());
            let _ = parse_query(&query);
        }
    }

    #[test]
    fn copy_header_routes_only_puts_of_objects() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-copy-source", "/a/b".parse().unwrap());
        assert!(matches!(
            route(&Method::PUT, &h, "/b/k", "", None).unwrap().op,
            Op::CopyObject(..)
        ));
        assert!(matches!(
            route(&Method::PUT, &h, "/b/k", "uploadId=1&partNumber=1", None)
                .unwrap()
                .op,
            Op::UploadPartCopy(..)
        ));
        let long = format!("/b/{}", "k".repeat(1025));
        assert_eq!(
            route(&Method::GET, &h, &long, "", None).err().unwrap().code,
            "KeyTooLongError"
        );
    }
}
