//! What the admin API's calls take and answer: the wire types, shared by the server and the
//! CLI. Field names are a contract (scripts read `coffre admin … --json`); the OpenAPI
//! document is generated from these types, and a test compares it with docs/admin-api.json.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// No query parameter.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct NoQuery {}

/// `{"deleted": NAME}`: what a deletion removed.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    pub deleted: String,
}

// ---- cluster: nodes, placement, residency ----

/// What a node holds (about): parts, stripes, bytes.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Holdings {
    pub parts: u64,
    pub stripes: u64,
    pub bytes: u64,
}

/// A node's scrub: its pass, what it verified and found.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ScrubState {
    pub node: String,
    /// A pass is under way.
    pub running: bool,
    /// An immediate pass was asked and has not finished.
    pub requested: bool,
    pub pass_started_ms: Option<u64>,
    pub last_pass_done_ms: Option<u64>,
    /// Full passes completed.
    pub passes: u64,
    /// Shards verified by the current pass, and held now (its progress).
    pub pass_shards: u64,
    pub shards: u64,
    /// Since the store was created.
    pub shards_checked: u64,
    pub bytes_checked: u64,
    pub corrupt_found: u64,
    /// Shards found corrupt or unreadable not yet queued for repair (hex ids, a page of them).
    pub findings: Vec<String>,
    pub findings_pending: u64,
    /// The scrub's rate cap (MiB/s; 0: none) and the period of its passes.
    pub rate_mib: u64,
    pub period_secs: u64,
}

/// A storage node: location from its certificate, state, capacity.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct NodeStatus {
    pub id: String,
    pub address: String,
    pub draining: bool,
    pub country: String,
    pub site: String,
    pub zone: String,
    pub up: bool,
    pub shards: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// Its scrub as last seen (the metadata leader's `scrub` worker asks every node).
    pub scrub: Option<ScrubState>,
    /// A draining node: what it still holds, to move.
    pub left: Option<Holdings>,
}

/// A node removed for good whose shards are not all rebuilt yet.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct LostNode {
    pub node: String,
    pub parts_left: u64,
    pub stripes_left: u64,
    pub bytes_left: u64,
}

/// The cluster's nodes.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ClusterStatus {
    pub nodes: Vec<NodeStatus>,
    pub nodes_up: u64,
    pub nodes_total: u64,
    pub lost: Vec<LostNode>,
}

/// A member of the cluster: its id and location come from its CA-signed certificate.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct NodeInfo {
    pub id: String,
    pub country: String,
    pub site: String,
    pub zone: String,
    /// A draining node takes no new shards.
    pub draining: bool,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct AddNodeQuery {
    /// The node's address, https://HOST:PORT.
    pub address: String,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct RemoveNodeQuery {
    /// The node is gone for good: forget it although it holds shards, and rebuild them.
    #[serde(default)]
    pub dead: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct NodeRemoved {
    pub removed: String,
    pub dead: bool,
    /// What it held when removed (rebuilt on the others when `dead`).
    pub left: Holdings,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct PlacementQuery {
    pub bucket: String,
    pub key: String,
    /// One version (its S3 versionId, or `null`) rather than the current one.
    pub version_id: Option<String>,
}

/// One shard of an object: where it is and what it is.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ShardPlacement {
    pub part: u64,
    /// The part's version id (hex): with stripe and index, the shard's id on its node.
    pub version: String,
    pub stripe: u32,
    pub index: u8,
    pub node: String,
    pub country: String,
    pub site: String,
    pub zone: String,
    pub size: u64,
    pub blake3: String,
    /// Missing or corrupt where it should be: queued for repair.
    pub degraded: bool,
}

/// A bucket's residency policy.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ResidencyPolicy {
    pub countries: Vec<String>,
    pub failure_domain: String,
    pub scheme: String,
}

/// Where every shard of an object is.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Placement {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Inlined in its metadata record (small objects of the embedded server): no shard.
    pub inline: bool,
    pub scheme: String,
    pub policy: Option<ResidencyPolicy>,
    pub shards: Vec<ShardPlacement>,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct BucketQuery {
    pub bucket: String,
}

/// A shard on a node its bucket's policy does not allow.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Violation {
    pub key: String,
    pub part: u64,
    pub index: u8,
    pub node: String,
    pub country: String,
}

