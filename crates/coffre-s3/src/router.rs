//! From method, host, path and query to the shape of a request: the bucket and key it names,
//! its query, and whether it asks for something Coffre does not serve. Which operation a
//! shape is, is decided by the table of operations (`operations.rs`), against the `Spec`
//! each one declares: the router itself names no operation. Unknown operations are
//! `NotImplemented`, never a 404.

use crate::encoding::{parse_query, percent_decode};
use crate::S3Error;
use coffre_iam::Target;
use http::{HeaderMap, Method};

/// The body handlers receive.
pub type Body = hyper::body::Incoming;

/// What an operation acts on: routing matches it, authorization names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// The service (no bucket in the path).
    Service,
    /// A bucket that is being created: the caller's identity alone decides.
    NewBucket,
    Bucket,
    Object,
}

/// An operation as routing, authorization and the audit see it, declared once per operation
/// in the table (`operations!`).
#[derive(Debug)]
pub struct Spec {
    /// The S3 API name, as AWS names it in its logs (and the audit entry's `op`).
    pub name: &'static str,
    pub method: &'static str,
    pub resource: Resource,
    /// The policy action that authorizes it; `None` where the handler authorizes each
    /// object it names (DeleteObjects).
    pub action: Option<&'static str>,
    /// The action when the request names a version (`versionId`), where S3 has one.
    pub version_action: Option<&'static str>,
    /// Request headers that create a protection or a label (retention, legal hold, tags,
    /// a lock-enabled bucket), each authorized as its own action on the same resource.
    pub header_actions: &'static [(&'static str, &'static str)],
}

/// A request as the table matches it.
pub struct Shape<'a> {
    pub method: &'a Method,
    pub bucket: &'a str,
    pub key: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
}

impl Shape<'_> {
    /// Whether the query names `param` (with or without a value).
    pub fn has(&self, param: &str) -> bool {
        self.query.iter().any(|(k, _)| k == param)
    }

    pub fn q(&self, param: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == param).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> bool {
        self.headers.contains_key(name)
    }

    /// Whether the method and the resource are the operation's.
    pub fn fits(&self, spec: &Spec) -> bool {
        let resource = match (self.bucket.is_empty(), self.key.is_empty()) {
            (true, _) => Resource::Service,
            (false, true) => Resource::Bucket,
            (false, false) => Resource::Object,
        };
        let declared = match spec.resource {
            Resource::NewBucket => Resource::Bucket,
            r => r,
        };
        self.method.as_str() == spec.method && resource == declared
    }

    /// The answer to a request no operation matches.
    pub fn unmatched(&self) -> S3Error {
        if self.bucket.is_empty() {
            return S3Error::method_not_allowed("The specified method is not allowed against the service");
        }
        S3Error::not_implemented(format!("{} on this resource is not implemented", self.method))
    }
}

/// A request's target under an operation's declared resource, for authorization.
pub fn target_of<'a>(resource: Resource, bucket: &'a str, key: &'a str) -> Target<'a> {
    match resource {
        Resource::Service => Target::Service,
        Resource::NewBucket => Target::NewBucket(bucket),
        Resource::Bucket => Target::Bucket(bucket),
        Resource::Object => Target::Object(bucket, key),
    }
}

/// The actions a request's headers call for under `spec`: a header counts when it is
/// present with a value other than empty or `false`.
pub fn header_actions<'a>(spec: &'static Spec, headers: &'a HeaderMap) -> impl Iterator<Item = &'static str> + 'a {
    spec.header_actions
        .iter()
        .filter(move |(h, _)| {
            headers.get(*h).is_some_and(|v| {
                let v = String::from_utf8_lossy(v.as_bytes());
                let v = v.trim();
                !v.is_empty() && !v.eq_ignore_ascii_case("false")
            })
        })
        .map(|(_, a)| *a)
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

/// What a request names: its bucket, its key and its decoded query.
pub struct Named {
    pub bucket: String,
    pub key: String,
    pub query: Vec<(String, String)>,
}

/// What a request names, once checked for what no operation serves.
pub fn screen(headers: &HeaderMap, raw_path: &str, raw_query: &str, domain: Option<&str>) -> Result<Named, S3Error> {
    let query = parse_query(raw_query)?;
    let has = |n: &str| query.iter().any(|(k, _)| k == n);
    let (bucket, key) = target(headers, raw_path, domain)?;
    if let Some(u) = UNSUPPORTED.iter().find(|u| has(u)) {
        return Err(S3Error::not_implemented(format!(
            "The '{u}' operation is not implemented by Coffre"
        )));
    }
    let object = !key.is_empty();
    if bucket.is_empty() && object {
        return Err(S3Error::invalid_bucket_name("The specified bucket is not valid."));
    }
    if let Some(u) = BUCKET_ONLY.iter().find(|u| object && has(u)) {
        return Err(S3Error::not_implemented(format!(
            "The '{u}' sub-resource of an object is not implemented by Coffre"
        )));
    }
    if !bucket.is_empty() && !object && has("tagging") {
        return Err(S3Error::not_implemented("bucket tagging is not implemented"));
    }
    if object && key.len() > coffre_types::limits::MAX_KEY_LEN {
        return Err(S3Error::key_too_long("Your key is too long: at most 1024 bytes"));
    }
    Ok(Named { bucket, key, query })
}
