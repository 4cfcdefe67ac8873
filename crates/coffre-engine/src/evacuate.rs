//! Emptying a node: one lost for good (`coffre admin nodes remove --dead`: its shards are gone
//! with it) or one draining (`coffre admin nodes drain`: it is to be retired). Every part it
//! holds (the `node_parts` index, not a scan of every object) has its shards there marked
//! degraded where the part is, which queues its key for the `repair` worker; the repair
//! rebuilds each elsewhere (and deletes the copy a draining node still has), and the index
//! entries go as it does, so what is left of a node is the sum of its entries.

use crate::{Engine, EngineResult};
use coffre_meta::{MetaCommand, NodeHoldings, NodePart, Outcome};
use coffre_types::VersionId;

impl Engine {
    /// Nodes that hold parts in the index but are in neither this gateway's topology nor the
    /// metadata's node records: removed, their shards lost. (The records are what every
    /// gateway shares: a node admitted elsewhere and not yet known here is not lost.)
    pub async fn lost_nodes(&self) -> EngineResult<Vec<String>> {
        let (indexed, recorded) = self.meta_call(|m| Ok((m.indexed_nodes()?, m.nodes()?))).await?;
        let known = self.nodes();
        Ok(indexed
            .into_iter()
            .filter(|n| !known.iter().any(|k| k.id() == n) && !recorded.iter().any(|(_, r)| r.id == *n))
            .collect())
    }

    /// Nodes to empty: the lost ones and the draining ones.
    pub async fn evacuating_nodes(&self) -> EngineResult<Vec<String>> {
        let mut out = self.lost_nodes().await?;
        out.extend(
            self.nodes()
                .into_iter()
                .filter(|n| n.is_draining())
                .map(|n| n.id().to_string()),
        );
        Ok(out)
    }

    /// What `node` still holds, as the index says (for a lost node: what is left to repair).
    pub async fn node_holdings(&self, node: &str) -> EngineResult<NodeHoldings> {
        let node = node.to_string();
        self.meta_call(move |m| m.node_holdings(&node)).await
    }

    /// Marks the shards of up to `batch` parts of node `node` (after `after`) to be rebuilt
    /// elsewhere, which queues them for repair. Returns the parts looked at and how many were marked.
    pub async fn evacuate_batch(
        &self,
        node: &str,
        after: Option<VersionId>,
        batch: usize,
    ) -> EngineResult<(Vec<NodePart>, usize)> {
        let n = node.to_string();
        let parts = self
            .meta_call(move |m| m.parts_on_node(&n, after.as_ref(), batch))
            .await?;
        let mut marked = 0;
        for p in &parts {
            let cmd = MetaCommand::EvacuatePart {
                node: node.to_string(),
                part: p.part,
            };
            if self.meta_call(move |m| m.apply(cmd)).await? == Outcome::Done(true) {
                marked += 1;
            }
        }
        Ok((parts, marked))
    }
}