/// A bucket's residency audit: every version's shards against its policy.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ResidencyAudit {
    pub bucket: String,
    pub countries: Vec<String>,
    pub objects: u64,
    pub shards: u64,
    pub compliant_shards: u64,
    pub non_compliant: Vec<Violation>,
    /// Shards a degraded write left out or found missing: queued for healing.
    pub degraded_shards: u64,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct BucketPolicyQuery {
    /// Allowed countries, comma-separated ISO 3166-1 alpha-2 codes.
    pub countries: Option<String>,
    /// `node`, `zone` or `site`.
    pub failure_domain: Option<String>,
    /// Erasure scheme, K+M.
    pub scheme: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct BucketPolicy {
    pub bucket: String,
    pub countries: Vec<String>,
    pub failure_domain: String,
    pub scheme: String,
}

/// A quota: no limit where absent.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct QuotaQuery {
    pub quota_bytes: Option<u64>,
    pub quota_objects: Option<u64>,
}

/// What a bucket or a tenant holds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub bytes: u64,
    pub objects: u64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct BucketQuota {
    pub bucket: String,
    pub quota_bytes: Option<u64>,
    pub quota_objects: Option<u64>,
    pub usage: Usage,
}

// ---- replicated metadata ----

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReplicaState {
    pub id: u64,
    pub address: String,
    /// `leader`, `follower` (a voter) or `learner` (catching up, not yet voting).
    pub state: String,
    /// The highest log index known to be on the replica.
    pub commit_index: Option<u64>,
    /// Entries the replica lags behind the leader's log (the leader's view).
    pub lag: Option<u64>,
}

