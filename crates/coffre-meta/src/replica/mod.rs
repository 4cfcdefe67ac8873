//! Metadata replicated by Raft (openraft): every replica's state machine applies the same
//! `MetaCommand`s in the same order (`storage.rs`), a lagging or new replica catches up from
//! a snapshot (`snapshot.rs`). `MetaStore` stays the only door: once a `Replica` is started
//! on it, `MetaStore::apply` proposes through the log and `MetaStore::barrier` makes reads
//! linearizable; callers do not learn about Raft.
//!
//! The network is a `Transport` that carries opaque request bytes to a replica's address and
//! brings its answer back (`Replica::handle` on the other side): HTTP/2 with mutual TLS
//! between gateways, memory in tests.
//!
//! A command is proposed at most once per answer it may get: it is retried only when it was
//! certainly not appended (the node asked was not the leader). When its fate is unknown
//! (the leader did not answer in time), the caller gets `Unavailable`, as a client of any
//! store gets a timeout; a write that commits later anyway is safe, because an abort after
//! a commit finds no intent and collects nothing.

// openraft's traits fix the error types (`StorageError`, `RPCError`): large, not ours to box.
#![allow(clippy::result_large_err)]

mod codec;
mod history;
mod metrics;
mod network;
pub(crate) mod snapshot;
mod storage;

pub use network::{Transport, TransportError};
pub use snapshot::{Restored, SnapshotFile};

use crate::{MetaCommand, MetaError, MetaStore, Outcome, Replicator};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{Config, Raft, ServerState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What a replica answers to a command: its outcome, or the refusal of the state machine.
pub type Reply = Result<Outcome, MetaError>;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = MetaCommand,
        R = Reply,
        NodeId = u64,
        Node = ReplicaNode,
        SnapshotData = SnapshotFile,
);

/// A replica as the others know it: where its Raft endpoint listens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaNode {
    pub address: String,
}

/// A replica's id: derived from its address, so that every replica computes the same
/// initial membership from the same configuration, without a bootstrap step.
pub fn replica_id(address: &str) -> u64 {
    let h = blake3::hash(address.trim_end_matches('/').as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    // Never 0: openraft reserves nothing, but 0 reads as "unset" in our status output.
    u64::from_le_bytes(b).max(1)
}

#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This replica's Raft address, as in the `replicas` list.
    pub address: String,
    /// Where snapshots are kept (not inside the RocksDB directory).
    pub snapshot_dir: PathBuf,
    pub heartbeat: Duration,
    /// Elections start after a random delay in [min, 2·min).
    pub election_timeout: Duration,
    /// How long a command or a read barrier may wait for a quorum before `Unavailable`.
    pub request_timeout: Duration,
    /// A snapshot is taken every this many applied entries (then the log before it goes).
    pub snapshot_every: u64,
}

impl ReplicaConfig {
    pub fn new(address: impl Into<String>, snapshot_dir: PathBuf) -> ReplicaConfig {
        ReplicaConfig {
            address: address.into(),
            snapshot_dir,
            heartbeat: Duration::from_millis(250),
            election_timeout: Duration::from_millis(1500),
            request_timeout: Duration::from_secs(10),
            snapshot_every: 20_000,
        }
    }
}

/// One request between replicas (carried as postcard bytes by the `Transport`).
#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    AppendEntries(openraft::raft::AppendEntriesRequest<TypeConfig>),
    Vote(openraft::raft::VoteRequest<u64>),
    InstallSnapshot(openraft::raft::InstallSnapshotRequest<TypeConfig>),
    /// A command forwarded to the leader.
    Propose(MetaCommand),
    /// A follower asks the leader up to where it must apply before a linearizable read.
    ReadIndex,
    /// Membership changes forwarded to the leader.
    AddReplica(String),
    RemoveReplica(u64),
    /// Whether the replica has joined a replica set (asked before forming one).
    Hello,
    /// `Replica::forget_history_here`.
    ForgetHistory,
}

