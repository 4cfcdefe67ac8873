//! The nodes shards go to: membership (add, drain, remove, persisted), heartbeats, and the
//! choice of nodes for a new version under a bucket's residency policy.

use crate::{Engine, EngineError, EngineResult};
use coffre_cluster::{Identity, Location, NodeView, RemoteShardStore, ResidencyPolicy};
use coffre_data::{MissingStore, ShardStore, StoreStat};
use coffre_meta::NodeRecord;
use coffre_types::VersionId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A node of the topology: where its shards go and where it is (for a remote node, what
/// its CA-signed certificate says).
#[derive(Clone)]
pub struct ClusterNode {
    pub store: Arc<dyn ShardStore>,
    pub location: Location,
    /// `https://host:port` of a remote node; empty for an embedded store.
    pub address: String,
    /// A draining node takes no new shards; what it holds is still read.
    pub draining: Arc<AtomicBool>,
    /// The node's capacity as its last heartbeat answered (placement weights, metrics);
    /// `None` until it first answers.
    pub last_stat: Arc<Mutex<Option<StoreStat>>>,
}

/// Builds a store for a node recorded in the metadata (one another gateway admitted).
pub type ConnectNode = dyn Fn(&str, &NodeRecord) -> Result<Arc<dyn ShardStore>, String> + Send + Sync;

impl ClusterNode {
    pub fn new(store: Arc<dyn ShardStore>, location: Location, address: String, draining: bool) -> ClusterNode {
        ClusterNode {
            store,
            location,
            address,
            draining: Arc::new(AtomicBool::new(draining)),
            last_stat: Arc::new(Mutex::new(None)),
        }
    }

    pub fn id(&self) -> &str {
        self.store.id()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The cached capacity from the last heartbeat.
    pub fn stat(&self) -> Option<StoreStat> {
        *self.last_stat.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Free bytes as placement weighs them: unknown counts as plenty, so a node just added is
    /// used before its first heartbeat.
    fn free_bytes(&self) -> u64 {
        self.stat().map_or(1 << 40, |s| s.free_bytes)
    }

    pub fn record(&self) -> NodeRecord {
        NodeRecord {
            id: self.id().to_string(),
            country: self.location.country.clone(),
            site: self.location.site.clone(),
            zone: self.location.zone.clone(),
            draining: self.is_draining(),
        }
    }

    /// A storage node reached at `address` now (mutual TLS): its id and location are what
    /// its CA-signed certificate says.
    pub async fn connect(identity: &Identity, address: &str, draining: bool) -> Result<ClusterNode, String> {
        let store = RemoteShardStore::connect(identity, address).await?;
        let location = store.location.clone();
        Ok(ClusterNode::new(
            Arc::new(store),
            location,
            address.to_string(),
            draining,
        ))
    }

    /// A storage node as the metadata knows it, whether or not it answers now (its
    /// certificate is checked against the record when it does).
    pub fn known(identity: &Identity, address: &str, rec: &NodeRecord) -> Result<ClusterNode, String> {
        let location = Location {
            country: rec.country.clone(),
            site: rec.site.clone(),
            zone: rec.zone.clone(),
        };
        let store = RemoteShardStore::known(identity, address, &rec.id, location.clone())?;
        Ok(ClusterNode::new(
            Arc::new(store),
            location,
            address.to_string(),
            rec.draining,
        ))
    }
}

impl Engine {
    /// A snapshot of the topology.
    pub fn nodes(&self) -> Vec<ClusterNode> {
        self.nodes.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn stores(&self) -> Vec<Arc<dyn ShardStore>> {
        self.nodes().into_iter().map(|n| n.store).collect()
    }

    pub fn node(&self, id: &str) -> Option<ClusterNode> {
        self.nodes().into_iter().find(|n| n.id() == id)
    }

    pub(crate) fn store_of(&self, id: &str) -> Option<Arc<dyn ShardStore>> {
        self.node(id).map(|n| n.store)
    }

    /// Admits a node (or replaces the one with the same id), persisting it when it has an
    /// address (remote nodes; embedded stores come from the configuration).
    pub async fn admit_node(&self, node: ClusterNode) -> EngineResult<()> {
        if !node.address.is_empty() {
            let (address, rec) = (node.address.clone(), node.record());
            self.meta_call(move |m| m.put_node(&address, &rec)).await?;
        }
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        nodes.retain(|n| n.id() != node.id());
        nodes.push(node);
        Ok(())
    }

    /// Stops placing new shards on a node (what it holds is still read).
    pub async fn drain_node(&self, id: &str) -> EngineResult<ClusterNode> {
        let node = self.node(id).ok_or(EngineError::Internal(format!("no node {id}")))?;
        node.draining.store(true, Ordering::Relaxed);
        if !node.address.is_empty() {
            let (address, rec) = (node.address.clone(), node.record());
            self.meta_call(move |m| m.put_node(&address, &rec)).await?;
        }
        Ok(node)
    }

    /// Forgets a node: its shards count as missing (read from parity) from now on.
    pub async fn remove_node(&self, id: &str) -> EngineResult<Option<ClusterNode>> {
        let removed = {
            let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
            nodes.iter().position(|n| n.id() == id).map(|i| nodes.remove(i))
        };
        if let Some(n) = removed.as_ref().filter(|n| !n.address.is_empty()) {
            let address = n.address.clone();
            self.meta_call(move |m| m.delete_node(&address)).await?;
        }
        Ok(removed)
    }

    /// Brings this gateway's node list in line with the metadata, where another gateway may
    /// have admitted, drained or removed nodes (replicated metadata). `connect` makes the
    /// store of a node this gateway does not know yet. Returns how many nodes changed.
    pub async fn sync_nodes(&self, connect: &ConnectNode) -> EngineResult<usize> {
        let recorded = self.meta_call(|m| m.nodes()).await?;
        let mut changed = 0;
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        for (address, rec) in &recorded {
            match nodes.iter().find(|n| n.address == *address) {
                Some(n) => {
                    if n.draining.swap(rec.draining, Ordering::Relaxed) != rec.draining {
                        changed += 1;
                    }
                }
                None => match connect(address, rec) {
                    Ok(store) => {
                        let location = Location {
                            country: rec.country.clone(),
                            site: rec.site.clone(),
                            zone: rec.zone.clone(),
                        };
                        nodes.retain(|n| n.id() != rec.id);
                        nodes.push(ClusterNode::new(store, location, address.clone(), rec.draining));
                        changed += 1;
                    }
                    Err(e) => tracing::warn!(%address, error = %e, "a node admitted elsewhere cannot be used here"),
                },
            }
        }
        let before = nodes.len();
        nodes.retain(|n| n.address.is_empty() || recorded.iter().any(|(a, _)| *a == n.address));
        changed += before - nodes.len();
        Ok(changed)
    }

    /// Asks every node for its capacity (remote nodes thereby refresh their up/down flag).
    pub async fn heartbeat(&self) {
        let nodes = self.nodes();
        let stats = futures_util::future::join_all(nodes.iter().map(|n| n.store.stat())).await;
        for (n, s) in nodes.iter().zip(stats) {
            if let Ok(s) = s {
                *n.last_stat.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
            }
        }
    }

    /// Chooses the store of each shard index for a new version under a residency policy.
    /// A slot no compliant node can take gets a `MissingStore` (recorded as degraded).
    pub(crate) fn place(
        &self,
        version: &VersionId,
        policy: &ResidencyPolicy,
    ) -> EngineResult<Vec<Arc<dyn ShardStore>>> {
        let nodes = self.nodes();
        let views: Vec<NodeView> = nodes
            .iter()
            .map(|n| NodeView {
                id: n.id().to_string(),
                country: n.location.country.clone(),
                site: n.location.site.clone(),
                zone: n.location.zone.clone(),
                // A full node takes no new shards (its writes would only fail and go degraded).
                up: n.store.is_up() && !n.is_draining() && n.free_bytes() >= coffre_types::limits::NODE_FREE_MARGIN,
                free_bytes: n.free_bytes(),
            })
            .collect();
        let picked = coffre_cluster::place(version, &views, policy).map_err(|e| {
            // Enough compliant nodes answer, but too few have room: no retry helps until space
            // is freed or added (507); otherwise nodes are down, which may pass (503).
            let answering = nodes
                .iter()
                .filter(|n| n.store.is_up() && !n.is_draining() && policy.countries.contains(&n.location.country))
                .count();
            if answering >= policy.scheme.write_quorum() {
                EngineError::InsufficientStorage(format!(
                    "the nodes allowed by the bucket's residency policy ({policy}) have no room for this object's shards"
                ))
            } else {
                EngineError::Unavailable(e.to_string())
            }
        })?;
        Ok(picked
            .into_iter()
            .map(|p| match p {
                Some(i) => nodes[i].store.clone(),
                None => Arc::new(MissingStore) as Arc<dyn ShardStore>,
            })
            .collect())
    }
}
