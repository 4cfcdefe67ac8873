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
}

impl Gateway {
    pub fn new(engine: Arc<Engine>, iam: Arc<Iam>, config: Config) -> Arc<Gateway> {
        Arc::new(Gateway {
            engine,
            iam,
            config,
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
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

/// What policy conditions may ask of a request.
pub struct RequestFacts<'a> {
    pub caller: &'a Caller,
    pub headers: &'a HeaderMap,
    pub query: &'a [(String, String)],
    pub origin: Origin,
    /// `s3:authType`: `REST-HEADER`, `REST-QUERY-STRING`, `POST` or `Anonymous`.
    pub auth_type: &'a str,
    /// The object the request acts on, for `s3:ExistingObjectTag/<key>` (read only if a
    /// policy asks for it).
    pub object: Option<(&'a Engine, &'a str, &'a str)>,
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
        if let (Some((engine, bucket, key)), true) = (self.object, wants("s3:existingobjecttag/")) {
            let tags = engine
                .head(bucket, key)
                .and_then(|rec| engine.open_attrs(bucket, key, &rec))
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
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.gw.engine
    }

    /// Whether the caller may do `action` on `target` (AccessDenied, or NoSuchBucket for a
    /// bucket that does not exist).
    pub fn authorize(&self, action: &str, target: Target<'_>) -> Result<(), S3Error> {
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
                Target::Object(b, k) => Some((self.engine(), b, k)),
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
