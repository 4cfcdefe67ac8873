//! Proofs of possession (docs/residency.md): the gateway asks every node named in an object's
//! layout to sign what it holds of the object's shards, and hands the nodes' answers on,
//! untouched, with the layout and policy it recorded. It cannot forge what a node signs; the
//! file is checked offline with the CA certificate alone (`coffre_cluster::proof::verify`).

use crate::{layout_of, policy_of, Engine, EngineError, EngineResult};
use coffre_cluster::proof::{
    parse_nonce, AttestRequest, Attestation, BucketProof, ObjectLayout, PlacementProof, ProofPart, ProofPolicy,
    ProofShard, BUCKET_FORMAT, FORMAT, MAX_ATTEST_SHARDS, MAX_PROOF_OBJECTS,
};
use coffre_meta::{BucketRecord, MetaError, ObjectRecord, PartData, VersionSel};
use std::collections::BTreeMap;

/// The shard ids each node is asked about, with their lengths.
type Questions = BTreeMap<String, Vec<(String, u64)>>;

/// Bytes of shards a node reads for one request: well within a node call's deadline
/// (`NODE_CALL_TIMEOUT`) at a disk's pace.
const MAX_ATTEST_BYTES: u64 = 1 << 30;

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
        let mut asked = Questions::new();
        let object = self.object_layout(key, &rec, &mut asked)?;
        let (attestations, unanswered) = self.ask_nodes(asked, nonce).await?;
        Ok(PlacementProof {
            format: FORMAT.into(),
            bucket: bucket.to_string(),
            key: object.key,
            version_id: object.version_id,
            size: object.size,
            nonce: nonce.trim().to_ascii_lowercase(),
            made_ms: coffre_types::now_millis(),
            policy: proof_policy(&brec),
            data_shards: object.data_shards,
            parity_shards: object.parity_shards,
            parts: object.parts,
            attestations,
            unanswered,
        })
    }

    /// A fresh proof of possession of every object version of `bucket` (not delete markers),
    /// or of a random sample of `sample` of them; the nodes are asked in batches, not once per
    /// shard.
    pub async fn bucket_proof(&self, bucket: &str, sample: Option<usize>, nonce: &str) -> EngineResult<BucketProof> {
        parse_nonce(nonce).map_err(EngineError::InvalidRequest)?;
        let brec = self
            .bucket_record(bucket)?
            .ok_or(EngineError::Meta(MetaError::NoSuchBucket))?;
        let limit = sample.unwrap_or(MAX_PROOF_OBJECTS);
        // Reservoir sampling: a uniform sample of the versions in one pass.
        let (mut chosen, mut total) = (Vec::<(String, ObjectRecord)>::new(), 0u64);
        for item in self.meta.scan_versions(bucket) {
            let (key, rec) = item?;
            if rec.is_delete_marker() {
                continue;
            }
            total += 1;
            let key = String::from_utf8_lossy(&key).into_owned();
            if chosen.len() < limit {
                chosen.push((key, rec));
            } else if sample.is_none() {
                return Err(EngineError::InvalidRequest(format!(
                    "the bucket holds more than {MAX_PROOF_OBJECTS} object versions: ask for a sample"
                )));
            } else {
                let r = u64::from_le_bytes(coffre_types::random_bytes()) % total;
                if (r as usize) < limit {
                    chosen[r as usize] = (key, rec);
                }
            }
        }
        let mut asked = Questions::new();
        let mut objects = Vec::with_capacity(chosen.len());
        for (key, rec) in &chosen {
            objects.push(self.object_layout(key, rec, &mut asked)?);
        }
        let (attestations, unanswered) = self.ask_nodes(asked, nonce).await?;
        Ok(BucketProof {
            format: BUCKET_FORMAT.into(),
            bucket: bucket.to_string(),
            nonce: nonce.trim().to_ascii_lowercase(),
            made_ms: coffre_types::now_millis(),
            policy: proof_policy(&brec),
            total_objects: total,
            sampled: sample.is_some_and(|n| (n as u64) < total),
            objects,
            attestations,
            unanswered,
        })
    }

    /// An object version's layout as recorded, and the questions it puts to its nodes.
    fn object_layout(&self, key: &str, rec: &ObjectRecord, asked: &mut Questions) -> EngineResult<ObjectLayout> {
        let n = rec.scheme.total();
        let layout = layout_of(rec);
        let mut parts = Vec::new();
        for part in &rec.parts {
            let hashes = match self.meta.get_part_data(&part.version)? {
                Some(PartData::Shards(l)) => l.hashes,
                Some(PartData::Inline(_)) => {
                    return Err(EngineError::InvalidRequest(format!(
                        "{key} is inlined in the metadata: no node holds a shard of it"
                    )))
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
                    let len = layout.shard_len(layout.stripe_len(part.size, stripe)) as u64;
                    asked.entry(node).or_default().push((id, len));
                }
                shards.push(shard);
            }
            parts.push(ProofPart {
                version: part.version.to_hex(),
                size: part.size,
                shards,
            });
        }
        Ok(ObjectLayout {
            key: key.to_string(),
            version_id: rec.version_id(),
            size: rec.size,
            data_shards: rec.scheme.data,
            parity_shards: rec.scheme.parity,
            parts,
        })
    }

    /// Every node's signed answers about its shards (in batches), and the nodes that gave none.
    async fn ask_nodes(&self, asked: Questions, nonce: &str) -> EngineResult<(Vec<Attestation>, Vec<String>)> {
        let (mut attestations, mut unanswered) = (Vec::new(), Vec::new());
        for (node, ids) in asked {
            let Some(store) = self.store_of(&node) else {
                unanswered.push(format!("{node}: not a member of this cluster"));
                continue;
            };
            // Batches of at most MAX_ATTEST_SHARDS shards and MAX_ATTEST_BYTES bytes (a batch
            // holds one shard at least, whatever its size).
            let mut batches: Vec<Vec<String>> = vec![Vec::new()];
            let mut bytes = 0u64;
            for (id, len) in ids {
                let full = batches.last().is_some_and(|b| {
                    !b.is_empty() && (b.len() >= MAX_ATTEST_SHARDS || bytes.saturating_add(len) > MAX_ATTEST_BYTES)
                });
                if full {
                    batches.push(Vec::new());
                    bytes = 0;
                }
                bytes = bytes.saturating_add(len);
                if let Some(b) = batches.last_mut() {
                    b.push(id);
                }
            }
            for chunk in batches.into_iter().filter(|b| !b.is_empty()) {
                let req = AttestRequest {
                    nonce: nonce.trim().to_ascii_lowercase(),
                    shards: chunk,
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
        Ok((attestations, unanswered))
    }
}

fn proof_policy(b: &BucketRecord) -> ProofPolicy {
    ProofPolicy {
        countries: policy_of(b).countries,
        failure_domain: b.failure_domain.clone(),
    }
}
