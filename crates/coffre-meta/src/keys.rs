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
/// `heal`: objects with degraded parts, keyed like `objects`; the value is the key's margin
/// (see `repair`), so that its `repair` entry is found.
pub const CF_HEAL: &str = "heal";
/// `repair`: the repair queue in the order it is worked: `margin (1 byte) ∥ objects key`,
/// where the margin is how many shards the key's most degraded part can still lose (healthy
/// shards beyond `k`): the stripes closest to loss first.
pub const CF_REPAIR: &str = "repair";
/// `bucket_config`: a bucket's sub-resources (CORS, encryption, ownership…), keyed
/// `bucket ∥ 0x00 ∥ kind`.
pub const CF_BUCKET_CONFIG: &str = "bucket_config";
/// `iam`: tenants, users, roles, access keys and the index of a user's keys, each under its
/// own leading tag byte (see the functions below).
pub const CF_IAM: &str = "iam";
/// `usage`: bytes and objects held per bucket and per tenant, summed by a merge operator
/// (`usage_bucket`, `usage_tenant`; values `usage_value`).
pub const CF_USAGE: &str = "usage";
/// `raft_log`: the replicated log of a metadata replica, `index` as 8 bytes big-endian
/// (`raft_log_index`); unused by a store that is not replicated.
pub const CF_RAFT_LOG: &str = "raft_log";
/// `raft_state`: the replica's vote, purge point, and the last command applied to the
/// records above (written in the batch of that command); keys `RAFT_*`.
pub const CF_RAFT_STATE: &str = "raft_state";
/// `versions`: every version of a key but its current object — noncurrent versions and
/// delete markers (current or not) — keyed `object_version`, a key's newest first. So the
/// current object of a key is in `objects` (what ListObjects reads, unchanged by versioning)
/// and a key whose newest version is a delete marker has none there.
pub const CF_VERSIONS: &str = "versions";
/// `null_versions`: `bucket ∥ 0x00 ∥ key` → the `seq` (8 bytes BE) of the key's null version
/// when it is in `versions`, so that `versionId=null` and writes of a suspended bucket find it
/// without scanning the key's versions.
pub const CF_NULL_VERSIONS: &str = "null_versions";
/// Audit notes: `origin ∥ 0x00 ∥ request id` → the entry of a change whose audit entry may
/// not be in its gateway's log yet (`audit_notes.rs`). Replicated: in the change's batch on
/// every replica.
pub const CF_AUDIT_NOTES: &str = "audit_notes";
/// `node_parts`: `node ∥ 0x00 ∥ part version` → `stripes (u32 BE) ∥ bytes (u64 BE)` of the
/// part's shards on that node: every part a node holds a shard of, so that a node declared dead
/// (or drained) is walked by its own entries, not by every object record. The empty key marks
/// the index as built (a store written before it gets it once, at start-up).
pub const CF_NODE_PARTS: &str = "node_parts";
pub const RAFT_VOTE: &[u8] = b"vote";
pub const RAFT_COMMITTED: &[u8] = b"committed";
pub const RAFT_PURGED: &[u8] = b"purged";
pub const RAFT_APPLIED: &[u8] = b"applied";
pub const RAFT_MEMBERSHIP: &[u8] = b"membership";
/// `local`: this store's own records, never replicated nor in snapshots (the audit chain
/// head of this gateway).
pub const CF_LOCAL: &str = "local";
pub const LOCAL_AUDIT_HEAD: &[u8] = b"audit_head";
/// Present while a snapshot is being installed: a store found with it at start-up holds a
/// half-written state machine and must be emptied (the leader sends the snapshot again).
pub const RAFT_INSTALLING: &[u8] = b"installing";

/// The column families holding the state machine's records: what a snapshot copies (a
/// snapshot names them by index: new ones go at the end).
pub const STATE_CFS: [&str; 17] = [
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
    CF_IAM,
    CF_USAGE,
    CF_VERSIONS,
    CF_NULL_VERSIONS,
    CF_AUDIT_NOTES,
    CF_NODE_PARTS,
    CF_REPAIR,
];

/// The replica's own column families (not in snapshots).
pub const RAFT_CFS: [&str; 3] = [CF_RAFT_LOG, CF_RAFT_STATE, CF_LOCAL];
pub const ALL_CFS: [&str; 20] = concat_cfs(STATE_CFS, RAFT_CFS);

const fn concat_cfs(state: [&'static str; 17], raft: [&'static str; 3]) -> [&'static str; 20] {
    let mut all = [""; 20];
    let mut i = 0;
    while i < state.len() {
        all[i] = state[i];
        i += 1;
    }
    while i < all.len() {
        all[i] = raft[i - state.len()];
        i += 1;
    }
    all
}

