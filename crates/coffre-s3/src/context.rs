//! What every handler gets: the gateway's configuration, engine and identity service, and
//! the request's headers, query, caller, and the authorization of what it asks.

use crate::auth::{Credentials, Verified};
use crate::body::{BodyLimits, BodyReader};
use crate::S3Error;
use coffre_engine::Engine;
use coffre_engine::VerifiedChecksum;
use coffre_iam::{Caller, Iam, Target};
use http::HeaderMap;
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub struct Config {
    pub region: String,
    /// For virtual-hosted-style requests: `bucket.<domain>`.
    pub domain: Option<String>,
    /// Largest single PUT (S3: 5 GiB).
    pub max_put: u64,
    /// Regions a bucket can be created in (`LocationConstraint`), each with the residency
    /// policy its buckets get. `region` is the default.
    pub regions: Vec<(String, coffre_cluster::ResidencyPolicy)>,
    /// How slow a request body may be.
    pub body_limits: BodyLimits,
    /// Whether SSE-C keys are accepted over plain HTTP (tests only).
    pub allow_sse_c_over_http: bool,
}

/// Access keys and session tokens, as SigV4 verification looks them up.
impl Credentials for Iam {
    type Identity = Arc<Caller>;

    fn lookup(&self, access_key: &str, session_token: Option<&str>) -> Result<(String, Arc<Caller>), S3Error> {
        Ok(self.resolve(access_key, session_token)?)
    }
}

/// The S3 gateway: configuration, engine, identities, counters.
pub struct Gateway {
    pub engine: Arc<Engine>,
    pub iam: Arc<Iam>,
    pub config: Config,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub metrics: crate::metrics::S3Metrics,
    /// The S3 listener's connections (set when it serves), for the metrics.
    pub connections: std::sync::OnceLock<Arc<coffre_cluster::net::ConnectionLimiter>>,
    /// Room (KiB) for documents anonymous requests have read whole before anything authorizes
    /// them (a DeleteObjects list is authorized key by key): all of them together.
    anonymous_documents: Arc<tokio::sync::Semaphore>,
}

/// What anonymous requests may hold of documents read before authorization, all together.
const ANONYMOUS_DOCUMENTS: usize = 16 << 20;

impl Gateway {
    pub fn new(engine: Arc<Engine>, iam: Arc<Iam>, config: Config) -> Arc<Gateway> {
        Arc::new(Gateway {
            engine,
            iam,
            config,
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            metrics: Default::default(),
            connections: Default::default(),
            anonymous_documents: Arc::new(tokio::sync::Semaphore::new(ANONYMOUS_DOCUMENTS >> 10)),
        })
    }

    /// Room for an anonymous request's document of up to `bytes`, if there is some now (else
    /// SlowDown: anonymous callers cannot make the gateway hold more than a bounded amount).
    pub fn room_for_anonymous_document(&self, bytes: usize) -> Result<tokio::sync::OwnedSemaphorePermit, S3Error> {
        let kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        self.anonymous_documents
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| {
                S3Error::slow_down("Please reduce your request rate: too many anonymous requests are being read.")
            })
    }
}

/// Where a request comes from and how, as policy conditions see it.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub peer: SocketAddr,
    /// The request came over TLS.
    pub secure: bool,
}

/// An object a request acted on beyond the one its path names (the keys of a
/// DeleteObjects, the source of a copy): each gets an entry of its own, filed under its
/// bucket owner's tenant, in the request's batch.
#[derive(Clone, Debug)]
pub struct Touched {
    /// `BatchDeleteObject`, `CopySource`, `kms:Decrypt`, `kms:GenerateDataKey`.
    pub op: &'static str,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub status: u16,
    pub error: Option<&'static str>,
    /// What the entry names beyond the object (the ARN of a KMS key used).
    pub detail: Option<String>,
}

/// Where handlers record what they touched (shared by the trail and the request's `Ctx`).
pub type TouchedList = std::sync::Arc<std::sync::Mutex<Vec<Touched>>>;

/// What policy conditions may ask of a request.
pub struct RequestFacts<'a> {
    pub caller: &'a Caller,
    pub headers: &'a HeaderMap,
    pub query: &'a [(String, String)],
    pub origin: Origin,
    /// `s3:authType`: `REST-HEADER`, `REST-QUERY-STRING`, `POST` or `Anonymous`.
    pub auth_type: &'a str,
    /// The object the request acts on, and the version it names, for
    /// `s3:ExistingObjectTag/<key>` (read only if a policy asks for it).
    pub object: Option<ObjectFacts<'a>>,
}

