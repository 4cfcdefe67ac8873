//! How the CLI calls the admin API: the endpoint and token, one call, what it prints.

use super::*;

#[derive(Args)]
pub struct Api {
    /// The gateway's admin API.
    #[arg(long, env = "COFFRE_ADMIN_ENDPOINT", default_value = "http://127.0.0.1:9001")]
    pub(super) endpoint: String,
    /// Bearer token (DATA/admin.token on the gateway).
    #[arg(long, env = "COFFRE_ADMIN_TOKEN")]
    pub(super) token: String,
}

pub(super) fn call(api: &Api, method: &str, path: &str) -> Result<serde_json::Value, String> {
    call_with(api, method, path, None)
}

pub(super) fn call_with(
    api: &Api,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<serde_json::Value, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (status, body) = rt.block_on(crate::client::call(&api.endpoint, &api.token, method, path, body))?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("admin API answered {status}: {e}"))?;
    if status != 200 {
        return Err(format!("admin API: {status}: {}", v["error"].as_str().unwrap_or(&body)));
    }
    Ok(v)
}

pub(super) fn enc(s: &str) -> String {
    crate::client::encode(s)
}

pub(super) fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `?a=1&b=2` of the limits given (none: no limit).
pub(super) fn quota_query(bytes: Option<u64>, objects: Option<u64>) -> String {
    let mut q = Vec::new();
    if let Some(b) = bytes {
        q.push(format!("quota_bytes={b}"));
    }
    if let Some(o) = objects {
        q.push(format!("quota_objects={o}"));
    }
    q.join("&")
}

pub(super) fn read_file(p: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}
