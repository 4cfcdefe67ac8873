//! `coffre`: the command line. Parses flags, reads the config, wires the crates together.

use clap::{Parser, Subcommand};
use coffre_cluster::{FailureDomain, Identity, Location, RemoteShardStore, ResidencyPolicy};
use coffre_crypto::{Keyring, MasterKey};
use coffre_data::{LocalShardStore, ShardStore};
use coffre_engine::{ClusterNode, Engine};
use coffre_meta::MetaStore;
use coffre_meta::NodeRecord;
use coffre_s3::{Config, Gateway};
use coffre_types::Scheme;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "coffre", version, about = "Coffre: sovereign S3-compatible object storage")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the S3 gateway. With no config: the embedded store (6 local shard stores, 4+2).
    Server(Box<ServerArgs>),
    /// Replace the master key: re-wraps every data key and re-seals metadata (no data is
    /// rewritten). Run with the server stopped. With a key file, a new key is generated; with
    /// COFFRE_MASTER_KEY, the new key comes from COFFRE_MASTER_KEY_NEW.
    RotateMasterKey {
        /// Data directory.
        #[arg(long, env = "COFFRE_DATA", default_value = "./coffre-data")]
        data: PathBuf,
    },
    /// Run a storage node (HTTP/2, mutual TLS with the cluster CA).
    Node {
        /// Where the node keeps its shards.
        #[arg(long, env = "COFFRE_DATA")]
        data: PathBuf,
        #[arg(long, env = "COFFRE_LISTEN")]
        listen: String,
        /// The node's identity, from `coffre admin node-identity`.
        #[arg(long, env = "COFFRE_IDENTITY")]
        identity: PathBuf,
        /// Revoked certificate serials, one a line (re-read when it changes).
        #[arg(long, env = "COFFRE_REVOKED")]
        revoked: Option<PathBuf>,
        /// Free space kept on the data disk, e.g. `10G`: shard writes that would go below are
        /// refused, and gateways place and heal shards elsewhere.
        #[arg(long, env = "COFFRE_RESERVE", default_value = "0", value_parser = coffre_types::size::parse_size)]
        reserve: u64,
    },
    /// Cluster identities and the gateway's admin API.
    #[command(subcommand)]
    Admin(coffre_admin::cli::AdminCommand),
    /// Offline metadata operations (the server stopped).
    #[command(subcommand)]
    Meta(MetaCommand),
    /// The audit log, offline.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Exit 0 if the S3 listener answers its health check (a container's HEALTHCHECK).
    Health {
        /// host:port; by default COFFRE_LISTEN's port on 127.0.0.1, else 127.0.0.1:9000.
        #[arg(long)]
        address: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify audit segments (a copy of DATA/audit/) or an export, without the server: the
    /// hash chain and every checkpoint's signature. Exits non-zero at the first bad position.
    Verify {
        /// A directory of segments, or an export file.
        #[arg(long)]
        dir: PathBuf,
        /// The cluster CA certificate, or an embedded server's DATA/audit/audit.pub.
        #[arg(long)]
        trust: PathBuf,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum MetaCommand {
    /// Build a new store's metadata from a backup (`coffre admin meta backup`). The data
    /// directory must hold no metadata; the master key that sealed the backup must be given
    /// (COFFRE_MASTER_KEY, or DATA/master.key copied there). With --config naming a `[meta]`
    /// section, the store is the only replica of a new set (add the others with
    /// `coffre admin meta add`); without, a gateway without replication.
    Restore {
        #[arg(long)]
        from: PathBuf,
        #[arg(long, env = "COFFRE_DATA")]
        data: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Data directory (metadata, shard stores, keys).
    #[arg(long, env = "COFFRE_DATA")]
    data: Option<PathBuf>,
    /// S3 listen address.
    #[arg(long, env = "COFFRE_LISTEN")]
    listen: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "COFFRE_CONFIG")]
    config: Option<PathBuf>,
    /// Region served (LocationConstraint); signatures for us-east-1 are accepted too.
    #[arg(long, env = "COFFRE_REGION")]
    region: Option<String>,
    /// Domain for virtual-hosted-style requests (`bucket.DOMAIN`).
    #[arg(long, env = "COFFRE_DOMAIN")]
    domain: Option<String>,
    /// Erasure scheme of new buckets, K+M.
    #[arg(long, env = "COFFRE_SCHEME")]
    scheme: Option<String>,
    /// TLS certificate chain (PEM) for the S3 listener; with --tls-key, serves HTTPS.
    #[arg(long, env = "COFFRE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the S3 listener.
    #[arg(long, env = "COFFRE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Multipart uploads left incomplete are aborted after this many hours.
    #[arg(long, env = "COFFRE_UPLOAD_EXPIRY_HOURS")]
    upload_expiry_hours: Option<u64>,
    /// Admin API listen address (bearer token: COFFRE_ADMIN_TOKEN, else DATA/admin.token).
    #[arg(long, env = "COFFRE_ADMIN_LISTEN")]
    admin_listen: Option<String>,
    /// Seconds a deleted or replaced version's shards are kept before the GC removes them.
    #[arg(long, env = "COFFRE_GC_GRACE_SECS")]
    gc_grace_secs: Option<u64>,
    /// Objects up to this size (e.g. `16K`; at most `64K`, `0`: none) are kept inside their
    /// metadata record rather than cut into shards. Embedded server only; 16K by default.
    #[arg(long, env = "COFFRE_INLINE_MAX", value_parser = coffre_types::size::parse_size)]
    inline_max: Option<u64>,
    /// Connections open at once (lowered to fit the descriptor limit).
    #[arg(long, env = "COFFRE_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Connections open at once from one client address.
    #[arg(long, env = "COFFRE_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Seconds a request head may take to arrive (also the idle keep-alive time).
    #[arg(long, env = "COFFRE_HEADER_TIMEOUT_SECS")]
    header_timeout_secs: Option<u64>,
    /// Seconds a request body may send nothing before it is cut.
    #[arg(long, env = "COFFRE_BODY_TIMEOUT_SECS")]
    body_timeout_secs: Option<u64>,
    /// Accept customer-provided keys (SSE-C) over plain HTTP (test set-ups only: the key
    /// travels in the request headers).
    #[arg(long, env = "COFFRE_ALLOW_SSE_C_OVER_HTTP", value_parser = clap::builder::FalseyValueParser::new())]
    allow_sse_c_over_http: bool,
    /// The audit log (DATA/audit/): `on` (the default) or `off`.
    #[arg(long, env = "COFFRE_AUDIT")]
    audit: Option<String>,
    /// Days audit segments are kept (190 by default).
    #[arg(long, env = "COFFRE_AUDIT_RETENTION_DAYS")]
    audit_retention_days: Option<u64>,
    /// Start even though the audit chain is broken or shorter than the metadata says (the
    /// acceptance is itself logged, and the broken segment kept aside).
    #[arg(long)]
    audit_accept_truncation: bool,
    /// Also send every audit entry to a SIEM: tcp://HOST:PORT or tls://HOST:PORT (RFC 5424
    /// syslog, octet-counted). Best effort: the segments stay the record.
    #[arg(long, env = "COFFRE_AUDIT_SYSLOG")]
    audit_syslog: Option<String>,
    /// The CA certificate (PEM) of a tls:// syslog collector.
    #[arg(long, env = "COFFRE_AUDIT_SYSLOG_CA")]
    audit_syslog_ca: Option<PathBuf>,
}

/// Where the embedded server's stores (and its metadata) are, and the default region's country.
const EMBEDDED_COUNTRY: &str = "FR";

/// The TOML file: every field optional, flags and `COFFRE_*` variables win.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: ServerSection,
    /// Embedded shard stores mapped to directories (e.g. one per disk).
    #[serde(default)]
    stores: Vec<StoreSection>,
    /// A cluster: the gateway's identity and CA; its shard stores are the `nodes`.
    cluster: Option<ClusterSection>,
    #[serde(default)]
    nodes: Vec<NodeSection>,
    /// Replicated metadata: this gateway is one of the replicas.
    meta: Option<MetaSection>,
    /// LocationConstraint name → residency policy.
    #[serde(default)]
    regions: std::collections::BTreeMap<String, RegionSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterSection {
    ca: PathBuf,
    identity: PathBuf,
    /// Serial numbers of revoked cluster certificates (checked on every handshake).
    #[serde(default)]
    revoked: Vec<String>,
    /// A file of more revoked serials, one a line, re-read when it changes.
    revoked_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaSection {
    /// This replica's Raft endpoint (HTTP/2, mutual TLS with the `[cluster]` identity).
    listen: String,
    /// How the other replicas reach it; `https://LISTEN` by default.
    address: Option<String>,
    /// Every replica of the set (3 or 5), this one included.
    replicas: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSection {
    address: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionSection {
    countries: Vec<String>,
    failure_domain: Option<String>,
    scheme: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    data: Option<PathBuf>,
    listen: Option<String>,
    region: Option<String>,
    domain: Option<String>,
    scheme: Option<String>,
    upload_expiry_hours: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    admin_listen: Option<String>,
    gc_grace_secs: Option<u64>,
    inline_max: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    allow_sse_c_over_http: Option<bool>,
    audit: Option<bool>,
    audit_retention_days: Option<u64>,
    audit_syslog: Option<String>,
    audit_syslog_ca: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    id: String,
    path: PathBuf,
}

/// glibc gives each thread that allocates its own arena (up to 8 per core); large stripe
/// buffers freed in one arena and allocated in another fragment the heap, and RSS grows well
/// past what is in use. Two arenas per core keep RSS close to the request-buffer budget
/// (`MALLOC_ARENA_MAX`, when set, is the operator's choice and is left alone).
/// Stripe and shard buffers (megabytes) are also kept in the heap rather than mapped and
/// unmapped each time, and freed memory is kept up to a bound: a fresh mapping costs a page
/// fault and a zeroed page per 4 KiB (12 % of a 64 MiB PUT's CPU, measured, and more in a VM
/// whose freed pages go back to the host). What stays is bounded by the data path's memory
/// budget, which bounds what is in use at once.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let unset = |name: &str| std::env::var_os(name).is_none();
        // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
        unsafe {
            if unset("MALLOC_ARENA_MAX") {
                let arenas = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
                libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int);
            }
            if unset("MALLOC_MMAP_THRESHOLD_") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            }
            if unset("MALLOC_TRIM_THRESHOLD_") {
                libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            }
        }
    }
}