#[derive(Serialize, Deserialize)]
pub(crate) enum Response {
    AppendEntries(Result<openraft::raft::AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<openraft::raft::VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(
        Result<openraft::raft::InstallSnapshotResponse<u64>, RaftError<u64, openraft::error::InstallSnapshotError>>,
    ),
    /// The answer to a forwarded command or membership change.
    Leader(LeaderAnswer),
    ReadIndex(LeaderAnswer),
    /// Whether the replica is part of a formed set.
    Hello {
        initialized: bool,
    },
    /// The request could not be decoded.
    Malformed(String),
}

/// What the leader (or who was asked as leader) answers to a forwarded request.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum LeaderAnswer {
    /// Applied on the leader at this log index (none for a membership change).
    Done(Reply, Option<u64>),
    /// A read index.
    Index(Option<u64>),
    /// Not the leader: nothing was appended; try there (if known).
    NotLeader(Option<ReplicaNode>),
    /// The request may or may not take effect (no quorum in time, shutting down).
    Unknown(String),
}

/// The state of the replica set, as `coffre admin meta status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    pub state: String,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub replicas: Vec<ReplicaStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReplicaStatus {
    pub id: u64,
    pub address: String,
    /// `leader`, `follower` (a voter) or `learner` (catching up, not yet voting).
    pub state: String,
    /// The highest log index known to be on the replica (the leader's view; on another
    /// replica, its own applied index for itself and nothing for the others).
    pub commit_index: Option<u64>,
    /// Entries the replica lags behind the leader's log (the leader's view).
    pub lag: Option<u64>,
}

/// Read indexes shared by concurrent readers (`Replica::read_index`).
#[derive(Default)]
struct ReadIndexes {
    /// One request for a read index out at a time.
    gate: tokio::sync::Mutex<()>,
    /// How many requests were started (a request's epoch is the count when it started).
    started: std::sync::atomic::AtomicU64,
    /// The epoch and answer of the last request that succeeded.
    last: std::sync::Mutex<(u64, Option<u64>)>,
}

/// A running replica of the metadata.
pub struct Replica {
    id: u64,
    reads: ReadIndexes,
    raft: Raft<TypeConfig>,
    store: Arc<MetaStore>,
    transport: Arc<dyn Transport>,
    runtime: tokio::runtime::Handle,
    config: ReplicaConfig,
    /// The last request found no leader in time: this replica is probably cut off from a
    /// majority, and the next requests give it `CUT_OFF_PATIENCE` rather than the whole
    /// `request_timeout` (a minority answers 503 at once rather than each request after
    /// 10 s; the first answer from a leader clears it).
    cut_off: std::sync::atomic::AtomicBool,
}

/// How long a request waits for a leader while the replica seems cut off from a majority.
const CUT_OFF_PATIENCE: Duration = Duration::from_secs(1);

fn unavailable(m: impl std::fmt::Display) -> MetaError {
    MetaError::Unavailable(m.to_string())
}