/// `raft_log`: a log index, big-endian so that the log sorts by index.
pub fn raft_log_index(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// `audit_notes`: `origin ∥ 0x00 ∥ id` (an origin, a gateway's name, holds no 0x00).
pub fn audit_note(origin: &str, id: &str) -> Vec<u8> {
    let mut k = audit_note_prefix(origin);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Every note of `origin` starts with this.
pub fn audit_note_prefix(origin: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(origin.len() + 1 + 24);
    k.extend_from_slice(origin.as_bytes());
    k.push(0);
    k
}

/// `node_parts`: `node ∥ 0x00 ∥ part version` (a node id holds no 0x00: it comes from a
/// certificate's common name or the configuration).
pub fn node_part(node: &str, v: &VersionId) -> Vec<u8> {
    let mut k = node_parts_of(node);
    k.extend_from_slice(&v.0);
    k
}

/// The prefix of one node's `node_parts` entries.
pub fn node_parts_of(node: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(node.len() + 17);
    k.extend_from_slice(node.as_bytes());
    k.push(0);
    k
}

/// Splits a `node_parts` key into (node, part version).
pub fn node_part_of(raw: &[u8]) -> Option<(&str, VersionId)> {
    let (v, rest) = raw.split_last_chunk::<16>().map(|(r, v)| (*v, r))?;
    let node = rest.strip_suffix(&[0])?;
    Some((std::str::from_utf8(node).ok()?, VersionId(v)))
}

/// `repair`: `margin ∥ objects key`: the keys closest to loss sort first.
pub fn repair(margin: u8, okey: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + okey.len());
    k.push(margin);
    k.extend_from_slice(okey);
    k
}

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

/// A key escaped so that a terminator can follow it without breaking the order: 0x00 becomes
/// 0x00 0xFF, and the terminator 0x00 0x00 sorts before any continuation. Escaping is
/// byte-wise, so the escaped keys starting with `escaped(p)` are those of keys starting with
/// `p`, in the same order.
fn push_escaped(out: &mut Vec<u8>, key: &[u8]) {
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
}

/// `versions`: `bucket ∥ 0x00 ∥ escaped key ∥ 0x00 0x00 ∥ !seq (BE)`: a bucket's versions in
/// key order, each key's newest (highest `seq`) first — what ListObjectVersions returns.
pub fn object_version(bucket: &str, key: &[u8], seq: u64) -> Vec<u8> {
    let mut k = versions_of_key(bucket, key);
    k.extend_from_slice(&(!seq).to_be_bytes());
    k
}

/// The prefix of one key's `versions` entries.
pub fn versions_of_key(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut k = versions_under(bucket, key);
    k.extend_from_slice(&[0, 0]);
    k
}

/// The prefix of the `versions` entries of every key starting with `prefix`.
pub fn versions_under(bucket: &str, prefix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 3 + prefix.len() + 8);
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    push_escaped(&mut k, prefix);
    k
}

