//! The parts each node holds shards of (`node_parts`): kept in the batch of every command that
//! places, moves or collects shards, so that a node declared dead (or drained) is walked by its
//! own entries rather than by every object record, and its progress (parts, stripes and bytes
//! left) is a sum over them.
//!
//! Written by: `CommitObject` (its parts), `CommitPart` (an upload's part), `HealShards` (and
//! the older `UpdateParts`, `UpdateVersionParts`: shards moved by a repair, the node they left
//! loses the entry),
//! `GcDone` (collected parts, on every node their GC entry names). A store written before the
//! index gets it once, at start-up, from its object, version and upload-part records; the same
//! walk gives layouts written before they named their owner (`LayoutOwner`) their owner.

use crate::records::{decode, LayoutOwner, LayoutRecord, ObjectRecord, PartData, PartInfo, UploadPartRecord};
use crate::{keys, MetaError, MetaStore};
use coffre_types::{Scheme, VersionId};
use rocksdb::{IteratorMode, WriteBatch};

/// The key marking the index as built.
const BUILT: &[u8] = b"";

/// A part with shards on a node: how many stripes, and (about) how many bytes there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodePart {
    pub part: VersionId,
    pub stripes: u32,
    pub bytes: u64,
}

/// What one node holds of the parts indexed: parts, stripes and bytes (about).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeHoldings {
    pub parts: u64,
    pub stripes: u64,
    pub bytes: u64,
}

/// The entries of one part: each node it has shards on, with (stripes, bytes there). The bytes
/// are the part's over `k` per shard index on the node (the shards' sealing overhead aside).
fn entries(p: &PartInfo, scheme: Scheme, packages_per_stripe: u32) -> Vec<(&str, [u8; 12])> {
    let stripe_plain = (packages_per_stripe as u64).saturating_mul(coffre_crypto::PACKAGE_SIZE as u64);
    let stripes = p.size.div_ceil(stripe_plain.max(1)).max(1) as u32;
    let per_index = p.size.div_ceil(u64::from(scheme.data.max(1)));
    let mut out: Vec<(&str, [u8; 12])> = Vec::new();
    for node in p.nodes.iter().filter(|n| !n.is_empty()) {
        if out.iter().any(|(n, _)| n == node) {
            continue;
        }
        let here = p.nodes.iter().filter(|n| *n == node).count() as u64;
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&stripes.to_be_bytes());
        v[4..].copy_from_slice(&per_index.saturating_mul(here).to_be_bytes());
        out.push((node.as_str(), v));
    }
    out
}

fn decode_entry(raw_key: &[u8], v: &[u8]) -> Option<(String, NodePart)> {
    let (node, part) = keys::node_part_of(raw_key)?;
    Some((
        node.to_string(),
        NodePart {
            part,
            stripes: u32::from_be_bytes(v.get(..4)?.try_into().ok()?),
            bytes: u64::from_be_bytes(v.get(4..12)?.try_into().ok()?),
        },
    ))
}

impl MetaStore {
    /// Adds a part's entries to a batch.
    pub(crate) fn index_part_in(&self, b: &mut WriteBatch, p: &PartInfo, scheme: Scheme, packages_per_stripe: u32) {
        for (node, v) in entries(p, scheme, packages_per_stripe) {
            b.put_cf(self.cf(keys::CF_NODE_PARTS), keys::node_part(node, &p.version), v);
        }
    }

    /// Removes the entries of part `v` on `nodes` from a batch.
    pub(crate) fn unindex_part_in(&self, b: &mut WriteBatch, v: &VersionId, nodes: &[String]) {
        for node in nodes.iter().filter(|n| !n.is_empty()) {
            b.delete_cf(self.cf(keys::CF_NODE_PARTS), keys::node_part(node, v));
        }
    }

    /// A part whose shards moved (`old` → `new`): the nodes it left lose its entry, the others
    /// get theirs (again: their share may have changed).
    pub(crate) fn reindex_part_in(
        &self,
        b: &mut WriteBatch,
        old: &PartInfo,
        new: &PartInfo,
        scheme: Scheme,
        packages_per_stripe: u32,
    ) {
        let left: Vec<String> = old.nodes.iter().filter(|n| !new.nodes.contains(n)).cloned().collect();
        self.unindex_part_in(b, &old.version, &left);
        self.index_part_in(b, new, scheme, packages_per_stripe);
    }

    /// Up to `limit` parts with shards on `node`, after `after` (version order).
    pub fn parts_on_node(
        &self,
        node: &str,
        after: Option<&VersionId>,
        limit: usize,
    ) -> Result<Vec<NodePart>, MetaError> {
        let prefix = keys::node_parts_of(node);
        let start = match after {
            Some(v) => {
                let mut k = keys::node_part(node, v);
                k.push(0); // just past it
                k
            }
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_NODE_PARTS));
        it.seek(&start);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            if let Some((_, p)) = decode_entry(k, v) {
                out.push(p);
            }
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Whether `node` holds shards of `part`.
    pub fn holds_part(&self, node: &str, part: &VersionId) -> Result<bool, MetaError> {
        Ok(self
            .db
            .get_pinned_cf(self.cf(keys::CF_NODE_PARTS), keys::node_part(node, part))?
            .is_some())
    }