impl Replica {
    /// Starts the replica on `store` (inside a tokio runtime). From here on, the store's
    /// commands go through the log. The replica set forms with `join_initial`.
    pub async fn start(
        store: Arc<MetaStore>,
        config: ReplicaConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<Arc<Replica>, MetaError> {
        std::fs::create_dir_all(&config.snapshot_dir)
            .map_err(|e| unavailable(format!("snapshot directory {}: {e}", config.snapshot_dir.display())))?;
        let election = config.election_timeout.as_millis() as u64;
        let raft_config = Config {
            cluster_name: "coffre-meta".into(),
            heartbeat_interval: config.heartbeat.as_millis() as u64,
            election_timeout_min: election,
            election_timeout_max: election * 2,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: 1000,
            // Bounds one AppendEntries message (see `coffre_cluster::peer::MAX_PEER_MESSAGE`).
            max_payload_entries: 64,
            ..Default::default()
        }
        .validate()
        .map_err(|e| unavailable(format!("replica configuration: {e}")))?;
        // Applying no longer needs its own fsync: the log entry it comes from is synced,
        // and a crash re-applies what the state machine lost (see `storage.rs`).
        store.set_sync_applies(false);
        let log = storage::LogStore { store: store.clone() };
        let sm = storage::StateMachine {
            store: store.clone(),
            snapshot_dir: config.snapshot_dir.clone(),
        };
        let net = network::Network {
            transport: transport.clone(),
        };
        let id = replica_id(&config.address);
        let raft = Raft::new(id, Arc::new(raft_config), net, log, sm)
            .await
            .map_err(|e| unavailable(format!("starting the replica: {e}")))?;
        let replica = Arc::new(Replica {
            id,
            reads: ReadIndexes::default(),
            raft,
            store: store.clone(),
            transport,
            runtime: tokio::runtime::Handle::current(),
            config,
            cut_off: std::sync::atomic::AtomicBool::new(false),
        });
        store.set_replicator(Some(replica.clone()));
        Ok(replica)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn store(&self) -> &Arc<MetaStore> {
        &self.store
    }

    /// Forms the initial replica set from the configured addresses, if this replica has
    /// never been part of one, once a majority of them answers. Every replica may do it with
    /// the same list: they all write the same first membership, and the first election
    /// decides. A replica that finds the set formed already (it was wiped, or it is new)
    /// does not: it is fed by the leader if it is a member, or waits for `meta add`.
    pub async fn join_initial(&self, addresses: &[String]) -> Result<(), MetaError> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| unavailable(format!("replica stopped: {e}")))?;
        if initialized || self.store.has_raft_state()? {
            return Ok(());
        }
        let members: BTreeMap<u64, ReplicaNode> = addresses
            .iter()
            .map(|a| {
                (
                    replica_id(a),
                    ReplicaNode {
                        address: a.trim_end_matches('/').to_string(),
                    },
                )
            })
            .collect();
        let majority = members.len() / 2 + 1;
        let mut waited = false;
        loop {
            let mut answering = 1;
            for (id, node) in &members {
                if *id == self.id {
                    continue;
                }
                let hello = codec::encode(&Request::Hello);
                let answer = self.transport.call(&node.address, hello, Duration::from_secs(2)).await;
                match answer.ok().and_then(|a| postcard::from_bytes::<Response>(&a).ok()) {
                    Some(Response::Hello { initialized: true }) => return Ok(()),
                    Some(Response::Hello { initialized: false }) => answering += 1,
                    _ => {}
                }
            }
            if answering >= majority {
                break;
            }
            if !waited {
                tracing::warn!(
                    answering,
                    majority,
                    "waiting for a majority of metadata replicas to form the set"
                );
                waited = true;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another replica's membership arrived first: the set is formed.
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(unavailable(format!("forming the replica set: {e}"))),
        }
    }

    /// How long a request may wait for the leader, from now: the request timeout, or
    /// `CUT_OFF_PATIENCE` while the replica seems cut off from a majority.
    fn deadline(&self) -> tokio::time::Instant {
        use std::sync::atomic::Ordering;
        let patience = match self.cut_off.load(Ordering::Relaxed) {
            true => CUT_OFF_PATIENCE.min(self.config.request_timeout),
            false => self.config.request_timeout,
        };
        tokio::time::Instant::now() + patience
    }

    /// What is left before `deadline` (at least a millisecond): every step of a request
    /// shares the request's deadline, so none outlives it.
    fn left(deadline: tokio::time::Instant) -> Duration {
        deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_millis(1))
    }

    /// Records whether a leader answered: what `deadline` goes by.
    fn leader_answered(&self, answered: bool) {
        self.cut_off.store(!answered, std::sync::atomic::Ordering::Relaxed);
    }

