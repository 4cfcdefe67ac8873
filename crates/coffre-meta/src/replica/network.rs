//! openraft's network over a `Transport` that moves bytes between replicas.

use super::codec::encode;
use super::{ReplicaNode, Request, Response, TypeConfig};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Why a call brought no answer.
#[derive(Debug)]
pub struct TransportError {
    /// Whether the request may have reached the replica (a connection refused: no; a
    /// timeout after sending: maybe). A command that may have arrived is never sent again.
    pub maybe_sent: bool,
    pub message: String,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Carries one request to the replica at `address` and returns its answer (the bytes
/// `Replica::handle` produced there).
pub trait Transport: Send + Sync + 'static {
    fn call(
        &self,
        address: &str,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, TransportError>> + Send + 'static>>;
}

pub(crate) struct Network {
    pub(crate) transport: Arc<dyn Transport>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, node: &ReplicaNode) -> Connection {
        Connection {
            transport: self.transport.clone(),
            target,
            address: node.address.clone(),
        }
    }
}

pub(crate) struct Connection {
    transport: Arc<dyn Transport>,
    target: u64,
    address: String,
}

type RpcResult<T, E> = Result<T, RPCError<u64, ReplicaNode, RaftError<u64, E>>>;

impl Connection {
    async fn send(&self, request: Request, option: &RPCOption) -> Result<Response, Unreachable> {
        let bytes = self
            .transport
            .call(&self.address, encode(&request), option.hard_ttl())
            .await
            .map_err(|e| Unreachable::new(&std::io::Error::other(e.message)))?;
        postcard::from_bytes(&bytes).map_err(|e| Unreachable::new(&std::io::Error::other(e.to_string())))
    }

    fn answer<T, E: std::error::Error>(&self, r: Result<T, RaftError<u64, E>>) -> RpcResult<T, E> {
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn unexpected<E: std::error::Error>(r: Response) -> RPCError<u64, ReplicaNode, RaftError<u64, E>> {
    let what = match r {
        Response::Malformed(m) => format!("the replica could not read the request: {m}"),
        _ => "an unexpected answer".to_string(),
    };
    RPCError::Network(NetworkError::new(&std::io::Error::other(what)))
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>, openraft::error::Infallible> {
        match self.send(Request::AppendEntries(rpc), &option).await? {
            Response::AppendEntries(r) => self.answer(r),
            other => Err(unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        match self.send(Request::InstallSnapshot(rpc), &option).await? {
            Response::InstallSnapshot(r) => self.answer(r),
            other => Err(unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>, openraft::error::Infallible> {
        match self.send(Request::Vote(rpc), &option).await? {
            Response::Vote(r) => self.answer(r),
            other => Err(unexpected(other)),
        }
    }
}