/// Everything Coffre creates (metadata, segments, keys, identities) is for its own user only.
fn private_files() {
    // SAFETY: umask only sets the process's file creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Data directories of an earlier version may be group- or world-readable: tighten them
/// (directories 0700, files 0600), down to the metadata and segment files.
fn tighten_permissions(dir: &Path, depth: usize) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && depth > 0 {
            tighten_permissions(&e.path(), depth - 1);
        } else if kind.is_file() {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o600));
        }
    }
}

fn main() {
    tune_malloc();
    private_files();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,coffre::access=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Server(a) => run_server(*a),
        Command::RotateMasterKey { data } => rotate_master_key(&data),
        Command::Node {
            data,
            listen,
            identity,
            revoked,
            reserve,
        } => run_node(&data, &listen, &identity, revoked, reserve),
        Command::Admin(cmd) => coffre_admin::cli::run(cmd),
        Command::Meta(MetaCommand::Restore { from, data, config }) => restore_metadata(&from, &data, config.as_deref()),
        Command::Audit(AuditCommand::Verify {
            dir,
            trust,
            from,
            to,
            json,
        }) => verify_audit(&dir, &trust, from, to, json),
        Command::Health { address } => {
            let address = address.unwrap_or_else(|| {
                let listen = std::env::var("COFFRE_LISTEN").unwrap_or_else(|_| "127.0.0.1:9000".into());
                let port = listen.rsplit_once(':').map_or("9000", |(_, p)| p).to_string();
                format!("127.0.0.1:{port}")
            });
            coffre_admin::client::health(&address)
        }
    };
    if let Err(e) = result {
        eprintln!("coffre: {e}");
        std::process::exit(1);
    }
}

