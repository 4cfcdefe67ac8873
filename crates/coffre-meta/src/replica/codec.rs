//! How a replica's own records (log entries, vote, membership, messages between replicas)
//! are encoded: postcard.

use crate::MetaError;
use openraft::StoredMembership;

/// The membership as stored and sent.
pub(crate) type Membership = StoredMembership<u64, super::ReplicaNode>;

pub(crate) fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("serializing to memory cannot fail")
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, MetaError> {
    postcard::from_bytes(b).map_err(|e| MetaError::Corrupt(format!("replica record: {e}")))
}