/// The object version a request acts on, as its tag conditions see it.
pub struct ObjectFacts<'a> {
    pub engine: &'a Engine,
    pub bucket: &'a str,
    pub key: &'a str,
    /// The version named (`versionId`); `None`: the current one.
    pub version: Option<coffre_engine::VersionSel>,
}

impl coffre_iam::ContextSource for RequestFacts<'_> {
    /// The keys `wants` (lower-case): the caller's, then the request's.
    fn context(&self, wants: &dyn Fn(&str) -> bool) -> coffre_iam::Context {
        let mut c = self.caller.context(wants);
        if wants("aws:sourceip") {
            c.set("aws:SourceIp", self.origin.peer.ip().to_string());
        }
        if wants("aws:securetransport") {
            c.set("aws:SecureTransport", self.origin.secure.to_string());
        }
        if wants("s3:authtype") {
            c.set("s3:authType", self.auth_type);
        }
        if self.auth_type != "Anonymous" && wants("s3:signatureversion") {
            c.set("s3:signatureversion", "AWS4-HMAC-SHA256");
        }
        let h = |n: &str| self.headers.get(n).and_then(|v| v.to_str().ok());
        for (key, header) in [
            ("aws:referer", "referer"),
            ("aws:useragent", "user-agent"),
            ("s3:x-amz-server-side-encryption", "x-amz-server-side-encryption"),
            (
                "s3:x-amz-server-side-encryption-aws-kms-key-id",
                "x-amz-server-side-encryption-aws-kms-key-id",
            ),
            (
                "s3:x-amz-server-side-encryption-customer-algorithm",
                "x-amz-server-side-encryption-customer-algorithm",
            ),
            ("s3:x-amz-acl", "x-amz-acl"),
            ("s3:x-amz-copy-source", "x-amz-copy-source"),
            ("s3:x-amz-metadata-directive", "x-amz-metadata-directive"),
            ("s3:x-amz-storage-class", "x-amz-storage-class"),
            ("s3:x-amz-content-sha256", "x-amz-content-sha256"),
        ] {
            if let Some(v) = h(header).filter(|_| wants(key)) {
                c.set(key, v);
            }
        }
        for (key, param) in [
            ("s3:prefix", "prefix"),
            ("s3:delimiter", "delimiter"),
            ("s3:max-keys", "max-keys"),
        ] {
            if let Some((_, v)) = self.query.iter().find(|(k, _)| k == param).filter(|_| wants(key)) {
                c.set(key, v.as_str());
            }
        }
        // Tags: the ones a write asks for, the ones the object has.
        if wants("s3:requestobjecttag/") || wants("s3:requestobjecttagkeys") {
            let tags = h("x-amz-tagging").and_then(|t| crate::encoding::parse_query(t).ok());
            for (k, v) in tags.unwrap_or_default() {
                c.add("s3:RequestObjectTagKeys", k.as_str());
                c.set(&format!("s3:RequestObjectTag/{k}"), v);
            }
        }
        if let (Some(o), true) = (&self.object, wants("s3:existingobjecttag/")) {
            // The tags of the version the request names, not the current one's.
            let tags = o
                .engine
                .head_version(o.bucket, o.key, o.version)
                .and_then(|(rec, _)| o.engine.open_attrs(o.bucket, o.key, &rec))
                .map(|a| a.tags)
                .unwrap_or_default();
            for (k, v) in tags {
                c.set(&format!("s3:ExistingObjectTag/{k}"), v);
            }
        }
        c
    }
}

/// One request, authenticated or anonymous, as handlers see it.
pub struct Ctx {
    pub gw: Arc<Gateway>,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    /// The signature's facts; `None` for an anonymous request.
    pub verified: Option<Verified>,
    pub caller: Arc<Caller>,
    pub origin: Origin,
    /// The request came over TLS.
    pub secure: bool,
    /// What the request touched beyond its path, for the audit (the trail's list).
    pub touched: TouchedList,
}

impl Ctx {
    pub fn new(
        gw: Arc<Gateway>,
        headers: HeaderMap,
        query: Vec<(String, String)>,
        verified: Option<Verified>,
        caller: Arc<Caller>,
        origin: Origin,
    ) -> Ctx {
        Ctx {
            gw,
            headers,
            query,
            verified,
            caller,
            secure: origin.secure,
            origin,
            touched: TouchedList::default(),
        }
    }

