//! The admin API as a contract, declared once: every call's name, method, path, what it takes
//! (path segments, query, body) and what it answers. The server routes from this table
//! (`router` in lib.rs), the CLI calls through it (the client's `request`), the audit and the
//! metrics name calls by it, and the OpenAPI document (`openapi::document`, served at
//! `/v1/openapi.json`, checked into docs/admin-api.json) is generated from it.

pub mod openapi;
mod types;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
pub use types::*;

/// The path segments of a call (`{t}`, `{u}`…), in their order in the path.
pub trait PathArgs: Sized + Send + 'static {
    fn from_segments(values: Vec<String>) -> Option<Self>;
    fn segments(&self) -> Vec<&str>;
}

impl PathArgs for () {
    fn from_segments(values: Vec<String>) -> Option<()> {
        values.is_empty().then_some(())
    }
    fn segments(&self) -> Vec<&str> {
        Vec::new()
    }
}

impl PathArgs for String {
    fn from_segments(values: Vec<String>) -> Option<String> {
        let [a]: [String; 1] = values.try_into().ok()?;
        Some(a)
    }
    fn segments(&self) -> Vec<&str> {
        vec![self]
    }
}

impl PathArgs for (String, String) {
    fn from_segments(values: Vec<String>) -> Option<Self> {
        let [a, b]: [String; 2] = values.try_into().ok()?;
        Some((a, b))
    }
    fn segments(&self) -> Vec<&str> {
        vec![&self.0, &self.1]
    }
}

impl PathArgs for (String, String, String) {
    fn from_segments(values: Vec<String>) -> Option<Self> {
        let [a, b, c]: [String; 3] = values.try_into().ok()?;
        Some((a, b, c))
    }
    fn segments(&self) -> Vec<&str> {
        vec![&self.0, &self.1, &self.2]
    }
}

/// One call of the admin API.
pub trait Endpoint: 'static {
    /// The operation's name: OpenAPI's `operationId`, the audit's `admin:NAME`, the metrics'
    /// `operation` label.
    const NAME: &'static str;
    const METHOD: http::Method;
    /// In OpenAPI's (and axum's) form: `/v1/tenants/{t}`.
    const PATH: &'static str;
    type Path: PathArgs;
    type Query: Serialize + DeserializeOwned + JsonSchema + Default + Send + 'static;
    /// `()`: no body.
    type Body: Serialize + DeserializeOwned + JsonSchema + Send + 'static;
    /// `Raw`: not JSON (the document's entry says what).
    type Answer: Serialize + DeserializeOwned + JsonSchema + Send + 'static;
}

/// The answer of a call that is not JSON (a stream, Prometheus text).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Raw;

/// What a call answers, for the document.
pub enum Answered {
    Json(fn(&mut SchemaGenerator) -> Schema),
    /// Its content type.
    Raw(&'static str),
}

/// A call as the OpenAPI document describes it.
pub struct Operation {
    pub name: &'static str,
    pub method: http::Method,
    pub path: &'static str,
    pub doc: &'static str,
    /// The `coffre admin` commands whose `--json` output is this call's answer.
    pub cli: &'static [&'static str],
    pub query: fn(&mut SchemaGenerator) -> Schema,
    pub body: Option<fn(&mut SchemaGenerator) -> Schema>,
    pub answer: Answered,
}

/// Why a call was refused: a stable code (what scripts test) and a message for people.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub error: String,
}

