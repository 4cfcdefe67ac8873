//! What the audit log learns of a request as it is handled: the trail is filled while the
//! request is routed and authenticated, and becomes an entry once its answer is known.

use crate::context::Origin;
use crate::router::Op;
use coffre_engine::audit::Event;
use coffre_iam::{Caller, Principal};
use http::HeaderMap;

/// A response extension naming the error code of an answer built as a success (the IAM and
/// STS query APIs answer their errors themselves).
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

/// A request's audit record in the making.
#[derive(Debug, Default)]
pub struct Trail {
    pub op: String,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub tenant: String,
    pub principal: String,
    pub access_key: Option<String>,
    pub bytes_in: u64,
}

impl Trail {
    pub fn new(headers: &HeaderMap) -> Trail {
        let length = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        Trail {
            op: "Unknown".into(),
            principal: "anonymous".into(),
            bytes_in: length("x-amz-decoded-content-length")
                .or_else(|| length("content-length"))
                .unwrap_or(0),
            ..Trail::default()
        }
    }

    /// Who the signature says the caller is. The entry is filed under the caller's tenant
    /// unless the request names a bucket (then under the bucket owner's).
    pub fn caller(&mut self, caller: &Caller, access_key: Option<&str>) {
        self.principal = principal_name(&caller.principal);
        if let Some(t) = caller.principal.tenant() {
            self.tenant = t.to_string();
        }
        self.access_key = access_key.map(str::to_string);
    }

    /// The entry: the trail, the answer and the connection.
    pub fn event(
        self,
        request_id: &str,
        origin: &Origin,
        status: u16,
        error: Option<&str>,
        bytes_out: u64,
        ms: u64,
    ) -> Event {
        Event {
            request_id: request_id.to_string(),
            tenant: self.tenant,
            access_key: self.access_key,
            source: Some(origin.peer.to_string()),
            tls: origin.secure,
            bucket: self.bucket,
            key: self.key,
            version_id: self.version_id,
            status,
            error: error.map(str::to_string),
            bytes_in: self.bytes_in,
            bytes_out,
            ms,
            ..Event::now(self.op, self.principal)
        }
    }
}

/// The access key a request claims (in its Authorization header or presigned query), before
/// its signature is checked: what a refused request is audited with. Not a secret.
pub fn claimed_access_key(headers: &HeaderMap, raw_query: &str) -> Option<String> {
    let from_header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .map(|c| c.split('/').next().unwrap_or_default().to_string());
    let from_query = || {
        raw_query
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Credential="))
            .map(|c| {
                let c = percent_encoding::percent_decode_str(c).decode_utf8_lossy();
                c.split('/').next().unwrap_or_default().to_string()
            })
    };
    from_header
        .or_else(from_query)
        .filter(|k| !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The caller's ARN (`arn:aws:iam::TENANT:user/NAME`, `arn:aws:sts::TENANT:assumed-role/…`),
/// or `anonymous`: it names the caller's tenant even when the entry is filed under the
/// tenant owning the bucket.
pub fn principal_name(p: &Principal) -> String {
    match p {
        Principal::Anonymous => "anonymous".into(),
        p => p.arn(),
    }
}

impl Op {
    /// The S3 API name of the operation (as AWS names it in its logs).
    pub fn name(&self) -> &'static str {
        use Op::*;
        match self {
            ListBuckets => "ListBuckets",
            CreateBucket(_) => "CreateBucket",
            HeadBucket(_) => "HeadBucket",
            DeleteBucket(_) => "DeleteBucket",
            GetBucketLocation(_) => "GetBucketLocation",
            GetBucketVersioning(_) => "GetBucketVersioning",
            ListObjects { v2: true, .. } => "ListObjectsV2",
            ListObjects { v2: false, .. } => "ListObjects",
            DeleteObjects(_) => "DeleteObjects",
            PutObject(..) => "PutObject",
            CopyObject(..) => "CopyObject",
            GetObject(..) => "GetObject",
            HeadObject(..) => "HeadObject",
            DeleteObject(..) => "DeleteObject",
            GetObjectTagging(..) => "GetObjectTagging",
            PutObjectTagging(..) => "PutObjectTagging",
            DeleteObjectTagging(..) => "DeleteObjectTagging",
            CreateMultipartUpload(..) => "CreateMultipartUpload",
            UploadPart(..) => "UploadPart",
            UploadPartCopy(..) => "UploadPartCopy",
            CompleteMultipartUpload(..) => "CompleteMultipartUpload",
            AbortMultipartUpload(..) => "AbortMultipartUpload",
            ListParts(..) => "ListParts",
            ListMultipartUploads(_) => "ListMultipartUploads",
            PutBucketCors(_) => "PutBucketCors",
            GetBucketCors(_) => "GetBucketCors",
            DeleteBucketCors(_) => "DeleteBucketCors",
            PutBucketEncryption(_) => "PutBucketEncryption",
            GetBucketEncryption(_) => "GetBucketEncryption",
            DeleteBucketEncryption(_) => "DeleteBucketEncryption",
            PutBucketOwnershipControls(_) => "PutBucketOwnershipControls",
            GetBucketOwnershipControls(_) => "GetBucketOwnershipControls",
            DeleteBucketOwnershipControls(_) => "DeleteBucketOwnershipControls",
            GetObjectAttributes(..) => "GetObjectAttributes",
            PutBucketPolicy(_) => "PutBucketPolicy",
            GetBucketPolicy(_) => "GetBucketPolicy",
            DeleteBucketPolicy(_) => "DeleteBucketPolicy",
            GetBucketPolicyStatus(_) => "GetBucketPolicyStatus",
            GetBucketAcl(_) => "GetBucketAcl",
            PutBucketAcl(_) => "PutBucketAcl",
            GetObjectAcl(..) => "GetObjectAcl",
            PutObjectAcl(..) => "PutObjectAcl",
            PutBucketVersioning(_) => "PutBucketVersioning",
            ListObjectVersions(_) => "ListObjectVersions",
            GetObjectLockConfiguration(_) => "GetObjectLockConfiguration",
            PutObjectLockConfiguration(_) => "PutObjectLockConfiguration",
            GetObjectRetention(..) => "GetObjectRetention",
            PutObjectRetention(..) => "PutObjectRetention",
            GetObjectLegalHold(..) => "GetObjectLegalHold",
            PutObjectLegalHold(..) => "PutObjectLegalHold",
            PutBucketLifecycle(_) => "PutBucketLifecycleConfiguration",
            GetBucketLifecycle(_) => "GetBucketLifecycleConfiguration",
            DeleteBucketLifecycle(_) => "DeleteBucketLifecycle",
        }
    }
}