fn run_server(args: ServerArgs) -> Result<(), String> {
    let file: FileConfig = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let data = args
        .data
        .or(file.server.data)
        .unwrap_or_else(|| PathBuf::from("./coffre-data"));
    let listen = args
        .listen
        .or(file.server.listen)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let region = args.region.or(file.server.region).unwrap_or_else(|| "fr-par".into());
    let domain = args.domain.or(file.server.domain);
    let scheme: Scheme = args
        .scheme
        .or(file.server.scheme)
        .map_or(Ok(Scheme::DEFAULT), |s| s.parse())?;
    let tls = match (
        args.tls_cert.or(file.server.tls_cert),
        args.tls_key.or(file.server.tls_key),
    ) {
        (Some(c), Some(k)) => Some(coffre_s3::tls_config(&c, &k)?),
        (None, None) => None,
        _ => return Err("TLS needs both a certificate and a key".into()),
    };
    let scheme_word = if tls.is_some() { "https" } else { "http" };
    let _ = &scheme_word;
    let expiry = Duration::from_secs(
        3600 * args
            .upload_expiry_hours
            .or(file.server.upload_expiry_hours)
            .unwrap_or(7 * 24),
    );
    let gc_grace = args
        .gc_grace_secs
        .or(file.server.gc_grace_secs)
        .map(Duration::from_secs);
    let inline_max = match (args.inline_max, file.server.inline_max.as_deref()) {
        (Some(n), _) => Some(n),
        (None, Some(text)) => Some(coffre_types::size::parse_size(text).map_err(|e| format!("inline_max: {e}"))?),
        (None, None) => None,
    };
    if inline_max.is_some_and(|n| n > coffre_types::limits::INLINE_LIMIT) {
        return Err(format!(
            "--inline-max: at most {} bytes",
            coffre_types::limits::INLINE_LIMIT
        ));
    }
    // A cluster's metadata lives on its gateways, not with the shards on the storage nodes:
    // objects are inlined only where one machine keeps both (docs/architecture.md).
    if file.cluster.is_some() && inline_max.is_some_and(|n| n > 0) {
        return Err("--inline-max: objects are inlined only by the embedded server".into());
    }
    let defaults = coffre_s3::server::ServeLimits::default();
    let serve_limits = coffre_s3::server::ServeLimits {
        header_read_timeout: args
            .header_timeout_secs
            .or(file.server.header_timeout_secs)
            .map_or(defaults.header_read_timeout, Duration::from_secs),
        max_connections: args
            .max_connections
            .or(file.server.max_connections)
            .unwrap_or(defaults.max_connections),
        max_connections_per_ip: args
            .max_connections_per_ip
            .or(file.server.max_connections_per_ip)
            .unwrap_or(defaults.max_connections_per_ip),
        ..defaults
    };
    let mut body_limits = coffre_s3::body::BodyLimits::default();
    if let Some(t) = args.body_timeout_secs.or(file.server.body_timeout_secs) {
        body_limits.idle = Duration::from_secs(t);
    }
    std::fs::create_dir_all(&data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    tighten_permissions(&data, 3);

    let audit_on = match args.audit.as_deref() {
        None => file.server.audit.unwrap_or(true),
        Some("on") => true,
        Some("off") => false,
        Some(other) => return Err(format!("--audit {other}: on or off")),
    };
    let audit_retention = Duration::from_secs(
        86_400
            * args
                .audit_retention_days
                .or(file.server.audit_retention_days)
                .unwrap_or(190),
    );
    let audit_accept_truncation = args.audit_accept_truncation;
    let audit_syslog = args.audit_syslog.or(file.server.audit_syslog);
    let audit_syslog_ca = match args.audit_syslog_ca.or(file.server.audit_syslog_ca) {
        Some(p) => Some(std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let admin_listen = args
        .admin_listen
        .or(file.server.admin_listen)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let keys = Arc::new(load_keyring(&data)?);
    let operator_key = Arc::new(
        coffre_engine::OperatorKey::load_or_create(&data.join("operator.key"), &keys).map_err(|e| {
            format!(
                "operator signing key {}: {e} (is this the master key the store was written with?)",
                data.join("operator.key").display()
            )
        })?,
    );
    let (access_key, secret_key, generated) = root_credentials(&data)?;
    let admin_token = admin_token(&data)?;
    let meta = Arc::new(MetaStore::open(&data.join("meta")).map_err(|e| format!("metadata: {e}"))?);

    // Regions: the configured ones, else the default region with every country of the nodes
    // being FR in embedded mode.
    let default_domain = if file.cluster.is_some() {
        FailureDomain::Site
    } else {
        FailureDomain::Node
    };
    let mut regions = Vec::new();
    for (name, r) in &file.regions {
        let countries: Vec<String> = r.countries.iter().map(|c| c.to_ascii_uppercase()).collect();
        if countries.is_empty() || !countries.iter().all(|c| coffre_cluster::identity::valid_country(c)) {
            return Err(format!("region {name}: countries are ISO 3166-1 alpha-2 codes"));
        }
        let failure_domain = r.failure_domain.as_deref().map_or(Ok(default_domain), str::parse)?;
        let scheme = r.scheme.as_deref().map_or(Ok(scheme), str::parse)?;
        regions.push((
            name.clone(),
            ResidencyPolicy {
                countries,
                failure_domain,
                scheme,
            },
        ));
    }
    if !regions.iter().any(|(n, _)| *n == region) {
        regions.push((
            region.clone(),
            ResidencyPolicy {
                countries: vec![EMBEDDED_COUNTRY.into()],
                failure_domain: default_domain,
                scheme,
            },
        ));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    if file.meta.is_some() && file.cluster.is_none() {
        return Err("[meta] replicas are gateways of a cluster: a [cluster] section is needed".into());
    }
    rt.block_on(async move {
        let mut locals = Vec::new();
        let mut replica: Option<Arc<coffre_engine::replica::Replica>> = None;
        let (nodes, identity) = match &file.cluster {
            Some(c) => {
                let identity = Identity::load_with_ca(&c.identity, &c.ca)?
                    .with_revocations(coffre_cluster::Revocations::new(&c.revoked, c.revoked_file.clone()));
                if identity.role != coffre_cluster::Role::Gateway {
                    return Err(format!(
                        "{} holds a {} certificate: a gateway needs one issued with --role gateway",
                        identity.id, identity.role
                    ));
                }
                let identity = Arc::new(identity);
                if let Some(m) = &file.meta {
                    let config = coffre_engine::replication::ReplicationConfig {
                        listen: m.listen.clone(),
                        address: m
                            .address
                            .clone()
                            .unwrap_or_else(|| format!("https://{}", m.listen))
                            .trim_end_matches('/')
                            .to_string(),
                        replicas: m.replicas.clone(),
                    };
                    let r = coffre_engine::replication::start_replica(
                        meta.clone(),
                        identity.clone(),
                        &config,
                        data.join("meta-snapshots"),
                    )
                    .await?;
                    // Nothing below can be written before a quorum of replicas answers.
                    while let Err(e) = r.barrier().await {
                        tracing::warn!(error = %e, "waiting for a quorum of metadata replicas");
                    }
                    println!(
                        "Coffre metadata replica {} ({}) joined its replica set",
                        r.id(),
                        config.address
                    );
                    replica = Some(r);
                }
                (cluster_nodes(&identity, &file.nodes, &meta).await?, Some(identity))
            }
            None => {
                let dirs: Vec<(String, PathBuf)> = if file.stores.is_empty() {
                    (1..=scheme.total().max(6))
                        .map(|i| (format!("node-{i}"), data.join("nodes").join(format!("node-{i}"))))
                        .collect()
                } else {
                    file.stores.into_iter().map(|s| (s.id, s.path)).collect()
                };
                let mut nodes = Vec::new();
                for (id, dir) in &dirs {
                    let s = LocalShardStore::open(id.clone(), dir)
                        .map_err(|e| format!("shard store {}: {e}", dir.display()))?;
                    locals.push(s.clone());
                    let location = Location {
                        country: EMBEDDED_COUNTRY.into(),
                        site: "local".into(),
                        zone: id.clone(),
                    };
                    nodes.push(ClusterNode::new(Arc::new(s), location, String::new(), false));
                }
                (nodes, None)
            }
        };
        let gateway_location = identity.as_ref().map(|i| i.location.clone());
        let lifecycle_day = lifecycle_day()?;
        let engine_config = coffre_engine::EngineConfig {
            gc_grace: gc_grace.unwrap_or(coffre_types::limits::GC_GRACE),
            lifecycle_day,
            inline_max: inline_max.unwrap_or(coffre_types::limits::INLINE_DEFAULT),
            // The embedded stores are all located in FR (above); a cluster never inlines.
            metadata_country: identity.is_none().then(|| EMBEDDED_COUNTRY.to_string()),
            ..Default::default()
        };
        let (engine, mut damaged) = Engine::new(meta.clone(), nodes, gateway_location, keys.clone(), engine_config);
        // Every request is acknowledged once its audit entry is durable: the log opens
        // (and its chain is checked) before anything is served.
        let audit = match audit_on {
            false => None,
            true => Some(
                engine.open_audit(coffre_engine::AuditOptions {
                    dir: data.join("audit"),
                    identity: file.cluster.as_ref().map(|c| c.identity.clone()),
                    gateway: identity.as_ref().map_or_else(|| "server".to_string(), |i| i.id.clone()),
                    retention: audit_retention,
                    accept_truncation: audit_accept_truncation,
                    syslog: audit_syslog
                        .as_deref()
                        .map(|url| (url.to_string(), audit_syslog_ca.clone())),
                })?,
            ),
        };
        // The root key is the `default` tenant's admin: created with the tenant on the first
        // start (a store of an earlier version gets it too: its buckets are the default
        // tenant's already), its secret updated if the operator changed it.
        let iam = coffre_iam::Iam::new(meta.clone(), keys.clone());
        ensure_root(&engine, &iam, &access_key, &secret_key).await?;
        let config = Config {
            region: region.clone(),
            domain,
            max_put: coffre_types::limits::MAX_PUT,
            regions,
            body_limits,
            allow_sse_c_over_http: args.allow_sse_c_over_http || file.server.allow_sse_c_over_http.unwrap_or(false),
        };
        let gw = Gateway::new(engine.clone(), iam.clone(), config);
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("listening on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let admin_listener = tokio::net::TcpListener::bind(&admin_listen)
            .await
            .map_err(|e| format!("admin API on {admin_listen}: {e}"))?;
        let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;
        // Alone, this gateway knows every write in flight was its own and died with it;
        // one of several cannot tell (the leader expires old intents below).
        let orphans = match replica {
            None => engine.recover_intents().map_err(|e| e.to_string())?,
            Some(_) => 0,
        };
        if orphans > 0 {
            tracing::warn!(
                orphans,
                "writes interrupted by the last stop: their shards are queued for GC"
            );
        }
        let s3_counters = gw.clone();
        // Another gateway may admit, drain or remove nodes: follow the metadata.
        let node_sync = match (&replica, &identity) {
            (Some(_), Some(id)) => Some(id.clone()),
            _ => None,
        };
        let admin = Arc::new(coffre_admin::Admin {
            engine: engine.clone(),
            iam: iam.clone(),
            operator_key: operator_key.clone(),
            token: admin_token,
            identity,
            metrics: vec![
                Box::new(move || s3_counters.metrics_text()),
                Box::new({
                    let engine = engine.clone();
                    move || engine.lifecycle_counters().metrics_text()
                }),
                Box::new({
                    let engine = engine.clone();
                    move || engine.audit().map(|a| a.metrics_text()).unwrap_or_default()
                }),
            ],
            replica: replica.clone(),
        });
        tokio::spawn(coffre_admin::serve(admin_listener, admin, std::future::pending()));
        println!(
            "Coffre admin endpoint: http://{admin_addr}  (token: COFFRE_ADMIN_TOKEN or {})",
            data.join("admin.token").display()
        );
        // Background work that changes metadata runs once per cluster: on the metadata
        // leader (and on the next one when it changes).
        let leads = {
            let replica = replica.clone();
            move || replica.as_ref().is_none_or(|r| r.is_leader())
        };
        let hb_engine = engine.clone();
        let hb_leads = leads.clone();
        let leads_lifecycle = leads.clone();
        tokio::spawn(async move {
            loop {
                if let Some(identity) = &node_sync {
                    let connect = |address: &str, rec: &NodeRecord| {
                        let location = Location {
                            country: rec.country.clone(),
                            site: rec.site.clone(),
                            zone: rec.zone.clone(),
                        };
                        RemoteShardStore::known(identity, address, &rec.id, location)
                            .map(|s| Arc::new(s) as Arc<dyn ShardStore>)
                    };
                    match hb_engine.sync_nodes(connect).await {
                        Ok(n) if n > 0 => tracing::info!(nodes = n, "node list changed by another gateway"),
                        Err(e) => tracing::warn!(error = %e, "reading the node list failed"),
                        _ => {}
                    }
                }
                hb_engine.heartbeat().await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        // Degraded writes are healed once their nodes (or replacements) are up; a task of its
        // own, so a long pass never delays the heartbeats.
        let heal_engine = engine.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if !hb_leads() {
                    continue;
                }
                match heal_engine.heal().await {
                    Ok(n) if n > 0 => tracing::info!(shards = n, "healed degraded writes"),
                    Err(e) => tracing::warn!(error = %e, "healing pass failed"),
                    _ => {}
                }
            }
        });
        print_banner(
            &format!("{scheme_word}://{addr}"),
            &region,
            &access_key,
            &secret_key,
            generated,
            &data,
        );

        // Background work: garbage collection and segment compaction.
        let gc_engine = engine.clone();
        tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                if !leads() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                match gc_engine.collect_garbage().await {
                    Ok(n) if n > 0 => tracing::debug!(versions = n, "GC removed shards"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "GC pass failed"),
                }
                // Expiry and compaction on the first pass, then every minute.
                if tick.is_multiple_of(120) {
                    match gc_engine.expire_uploads(expiry).await {
                        Ok(n) if n > 0 => tracing::info!(uploads = n, "expired incomplete multipart uploads"),
                        Err(e) => tracing::warn!(error = %e, "upload expiry failed"),
                        _ => {}
                    }
                    if gc_engine.meta().is_replica() {
                        match gc_engine.expire_intents(coffre_types::limits::INTENT_EXPIRY).await {
                            Ok(n) if n > 0 => {
                                tracing::warn!(writes = n, "writes never committed: shards queued for GC")
                            }
                            Err(e) => tracing::warn!(error = %e, "intent expiry failed"),
                            _ => {}
                        }
                    }
                    for s in &locals {
                        let s = s.clone();
                        match tokio::task::spawn_blocking(move || s.compact()).await {
                            Ok(Ok(n)) if n > 0 => {
                                tracing::info!(bytes = n, "compacted shard store")
                            }
                            Ok(Err(e)) => tracing::warn!(error = %e, "compaction failed"),
                            _ => {}
                        }
                    }
                }
                tick += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        // Lifecycle rules: a pass every 10 minutes (every quarter of a test day, at least
        // every second), on the leader only.
        let lc_engine = engine.clone();
        let lc_leads = leads_lifecycle;
        tokio::spawn(async move {
            let every = (lifecycle_day / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
            loop {
                tokio::time::sleep(every).await;
                if !lc_leads() {
                    continue;
                }
                match lc_engine.lifecycle_pass(coffre_types::limits::LIFECYCLE_RATE).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "lifecycle rules applied"),
                    Err(e) => tracing::warn!(error = %e, "lifecycle pass failed"),
                    _ => {}
                }
            }
        });
        // Changes whose audit entries a stop cut off get them from their notes: now, then
        // every few seconds (each gateway its own; a replica may learn of its notes late).
        if audit.is_some() {
            match engine.settle_audit_notes().await {
                Ok(n) if n > 0 => tracing::warn!(entries = n, "audit entries recovered from their notes"),
                Err(e) => tracing::warn!(error = %e, "recovering audit entries failed"),
                _ => {}
            }
            let notes_engine = engine.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    if let Err(e) = notes_engine.settle_audit_notes().await {
                        tracing::warn!(error = %e, "settling audit notes failed");
                    }
                }
            });
        }
        tokio::spawn(async move {
            while let Some(id) = damaged.recv().await {
                tracing::warn!(shard = %id, "shard needs healing");
            }
        });
        coffre_s3::serve(listener, tls, gw, serve_limits, shutdown_signal()).await;
        if let Some(log) = audit {
            log.close().await;
        }
        Ok::<(), String>(())
    })
}

/// The root key of the `default` tenant, as given at start-up: created or its secret
/// updated, each change with its audit entry (a disabled root key stays disabled).
async fn ensure_root(
    engine: &Arc<Engine>,
    iam: &coffre_iam::Iam,
    access_key: &str,
    secret_key: &str,
) -> Result<(), String> {
    let id = format!("startup-root-{}", hex::encode(coffre_types::random_bytes::<6>()));
    let mut entry = coffre_engine::audit::Event::now("system:RootKey", "system");
    entry.request_id = id.clone();
    entry.tenant = coffre_engine::DEFAULT_TENANT.to_string();
    entry.access_key = Some(access_key.to_string());
    let scope = engine.audit_scope(&id);
    let ensure = async {
        coffre_engine::audit_notes::draft(&entry);
        iam.ensure_root(coffre_engine::DEFAULT_TENANT, access_key, secret_key)
            .await
    };
    let done = match &scope {
        Some(scope) => scope.run(ensure).await,
        None => ensure.await,
    }
    .map_err(|e| format!("root credentials: {e}"))?;
    entry.detail = Some(
        match done {
            coffre_iam::RootKey::Unchanged => return Ok(()),
            coffre_iam::RootKey::Disabled => {
                tracing::warn!(
                    access_key,
                    "the root access key is disabled (an operator disabled it): it stays so"
                );
                return Ok(());
            }
            coffre_iam::RootKey::Created => "root access key created",
            coffre_iam::RootKey::SecretChanged => "root access key's secret replaced by the one given at start-up",
        }
        .to_string(),
    );
    if let Some(scope) = scope {
        scope
            .append(vec![entry])
            .await
            .map_err(|e| format!("the audit log cannot record the root key: {e}"))?;
    }
    Ok(())
}

/// The length of a lifecycle day: 24 hours. `COFFRE_LIFECYCLE_DAY_SECONDS` shortens it, for
/// tests only (rules then expire objects within seconds).
fn lifecycle_day() -> Result<Duration, String> {
    match std::env::var("COFFRE_LIFECYCLE_DAY_SECONDS") {
        Err(_) => Ok(Duration::from_secs(86_400)),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(s) if s > 0 => {
                tracing::warn!(
                    seconds = s,
                    "COFFRE_LIFECYCLE_DAY_SECONDS set: lifecycle days are shortened (tests only)"
                );
                Ok(Duration::from_secs(s))
            }
            _ => Err(format!(
                "COFFRE_LIFECYCLE_DAY_SECONDS must be a positive number of seconds, not '{v}'"
            )),
        },
    }
}

