//! What the audit log learns of a request as it is handled: the trail is filled while the
//! request is routed and authenticated, and becomes an entry once its answer is known.

use crate::context::{Origin, TouchedList};
use coffre_engine::audit::Event;
use coffre_engine::Engine;
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
    /// What the request names beyond its path (an IAM call's user, key, role, policy).
    pub detail: Option<String>,
    pub touched: TouchedList,
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

    /// The entry as known before the answer (status 0): what a change made by the request
    /// carries as its audit note, in case its process stops before the entry is written.
    pub fn draft(&self, origin: &Origin) -> Event {
        Event {
            tenant: self.tenant.clone(),
            access_key: self.access_key.clone(),
            source: Some(origin.peer.to_string()),
            tls: origin.secure,
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version_id: self.version_id.clone(),
            status: 0,
            bytes_in: self.bytes_in,
            detail: self.detail.clone(),
            ..Event::now(self.op.clone(), self.principal.clone())
        }
    }

    /// The entry: the trail, the answer and the connection.
    pub fn event(
        &self,
        request_id: &str,
        origin: &Origin,
        status: u16,
        error: Option<&str>,
        bytes_out: u64,
        ms: u64,
    ) -> Event {
        Event {
            request_id: request_id.to_string(),
            status,
            error: error.map(str::to_string),
            bytes_out,
            ms,
            ..self.draft(origin)
        }
    }

    /// The entries of what the request touched beyond its path, from its own `entry`.
    pub fn touched_entries(&self, engine: &Engine, entry: &Event) -> Vec<Event> {
        let touched = std::mem::take(&mut *self.touched.lock().unwrap_or_else(|p| p.into_inner()));
        touched
            .into_iter()
            .map(|t| Event {
                op: t.op.to_string(),
                tenant: engine
                    .bucket(&t.bucket)
                    .map(|b| b.tenant)
                    .unwrap_or_else(|_| entry.tenant.clone()),
                bucket: t.bucket,
                key: t.key,
                version_id: t.version_id,
                status: t.status,
                error: t.error.map(str::to_string),
                bytes_in: 0,
                bytes_out: 0,
                detail: t.detail,
                ..entry.clone()
            })
            .collect()
    }
}

/// Files the trail under the bucket owner's tenant, when it names a bucket: what concerns a
/// tenant's data is in its export.
pub fn file_under_owner(engine: &Engine, trail: &mut Trail) {
    if !trail.bucket.is_empty() {
        if let Ok(b) = engine.bucket(&trail.bucket) {
            trail.tenant = b.tenant;
        }
    }
}

/// Gives the request's audit scope the entry as known now (caller, operation, target): the
/// note its changes carry. Called once the caller is known, before any change.
pub fn draft(engine: &Engine, trail: &mut Trail, origin: &Origin) {
    if engine.audit().is_some() {
        file_under_owner(engine, trail);
        coffre_engine::audit_notes::draft(&trail.draft(origin));
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