    /// Proposes a command; returns its outcome once applied here.
    pub async fn propose(&self, cmd: MetaCommand) -> Reply {
        let deadline = self.deadline();
        loop {
            let left = Self::left(deadline);
            let answer = match self.leader().await {
                Some((id, _)) if id == self.id => self.propose_here(cmd.clone(), left).await,
                Some((_, node)) => self.forward(&node, Request::Propose(cmd.clone()), left).await,
                None => LeaderAnswer::NotLeader(None),
            };
            match answer {
                // Applied on the leader: once applied here too, what the caller reads next
                // on this replica includes it.
                LeaderAnswer::Done(reply, Some(index)) => {
                    self.leader_answered(true);
                    self.raft
                        .wait(Some(Self::left(deadline)))
                        .applied_index_at_least(Some(index), "forwarded command")
                        .await
                        .map_err(|_| unavailable("this replica could not catch up with the leader in time"))?;
                    return reply;
                }
                LeaderAnswer::Done(reply, None) => {
                    self.leader_answered(true);
                    return reply;
                }
                LeaderAnswer::Index(_) => return Err(unavailable("unexpected answer to a command")),
                LeaderAnswer::Unknown(m) => return Err(unavailable(m)),
                LeaderAnswer::NotLeader(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(self.no_quorum().await)
                }
                // Nothing was appended: safe to try again once a leader is known.
                LeaderAnswer::NotLeader(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Returns once this replica has applied everything committed before the call.
    pub async fn barrier(&self) -> Result<(), MetaError> {
        let deadline = self.deadline();
        loop {
            let answer = self.read_index(deadline).await;
            match answer {
                LeaderAnswer::Index(index) => {
                    self.leader_answered(true);
                    return self
                        .raft
                        .wait(Some(Self::left(deadline)))
                        .applied_index_at_least(index, "read barrier")
                        .await
                        .map(drop)
                        .map_err(|_| unavailable("this replica could not catch up with the leader in time"));
                }
                // A read changes nothing: ask again, whatever happened to the question.
                LeaderAnswer::NotLeader(_) | LeaderAnswer::Unknown(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                LeaderAnswer::NotLeader(_) | LeaderAnswer::Unknown(_) => return Err(self.no_quorum().await),
                LeaderAnswer::Done(..) => return Err(unavailable("unexpected answer to a read index")),
            }
        }
    }

    /// A read index obtained by a request sent after the call began. Concurrent callers
    /// share one: while a request is out, the callers that arrive wait for the next one,
    /// which serves them all (a round trip to the leader and a heartbeat to a quorum per
    /// batch of requests, not per request).
    async fn read_index(&self, deadline: tokio::time::Instant) -> LeaderAnswer {
        use std::sync::atomic::Ordering;
        let ticket = self.reads.started.load(Ordering::Acquire);
        let _one_at_a_time = self.reads.gate.lock().await;
        let (epoch, index) = *self.reads.last.lock().unwrap_or_else(|p| p.into_inner());
        if epoch > ticket {
            return LeaderAnswer::Index(index);
        }
        let epoch = self.reads.started.fetch_add(1, Ordering::AcqRel) + 1;
        let left = Self::left(deadline);
        let answer = match self.leader().await {
            Some((id, _)) if id == self.id => self.read_index_here(left).await,
            Some((_, node)) => self.forward(&node, Request::ReadIndex, left).await,
            None => LeaderAnswer::NotLeader(None),
        };
        if let LeaderAnswer::Index(index) = answer {
            *self.reads.last.lock().unwrap_or_else(|p| p.into_inner()) = (epoch, index);
        }
        answer
    }

    /// Adds a replica at `address`: it joins as a learner, catches up (by snapshot if the
    /// log it needs is gone), then becomes a voter.
    pub async fn add_replica(&self, address: &str) -> Result<u64, MetaError> {
        let address = address.trim_end_matches('/').to_string();
        match self.leader().await {
            Some((id, _)) if id == self.id => self.add_here(&address).await,
            Some((_, node)) => match self
                .forward(&node, Request::AddReplica(address.clone()), self.config.request_timeout)
                .await
            {
                LeaderAnswer::Done(r, _) => r.map(|_| replica_id(&address)),
                other => Err(unavailable(format!("adding a replica: {other:?}"))),
            },
            None => Err(self.no_quorum().await),
        }
        .map(|_| replica_id(&address))
    }

    /// Removes replica `id` from the set (it stops receiving the log).
    pub async fn remove_replica(&self, id: u64) -> Result<(), MetaError> {
        match self.leader().await {
            Some((l, _)) if l == self.id => self.remove_here(id).await,
            Some((_, node)) => match self
                .forward(&node, Request::RemoveReplica(id), self.config.request_timeout)
                .await
            {
                LeaderAnswer::Done(r, _) => r.map(drop),
                other => Err(unavailable(format!("removing a replica: {other:?}"))),
            },
            None => Err(self.no_quorum().await),
        }
    }

    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let replicas = membership
            .nodes()
            .map(|(id, node)| {
                let matched = match (&m.replication, *id == self.id) {
                    (Some(r), _) => r.get(id).and_then(|l| l.as_ref().map(|l| l.index)),
                    (None, true) => m.last_applied.map(|l| l.index),
                    (None, false) => None,
                };
                let state = match (m.current_leader == Some(*id), voters.contains(id)) {
                    (true, _) => "leader",
                    (false, true) => "follower",
                    (false, false) => "learner",
                };
                ReplicaStatus {
                    id: *id,
                    address: node.address.clone(),
                    state: state.into(),
                    commit_index: matched,
                    lag: match (m.replication.as_ref(), m.last_log_index) {
                        (Some(_), Some(last)) => Some(last.saturating_sub(matched.unwrap_or(0))),
                        _ => None,
                    },
                }
            })
            .collect();
        Status {
            id: self.id,
            leader: m.current_leader,
            term: m.current_term,
            state: format!("{:?}", m.state).to_lowercase(),
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            replicas,
        }
    }

    /// Whether this replica leads now (background work runs on the leader only).
    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.id)
    }

    /// Takes a snapshot now (tests, and before a backup).
    pub async fn snapshot_now(&self) -> Result<(), MetaError> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| unavailable(format!("snapshot: {e}")))
    }