/// The admin API's bearer token: COFFRE_ADMIN_TOKEN, else DATA/admin.token (generated, 0600).
/// A short token is refused: it would be guessable, and an empty one would open the API.
fn admin_token(data: &Path) -> Result<String, String> {
    let min = coffre_types::limits::MIN_ADMIN_TOKEN;
    let check = |t: String, from: &str| {
        if t.len() < min {
            Err(format!(
                "the admin token in {from} is {} bytes; at least {min} are needed (e.g. `openssl rand -hex 24`)",
                t.len()
            ))
        } else {
            Ok(t)
        }
    };
    if let Ok(t) = std::env::var("COFFRE_ADMIN_TOKEN") {
        return check(t, "COFFRE_ADMIN_TOKEN");
    }
    let path = data.join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return check(t.trim().to_string(), &path.display().to_string());
    }
    let token = hex::encode(coffre_types::random_bytes::<24>());
    coffre_types::create_private_file(&path, token.as_bytes())
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    Ok(token)
}

/// Connects to the configured nodes (learning id and location from their certificates),
/// remembering them in the metadata; a known node that does not answer starts as down.
async fn cluster_nodes(
    identity: &Identity,
    configured: &[NodeSection],
    meta: &MetaStore,
) -> Result<Vec<ClusterNode>, String> {
    let known: std::collections::HashMap<String, NodeRecord> =
        meta.nodes().map_err(|e| e.to_string())?.into_iter().collect();
    let mut addresses: Vec<String> = configured.iter().map(|n| n.address.clone()).collect();
    for a in known.keys() {
        if !addresses.contains(a) {
            addresses.push(a.clone());
        }
    }
    let mut nodes: Vec<ClusterNode> = Vec::new();
    for address in addresses {
        let store = match RemoteShardStore::connect(identity, &address).await {
            Ok(s) => {
                let rec = NodeRecord {
                    id: s.id().to_string(),
                    country: s.location.country.clone(),
                    site: s.location.site.clone(),
                    zone: s.location.zone.clone(),
                    draining: known.get(&address).is_some_and(|k| k.draining),
                };
                meta.put_node(&address, &rec).map_err(|e| e.to_string())?;
                s
            }
            Err(e) => match known.get(&address) {
                Some(k) => {
                    tracing::warn!(%address, error = %e, "node unreachable: starting with it down");
                    let loc = Location {
                        country: k.country.clone(),
                        site: k.site.clone(),
                        zone: k.zone.clone(),
                    };
                    RemoteShardStore::known(identity, &address, &k.id, loc)?
                }
                None => {
                    return Err(format!(
                        "node {address}: {e} (a new node must be reachable to learn its identity)"
                    ))
                }
            },
        };
        if nodes.iter().any(|n| n.store.id() == store.id()) {
            return Err(format!("two nodes claim the id {}", store.id()));
        }
        tracing::info!(node = store.id(), address = %store.address, country = %store.location.country, site = %store.location.site, "cluster node");
        let location = store.location.clone();
        let draining = known.get(&address).is_some_and(|k| k.draining);
        nodes.push(ClusterNode::new(Arc::new(store), location, address, draining));
    }
    Ok(nodes)
}

