//! Every RocksDB key encoding, in one place. Keys are order-preserving: byte order of the
//! encoding is the order listings need.

use coffre_types::VersionId;

pub const CF_BUCKETS: &str = "buckets";
pub const CF_OBJECTS: &str = "objects";
pub const CF_LAYOUTS: &str = "layouts";
pub const CF_INTENTS: &str = "intents";
pub const CF_GC: &str = "gc";
pub const CF_UPLOADS: &str = "uploads";
pub const CF_PARTS: &str = "parts";
/// `nodes`: the node's address (`https://host:port`).
pub const CF_NODES: &str = "nodes";
/// `heal`: objects with degraded parts, keyed like `objects`.
pub const CF_HEAL: &str = "heal";
/// `bucket_config`: a bucket's sub-resources (CORS, encryption, ownership…), keyed
/// `bucket ∥ 0x00 ∥ kind`.
pub const CF_BUCKET_CONFIG: &str = "bucket_config";
pub const ALL_CFS: [&str; 10] = [
    CF_BUCKETS,
    CF_OBJECTS,
    CF_LAYOUTS,
    CF_INTENTS,
    CF_GC,
    CF_UPLOADS,
    CF_PARTS,
    CF_NODES,
    CF_HEAL,
    CF_BUCKET_CONFIG,
];

/// `buckets`: the bucket name.
pub fn bucket(name: &str) -> Vec<u8> {
    name.as_bytes().to_vec()
}

/// `objects`: `bucket ∥ 0x00 ∥ key`. Bucket names never hold 0x00, so one bucket's keys are
/// a contiguous range sorted by key bytes — what ListObjects returns.
pub fn object(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// `bucket_config`: `bucket ∥ 0x00 ∥ kind`: one bucket's sub-resources are contiguous, so a
/// DeleteBucket removes them with one range.
pub fn bucket_config(bucket: &str, kind: &str) -> Vec<u8> {
    object(bucket, kind.as_bytes())
}

/// The first `objects` key of a bucket (and of a prefix within it).
pub fn object_prefix(bucket: &str, prefix: &[u8]) -> Vec<u8> {
    object(bucket, prefix)
}

/// Splits an `objects` key back into the object key (the part after the bucket).
pub fn object_key_of<'a>(bucket: &str, raw: &'a [u8]) -> Option<&'a [u8]> {
    raw.strip_prefix(bucket.as_bytes())?.strip_prefix(&[0])
}

/// `uploads`: `bucket ∥ 0x00 ∥ key ∥ 0x00 ∥ upload id`: a bucket's uploads sorted by key, then
/// by upload id, as ListMultipartUploads returns them.
pub fn upload(bucket: &str, key: &[u8], id: &[u8; 16]) -> Vec<u8> {
    let mut k = object(bucket, key);
    k.push(0);
    k.extend_from_slice(id);
    k
}

/// Splits an `uploads` key into (object key, upload id).
pub fn upload_parts_of<'a>(bucket: &str, raw: &'a [u8]) -> Option<(&'a [u8], [u8; 16])> {
    let rest = object_key_of(bucket, raw)?;
    if rest.len() < 17 || rest[rest.len() - 17] != 0 {
        return None;
    }
    let (key, id) = rest.split_at(rest.len() - 17);
    Some((key, id[1..].try_into().ok()?))
}

/// `parts`: `upload id ∥ part number (BE)`: an upload's parts in part-number order.
pub fn part(id: &[u8; 16], number: u32) -> Vec<u8> {
    let mut k = id.to_vec();
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// `layouts` and `intents`: the version id.
pub fn version(v: &VersionId) -> Vec<u8> {
    v.0.to_vec()
}

/// `gc`: `enqueued_ms (BE) ∥ version`, oldest first.
pub fn gc(enqueued_ms: u64, v: &VersionId) -> Vec<u8> {
    let mut k = enqueued_ms.to_be_bytes().to_vec();
    k.extend_from_slice(&v.0);
    k
}

/// When a `gc` entry was queued.
pub fn gc_time(raw: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(raw.get(..8)?.try_into().ok()?))
}

/// The smallest byte string greater than every string starting with `p`; `None` if there is
/// none (all 0xFF).
pub fn prefix_successor(p: &[u8]) -> Option<Vec<u8>> {
    let mut s = p.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn object_order_is_key_order_within_bucket(b in "[a-z0-9.-]{3,20}", k1 in ".{0,40}", k2 in ".{0,40}") {
            let (e1, e2) = (object(&b, k1.as_bytes()), object(&b, k2.as_bytes()));
            prop_assert_eq!(e1.cmp(&e2), k1.as_bytes().cmp(k2.as_bytes()));
            prop_assert_eq!(object_key_of(&b, &e1), Some(k1.as_bytes()));
        }

        #[test]
        fn buckets_do_not_interleave(b1 in "[a-z0-9.-]{3,20}", b2 in "[a-z0-9.-]{3,20}", k1 in ".{0,40}", k2 in ".{0,40}") {
            prop_assume!(b1 != b2);
            let (e1, e2) = (object(&b1, k1.as_bytes()), object(&b2, k2.as_bytes()));
            // every key of the smaller bucket sorts before every key of the other
            let bucket_order = object(&b1, b"").cmp(&object(&b2, b""));
            prop_assert_eq!(e1.cmp(&e2), bucket_order);
        }

        #[test]
        fn successor_bounds_prefix(p in prop::collection::vec(any::<u8>(), 1..10), tail in prop::collection::vec(any::<u8>(), 0..10), other in prop::collection::vec(any::<u8>(), 0..12)) {
            let mut inside = p.clone();
            inside.extend_from_slice(&tail);
            if let Some(s) = prefix_successor(&p) {
                prop_assert!(inside < s);
                if !other.starts_with(&p) && other > p { prop_assert!(other >= s); }
            }
        }

        #[test]
        fn uploads_sort_by_key_then_id(k1 in "[a-z/]{0,12}", k2 in "[a-z/]{0,12}", i1: [u8;16], i2: [u8;16]) {
            let (e1, e2) = (upload("bkt", k1.as_bytes(), &i1), upload("bkt", k2.as_bytes(), &i2));
            prop_assert_eq!(e1.cmp(&e2), (k1.as_bytes(), i1).cmp(&(k2.as_bytes(), i2)));
            prop_assert_eq!(upload_parts_of("bkt", &e1), Some((k1.as_bytes(), i1)));
        }

        #[test]
        fn parts_sort_by_number(id: [u8;16], a: u32, b: u32) {
            prop_assert_eq!(part(&id, a).cmp(&part(&id, b)), a.cmp(&b));
        }

        #[test]
        fn gc_order_is_time_order(t1: u64, t2: u64, v1: [u8;16], v2: [u8;16]) {
            prop_assume!(t1 != t2);
            prop_assert_eq!(gc(t1, &VersionId(v1)).cmp(&gc(t2, &VersionId(v2))), t1.cmp(&t2));
            prop_assert_eq!(gc_time(&gc(t1, &VersionId(v1))), Some(t1));
        }
    }
}