/// The metadata replica set as this gateway's replica sees it.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct MetaStatus {
    /// This replica.
    pub id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    pub state: String,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub replicas: Vec<ReplicaState>,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct AddReplicaQuery {
    /// The replica's Raft address, https://HOST:PORT.
    pub address: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReplicaAdded {
    pub id: u64,
    pub address: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReplicaRemoved {
    pub removed: u64,
}

// ---- workers, scrub, rebalance ----

/// A background worker: state, knobs, progress.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Worker {
    pub name: String,
    /// `idle`, `busy`, `paused`, `error` or `standby` (a leader-only worker on a follower).
    pub state: String,
    pub leader_only: bool,
    pub tranquility: u32,
    /// Its rate knob (0: unlimited), in `rate_unit`; absent: it has none.
    pub rate: Option<u64>,
    pub rate_unit: Option<String>,
    pub steps: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    /// Milliseconds since the epoch of the last step's end.
    pub last_step_ms: Option<u64>,
    /// What it has done since the process started (`shards`, `bytes`, `versions`…).
    pub counters: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct WorkerList {
    pub workers: Vec<Worker>,
}

/// Exactly one of the two.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct WorkerKnobQuery {
    /// In the worker's rate unit; 0: unlimited.
    pub rate: Option<u64>,
    /// The pause after each busy step, as a multiple of the step's time (0..=1000).
    pub tranquility: Option<u64>,
}

/// One node's scrub, or why it did not answer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct NodeScrub {
    pub node: String,
    /// Absent: the node did not answer (`error` says why).
    pub status: Option<ScrubState>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ScrubStatus {
    pub nodes: Vec<NodeScrub>,
    /// Keys waiting in the repair queue (counted up to 100 000).
    pub repair_pending: u64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ScrubStarted {
    pub nodes: Vec<NodeScrub>,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct RebalanceState {
    /// Asked and not finished.
    pub running: bool,
    /// Bytes the nodes over their share hold beyond it (about: what is left to move).
    pub bytes_to_move: u64,
    /// Parts queued to move so far.
    pub parts_queued: u64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RebalanceStatus {
    pub rebalance: RebalanceState,
    /// Keys waiting in the repair queue (counted up to 100 000).
    pub repair_pending: u64,
}

// ---- audit ----

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct TimeRangeQuery {
    /// From this time (2026-12-01, 2026-12-01T10:00:00Z, or an age: 7d, 12h).
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ExportQuery {
    pub tenant: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct AuditSearchQuery {
    pub tenant: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The operation (`PutObject`, `admin:NodesDelete`, `system:DeclareNodeDead`, …).
    pub op: Option<String>,
    /// An age (7d, 12h, 30m) or a date.
    pub since: Option<String>,
    pub until: Option<String>,
    /// At most this many (the newest).
    pub limit: Option<u64>,
}

/// Where a record of the audit log is.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AuditPosition {
    /// The segment's (or export's) file name.
    pub segment: String,
    /// The line, from 1.
    pub line: u64,
    /// The entry number the line holds or should hold.
    pub entry: u64,
}

/// The first bad position a verification found, and what is wrong there.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AuditProblem {
    pub position: AuditPosition,
    pub what: String,
}

/// What a verification of the audit chain found.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct AuditReport {
    pub ok: bool,
    pub segments: u64,
    pub entries: u64,
    pub redacted: u64,
    pub checkpoints: u64,
    pub first_entry: Option<u64>,
    pub last_entry: Option<u64>,
    /// The last entry a valid checkpoint signs.
    pub last_signed: Option<u64>,
    /// Entries after the last checkpoint (the writer signs every few seconds).
    pub unsigned_tail: u64,
    /// The last file ends in the middle of a record (a write in progress, or a crash).
    #[serde(default)]
    pub torn_tail: bool,
    pub gateway: Option<String>,
    pub problem: Option<AuditProblem>,
}

/// One audited action.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AuditEvent {
    /// Its entry number in this gateway's chain.
    pub n: u64,
    /// UTC, milliseconds (`2026-12-03T02:24:19.123Z`).
    pub time: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant: String,
    /// The caller's ARN, or `anonymous`, `unauthenticated`, `operator` or `system`.
    pub principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub tls: bool,
    pub op: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bucket: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub bytes_in: u64,
    #[serde(default)]
    pub bytes_out: u64,
    #[serde(default)]
    pub ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AuditSearch {
    pub count: u64,
    pub events: Vec<AuditEvent>,
}

// ---- tenants and their identities ----

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct CreateTenantQuery {
    pub name: String,
    pub quota_bytes: Option<u64>,
    pub quota_objects: Option<u64>,
}

/// A new access key: its secret is shown only in this answer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TenantCreated {
    pub tenant: String,
    /// The tenant's admin user.
    pub user: String,
    pub access_key: String,
    pub secret_key: String,
}

/// A tenant: usage, quotas, buckets, users, key id.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TenantInfo {
    pub tenant: String,
    pub created_ms: u64,
    /// Its key-encryption key's id.
    pub kek_id: String,
    pub quota_bytes: Option<u64>,
    pub quota_objects: Option<u64>,
    pub usage: Usage,
    pub buckets: Vec<String>,
    pub users: Vec<String>,
    pub oidc_issuer: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantInfo>,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct DeleteTenantQuery {
    /// Delete its (empty) buckets and destroy its key, with a signed erasure certificate.
    #[serde(default)]
    pub erase: bool,
    /// With `erase`: delete the buckets' objects too.
    #[serde(default)]
    pub force: bool,
}

/// What a tenant erasure destroyed, as the operator signed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Erasure {
    pub kind: String,
    pub tenant: String,
    /// UTC, ISO 8601.
    pub erased_at: String,
    /// The destroyed key-encryption key's id.
    pub kek_id: String,
    pub buckets: Vec<String>,
    /// Objects deleted by the erasure, and their bytes.
    pub objects: u64,
    pub bytes: u64,
    pub statement: String,
    /// The operator's public key (Ed25519, base64) that signed this.
    pub operator_key: String,
}

/// A signed erasure certificate (`coffre admin verify-certificate`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub certificate: Erasure,
    /// Ed25519 signature (base64) of the compact JSON of `certificate`.
    pub signature: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TenantDeleted {
    pub deleted: String,
    pub kek_id: String,
    /// With `erase`: what it destroyed, signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TenantQuota {
    pub tenant: String,
    pub quota_bytes: Option<u64>,
    pub quota_objects: Option<u64>,
}

/// A tenant's OpenID Connect issuer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct OidcSettings {
    pub issuer: String,
    /// What `aud` must hold (the client id at the issuer).
    pub audience: String,
    /// The issuer's keys, a JWKS document (as JSON, or as its text), kept inline.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Where to fetch the issuer's keys from (the gateway then calls it).
    #[serde(default)]
    pub jwks_url: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TenantOidc {
    pub tenant: String,
    /// Absent: removed.
    pub issuer: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct NameQuery {
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct UserCreated {
    pub tenant: String,
    pub user: String,
    pub id: String,
    pub arn: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct UserInfo {
    pub user: String,
    pub id: String,
    pub admin: bool,
    /// The names of its inline policies.
    pub policies: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct UserList {
    pub tenant: String,
    pub users: Vec<UserInfo>,
}

/// An IAM policy document (JSON).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PolicyDocument(pub serde_json::Value);

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct UserPolicySet {
    pub tenant: String,
    pub user: String,
    pub policy: String,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct CreateKeyQuery {
    /// The key stops working after this many seconds.
    pub expires_in_secs: Option<u64>,
}

/// A new access key: its secret is shown only in this answer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct KeyCreated {
    pub tenant: String,
    pub user: String,
    pub access_key: String,
    pub secret_key: String,
    pub expires_ms: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct KeyListQuery {
    /// Only this user's keys.
    pub user: Option<String>,
}

/// An access key as listed (never its secret).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct KeyInfo {
    pub access_key: String,
    pub user: String,
    pub enabled: bool,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct KeyList {
    pub tenant: String,
    pub keys: Vec<KeyInfo>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct KeyState {
    pub tenant: String,
    pub access_key: String,
    pub enabled: bool,
}

/// A role a tenant's web identities may assume through STS.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RoleSettings {
    /// The policy of its sessions (a JSON policy document, as JSON or as its text).
    pub policy: serde_json::Value,
    /// Claims the web identity token must carry: name → pattern (`*` wildcards).
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    pub max_session_secs: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RoleSet {
    pub tenant: String,
    pub role: String,
    pub arn: String,
    pub id: String,
    pub max_session_secs: u32,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RoleInfo {
    pub role: String,
    pub arn: String,
    /// (claim name, pattern) pairs the token must all match.
    pub claims: Vec<(String, String)>,
    pub max_session_secs: u32,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RoleList {
    pub tenant: String,
    pub roles: Vec<RoleInfo>,
}

/// The operator's public key, to check erasure certificates with.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct OperatorKey {
    /// `Ed25519`.
    pub algorithm: String,
    /// Base64.
    pub public_key: String,
}

/// Where the keys stand: the provider, its current master key version, and how many keys it
/// wraps (docs/keys.md).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct KeysStatus {
    /// `file` or `pkcs11`.
    pub provider: String,
    /// The master key version that wraps now (`coffre-master-N` in a token; the key id with
    /// `file`).
    pub current_version: String,
    pub tenants: u64,
    /// Tenants whose key the current version wraps.
    pub tenants_current: u64,
    /// Whether the current version wraps the store key (always with `file`).
    pub store_key_current: bool,
    /// Whether a rotation is running on this gateway.
    pub rotating: bool,
    /// What stopped the last rotation (run it again to resume).
    pub last_error: Option<String>,
}

/// A tenant's KMS key (SSE-KMS): what `x-amz-server-side-encryption-aws-kms-key-id` names by
/// its id, its ARN, `alias/NAME` or its name (docs/keys.md).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct KmsKey {
    pub tenant: String,
    pub key_id: String,
    /// `arn:aws:kms:REGION:TENANT:key/ID`.
    pub arn: String,
    pub name: String,
    /// `Enabled`, `Disabled`, `PendingDeletion` or `Deleted`.
    pub state: String,
    pub created_ms: u64,
    /// Versions of its material (one more per rotation; 0 once deleted).
    pub versions: u32,
    /// When a key pending deletion is shredded (or a deleted key was).
    pub deletion_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct KmsKeyList {
    pub tenant: String,
    pub keys: Vec<KmsKey>,
}

/// How long before a key is shredded.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct PendingDaysQuery {
    /// Days, 0 to 30 (0: at once); 30 if not given, as AWS KMS.
    pub days: Option<u32>,
}

/// `GET /v1/placement/proof`.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct PlacementProofQuery {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// Hex, 1 to 64 bytes: what every statement must answer.
    pub nonce: String,
}

/// A proof of possession (`coffre_cluster::proof::PlacementProof`, docs/residency.md): the
/// nodes' signed statements, their certificates, the layout and the policy.
pub type PlacementProofDocument = serde_json::Value;

/// `GET /v1/audit/residency/proof`.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct BucketProofQuery {
    pub bucket: String,
    /// A random sample of this many object versions rather than all of them.
    pub sample: Option<u64>,
    /// Hex, 1 to 64 bytes: what every statement must answer.
    pub nonce: String,
}