/// The master key (COFFRE_MASTER_KEY, else DATA/master.key, created on first start) and the
/// keys that may still have wrapped some records: COFFRE_MASTER_KEY_PREVIOUS, or the
/// DATA/master.key.next of an interrupted rotation.
fn load_keyring(data: &Path) -> Result<Keyring, String> {
    let env_key = |name: &str| -> Result<Option<MasterKey>, String> {
        match std::env::var(name) {
            Ok(k) => MasterKey::from_text(&k).map(Some).map_err(|e| format!("{name}: {e}")),
            Err(_) => Ok(None),
        }
    };
    if let Some(current) = env_key("COFFRE_MASTER_KEY")? {
        return Ok(Keyring::new(
            current,
            env_key("COFFRE_MASTER_KEY_PREVIOUS")?.into_iter().collect(),
        ));
    }
    let current = MasterKey::load_or_create(&data.join("master.key")).map_err(|e| e.to_string())?;
    let next = data.join("master.key.next");
    let previous = if next.exists() {
        tracing::warn!("a master key rotation was interrupted: run `coffre rotate-master-key` again to finish it");
        vec![MasterKey::load_or_create(&next).map_err(|e| e.to_string())?]
    } else {
        vec![]
    };
    Ok(Keyring::new(current, previous))
}