/// Splits a `versions` key into (object key, seq).
pub fn object_version_of(bucket: &str, raw: &[u8]) -> Option<(Vec<u8>, u64)> {
    let rest = raw.strip_prefix(bucket.as_bytes())?.strip_prefix(&[0])?;
    let mut key = Vec::with_capacity(rest.len());
    let mut i = 0;
    loop {
        match (rest.get(i)?, rest.get(i + 1)) {
            (0, Some(0)) => break,
            (0, Some(0xFF)) => {
                key.push(0);
                i += 2;
            }
            (0, _) => return None,
            (&b, _) => {
                key.push(b);
                i += 1;
            }
        }
    }
    let seq: [u8; 8] = rest.get(i + 2..)?.try_into().ok()?;
    Some((key, !u64::from_be_bytes(seq)))
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

const TAG_TENANT: u8 = b'T';
const TAG_USER: u8 = b'U';
const TAG_ROLE: u8 = b'R';
const TAG_ACCESS_KEY: u8 = b'K';
const TAG_USER_KEY: u8 = b'k';
const TAG_KMS_KEY: u8 = b'M';

fn tagged(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![tag];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

/// `iam`: `T ∥ tenant`. Names never hold 0x00 (the IAM layer checks them), so the tenants
/// sort by name and one tenant's users are contiguous.
pub fn tenant(name: &str) -> Vec<u8> {
    tagged(TAG_TENANT, &[name.as_bytes()])
}

/// The first `iam` key of the tenants, and the bound past them.
pub fn tenants_range() -> (Vec<u8>, Vec<u8>) {
    (vec![TAG_TENANT], vec![TAG_TENANT + 1])
}

/// The name in a `tenant` key.
pub fn tenant_name_of(raw: &[u8]) -> Option<&[u8]> {
    raw.strip_prefix(&[TAG_TENANT])
}

/// `iam`: `U ∥ tenant ∥ 0x00 ∥ user`.
pub fn user(tenant: &str, name: &str) -> Vec<u8> {
    tagged(TAG_USER, &[tenant.as_bytes(), name.as_bytes()])
}

/// The prefix of one tenant's users.
pub fn users_of(tenant: &str) -> Vec<u8> {
    tagged(TAG_USER, &[tenant.as_bytes(), b""])
}

/// `iam`: `R ∥ tenant ∥ 0x00 ∥ role`.
pub fn role(tenant: &str, name: &str) -> Vec<u8> {
    tagged(TAG_ROLE, &[tenant.as_bytes(), name.as_bytes()])
}

/// The prefix of one tenant's roles.
pub fn roles_of(tenant: &str) -> Vec<u8> {
    tagged(TAG_ROLE, &[tenant.as_bytes(), b""])
}

/// `iam`: `K ∥ access key id`: what a signed request looks up.
pub fn access_key(id: &str) -> Vec<u8> {
    tagged(TAG_ACCESS_KEY, &[id.as_bytes()])
}

/// `iam`: `k ∥ tenant ∥ 0x00 ∥ user ∥ 0x00 ∥ access key id`: a user's keys, contiguous.
pub fn user_key(tenant: &str, user: &str, id: &str) -> Vec<u8> {
    tagged(TAG_USER_KEY, &[tenant.as_bytes(), user.as_bytes(), id.as_bytes()])
}

/// The prefix of one user's keys (`user == None`: of all the tenant's users).
pub fn user_keys_of(tenant: &str, user: Option<&str>) -> Vec<u8> {
    match user {
        Some(u) => tagged(TAG_USER_KEY, &[tenant.as_bytes(), u.as_bytes(), b""]),
        None => tagged(TAG_USER_KEY, &[tenant.as_bytes(), b""]),
    }
}

/// `iam`: `M ∥ tenant ∥ 0x00 ∥ key id`: a tenant's KMS keys (SSE-KMS), contiguous.
pub fn kms_key(tenant: &str, id: &str) -> Vec<u8> {
    tagged(TAG_KMS_KEY, &[tenant.as_bytes(), id.as_bytes()])
}

/// The prefix of one tenant's KMS keys.
pub fn kms_keys_of(tenant: &str) -> Vec<u8> {
    tagged(TAG_KMS_KEY, &[tenant.as_bytes(), b""])
}

/// The last 0x00-separated field of an `iam` key (a user's, a role's or a key's name).
pub fn last_field(raw: &[u8]) -> &[u8] {
    match raw.iter().rposition(|b| *b == 0) {
        Some(i) => &raw[i + 1..],
        None => raw.get(1..).unwrap_or(&[]),
    }
}

/// `usage`: `b ∥ bucket`.
pub fn usage_bucket(bucket: &str) -> Vec<u8> {
    tagged(b'b', &[bucket.as_bytes()])
}

/// `usage`: `t ∥ tenant`.
pub fn usage_tenant(tenant: &str) -> Vec<u8> {
    tagged(b't', &[tenant.as_bytes()])
}

/// A `usage` value or merge operand: bytes and objects (i64 little-endian each), deltas
/// summed by the merge operator.
pub fn usage_value(bytes: i64, objects: i64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&bytes.to_le_bytes());
    v[8..].copy_from_slice(&objects.to_le_bytes());
    v
}

/// (bytes, objects) of a `usage` value; a malformed one counts as zero.
pub fn usage_of(raw: &[u8]) -> (i64, i64) {
    match (raw.get(..8), raw.get(8..16)) {
        (Some(b), Some(o)) => (
            i64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
            i64::from_le_bytes(o.try_into().unwrap_or([0; 8])),
        ),
        _ => (0, 0),
    }
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
        fn node_parts_group_by_node(n1 in "[a-z0-9.-]{1,12}", n2 in "[a-z0-9.-]{1,12}", v1: [u8;16], v2: [u8;16]) {
            // One node's parts are contiguous under its prefix, by version; keys split back.
            let (e1, e2) = (node_part(&n1, &VersionId(v1)), node_part(&n2, &VersionId(v2)));
            prop_assert!(e1.starts_with(&node_parts_of(&n1)));
            prop_assert_eq!(node_part_of(&e1), Some((n1.as_str(), VersionId(v1))));
            if n1 == n2 {
                prop_assert_eq!(e1.cmp(&e2), v1.cmp(&v2));
            } else {
                prop_assert!(!e2.starts_with(&node_parts_of(&n1)));
                prop_assert_eq!(e1.cmp(&e2), node_parts_of(&n1).cmp(&node_parts_of(&n2)));
            }
            prop_assert_eq!(node_part_of(b""), None);
        }

        #[test]
        fn parts_sort_by_number(id: [u8;16], a: u32, b: u32) {
            prop_assert_eq!(part(&id, a).cmp(&part(&id, b)), a.cmp(&b));
        }

        #[test]
        fn iam_keys_group_by_tenant(t1 in "[a-z0-9-]{1,12}", t2 in "[a-z0-9-]{1,12}", u1 in "[A-Za-z0-9+=,.@_-]{1,12}", u2 in "[A-Za-z0-9+=,.@_-]{1,12}") {
            // One tenant's users are contiguous, sorted by name, under the tenant's prefix.
            let (e1, e2) = (user(&t1, &u1), user(&t2, &u2));
            prop_assert!(e1.starts_with(&users_of(&t1)));
            prop_assert_eq!(last_field(&e1), u1.as_bytes());
            if t1 == t2 {
                prop_assert_eq!(e1.cmp(&e2), u1.cmp(&u2));
            } else {
                prop_assert!(!e2.starts_with(&users_of(&t1)));
                prop_assert_eq!(e1.cmp(&e2), users_of(&t1).cmp(&users_of(&t2)));
            }
            let k = user_key(&t1, &u1, "AKID");
            prop_assert!(k.starts_with(&user_keys_of(&t1, Some(&u1))));
            prop_assert!(k.starts_with(&user_keys_of(&t1, None)));
            prop_assert_eq!(last_field(&k), b"AKID");
            prop_assert!(!user_key(&t2, &u2, "A").starts_with(&user_keys_of(&t1, Some(&u1))) || (t1 == t2 && u1 == u2));
            let (lo, hi) = tenants_range();
            prop_assert!(tenant(&t1) >= lo && tenant(&t1) < hi && tenant_name_of(&tenant(&t1)) == Some(t1.as_bytes()));
            prop_assert!(user(&t1, &u1) >= hi || user(&t1, &u1) < lo);
        }

        #[test]
        fn usage_values_roundtrip(b: i64, o: i64) {
            prop_assert_eq!(usage_of(&usage_value(b, o)), (b, o));
        }

        #[test]
        fn gc_order_is_time_order(t1: u64, t2: u64, v1: [u8;16], v2: [u8;16]) {
            prop_assume!(t1 != t2);
            prop_assert_eq!(gc(t1, &VersionId(v1)).cmp(&gc(t2, &VersionId(v2))), t1.cmp(&t2));
            prop_assert_eq!(gc_time(&gc(t1, &VersionId(v1))), Some(t1));
        }

        #[test]
        fn versions_sort_by_key_then_newest_first(k1 in prop::collection::vec(prop::sample::select(vec![0u8, 1, b'a', b'b', 0xFF]), 0..6),
                                                  k2 in prop::collection::vec(prop::sample::select(vec![0u8, 1, b'a', b'b', 0xFF]), 0..6),
                                                  s1: u64, s2: u64, b in "[a-z0-9.-]{3,12}") {
            let (e1, e2) = (object_version(&b, &k1, s1), object_version(&b, &k2, s2));
            // key order first (the order of `objects`), then newest first
            let expected = k1.cmp(&k2).then(s2.cmp(&s1));
            prop_assert_eq!(e1.cmp(&e2), expected);
            prop_assert_eq!(object_version_of(&b, &e1), Some((k1.clone(), s1)));
            // a key's versions are under its prefix, and under the prefix of its prefixes
            prop_assert!(e1.starts_with(&versions_of_key(&b, &k1)));
            prop_assert_eq!(e2.starts_with(&versions_of_key(&b, &k1)), k1 == k2);
            prop_assert_eq!(e2.starts_with(&versions_under(&b, &k1)), k2.starts_with(&k1));
            // past one key's versions come exactly the keys after it
            let past = prefix_successor(&versions_of_key(&b, &k1)).unwrap();
            prop_assert_eq!(e2 >= past, k2 > k1);
        }

        #[test]
        fn raft_log_order_is_index_order(a: u64, b: u64) {
            prop_assert_eq!(raft_log_index(a).cmp(&raft_log_index(b)), a.cmp(&b));
        }
    }
}
