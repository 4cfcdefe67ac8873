//! Proofs of possession (docs/residency.md): the gateway asks every node named in an object's
//! layout to sign what it holds of the object's shards, and hands the nodes' answers on,
//! untouched, with the layout and policy it recorded. It cannot forge what a node signs; the
//! file is checked offline with the CA certificate alone (`coffre_cluster::proof::verify`).

use crate::{policy_of, Engine, EngineError, EngineResult};
use coffre_cluster::proof::{
    parse_nonce, AttestRequest, Attestation, PlacementProof, ProofPart, ProofPolicy, ProofShard, FORMAT,
    MAX_ATTEST_SHARDS,
};
use coffre_meta::{MetaError, PartData, VersionSel};
use std::collections::BTreeMap;

impl Engine {
    /// A fresh proof of possession of `bucket`/`key` (version `sel`, else the current one),
    /// answering `nonce` (hex).
    pub async fn placement_proof(
        &self,
        bucket: &str,
        key: &str,
        sel: Option<VersionSel>,
        nonce: &str,
    ) -> EngineResult<PlacementProof> {
        parse_nonce(nonce).map_err(EngineError::InvalidRequest)?;
        let brec = self
            .bucket_record(bucket)?
            .ok_or(EngineError::Meta(MetaError::NoSuchBucket))?;
        let (rec, _) = self.head_version(bucket, key, sel)?;
        let n = rec.scheme.total();
        let mut parts = Vec::new();
        // What each node is asked: its shards' ids.
        let mut asked: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for part in &rec.parts {
            let hashes = match self.meta.get_part_data(&part.version)? {
                Some(PartData::Shards(l)) => l.hashes,
                Some(PartData::Inline(_)) => {
                    return Err(EngineError::InvalidRequest(
                        "this object is inlined in the metadata: no node holds a shard of it".into(),
                    ))
                }
                None => Vec::new(),
            };
            let mut shards = Vec::with_capacity(hashes.len());
            for (h, hash) in hashes.iter().enumerate() {
                let (stripe, index) = ((h / n) as u32, (h % n) as u8);
                let node = part.nodes.get(index as usize).cloned().unwrap_or_default();
                let shard = ProofShard {
                    stripe,
                    index,
                    node: node.clone(),
                    blake3: hex::encode(hash),
                };
                if let Some(id) = shard.id(&part.version.to_hex()) {
                    asked.entry(node).or_default().push(id);
                }
                shards.push(shard);
            }
            parts.push(ProofPart {
                version: part.version.to_hex(),
                size: part.size,
                shards,
            });
        }
        let mut attestations: Vec<Attestation> = Vec::new();
        let mut unanswered = Vec::new();
        for (node, ids) in asked {
            let Some(store) = self.store_of(&node) else {
                unanswered.push(format!("{node}: not a member of this cluster"));
                continue;
            };
            for chunk in ids.chunks(MAX_ATTEST_SHARDS) {
                let req = AttestRequest {
                    nonce: nonce.trim().to_ascii_lowercase(),
                    shards: chunk.to_vec(),
                };
                let body = serde_json::to_vec(&req).map_err(|e| EngineError::Internal(e.to_string()))?;
                match store.attest(body.into()).await {
                    Ok(answer) => match serde_json::from_slice::<Attestation>(&answer) {
                        Ok(a) => attestations.push(a),
                        Err(e) => unanswered.push(format!("{node}: unreadable answer: {e}")),
                    },
                    Err(e) => unanswered.push(format!("{node}: {e}")),
                }
            }
        }
        let policy = policy_of(&brec);
        Ok(PlacementProof {
            format: FORMAT.into(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: rec.version_id(),
            size: rec.size,
            nonce: nonce.trim().to_ascii_lowercase(),
            made_ms: coffre_types::now_millis(),
            policy: ProofPolicy {
                countries: policy.countries.clone(),
                failure_domain: brec.failure_domain.clone(),
            },
            data_shards: rec.scheme.data,
            parity_shards: rec.scheme.parity,
            parts,
            attestations,
            unanswered,
        })
    }
}