fn restore_metadata(from: &Path, data: &Path, config: Option<&Path>) -> Result<(), String> {
    if std::env::var("COFFRE_MASTER_KEY").is_err() && !data.join("master.key").exists() {
        return Err(format!(
            "no master key: set COFFRE_MASTER_KEY or copy the store's master.key into {} (a backup opens only with the key that sealed it)",
            data.display()
        ));
    }
    let meta_section = match config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            let file: FileConfig = toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            file.meta
        }
        None => None,
    };
    std::fs::create_dir_all(data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    tighten_permissions(data, 3);
    let keys = load_keyring(data)?;
    let address = meta_section.map(|m| {
        m.address
            .unwrap_or_else(|| format!("https://{}", m.listen))
            .trim_end_matches('/')
            .to_string()
    });
    let snapshots = data.join("meta-snapshots");
    let replica = address.as_deref().map(|a| (a, snapshots.as_path()));
    let restored = coffre_engine::backup::restore_backup(&keys, from, &data.join("meta"), replica)
        .map_err(|e| format!("restoring {}: {e}", from.display()))?;
    match restored.replica {
        Some(id) => println!(
            "metadata restored from {} (snapshot {}): this store is replica {id}, alone in its set; add the others with `coffre admin meta add`",
            from.display(),
            restored.snapshot_id
        ),
        None => println!(
            "metadata restored from {} (snapshot {}) into {}",
            from.display(),
            restored.snapshot_id,
            data.display()
        ),
    }
    Ok(())
}