    /// Serves one request from another replica (the `Transport`'s server side).
    pub async fn handle(&self, request: &[u8]) -> Vec<u8> {
        let response = match postcard::from_bytes::<Request>(request) {
            Err(e) => Response::Malformed(e.to_string()),
            Ok(Request::AppendEntries(r)) => Response::AppendEntries(self.raft.append_entries(r).await),
            Ok(Request::Vote(r)) => Response::Vote(self.raft.vote(r).await),
            Ok(Request::InstallSnapshot(r)) => Response::InstallSnapshot(self.raft.install_snapshot(r).await),
            Ok(Request::Propose(cmd)) => Response::Leader(self.propose_here(cmd, self.config.request_timeout).await),
            Ok(Request::ReadIndex) => Response::ReadIndex(self.read_index_here(self.config.request_timeout).await),
            Ok(Request::AddReplica(address)) => {
                let r = self.add_here(&address).await.map(|_| Outcome::Unit);
                Response::Leader(LeaderAnswer::Done(r, None))
            }
            Ok(Request::ForgetHistory) => Response::Leader(LeaderAnswer::Done(
                self.forget_history_here().await.map(|_| Outcome::Unit),
                None,
            )),
            Ok(Request::Hello) => Response::Hello {
                initialized: self.raft.is_initialized().await.unwrap_or(false),
            },
            Ok(Request::RemoveReplica(id)) => {
                let r = self.remove_here(id).await.map(|_| Outcome::Unit);
                Response::Leader(LeaderAnswer::Done(r, None))
            }
        };
        codec::encode(&response)
    }

    /// Stops the replica; the store no longer takes commands (they fail `Unavailable`).
    pub async fn shutdown(&self) {
        self.store.set_replicator(Some(Arc::new(Stopped)));
        let _ = self.raft.shutdown().await;
    }