/// The codes of refused calls, each with its HTTP status (`ErrorCode::status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ErrorCode {
    /// 400: the request is malformed (query, path or body syntax, a missing parameter).
    InvalidRequest,
    /// 422: well-formed, but a value is not acceptable (a country code, a scheme, a knob).
    InvalidArgument,
    /// 401: no valid bearer token.
    Unauthorized,
    /// 404: no such call.
    UnknownEndpoint,
    /// 405: the path exists, not with this method.
    MethodNotAllowed,
    /// 404.
    NoSuchBucket,
    /// 404: no such key, or no such version of it.
    NoSuchObject,
    /// 404.
    NoSuchNode,
    /// 404: no such tenant, user, access key or role.
    NoSuchEntity,
    /// 404.
    NoSuchWorker,
    /// 404: this gateway keeps no audit log (`audit = off`).
    NoAuditLog,
    /// 409: the call needs replicated metadata (a `[meta]` section).
    NotReplicated,
    /// 409: the call needs a cluster gateway (with a cluster identity).
    NotAClusterGateway,
    /// 409.
    AlreadyExists,
    /// 409: the change would leave something inconsistent (a node holding shards, a tenant
    /// with buckets, a bucket with objects, data under Object Lock).
    Conflict,
    /// 502: a node to admit could not be reached.
    NodeUnreachable,
    /// 503: no quorum, not enough nodes, shutting down: retry later.
    Unavailable,
    /// 500: a fault of the server, never of the request.
    Internal,
    /// A code this client does not know (a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidRequest => 400,
            Unauthorized => 401,
            UnknownEndpoint | NoSuchBucket | NoSuchObject | NoSuchNode | NoSuchEntity | NoSuchWorker | NoAuditLog => {
                404
            }
            MethodNotAllowed => 405,
            NotReplicated | NotAClusterGateway | AlreadyExists | Conflict => 409,
            InvalidArgument => 422,
            NodeUnreachable => 502,
            Unavailable => 503,
            Internal | Unknown => 500,
        }
    }
}

/// The answer type of a table entry: `json T` answers T, `raw "type"` answers `Raw`.
macro_rules! answer_type {
    (json $a:ident) => {
        $a
    };
    (raw $ct:literal) => {
        Raw
    };
}

macro_rules! answer_doc {
    (json $a:ident) => {
        Answered::Json(|g| g.subschema_for::<$a>())
    };
    (raw $ct:literal) => {
        Answered::Raw($ct)
    };
}

macro_rules! endpoints {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $method:ident $path:literal, path $p:ty, query $q:ty, body $b:ty,
            answer $kind:ident $a:tt, cli [$($cli:literal),*];
    )*) => {
        $(
            $(#[doc = $doc])+
            pub struct $name;
            impl Endpoint for $name {
                const NAME: &'static str = stringify!($name);
                const METHOD: http::Method = http::Method::$method;
                const PATH: &'static str = $path;
                type Path = $p;
                type Query = $q;
                type Body = $b;
                type Answer = answer_type!($kind $a);
            }
        )*

        /// Every call, as documented.
        pub fn operations() -> Vec<Operation> {
            vec![$(Operation {
                name: stringify!($name),
                method: http::Method::$method,
                path: $path,
                doc: concat!($($doc, "\n"),+),
                cli: &[$($cli),*],
                query: |g| <$q as JsonSchema>::json_schema(g),
                body: (std::any::TypeId::of::<$b>() != std::any::TypeId::of::<()>())
                    .then_some((|g| g.subschema_for::<$b>()) as fn(&mut SchemaGenerator) -> Schema),
                answer: answer_doc!($kind $a),
            }),*]
        }

        /// The name of the call at `method` and (matched) `path`.
        pub fn operation_name(method: &http::Method, path: &str) -> Option<&'static str> {
            $(if method == http::Method::$method && path == $path {
                return Some(stringify!($name));
            })*
            None
        }
    };
}

