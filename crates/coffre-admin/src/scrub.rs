//! The scrub, as an operator sees it: where every node's stands, and an immediate pass; and
//! the rebalance, which shares the same machinery (the repair queue).

use crate::api;
use crate::handlers::scrub_state;
use crate::{Admin, ApiResult, Call};
use coffre_engine::scrub::ScrubRequest;
use std::sync::Arc;

/// Keys counted at most in the repair queue's length.
pub(crate) const REPAIR_COUNT_LIMIT: usize = 100_000;

fn nodes(round: Vec<coffre_engine::scrub::NodeScrub>) -> Vec<api::NodeScrub> {
    round
        .into_iter()
        .map(|n| api::NodeScrub {
            node: n.node,
            status: n.status.map(scrub_state),
            error: n.error,
        })
        .collect()
}

/// `GET /v1/scrub`: every node's scrub (progress, last full pass, findings not yet queued)
/// and the keys waiting in the repair queue.
pub(crate) async fn status(admin: Arc<Admin>, _: Call<api::ScrubGet>) -> ApiResult<api::ScrubStatus> {
    let (round, _) = admin.engine.scrub_round(ScrubRequest::default(), false).await;
    let pending = admin.engine.repair_pending(REPAIR_COUNT_LIMIT).await?;
    Ok(api::ScrubStatus {
        nodes: nodes(round),
        repair_pending: pending as u64,
    })
}

/// `POST /v1/scrub/start`: every node starts a full pass now, at its rate cap (a node that
/// does not answer is listed with its error).
pub(crate) async fn start(admin: Arc<Admin>, _: Call<api::ScrubStart>) -> ApiResult<api::ScrubStarted> {
    let request = ScrubRequest {
        start: true,
        ..Default::default()
    };
    let (round, _) = admin.engine.scrub_round(request, false).await;
    // The leader's worker takes the findings over at once rather than on its next round.
    let _ = admin.engine.workers().wake("scrub");
    Ok(api::ScrubStarted { nodes: nodes(round) })
}

/// `GET /v1/rebalance`: where a rebalance stands, and the keys waiting in the repair queue.
pub(crate) async fn rebalance_status(admin: Arc<Admin>) -> ApiResult<api::RebalanceStatus> {
    let pending = admin.engine.repair_pending(REPAIR_COUNT_LIMIT).await?;
    let r = admin.engine.rebalance_status();
    Ok(api::RebalanceStatus {
        rebalance: api::RebalanceState {
            running: r.running,
            bytes_to_move: r.bytes_to_move,
            parts_queued: r.parts_queued,
        },
        repair_pending: pending as u64,
    })
}

/// `POST /v1/rebalance`: the nodes holding more than their share move shards to the others
/// (nodes added since, nodes with room), within each part's residency policy.
pub(crate) async fn rebalance(admin: Arc<Admin>, _: Call<api::RebalanceCreate>) -> ApiResult<api::RebalanceStatus> {
    admin.engine.ask_rebalance();
    let _ = admin.engine.workers().wake("rebalance");
    rebalance_status(admin).await
}
