//! What every handler gets: the gateway's configuration and engine, and the request's
//! headers, query and verified identity.

use crate::auth::{self, Credentials, Verified};
use crate::body::{BodyLimits, BodyReader};
use crate::S3Error;
use coffre_engine::Engine;
use coffre_engine::VerifiedChecksum;
use http::HeaderMap;
use hyper::body::Incoming;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub struct Config {
    pub region: String,
    /// For virtual-hosted-style requests: `bucket.<domain>`.
    pub domain: Option<String>,
    pub access_key: String,
    pub secret_key: String,
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

impl Config {
    /// The owner of every bucket (one account until tenants): ListBuckets' `Owner/ID`, what
    /// `x-amz-expected-bucket-owner` must name.
    pub fn owner_id(&self) -> &str {
        &self.access_key
    }
}

impl Credentials for Config {
    fn secret_for(&self, access_key: &str) -> Option<String> {
        auth::constant_time_eq(access_key, &self.access_key).then(|| self.secret_key.clone())
    }
}

/// The S3 gateway: configuration, engine, counters.
pub struct Gateway {
    pub engine: Arc<Engine>,
    pub config: Config,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

impl Gateway {
    pub fn new(engine: Arc<Engine>, config: Config) -> Arc<Gateway> {
        Arc::new(Gateway {
            engine,
            config,
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }
}

/// One authenticated request, as handlers see it.
pub struct Ctx {
    pub gw: Arc<Gateway>,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    pub verified: Verified,
    /// The request came over TLS.
    pub secure: bool,
}

impl Ctx {
    pub fn engine(&self) -> &Engine {
        &self.gw.engine
    }

    /// The request body, verified while it streams, of at most `max_len` bytes.
    pub fn body(&self, body: Incoming, max_len: u64) -> Result<(BodyReader, VerifiedChecksum), S3Error> {
        BodyReader::new(
            body,
            &self.headers,
            Some(self.verified.clone()),
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
            Some(self.verified.clone()),
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
