//! The background workers of this gateway: list, pause, resume, rate and tranquility.

use crate::handlers::Query;
use crate::{Admin, ApiError, ApiResult};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use coffre_types::background::WorkerError;
use serde_json::json;
use std::sync::Arc;

/// A worker's tranquility is a multiple of its step time; past this it would stop for days.
const MAX_TRANQUILITY: u32 = 1000;

fn refused(e: WorkerError) -> ApiError {
    match e {
        WorkerError::NoSuchWorker(_) => ApiError(StatusCode::NOT_FOUND, e.to_string()),
        WorkerError::NoRate(_) => ApiError(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn status_of(admin: &Admin, name: &str) -> ApiResult {
    let w = admin
        .engine
        .workers()
        .list()
        .into_iter()
        .find(|w| w.name == name)
        .ok_or_else(|| refused(WorkerError::NoSuchWorker(name.to_string())))?;
    Ok(Json(json!(w)))
}

/// `GET /v1/workers`: every worker with its state, knobs and counters.
pub(crate) async fn list(State(admin): State<Arc<Admin>>) -> ApiResult {
    Ok(Json(json!({ "workers": admin.engine.workers().list() })))
}

/// `POST /v1/workers/{name}/{pause|resume}`.
pub(crate) async fn control(
    State(admin): State<Arc<Admin>>,
    Path((name, action)): Path<(String, String)>,
) -> ApiResult {
    let workers = admin.engine.workers();
    match action.as_str() {
        "pause" => workers.pause(&name),
        "resume" => workers.resume(&name),
        _ => return Err(ApiError(StatusCode::NOT_FOUND, format!("no worker action {action}"))),
    }
    .map_err(refused)?;
    status_of(&admin, &name)
}

/// `PUT /v1/workers/{name}?rate=N` or `?tranquility=N`.
pub(crate) async fn set(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let q = Query::parse(raw)?;
    let number = |field: &str, v: &str| -> Result<u64, ApiError> {
        v.parse::<u64>()
            .map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("{field} must be a whole number")))
    };
    let workers = admin.engine.workers();
    match (q.get("rate"), q.get("tranquility")) {
        (Some(v), None) => workers.set_rate(&name, number("rate", v)?).map_err(refused)?,
        (None, Some(v)) => {
            let t = number("tranquility", v)?;
            if t > u64::from(MAX_TRANQUILITY) {
                return Err(ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("tranquility is at most {MAX_TRANQUILITY}"),
                ));
            }
            workers.set_tranquility(&name, t as u32).map_err(refused)?
        }
        _ => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "give exactly one of rate and tranquility".into(),
            ))
        }
    }
    status_of(&admin, &name)
}
