//! A gateway as a metadata replica: the replica of `coffre-meta` over the cluster's mutual
//! TLS (`coffre_cluster::peer`), with the gateway's own identity.

use coffre_cluster::peer::{self, PeerClient};
use coffre_cluster::Identity;
use coffre_meta::replica::{Replica, ReplicaConfig, Transport, TransportError};
use coffre_meta::MetaStore;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Where a gateway's replica listens and whom it replicates with (`[meta]` in the config).
#[derive(Clone, Debug)]
pub struct ReplicationConfig {
    /// The address the Raft endpoint binds.
    pub listen: String,
    /// This replica's address as the others name it (`https://LISTEN` by default).
    pub address: String,
    /// Every replica of the initial set, this one included.
    pub replicas: Vec<String>,
}

struct PeerTransport(Arc<PeerClient>);

impl Transport for PeerTransport {
    fn call(
        &self,
        address: &str,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, TransportError>> + Send + 'static>> {
        let (client, address) = (self.0.clone(), address.to_string());
        Box::pin(async move {
            client
                .call(&address, request, timeout)
                .await
                .map_err(|e| TransportError {
                    maybe_sent: e.maybe_sent,
                    message: e.message,
                })
        })
    }
}

/// Starts this gateway's replica on `meta`: binds the Raft endpoint, serves the other
/// replicas, and forms the initial set with them if it was never formed. Returns once
/// the replica runs (a leader may not be elected yet: commands wait for one).
pub async fn start_replica(
    meta: Arc<MetaStore>,
    identity: Arc<Identity>,
    config: &ReplicationConfig,
    snapshot_dir: std::path::PathBuf,
) -> Result<Arc<Replica>, String> {
    if !config
        .replicas
        .iter()
        .any(|r| r.trim_end_matches('/') == config.address)
    {
        return Err(format!(
            "[meta] replicas does not name this replica's address {} (set [meta] address)",
            config.address
        ));
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("metadata replica endpoint {}: {e}", config.listen))?;
    let transport = Arc::new(PeerTransport(Arc::new(PeerClient::new(&identity)?)));
    let replica = Replica::start(
        meta,
        ReplicaConfig::new(config.address.clone(), snapshot_dir),
        transport,
    )
    .await
    .map_err(|e| e.to_string())?;
    let served = replica.clone();
    let handler: peer::Handler = Arc::new(move |body| {
        let r = served.clone();
        Box::pin(async move { r.handle(&body).await })
    });
    tokio::spawn(async move {
        if let Err(e) = peer::serve(listener, identity, handler, std::future::pending()).await {
            tracing::error!(error = %e, "metadata replica endpoint stopped");
        }
    });
    replica
        .join_initial(&config.replicas)
        .await
        .map_err(|e| e.to_string())?;
    Ok(replica)
}