    async fn leader(&self) -> Option<(u64, ReplicaNode)> {
        let id = self.raft.current_leader().await?;
        let m = self.raft.metrics().borrow().clone();
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node))
    }

    async fn propose_here(&self, cmd: MetaCommand, patience: Duration) -> LeaderAnswer {
        match tokio::time::timeout(patience, self.raft.client_write(cmd)).await {
            Ok(Ok(r)) => LeaderAnswer::Done(r.data, Some(r.log_id.index)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                LeaderAnswer::NotLeader(f.leader_node)
            }
            Ok(Err(e)) => LeaderAnswer::Unknown(format!("the metadata leader failed: {e}")),
            Err(_) => LeaderAnswer::Unknown(format!(
                "a write was not committed within {patience:?}: a quorum of metadata replicas does not answer"
            )),
        }
    }

    async fn read_index_here(&self, patience: Duration) -> LeaderAnswer {
        match tokio::time::timeout(patience, self.raft.get_read_log_id()).await {
            Ok(Ok((read, _))) => LeaderAnswer::Index(read.map(|l| l.index)),
            Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f)))) => {
                LeaderAnswer::NotLeader(f.leader_node)
            }
            Ok(Err(e)) => LeaderAnswer::Unknown(format!("the metadata leader failed: {e}")),
            Err(_) => LeaderAnswer::Unknown("the metadata leader could not confirm its leadership in time".into()),
        }
    }

    async fn add_here(&self, address: &str) -> Result<u64, MetaError> {
        let id = replica_id(address);
        let node = ReplicaNode {
            address: address.to_string(),
        };
        self.raft
            .add_learner(id, node, true)
            .await
            .map_err(|e| unavailable(format!("adding {address} as a learner: {e}")))?;
        let m = self.raft.metrics().borrow().clone();
        let mut voters: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
        voters.insert(id);
        self.raft
            .change_membership(voters, false)
            .await
            .map_err(|e| unavailable(format!("promoting {address}: {e}")))?;
        Ok(id)
    }

    async fn remove_here(&self, id: u64) -> Result<(), MetaError> {
        let m = self.raft.metrics().borrow().clone();
        let voters: BTreeSet<u64> = m
            .membership_config
            .membership()
            .voter_ids()
            .filter(|v| *v != id)
            .collect();
        if voters.is_empty() {
            return Err(MetaError::DeleteConflict("the last replica cannot be removed".into()));
        }
        self.raft
            .change_membership(voters, false)
            .await
            .map_err(|e| unavailable(format!("removing replica {id}: {e}")))?;
        Ok(())
    }

    async fn forward(&self, node: &ReplicaNode, request: Request, patience: Duration) -> LeaderAnswer {
        let bytes = codec::encode(&request);
        match self.transport.call(&node.address, bytes, patience).await {
            Ok(answer) => match postcard::from_bytes::<Response>(&answer) {
                Ok(Response::Leader(a)) | Ok(Response::ReadIndex(a)) => a,
                Ok(_) => LeaderAnswer::Unknown("an unexpected answer from the metadata leader".into()),
                Err(e) => LeaderAnswer::Unknown(format!("an undecodable answer from the metadata leader: {e}")),
            },
            // Never sent: as if it had not been the leader (try again once one answers).
            Err(e) if !e.maybe_sent => LeaderAnswer::NotLeader(None),
            // Sent or not, we cannot tell: never send it again.
            Err(e) => {
                self.leader_answered(false);
                LeaderAnswer::Unknown(format!("the metadata leader at {} does not answer: {e}", node.address))
            }
        }
    }

    /// The error for "no quorum", naming who answers.
    async fn no_quorum(&self) -> MetaError {
        self.leader_answered(false);
        let s = self.status();
        let voters: Vec<String> = s
            .replicas
            .iter()
            .filter(|r| r.state != "learner")
            .map(|r| r.address.clone())
            .collect();
        unavailable(format!(
            "no metadata leader: a majority of the replicas [{}] is needed and does not answer this replica ({}); nothing was written",
            voters.join(", "),
            self.config.address
        ))
    }
}

impl Replica {
    /// Waits for `f` from synchronous code: a blocking thread (where metadata calls run), a
    /// plain thread, or, at start-up, a runtime worker (which is told it blocks).
    fn wait<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        tokio::task::block_in_place(|| self.runtime.block_on(f))
    }
}

impl Replicator for Replica {
    fn propose(&self, cmd: MetaCommand) -> Result<Outcome, MetaError> {
        self.wait(Replica::propose(self, cmd))
    }

    fn barrier(&self) -> Result<(), MetaError> {
        self.wait(Replica::barrier(self))
    }

    fn forget_history(&self) -> Result<(), MetaError> {
        self.wait(Replica::forget_history(self))
    }
}

/// What a store answers once its replica has stopped.
struct Stopped;

impl Replicator for Stopped {
    fn propose(&self, _: MetaCommand) -> Result<Outcome, MetaError> {
        Err(unavailable("this metadata replica has stopped"))
    }

    fn barrier(&self) -> Result<(), MetaError> {
        Err(unavailable("this metadata replica has stopped"))
    }

    fn forget_history(&self) -> Result<(), MetaError> {
        Err(unavailable("this metadata replica has stopped"))
    }
}

#[cfg(test)]
mod tests;