    /// Records an object the request acted on beyond its path (an entry of its own).
    pub fn touch(&self, t: Touched) {
        self.touched.lock().unwrap_or_else(|p| p.into_inner()).push(t);
    }

    pub fn engine(&self) -> &Engine {
        &self.gw.engine
    }

    /// Whether the caller may do `action` on `target` (AccessDenied, or NoSuchBucket for a
    /// bucket that does not exist); an object's version is the one the request names.
    pub fn authorize(&self, action: &str, target: Target<'_>) -> Result<(), S3Error> {
        let version = self.q("versionId").and_then(coffre_engine::VersionSel::parse);
        self.authorize_version(action, target, version)
    }

    /// As `authorize`, for version `version` of the target object (a copy's source).
    pub fn authorize_version(
        &self,
        action: &str,
        target: Target<'_>,
        version: Option<coffre_engine::VersionSel>,
    ) -> Result<(), S3Error> {
        let auth_type = match &self.verified {
            None => "Anonymous",
            Some(v) if v.presigned => "REST-QUERY-STRING",
            Some(_) => "REST-HEADER",
        };
        let facts = RequestFacts {
            caller: &self.caller,
            headers: &self.headers,
            query: &self.query,
            origin: self.origin,
            auth_type,
            object: match target {
                Target::Object(bucket, key) => Some(ObjectFacts {
                    engine: self.engine(),
                    bucket,
                    key,
                    version,
                }),
                _ => None,
            },
        };
        Ok(self.gw.iam.authorize(&self.caller, action, target, &facts)?)
    }

    /// Whether the caller may list `bucket` under the prefix `key` (what tells it that a
    /// key does not exist).
    pub fn may_list(&self, bucket: &str, key: &str) -> bool {
        let query = [("prefix".to_string(), key.to_string())];
        let facts = RequestFacts {
            caller: &self.caller,
            headers: &self.headers,
            query: &query,
            origin: self.origin,
            auth_type: if self.verified.is_some() {
                "REST-HEADER"
            } else {
                "Anonymous"
            },
            object: None,
        };
        self.gw
            .iam
            .authorize(&self.caller, "s3:ListBucket", Target::Bucket(bucket), &facts)
            .is_ok()
    }

    /// The tenant that owns a bucket: what `Owner/ID` shows and what
    /// `x-amz-expected-bucket-owner` must name.
    pub fn owner_of(&self, bucket: &str) -> Result<String, S3Error> {
        self.gw
            .iam
            .bucket_owner(bucket)?
            .ok_or_else(|| S3Error::no_such_bucket("The specified bucket does not exist"))
    }

    /// The caller's tenant (an anonymous caller has none and gets AccessDenied).
    pub fn tenant(&self) -> Result<&str, S3Error> {
        self.caller
            .principal
            .tenant()
            .ok_or_else(|| S3Error::access_denied("Anonymous users cannot do this: sign your request"))
    }

    /// The request body, verified while it streams, of at most `max_len` bytes.
    pub fn body(&self, body: Incoming, max_len: u64) -> Result<(BodyReader, VerifiedChecksum), S3Error> {
        BodyReader::new(
            body,
            &self.headers,
            self.verified.clone(),
            max_len,
            self.gw.config.body_limits,
        )
    }

    /// A small request body whose `x-amz-checksum-*` headers describe something else (the
    /// object a CompleteMultipartUpload makes), so they are not checked against it.
    pub fn body_ignoring_checksums(
        &self,
        body: Incoming,
        max_len: u64,
    ) -> Result<(BodyReader, VerifiedChecksum), S3Error> {
        let mut headers = self.headers.clone();
        for a in coffre_engine::checksum::Algorithm::ALL {
            headers.remove(a.header());
        }
        headers.remove("x-amz-sdk-checksum-algorithm");
        BodyReader::new(
            body,
            &headers,
            self.verified.clone(),
            max_len,
            self.gw.config.body_limits,
        )
    }

    /// The SSE-C key the request gives for its object (`sse::TARGET`) or a copy's source.
    pub fn customer_key(&self, which: crate::sse::KeyHeaders) -> Result<Option<crate::sse::GivenKey>, S3Error> {
        crate::sse::customer_key(&self.headers, which, self.secure, self.gw.config.allow_sse_c_over_http)
    }

    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn h(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
    }
}
