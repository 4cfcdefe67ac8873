//! What an audit entry says: who did what to which data, and how it ended.

use serde::{Deserialize, Serialize};

/// One audited action. Never a secret, a signature or object content: names, numbers, codes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// UTC, milliseconds (`2026-12-03T02:24:19.123Z`).
    pub time: String,
    /// The request's id (what the client saw as `x-amz-request-id`), or an internal task's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The tenant whose data or identity the action concerns ("" for none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant: String,
    /// The caller's ARN, or `anonymous`, `unauthenticated`, `operator` or `system`.
    pub principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// `ip:port` of the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub tls: bool,
    /// The S3, IAM or STS API name (`PutObject`, `CreateUser`, `AssumeRole`), an admin action
    /// (`admin:NodeDrain`) or an internal one (`system:LifecycleExpire`).
    pub op: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bucket: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub status: u16,
    /// The S3 error code of a failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub bytes_in: u64,
    #[serde(default)]
    pub bytes_out: u64,
    #[serde(default)]
    pub ms: u64,
    /// What an admin or internal action was given (a node's address, a policy's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Event {
    /// An event happening now.
    pub fn now(op: impl Into<String>, principal: impl Into<String>) -> Event {
        Event {
            time: coffre_types::time::iso8601(coffre_types::now_millis()),
            op: op.into(),
            principal: principal.into(),
            status: 200,
            ..Event::default()
        }
    }

    /// An action of the store itself (GC, lifecycle, healing).
    pub fn system(op: &str, tenant: &str, bucket: &str, key: &str) -> Event {
        Event {
            tenant: tenant.to_string(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            ..Event::now(format!("system:{op}"), "system")
        }
    }

    /// An operator's action through the admin API.
    pub fn admin(op: &str, detail: impl Into<String>, status: u16) -> Event {
        Event {
            detail: Some(detail.into()).filter(|d: &String| !d.is_empty()),
            status,
            ..Event::now(format!("admin:{op}"), "operator")
        }
    }

    /// Milliseconds since the epoch of `time` (0 if unreadable).
    pub fn time_ms(&self) -> u64 {
        coffre_types::time::parse_iso8601(&self.time)
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(0)
    }
}