fn rotate_master_key(data: &Path) -> Result<(), String> {
    let from_env = std::env::var("COFFRE_MASTER_KEY").is_ok();
    let (current, new) = if from_env {
        let cur = MasterKey::from_text(&std::env::var("COFFRE_MASTER_KEY").unwrap_or_default())
            .map_err(|e| format!("COFFRE_MASTER_KEY: {e}"))?;
        let new = std::env::var("COFFRE_MASTER_KEY_NEW")
            .map_err(|_| "with COFFRE_MASTER_KEY, give the new key in COFFRE_MASTER_KEY_NEW".to_string())
            .and_then(|k| MasterKey::from_text(&k).map_err(|e| format!("COFFRE_MASTER_KEY_NEW: {e}")))?;
        (cur, new)
    } else {
        let path = data.join("master.key");
        if !path.exists() {
            return Err(format!("{} not found: nothing to rotate", path.display()));
        }
        let cur = MasterKey::load_or_create(&path).map_err(|e| e.to_string())?;
        // Written (0600, synced) before any record changes, so a crash never loses it.
        let new = MasterKey::load_or_create(&data.join("master.key.next")).map_err(|e| e.to_string())?;
        (cur, new)
    };
    let meta =
        MetaStore::open(&data.join("meta")).map_err(|e| format!("metadata (is the server still running?): {e}"))?;
    let keys = Keyring::new(new, vec![current]);
    let done = coffre_engine::rotate_master_key(&meta, &keys).map_err(|e| e.to_string())?;
    drop(meta);
    // The operator's signing key and the audit log's keys are sealed again under the new key
    // as they are read.
    let signing = data.join("operator.key");
    if signing.exists() {
        coffre_engine::OperatorKey::load_or_create(&signing, &keys)
            .map_err(|e| format!("operator signing key: {e}"))?;
    }
    coffre_engine::reseal_audit_keys(&data.join("audit"), &keys)?;
    if !from_env {
        std::fs::rename(data.join("master.key.next"), data.join("master.key")).map_err(|e| e.to_string())?;
        std::fs::File::open(data)
            .and_then(|d| d.sync_all())
            .map_err(|e| e.to_string())?;
    }
    println!(
        "master key rotated to {}: {} tenant keys, {} access keys, {} objects, {} parts, {} uploads re-wrapped",
        keys.current().id_hex(),
        done.tenants,
        done.access_keys,
        done.objects,
        done.parts,
        done.uploads
    );
    if from_env {
        println!("now start the server with COFFRE_MASTER_KEY set to the new key");
    }
    Ok(())
}

