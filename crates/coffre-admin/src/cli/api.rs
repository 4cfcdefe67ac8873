//! How the CLI calls the admin API: the endpoint and token, one typed call, what it prints.

use super::*;
use crate::api::Endpoint;

#[derive(Args)]
pub struct Api {
    /// The gateway's admin API.
    #[arg(long, env = "COFFRE_ADMIN_ENDPOINT", default_value = "http://127.0.0.1:9001")]
    pub(super) endpoint: String,
    /// Bearer token (DATA/admin.token on the gateway).
    #[arg(long, env = "COFFRE_ADMIN_TOKEN")]
    pub(super) token: String,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// Calls `E` with its path segments, query and body.
pub(super) fn ask<E: Endpoint>(api: &Api, path: E::Path, query: E::Query, body: E::Body) -> Result<E::Answer, String> {
    runtime()?.block_on(crate::client::request::<E>(
        &api.endpoint,
        &api.token,
        &path,
        &query,
        &body,
    ))
}

/// Calls `E`, which takes only path segments.
pub(super) fn ask_at<E: Endpoint<Body = ()>>(api: &Api, path: E::Path) -> Result<E::Answer, String> {
    ask::<E>(api, path, E::Query::default(), ())
}

/// Calls `E`, whose answer is a stream, into a new file `out`.
pub(super) fn download<E: Endpoint<Path = ()>>(
    api: &Api,
    query: E::Query,
    out: &std::path::Path,
) -> Result<(), String> {
    let target = crate::client::target::<E>(&(), &query)?;
    let (status, answer) = runtime()?.block_on(crate::client::download(&api.endpoint, &api.token, &target, out))?;
    if status != 200 {
        return Err(crate::client::refusal(status, &answer));
    }
    Ok(())
}

pub(super) fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub(super) fn read_file(p: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}
