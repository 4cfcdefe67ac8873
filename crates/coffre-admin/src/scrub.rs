//! The scrub, as an operator sees it: where every node's stands, and an immediate pass; and
//! the rebalance, which shares the same machinery (the repair queue).

use crate::{Admin, ApiResult};
use axum::extract::State;
use axum::Json;
use coffre_engine::scrub::ScrubRequest;
use serde_json::json;
use std::sync::Arc;

/// Keys counted at most in the repair queue's length.
const REPAIR_COUNT_LIMIT: usize = 100_000;

/// `GET /v1/scrub`: every node's scrub (progress, last full pass, findings not yet queued)
/// and the keys waiting in the repair queue.
pub(crate) async fn status(State(admin): State<Arc<Admin>>) -> ApiResult {
    let (nodes, _) = admin.engine.scrub_round(ScrubRequest::default(), false).await;
    let pending = admin.engine.repair_pending(REPAIR_COUNT_LIMIT).await?;
    Ok(Json(json!({ "nodes": nodes, "repair_pending": pending })))
}

/// `POST /v1/scrub/start`: every node starts a full pass now, at its rate cap (a node that
/// does not answer is listed with its error).
pub(crate) async fn start(State(admin): State<Arc<Admin>>) -> ApiResult {
    let request = ScrubRequest {
        start: true,
        ..Default::default()
    };
    let (nodes, _) = admin.engine.scrub_round(request, false).await;
    // The leader's worker takes the findings over at once rather than on its next round.
    let _ = admin.engine.workers().wake("scrub");
    Ok(Json(json!({ "nodes": nodes })))
}

/// `GET /v1/rebalance`: where a rebalance stands, and the keys waiting in the repair queue.
pub(crate) async fn rebalance_status(State(admin): State<Arc<Admin>>) -> ApiResult {
    let pending = admin.engine.repair_pending(REPAIR_COUNT_LIMIT).await?;
    Ok(Json(
        json!({ "rebalance": admin.engine.rebalance_status(), "repair_pending": pending }),
    ))
}

/// `POST /v1/rebalance`: the nodes holding more than their share move shards to the others
/// (nodes added since, nodes with room), within each part's residency policy.
pub(crate) async fn rebalance(State(admin): State<Arc<Admin>>) -> ApiResult {
    admin.engine.ask_rebalance();
    let _ = admin.engine.workers().wake("rebalance");
    rebalance_status(State(admin)).await
}