fn verify_audit(path: &Path, trust: &Path, from: Option<String>, to: Option<String>, json: bool) -> Result<(), String> {
    let time = |t: Option<String>| t.as_deref().map(coffre_admin::audit_log::parse_time).transpose();
    let report = coffre_admin::audit_log::verify_offline(path, trust, time(from)?, time(to)?)?;
    if !coffre_admin::audit_log::print_report(&report, json) {
        return Err("the audit log does not verify".into());
    }
    Ok(())
}

fn run_node(data: &Path, listen: &str, identity: &Path, revoked: Option<PathBuf>, reserve: u64) -> Result<(), String> {
    let identity = Arc::new(
        coffre_cluster::Identity::load(identity)?.with_revocations(coffre_cluster::Revocations::new(&[], revoked)),
    );
    if identity.role != coffre_cluster::Role::Node {
        return Err(format!(
            "{} holds a {} certificate: a storage node needs one issued with --role node",
            identity.id, identity.role
        ));
    }
    std::fs::create_dir_all(data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    tighten_permissions(data, 2);
    let store = coffre_cluster::node::open_store(&identity, data, reserve)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listening on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!(
            "Coffre node {} ({}/{}/{}) listening on https://{addr}",
            identity.id, identity.location.country, identity.location.site, identity.location.zone
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        coffre_cluster::node::serve(listener, identity, store, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Root credentials: from the environment, else from `DATA/credentials` (generated on the
/// first start, mode 0600). Returns whether they were generated now.
fn root_credentials(data: &Path) -> Result<(String, String, bool), String> {
    if let (Ok(a), Ok(s)) = (
        std::env::var("COFFRE_ROOT_ACCESS_KEY"),
        std::env::var("COFFRE_ROOT_SECRET_KEY"),
    ) {
        let min = coffre_types::limits::MIN_ROOT_SECRET;
        if a.len() < 3 || a.len() > 128 || !a.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("COFFRE_ROOT_ACCESS_KEY must be 3 to 128 letters and digits".into());
        }
        if s.len() < min {
            return Err(format!(
                "COFFRE_ROOT_SECRET_KEY is {} characters; at least {min} are needed (e.g. `openssl rand -hex 20`)",
                s.len()
            ));
        }
        return Ok((a, s, false));
    }
    let path = data.join("credentials");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut lines = text.lines();
        if let (Some(a), Some(s)) = (lines.next(), lines.next()) {
            return Ok((a.trim().to_string(), s.trim().to_string(), false));
        }
        return Err(format!(
            "{} is malformed: expected the access key and the secret key on two lines",
            path.display()
        ));
    }
    let access = format!("CF{}", hex::encode_upper(coffre_types::random_bytes::<9>()));
    let secret = hex::encode(coffre_types::random_bytes::<20>());
    coffre_types::create_private_file(&path, format!("{access}\n{secret}\n").as_bytes())
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    Ok((access, secret, true))
}

fn print_banner(endpoint: &str, region: &str, access: &str, secret: &str, generated: bool, data: &Path) {
    println!("Coffre S3 endpoint: {endpoint}  (region {region})");
    println!("Access key: {access}");
    // Shown at a terminal only: a service's output ends up in journald or `docker logs`.
    use std::io::IsTerminal;
    if generated && std::io::stdout().is_terminal() {
        println!("Secret key: {secret}");
        println!(
            "(generated now and saved in {}; shown only this once)",
            data.join("credentials").display()
        );
    } else if generated {
        println!(
            "Secret key: generated now and saved in {} (mode 0600); not printed, the output is not a terminal",
            data.join("credentials").display()
        );
    } else {
        println!(
            "Secret key: from COFFRE_ROOT_SECRET_KEY or {}",
            data.join("credentials").display()
        );
    }
    println!();
    println!("Try it:");
    println!("  export AWS_ACCESS_KEY_ID={access} AWS_SECRET_ACCESS_KEY=<secret key> AWS_DEFAULT_REGION={region}");
    println!("  aws --endpoint-url {endpoint} s3 mb s3://my-bucket");
    println!("  aws --endpoint-url {endpoint} s3 cp ./file s3://my-bucket/");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