    /// What `node` holds, summed over its entries.
    pub fn node_holdings(&self, node: &str) -> Result<NodeHoldings, MetaError> {
        let prefix = keys::node_parts_of(node);
        let mut h = NodeHoldings::default();
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_NODE_PARTS));
        it.seek(&prefix);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(&prefix) {
                break;
            }
            if let Some((_, p)) = decode_entry(k, v) {
                h.parts += 1;
                h.stripes += u64::from(p.stripes);
                h.bytes = h.bytes.saturating_add(p.bytes);
            }
            it.next();
        }
        it.status()?;
        Ok(h)
    }

    /// Every node with at least one entry.
    pub fn indexed_nodes(&self) -> Result<Vec<String>, MetaError> {
        let mut out = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_NODE_PARTS));
        it.seek_to_first();
        while let Some(k) = it.key() {
            let Some((node, _)) = keys::node_part_of(k) else {
                it.next(); // the marker
                continue;
            };
            let node = node.to_string();
            // Past this node's entries: its prefix's successor (`node ∥ 0x01`).
            let mut next = node.as_bytes().to_vec();
            next.push(1);
            out.push(node);
            it.seek(&next);
        }
        it.status()?;
        Ok(out)
    }

    /// Builds the index (and names the owner of layouts written before owners were kept) if
    /// this store does not have it yet: once, at start-up.
    pub(crate) fn ensure_node_parts(&self) -> Result<(), MetaError> {
        if self.db.get_pinned_cf(self.cf(keys::CF_NODE_PARTS), BUILT)?.is_some() {
            return Ok(());
        }
        let mut b = WriteBatch::default();
        let mut indexed = 0u64;
        for cf in [keys::CF_OBJECTS, keys::CF_VERSIONS] {
            for item in self.db.iterator_cf(self.cf(cf), IteratorMode::Start) {
                let (k, v) = item?;
                let Some((bucket, key)) = owner_of_record_key(cf, &k) else {
                    continue;
                };
                let rec = ObjectRecord::decode(&v)?;
                for p in &rec.parts {
                    self.index_part_in(&mut b, p, rec.scheme, rec.packages_per_stripe);
                    self.name_layout_owner_in(&mut b, &p.version, &bucket, &key)?;
                    indexed += 1;
                }
                if b.len() >= 10_000 {
                    self.db.write(std::mem::take(&mut b))?;
                }
            }
        }
        // Parts of uploads in progress: their upload names their scheme and object.
        for item in self.db.iterator_cf(self.cf(keys::CF_UPLOADS), IteratorMode::Start) {
            let (k, v) = item?;
            let up: crate::UploadRecord = decode(&v)?;
            let Some(zero) = k.iter().position(|c| *c == 0) else {
                continue;
            };
            let bucket = String::from_utf8_lossy(&k[..zero]).into_owned();
            let Some((key, id)) = keys::upload_parts_of(&bucket, &k) else {
                continue;
            };
            let key = key.to_vec();
            let start = keys::part(&id, 0);
            let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_PARTS));
            it.seek(&start);
            while let (Some(pk), Some(pv)) = (it.key(), it.value()) {
                if !pk.starts_with(&id) {
                    break;
                }
                let part: UploadPartRecord = decode(pv)?;
                self.index_part_in(&mut b, &part.info, up.scheme, up.packages_per_stripe);
                self.name_layout_owner_in(&mut b, &part.info.version, &bucket, &key)?;
                indexed += 1;
                it.next();
            }
            it.status()?;
        }
        b.put_cf(self.cf(keys::CF_NODE_PARTS), BUILT, []);
        self.write(b)?;
        if indexed > 0 {
            tracing::info!(parts = indexed, "indexed the parts held by each node");
        }
        Ok(())
    }

    /// Rewrites a shards layout that does not name its owner yet with `bucket`, `key`.
    fn name_layout_owner_in(
        &self,
        b: &mut WriteBatch,
        v: &VersionId,
        bucket: &str,
        key: &[u8],
    ) -> Result<(), MetaError> {
        let Some(raw) = self.db.get_pinned_cf(self.cf(keys::CF_LAYOUTS), keys::version(v))? else {
            return Ok(());
        };
        if LayoutOwner::of_value(&raw).is_some() {
            return Ok(());
        }
        if let PartData::Shards(layout) = PartData::decode(&raw)? {
            let layout: LayoutRecord = layout;
            b.put_cf(
                self.cf(keys::CF_LAYOUTS),
                keys::version(v),
                LayoutOwner::layout_value(&layout, bucket, key),
            );
        }
        Ok(())
    }
}

/// The (bucket, key) of an `objects` or `versions` key.
fn owner_of_record_key(cf: &str, raw: &[u8]) -> Option<(String, Vec<u8>)> {
    let zero = raw.iter().position(|c| *c == 0)?;
    let bucket = std::str::from_utf8(&raw[..zero]).ok()?.to_string();
    let key = if cf == keys::CF_OBJECTS {
        keys::object_key_of(&bucket, raw)?.to_vec()
    } else {
        keys::object_version_of(&bucket, raw)?.0
    };
    Some((bucket, key))
}
