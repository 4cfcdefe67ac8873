//! `coffre admin …`: cluster identities (offline, with the CA) and the commands that talk to
//! a gateway's admin API. The binary embeds `AdminCommand` and calls `run`.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// The cluster CA.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Issue a node's (or gateway's) certificate carrying its signed location.
    NodeIdentity {
        /// The CA directory (from `coffre admin ca init`).
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        id: String,
        /// ISO 3166-1 alpha-2 country code, e.g. FR.
        #[arg(long)]
        country: String,
        #[arg(long)]
        site: String,
        #[arg(long, default_value = "default")]
        zone: String,
        /// What the certificate allows: `node` (serves shards) or `gateway` (reads and writes
        /// shards on nodes).
        #[arg(long, default_value = "node")]
        role: coffre_cluster::identity::Role,
        #[arg(long)]
        out: PathBuf,
        /// Keep an identity already in OUT if the same CA issued it for the same id, location
        /// and role (idempotent provisioning, e.g. a container's init step); refuse otherwise.
        #[arg(long)]
        if_missing: bool,
    },
    /// Nodes with location, state and capacity.
    Status {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        json: bool,
    },
    /// Where every shard of an object is: stripe, index, node, country, site, zone, size, BLAKE3.
    Placement {
        #[command(flatten)]
        api: Api,
        bucket: String,
        key: String,
        /// One version of the object (its S3 versionId, or `null`) rather than the current one.
        #[arg(long)]
        version_id: Option<String>,
        #[arg(long)]
        json: bool,
        /// Prints a proof of possession instead (JSON): every node holding a shard signs what
        /// it read from its disk; `coffre verify-placement` checks it with the CA alone.
        #[arg(long)]
        proof: bool,
        /// The nonce the nodes' statements answer (hex); a random one when none is given.
        #[arg(long, requires = "proof")]
        nonce: Option<String>,
    },
    /// Audits.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Buckets.
    #[command(subcommand)]
    Bucket(BucketCommand),
    /// Cluster membership (persisted by the gateway).
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// The replicated metadata: its replicas, leader and lag; membership.
    #[command(subcommand)]
    Meta(MetaCommand),
    /// The gateway's background workers (GC, expiry, lifecycle, repair, scrub…).
    #[command(subcommand)]
    Workers(WorkersCommand),
    /// The scrub: every node verifies every shard it holds (BLAKE3) and what it finds is
    /// repaired.
    #[command(subcommand)]
    Scrub(ScrubCommand),
    /// The master key: its provider and version, and its rotation while serving.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Tenants (accounts): each owns its buckets, users and key-encryption key.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Users of a tenant.
    #[command(subcommand)]
    User(UserCommand),
    /// Access keys of a tenant's users.
    #[command(subcommand)]
    Key(KeyCommand),
    /// A tenant's KMS keys (SSE-KMS): named keys its objects can be encrypted under, that it
    /// can disable (its objects become unreadable) or have shredded.
    #[command(subcommand, name = "kms-key")]
    KmsKey(KmsKeyCommand),
    /// Roles a tenant's web identities (OIDC) may assume through STS.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Check a signed erasure certificate (exit 0 only if untampered and the operator's).
    VerifyCertificate {
        /// The certificate (JSON), as `tenant delete --erase` printed it.
        file: PathBuf,
        /// The operator's public key (base64); by default asked of the admin API.
        #[arg(long)]
        public_key: Option<String>,
        #[arg(long, env = "COFFRE_ADMIN_ENDPOINT", default_value = "http://127.0.0.1:9001")]
        endpoint: String,
        #[arg(long, env = "COFFRE_ADMIN_TOKEN")]
        token: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its admin user; prints the admin's access key and secret (once).
    Create {
        #[command(flatten)]
        api: Api,
        name: String,
        #[arg(long)]
        quota_bytes: Option<u64>,
        #[arg(long)]
        quota_objects: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Tenants with usage and quotas.
    List {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        json: bool,
    },
    /// One tenant: usage, quotas, buckets, users, key id.
    Show {
        #[command(flatten)]
        api: Api,
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a tenant that owns no bucket; --erase deletes its (empty) buckets and destroys
    /// its key, printing a signed erasure certificate; --force also deletes their objects.
    Delete {
        #[command(flatten)]
        api: Api,
        name: String,
        #[arg(long)]
        erase: bool,
        #[arg(long, requires = "erase")]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Set (or with no limit given, remove) a tenant's quota.
    Quota {
        #[command(flatten)]
        api: Api,
        name: String,
        #[arg(long)]
        bytes: Option<u64>,
        #[arg(long)]
        objects: Option<u64>,
    },
    /// Set the tenant's OpenID Connect issuer (or --remove it).
    Oidc {
        #[command(flatten)]
        api: Api,
        name: String,
        #[arg(long, required_unless_present = "remove")]
        issuer: Option<String>,
        /// What `aud` must hold (the client id at the issuer).
        #[arg(long, required_unless_present = "remove")]
        audience: Option<String>,
        /// The issuer's keys (a JWKS file), kept inline: no outbound call.
        #[arg(long, conflicts_with = "jwks_url")]
        jwks_file: Option<PathBuf>,
        /// Where to fetch the issuer's keys from (the gateway then calls it).
        #[arg(long)]
        jwks_url: Option<String>,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user (with no key and no right until given some).
    Create {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a user and its keys.
    Delete {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        name: String,
    },
    List {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Attach (or --remove) an inline IAM policy to a user.
    Policy {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        user: String,
        /// The policy's name.
        name: String,
        /// The JSON policy document.
        #[arg(long, required_unless_present = "remove")]
        file: Option<PathBuf>,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// A new access key for a user; prints the secret (once).
    Create {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        /// The key stops working after this many seconds.
        #[arg(long)]
        expires_in_secs: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    Disable {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        key: String,
    },
    Enable {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        key: String,
    },
    Delete {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        key: String,
    },
    List {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// Create or replace a role: its sessions get the policy; tokens must carry the claims.
    Put {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        name: String,
        /// The JSON policy document of its sessions.
        #[arg(long)]
        policy_file: PathBuf,
        /// A claim the web identity token must carry, NAME=PATTERN (`*` wildcards); repeatable.
        #[arg(long)]
        claim: Vec<String>,
        #[arg(long)]
        max_session_secs: Option<u32>,
    },
    Delete {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        name: String,
    },
    List {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand)]
pub enum MetaCommand {
    /// The leader, the term, and each replica's state, commit index and lag.
    Status {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        json: bool,
    },
    /// Add a replica by its Raft address: it joins as a learner, catches up (by snapshot
    /// if needed), then votes.
    Add {
        #[command(flatten)]
        api: Api,
        /// https://HOST:PORT
        address: String,
    },
    /// Remove a replica (by the id `meta status` shows).
    Remove {
        #[command(flatten)]
        api: Api,
        id: u64,
    },
    /// Write a consistent backup of the metadata, sealed with the master key, while the
    /// gateway serves (restore with `coffre meta restore`).
    Backup {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum WorkersCommand {
    /// Every worker: state, knobs, progress counters, last error.
    List {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        json: bool,
    },
    /// Set a worker's rate (in the unit `list` shows; 0: unlimited) or tranquility (the
    /// pause after each busy step, as a multiple of the step's time; 0: none).
    Set {
        #[command(flatten)]
        api: Api,
        name: String,
        knob: WorkerKnob,
        value: u64,
    },
    /// Pause a worker after its current step.
    Pause {
        #[command(flatten)]
        api: Api,
        name: String,
    },
    /// Resume a paused worker.
    Resume {
        #[command(flatten)]
        api: Api,
        name: String,
    },
}

#[derive(Subcommand)]
pub enum ScrubCommand {
    /// Every node starts a full pass now, at its rate cap.
    Start {
        #[command(flatten)]
        api: Api,
        /// Block until every node's pass is done and every repair it queued too; exit
        /// non-zero with the reason if that cannot happen (a node gone silent).
        #[arg(long)]
        wait: bool,
    },
    /// Each node's scrub: progress of its pass, last full pass, findings; the repair queue.
    Status {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// The key provider, its current master key version, and the keys not yet under it.
    Status {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        json: bool,
    },
    /// Rotates the master key while serving: a new version in the provider (pkcs11), then
    /// every tenant's key and the store key wrapped again under it. Run again to resume an
    /// interrupted rotation.
    RotateMaster {
        #[command(flatten)]
        api: Api,
        /// Block until every key is under the new version, showing progress.
        #[arg(long)]
        wait: bool,
    },
    /// Moves a store whose master key is a file into a security container, with its server
    /// stopped: the container makes a master key and wraps a fresh store key, every tenant's
    /// key is wrapped by it, everything sealed under the old key is sealed again, and the
    /// master key file is destroyed. Run again to resume an interrupted migration.
    Migrate(MigrateArgs),
}

/// Where a store moves its master key to: the provider and its settings, as `coffre server`
/// takes them (docs/keys.md). Run on the gateway's machine by the `coffre` binary.
#[derive(clap::Args)]
pub struct MigrateArgs {
    /// `pkcs11` or `kmip`.
    #[arg(long, value_parser = ["pkcs11", "kmip"])]
    pub to: String,
    /// The store's data directory (its server stopped).
    #[arg(long, env = "COFFRE_DATA")]
    pub data: PathBuf,
    #[arg(long, env = "COFFRE_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,
    #[arg(long, env = "COFFRE_PKCS11_TOKEN")]
    pub pkcs11_token: Option<String>,
    /// A file holding the token's user PIN (else COFFRE_PKCS11_PIN).
    #[arg(long, env = "COFFRE_PKCS11_PIN_FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
    #[arg(long, env = "COFFRE_KMIP_ENDPOINT")]
    pub kmip_endpoint: Option<String>,
    #[arg(long, env = "COFFRE_KMIP_CERT")]
    pub kmip_cert: Option<PathBuf>,
    #[arg(long, env = "COFFRE_KMIP_KEY")]
    pub kmip_key: Option<PathBuf>,
    #[arg(long, env = "COFFRE_KMIP_CA")]
    pub kmip_ca: Option<PathBuf>,
}

/// `--tenant T NAME`: a tenant's KMS key, by name, id, `alias/NAME` or ARN.
#[derive(clap::Args)]
pub struct KmsKeyArgs {
    #[command(flatten)]
    pub api: Api,
    #[arg(long)]
    pub tenant: String,
    pub name: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum KmsKeyCommand {
    /// Create a KMS key, enabled; `--json` prints `{"key_id": …, "arn": …}`.
    Create(KmsKeyArgs),
    /// The tenant's KMS keys and their states.
    List {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Disable a key: what it encrypted is unreadable (403) until it is enabled again.
    Disable(KmsKeyArgs),
    /// Enable a disabled key.
    Enable(KmsKeyArgs),
    /// A new version of the key's material for new writes (older versions still decrypt).
    Rotate(KmsKeyArgs),
    /// Shred the key after `--days` (0 to 30; 0: now): unusable at once, and what it
    /// encrypted unreadable for good once shredded.
    ScheduleDeletion {
        #[command(flatten)]
        key: KmsKeyArgs,
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Cancel a scheduled deletion (the key is left disabled).
    CancelDeletion(KmsKeyArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum WorkerKnob {
    Rate,
    Tranquility,
}

#[derive(Subcommand)]
pub enum NodesCommand {
    /// Admit a node by address; its id and location come from its certificate.
    Add {
        #[command(flatten)]
        api: Api,
        /// https://HOST:PORT
        address: String,
    },
    /// Stop placing new shards on a node (its shards stay readable).
    Drain {
        #[command(flatten)]
        api: Api,
        id: String,
        /// Block until every shard it held is on other nodes (exit 0; the node can then be
        /// removed), or exit non-zero with the reason.
        #[arg(long)]
        wait: bool,
    },
    /// Forget a node: its shards are read from parity from now on.
    Remove {
        #[command(flatten)]
        api: Api,
        id: String,
        /// The node is gone for good: forget it although it still holds shards, and rebuild
        /// every one of them on the other nodes (without it, a node that holds shards is
        /// refused: drain it first).
        #[arg(long)]
        dead: bool,
        /// With --dead: block until every stripe it had a shard of is back at full
        /// redundancy (exit 0), or exit non-zero with the reason.
        #[arg(long, requires = "dead")]
        wait: bool,
    },
    /// Move shards from the nodes holding more than their share to the others (nodes added
    /// since, nodes with room), within each bucket's residency policy, at the `rebalance`
    /// worker's rate.
    Rebalance {
        #[command(flatten)]
        api: Api,
        /// Block until the nodes are balanced and every move is done (exit 0), or exit
        /// non-zero with the reason.
        #[arg(long)]
        wait: bool,
    },
    /// Nodes with location and state.
    List {
        #[command(flatten)]
        api: Api,
    },
}

#[derive(Subcommand)]
pub enum CaCommand {
    /// Create the cluster CA in DIR.
    Init {
        #[arg(long)]
        out: PathBuf,
        /// Succeed without change if DIR already holds a CA (idempotent provisioning).
        #[arg(long)]
        if_missing: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify this gateway's audit log: the hash chain, every checkpoint's signature, and the
    /// chain head recorded in the metadata. Exits non-zero at the first bad position.
    Verify {
        #[command(flatten)]
        api: Api,
        /// From this time (2026-12-01, 2026-12-01T10:00:00Z, or an age: 7d, 12h).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A tenant's audit events with what proves them (JSON lines), verifiable offline with
    /// `coffre audit verify --dir FILE --trust CA`.
    Export {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// jsonl (the only one).
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Audit events by tenant, bucket, key and time (newest last).
    Search {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        bucket: Option<String>,
        #[arg(long)]
        key: Option<String>,
        /// The operation (`PutObject`, `admin:NodesDelete`, `system:DeclareNodeDead`, …).
        #[arg(long)]
        op: Option<String>,
        /// An age (7d, 12h, 30m) or a date.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Scan every object of a bucket: are all shards on nodes its policy allows?
    Residency {
        #[command(flatten)]
        api: Api,
        bucket: String,
        #[arg(long)]
        json: bool,
        /// Prints a proof of possession of the bucket's object versions instead (JSON), signed
        /// by the nodes; `coffre verify-placement` checks it with the CA alone.
        #[arg(long)]
        proof: bool,
        /// With --proof: a random sample of this many object versions.
        #[arg(long, requires = "proof")]
        sample: Option<u64>,
        /// With --proof: the nonce the statements answer (hex); random when not given.
        #[arg(long, requires = "proof")]
        nonce: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum BucketCommand {
    /// Set a bucket's residency policy (applies to new writes).
    Policy {
        #[command(flatten)]
        api: Api,
        bucket: String,
        /// Allowed countries, comma-separated ISO 3166-1 alpha-2 codes.
        #[arg(long)]
        countries: Option<String>,
        /// node, zone or site.
        #[arg(long)]
        failure_domain: Option<String>,
        /// Erasure scheme, K+M.
        #[arg(long)]
        scheme: Option<String>,
    },
    /// Set (or with no limit given, remove) a bucket's quota.
    Quota {
        #[command(flatten)]
        api: Api,
        bucket: String,
        #[arg(long)]
        bytes: Option<u64>,
        #[arg(long)]
        objects: Option<u64>,
    },
}

mod api;
mod cluster;
mod identities;
mod keys;
mod local;
mod lost;
mod scrub;
mod workers;

pub use api::Api;

/// Runs one `coffre admin` command.
pub fn run(cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::Tenant(c) => identities::tenant_command(c),
        AdminCommand::User(c) => identities::user_command(c),
        AdminCommand::Key(c) => identities::key_command(c),
        AdminCommand::Role(c) => identities::role_command(c),
        AdminCommand::Workers(c) => workers::run(c),
        AdminCommand::Scrub(c) => scrub::run(c),
        AdminCommand::Keys(c) => keys::run(c),
        AdminCommand::KmsKey(c) => keys::kms_key(c),
        AdminCommand::VerifyCertificate { .. } | AdminCommand::Ca(_) | AdminCommand::NodeIdentity { .. } => {
            local::run(cmd)
        }
        other => cluster::run(other),
    }
}
