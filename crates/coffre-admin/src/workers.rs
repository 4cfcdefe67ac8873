//! The background workers of this gateway: list, pause, resume, rate and tranquility.

use crate::api::{self, ErrorCode};
use crate::{Admin, ApiError, ApiResult, Call};
use coffre_types::background::{WorkerError, WorkerStatus};
use std::sync::Arc;

/// A worker's tranquility is a multiple of its step time; past this it would stop for days.
const MAX_TRANQUILITY: u64 = 1000;

fn refused(e: WorkerError) -> ApiError {
    match e {
        WorkerError::NoSuchWorker(_) => ApiError::new(ErrorCode::NoSuchWorker, e.to_string()),
        WorkerError::NoRate(_) => ApiError::new(ErrorCode::InvalidArgument, e.to_string()),
    }
}

fn worker(w: WorkerStatus) -> api::Worker {
    api::Worker {
        name: w.name,
        state: w.state.as_str().to_string(),
        leader_only: w.leader_only,
        tranquility: w.tranquility,
        rate: w.rate,
        rate_unit: w.rate_unit,
        steps: w.steps,
        errors: w.errors,
        last_error: w.last_error,
        last_step_ms: w.last_step_ms,
        counters: w.counters,
    }
}

fn status_of(admin: &Admin, name: &str) -> ApiResult<api::Worker> {
    admin
        .engine
        .workers()
        .list()
        .into_iter()
        .find(|w| w.name == name)
        .map(worker)
        .ok_or_else(|| refused(WorkerError::NoSuchWorker(name.to_string())))
}

/// `GET /v1/workers`: every worker with its state, knobs and counters.
pub(crate) async fn list(admin: Arc<Admin>, _: Call<api::WorkersGet>) -> ApiResult<api::WorkerList> {
    Ok(api::WorkerList {
        workers: admin.engine.workers().list().into_iter().map(worker).collect(),
    })
}

pub(crate) async fn pause(admin: Arc<Admin>, call: Call<api::WorkerPause>) -> ApiResult<api::Worker> {
    admin.engine.workers().pause(&call.path).map_err(refused)?;
    status_of(&admin, &call.path)
}

pub(crate) async fn resume(admin: Arc<Admin>, call: Call<api::WorkerResume>) -> ApiResult<api::Worker> {
    admin.engine.workers().resume(&call.path).map_err(refused)?;
    status_of(&admin, &call.path)
}

/// `PUT /v1/workers/{name}?rate=N` or `?tranquility=N`.
pub(crate) async fn set(admin: Arc<Admin>, call: Call<api::WorkerPut>) -> ApiResult<api::Worker> {
    let name = call.path;
    let workers = admin.engine.workers();
    match (call.query.rate, call.query.tranquility) {
        (Some(rate), None) => workers.set_rate(&name, rate).map_err(refused)?,
        (None, Some(t)) => {
            if t > MAX_TRANQUILITY {
                return Err(ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("tranquility is at most {MAX_TRANQUILITY}"),
                ));
            }
            workers.set_tranquility(&name, t as u32).map_err(refused)?
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "give exactly one of rate and tranquility",
            ))
        }
    }
    status_of(&admin, &name)
}