endpoints! {
    /// Prometheus metrics (text format 0.0.4; docs/metrics.md). Not audited.
    MetricsGet: GET "/metrics", path (), query NoQuery, body (), answer raw "text/plain; version=0.0.4", cli [];
    /// This document.
    OpenApiGet: GET "/v1/openapi.json", path (), query NoQuery, body (), answer raw "application/json", cli [];
    /// Nodes with location, state, capacity and scrub; nodes removed for good not yet rebuilt.
    StatusGet: GET "/v1/status", path (), query NoQuery, body (), answer json ClusterStatus, cli ["status"];
    /// The same as `/v1/status`.
    NodesGet: GET "/v1/nodes", path (), query NoQuery, body (), answer json ClusterStatus, cli [];
    /// Admits a node by address: its id and location come from its CA-signed certificate.
    NodesCreate: POST "/v1/nodes", path (), query AddNodeQuery, body (), answer json NodeInfo, cli [];
    /// Stops placing new shards on a node; what it holds moves to the others.
    NodeDrain: POST "/v1/nodes/{id}/drain", path String, query NoQuery, body (), answer json NodeInfo, cli [];
    /// Forgets a node that holds nothing (drained), or with `dead=true` one gone for good:
    /// every shard it held is then rebuilt on the others.
    NodesDelete: DELETE "/v1/nodes/{id}", path String, query RemoveNodeQuery, body (), answer json NodeRemoved, cli [];
    /// Where every shard of an object is: stripe, index, node, country, site, zone, size, BLAKE3.
    PlacementGet: GET "/v1/placement", path (), query PlacementQuery, body (), answer json Placement, cli ["placement"];
    /// A fresh proof of possession of an object: every node named in its layout signs what it
    /// holds of its shards, answering the nonce (`coffre verify-placement` checks it offline).
    PlacementProofGet: GET "/v1/placement/proof", path (), query PlacementProofQuery, body (), answer json PlacementProofDocument, cli [];
    /// The replicated metadata: leader, term, and each replica's state, commit index and lag.
    MetaGet: GET "/v1/meta", path (), query NoQuery, body (), answer json MetaStatus, cli ["meta status"];
    /// Adds a metadata replica by its Raft address (learner, caught up, then voter).
    MetaReplicasCreate: POST "/v1/meta/replicas", path (), query AddReplicaQuery, body (), answer json ReplicaAdded, cli [];
    /// Removes a metadata replica.
    MetaReplicasDelete: DELETE "/v1/meta/replicas/{id}", path String, query NoQuery, body (), answer json ReplicaRemoved, cli [];
    /// A consistent backup of the metadata, sealed with the master key, made while serving.
    MetaBackupGet: GET "/v1/meta/backup", path (), query NoQuery, body (), answer raw "application/octet-stream", cli [];
    /// Every version of a bucket's objects: are all its shards on nodes its policy allows?
    AuditResidencyGet: GET "/v1/audit/residency", path (), query BucketQuery, body (), answer json ResidencyAudit, cli ["audit residency"];
    /// A fresh proof of possession of every object version of a bucket, or of a random sample
    /// (`sample`): the nodes asked in batches (`coffre verify-placement` checks it offline).
    AuditResidencyProofGet: GET "/v1/audit/residency/proof", path (), query BucketProofQuery, body (), answer json PlacementProofDocument, cli [];
    /// Verifies this gateway's audit chain: hashes, checkpoint signatures, the head in the metadata.
    AuditVerifyGet: GET "/v1/audit/verify", path (), query TimeRangeQuery, body (), answer json AuditReport, cli ["audit verify"];
    /// A tenant's audit events with what proves them (JSON lines, verifiable offline).
    AuditExportGet: GET "/v1/audit/export", path (), query ExportQuery, body (), answer raw "application/x-ndjson", cli [];
    /// Audit events by tenant, bucket, key, operation and time (newest last).
    AuditSearchGet: GET "/v1/audit/search", path (), query AuditSearchQuery, body (), answer json AuditSearch, cli ["audit search"];
    /// Sets a bucket's residency policy (applies to new writes).
    BucketsPolicyPut: PUT "/v1/buckets/{bucket}/policy", path String, query BucketPolicyQuery, body (), answer json BucketPolicy, cli [];
    /// Sets (or with no limit, removes) a bucket's quota.
    BucketsQuotaPut: PUT "/v1/buckets/{bucket}/quota", path String, query QuotaQuery, body (), answer json BucketQuota, cli [];
    /// Where a rebalance stands, and the repair queue.
    RebalanceGet: GET "/v1/rebalance", path (), query NoQuery, body (), answer json RebalanceStatus, cli [];
    /// Starts a rebalance: nodes over their share move shards to the others, within each
    /// bucket's residency policy.
    RebalanceCreate: POST "/v1/rebalance", path (), query NoQuery, body (), answer json RebalanceStatus, cli [];
    /// Every node's scrub and the repair queue.
    ScrubGet: GET "/v1/scrub", path (), query NoQuery, body (), answer json ScrubStatus, cli ["scrub status"];
    /// Every node starts a full scrub pass now.
    ScrubStart: POST "/v1/scrub/start", path (), query NoQuery, body (), answer json ScrubStarted, cli [];
    /// The background workers: state, knobs, progress.
    WorkersGet: GET "/v1/workers", path (), query NoQuery, body (), answer json WorkerList, cli ["workers list"];
    /// Sets a worker's rate or tranquility.
    WorkerPut: PUT "/v1/workers/{name}", path String, query WorkerKnobQuery, body (), answer json Worker, cli [];
    /// Pauses a worker after its current step.
    WorkerPause: POST "/v1/workers/{name}/pause", path String, query NoQuery, body (), answer json Worker, cli [];
    /// Resumes a paused worker.
    WorkerResume: POST "/v1/workers/{name}/resume", path String, query NoQuery, body (), answer json Worker, cli [];
    /// The key provider, its master key version, and the keys not yet under it.
    KeysGet: GET "/v1/keys", path (), query NoQuery, body (), answer json KeysStatus, cli ["keys status"];
    /// Starts a rotation of the master key while serving (or resumes an unfinished one): a
    /// new version in the provider, then every tenant's key and the store key wrapped again.
    KeysRotateMaster: POST "/v1/keys/rotate-master", path (), query NoQuery, body (), answer json KeysStatus, cli [];
    /// The operator's public key, to check erasure certificates with.
    OperatorKeyGet: GET "/v1/operator-key", path (), query NoQuery, body (), answer json OperatorKey, cli [];
    /// Tenants with usage and quotas.
    TenantsList: GET "/v1/tenants", path (), query NoQuery, body (), answer json TenantList, cli ["tenant list"];
    /// Creates a tenant and its admin user (the secret is in this answer only).
    TenantsCreate: POST "/v1/tenants", path (), query CreateTenantQuery, body (), answer json TenantCreated, cli ["tenant create"];
    /// One tenant: usage, quotas, buckets, users, key id.
    TenantsGet: GET "/v1/tenants/{t}", path String, query NoQuery, body (), answer json TenantInfo, cli ["tenant show"];
    /// Deletes a tenant that owns no bucket; with `erase=true` its buckets go first
    /// (`force=true`: full ones too) and its key is destroyed, with a signed certificate.
    TenantsDelete: DELETE "/v1/tenants/{t}", path String, query DeleteTenantQuery, body (), answer json TenantDeleted, cli [];
    /// Sets (or with no limit, removes) a tenant's quota.
    TenantsQuotaPut: PUT "/v1/tenants/{t}/quota", path String, query QuotaQuery, body (), answer json TenantQuota, cli [];
    /// Sets the tenant's OpenID Connect issuer; `null` (or no body) removes it.
    TenantsOidcPut: PUT "/v1/tenants/{t}/oidc", path String, query NoQuery, body Option<OidcSettings>, answer json TenantOidc, cli [];
    /// The tenant's users.
    TenantsUsersGet: GET "/v1/tenants/{t}/users", path String, query NoQuery, body (), answer json UserList, cli ["user list"];
    /// Creates a user (with no key and no right until given some).
    TenantsUsersCreate: POST "/v1/tenants/{t}/users", path String, query NameQuery, body (), answer json UserCreated, cli ["user create"];
    /// Deletes a user and its keys.
    TenantsUsersDelete: DELETE "/v1/tenants/{t}/users/{u}", path (String, String), query NoQuery, body (), answer json Deleted, cli [];
    /// Attaches an inline IAM policy to a user (or replaces it).
    TenantsUsersPoliciesPut: PUT "/v1/tenants/{t}/users/{u}/policies/{p}", path (String, String, String), query NoQuery, body PolicyDocument, answer json UserPolicySet, cli [];
    /// Removes an inline policy from a user.
    TenantsUsersPoliciesDelete: DELETE "/v1/tenants/{t}/users/{u}/policies/{p}", path (String, String, String), query NoQuery, body (), answer json Deleted, cli [];
    /// A new access key for a user (the secret is in this answer only).
    TenantsUsersKeysCreate: POST "/v1/tenants/{t}/users/{u}/keys", path (String, String), query CreateKeyQuery, body (), answer json KeyCreated, cli [];
    /// The tenant's access keys (never their secrets).
    TenantsKeysGet: GET "/v1/tenants/{t}/keys", path String, query KeyListQuery, body (), answer json KeyList, cli ["key list"];
    /// Deletes an access key.
    TenantsKeysDelete: DELETE "/v1/tenants/{t}/keys/{k}", path (String, String), query NoQuery, body (), answer json Deleted, cli [];
    /// Enables an access key.
    KeyEnable: POST "/v1/tenants/{t}/keys/{k}/enable", path (String, String), query NoQuery, body (), answer json KeyState, cli [];
    /// Disables an access key (it stays so until enabled).
    KeyDisable: POST "/v1/tenants/{t}/keys/{k}/disable", path (String, String), query NoQuery, body (), answer json KeyState, cli [];
    /// The roles the tenant's web identities (OIDC) may assume through STS.
    TenantsRolesGet: GET "/v1/tenants/{t}/roles", path String, query NoQuery, body (), answer json RoleList, cli [];
    /// Creates or replaces a role.
    TenantsRolesPut: PUT "/v1/tenants/{t}/roles/{r}", path (String, String), query NoQuery, body RoleSettings, answer json RoleSet, cli [];
    /// Deletes a role.
    TenantsRolesDelete: DELETE "/v1/tenants/{t}/roles/{r}", path (String, String), query NoQuery, body (), answer json Deleted, cli [];
    /// The tenant's KMS keys (SSE-KMS), with their states.
    TenantsKmsKeysGet: GET "/v1/tenants/{t}/kms-keys", path String, query NoQuery, body (), answer json KmsKeyList, cli ["kms-key list"];
    /// Creates a KMS key in the tenant, enabled; its material is wrapped by the tenant's key.
    TenantsKmsKeysCreate: POST "/v1/tenants/{t}/kms-keys", path String, query NameQuery, body (), answer json KmsKey, cli [];
    /// Enables a KMS key (by id, ARN, `alias/NAME` or name): what it encrypted is readable again.
    KmsKeyEnable: POST "/v1/tenants/{t}/kms-keys/{k}/enable", path (String, String), query NoQuery, body (), answer json KmsKey, cli [];
    /// Disables a KMS key: what it encrypted is unreadable (403) and nothing new is written
    /// under it until it is enabled again.
    KmsKeyDisable: POST "/v1/tenants/{t}/kms-keys/{k}/disable", path (String, String), query NoQuery, body (), answer json KmsKey, cli [];
    /// A new version of a KMS key's material: new writes use it, older ones still decrypt.
    KmsKeyRotate: POST "/v1/tenants/{t}/kms-keys/{k}/rotate", path (String, String), query NoQuery, body (), answer json KmsKey, cli [];
    /// Schedules a KMS key's shredding (unusable at once, its material destroyed after the
    /// days given; 0: now): what it encrypted is then unreadable for good.
    KmsKeyScheduleDeletion: POST "/v1/tenants/{t}/kms-keys/{k}/schedule-deletion", path (String, String), query PendingDaysQuery, body (), answer json KmsKey, cli [];
    /// Cancels a scheduled deletion; the key is left disabled.
    KmsKeyCancelDeletion: POST "/v1/tenants/{t}/kms-keys/{k}/cancel-deletion", path (String, String), query NoQuery, body (), answer json KmsKey, cli [];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_has_one_name_and_one_route() {
        let ops = operations();
        for (i, a) in ops.iter().enumerate() {
            assert_eq!(operation_name(&a.method, a.path), Some(a.name));
            for b in &ops[i + 1..] {
                assert_ne!(a.name, b.name, "two calls named {}", a.name);
                assert!(
                    a.method != b.method || a.path != b.path,
                    "{} and {} share a route",
                    a.name,
                    b.name
                );
            }
        }
    }

    #[test]
    fn error_codes_say_their_status() {
        let body: ErrorBody = serde_json::from_str(r#"{"code":"NoSuchNode","error":"no such node"}"#).unwrap();
        assert_eq!(body.code.status(), 404);
        let newer: ErrorBody = serde_json::from_str(r#"{"code":"SomethingNew","error":"?"}"#).unwrap();
        assert_eq!(newer.code, ErrorCode::Unknown);
    }
}
