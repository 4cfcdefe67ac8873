//! The cluster: node identities signed by the cluster CA (carrying each node's location), the
//! storage node server, the remote shard store that talks to it, and residency-enforcing
//! placement.

pub mod audit_cert;
pub mod identity;
pub mod mtls;
pub mod net;
pub mod node;
pub mod peer;
pub mod placement;
pub mod proof;
pub mod remote;

pub use identity::{CertInfo, Identity, Location, Revocations, Role};
pub use placement::{place, FailureDomain, NodeView, PlacementError, ResidencyPolicy};
pub use remote::RemoteShardStore;
