//! The gateway's settings: its flags (each with a `COFFRE_*` variable), its TOML file, and
//! how they resolve, flags first, into what `server.rs` runs with.

use coffre_cluster::{FailureDomain, ResidencyPolicy};
use coffre_types::Scheme;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub(crate) struct ServerArgs {
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
    /// One full scrub of every shard per this period, spread evenly (`30d`, `12h`, `90m`,
    /// `600s`; 30 days by default).
    #[arg(long, env = "COFFRE_SCRUB_PERIOD", value_parser = parse_period)]
    scrub_period: Option<Duration>,
    /// The scrub's read rate cap on each node, MiB/s (64 by default; 0: no cap).
    #[arg(long, env = "COFFRE_SCRUB_RATE")]
    scrub_rate: Option<u64>,
    /// A storage node down this long (`2h`, `1d`, …) is declared dead on its own, as by
    /// `coffre admin nodes remove --dead`, and its shards rebuilt elsewhere. Off by default.
    #[arg(long, env = "COFFRE_DEAD_AFTER", value_parser = parse_period)]
    dead_after: Option<Duration>,
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
    #[command(flatten)]
    keys: crate::keys::KeyArgs,
}

/// Where the embedded server's stores (and its metadata) are, and the default region's country.
pub(crate) const EMBEDDED_COUNTRY: &str = "FR";

/// The TOML file: every field optional, flags and `COFFRE_*` variables win.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    #[serde(default)]
    pub(crate) server: ServerSection,
    /// Embedded shard stores mapped to directories (e.g. one per disk).
    #[serde(default)]
    pub(crate) stores: Vec<StoreSection>,
    /// A cluster: the gateway's identity and CA; its shard stores are the `nodes`.
    pub(crate) cluster: Option<ClusterSection>,
    #[serde(default)]
    pub(crate) nodes: Vec<NodeSection>,
    /// Replicated metadata: this gateway is one of the replicas.
    pub(crate) meta: Option<MetaSection>,
    /// LocationConstraint name → residency policy.
    #[serde(default)]
    pub(crate) regions: std::collections::BTreeMap<String, RegionSection>,
    /// Where the master key lives.
    #[serde(default)]
    pub(crate) keys: crate::keys::KeysSection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterSection {
    pub(crate) ca: PathBuf,
    pub(crate) identity: PathBuf,
    /// Serial numbers of revoked cluster certificates (checked on every handshake).
    #[serde(default)]
    pub(crate) revoked: Vec<String>,
    /// A file of more revoked serials, one a line, re-read when it changes.
    pub(crate) revoked_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetaSection {
    /// This replica's Raft endpoint (HTTP/2, mutual TLS with the `[cluster]` identity).
    pub(crate) listen: String,
    /// How the other replicas reach it; `https://LISTEN` by default.
    pub(crate) address: Option<String>,
    /// Every replica of the set (3 or 5), this one included.
    pub(crate) replicas: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSection {
    pub(crate) address: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegionSection {
    countries: Vec<String>,
    failure_domain: Option<String>,
    scheme: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSection {
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
    scrub_period: Option<String>,
    scrub_rate: Option<u64>,
    dead_after: Option<String>,
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
pub(crate) struct StoreSection {
    pub(crate) id: String,
    pub(crate) path: PathBuf,
}

/// What a gateway runs with: flags and `COFFRE_*` variables over the TOML file over defaults.
pub(crate) struct Settings {
    pub data: PathBuf,
    pub listen: String,
    pub region: String,
    pub domain: Option<String>,
    pub scheme: Scheme,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub expiry: Duration,
    pub gc_grace: Option<Duration>,
    pub inline_max: Option<u64>,
    /// The scrub's period and its read rate cap per node (MiB/s).
    pub scrub_period: Duration,
    pub scrub_rate: u64,
    /// How long a node may be down before it is declared dead (`None`: never on its own).
    pub dead_after: Option<Duration>,
    pub serve_limits: coffre_s3::server::ServeLimits,
    pub body_limits: coffre_s3::body::BodyLimits,
    pub audit_on: bool,
    pub audit_retention: Duration,
    pub audit_accept_truncation: bool,
    pub audit_syslog: Option<String>,
    pub audit_syslog_ca: Option<Vec<u8>>,
    pub admin_listen: String,
    pub allow_sse_c_over_http: bool,
    /// Regions a bucket can be created in, each with its residency policy.
    pub regions: Vec<(String, ResidencyPolicy)>,
    /// Where the shards and the metadata are: a cluster's identity, replicas and nodes, or the
    /// embedded stores.
    pub topology: Topology,
    /// The key provider and how long unwrapped keys stay in memory.
    pub keys: crate::keys::KeySettings,
}

/// The file's sections that say where things are.
pub(crate) struct Topology {
    pub cluster: Option<ClusterSection>,
    pub meta: Option<MetaSection>,
    pub nodes: Vec<NodeSection>,
    pub stores: Vec<StoreSection>,
}

impl Settings {
    pub fn resolve(args: ServerArgs) -> Result<Settings, String> {
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
        let scrub_period = match (args.scrub_period, file.server.scrub_period.as_deref()) {
            (Some(d), _) => d,
            (None, Some(text)) => parse_period(text).map_err(|e| format!("scrub_period: {e}"))?,
            (None, None) => coffre_data::SCRUB_PERIOD,
        };
        let scrub_rate = args
            .scrub_rate
            .or(file.server.scrub_rate)
            .unwrap_or(coffre_data::SCRUB_RATE_MIB);
        let dead_after = match (args.dead_after, file.server.dead_after.as_deref()) {
            (Some(d), _) => Some(d),
            (None, Some(text)) => Some(parse_period(text).map_err(|e| format!("dead_after: {e}"))?),
            (None, None) => None,
        };
        if dead_after.is_some() && file.cluster.is_none() {
            return Err("dead_after: only for a cluster's storage nodes (a [cluster] section)".into());
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

        let allow_sse_c_over_http = args.allow_sse_c_over_http || file.server.allow_sse_c_over_http.unwrap_or(false);
        let keys = crate::keys::KeySettings::resolve(args.keys, file.keys)?;
        Ok(Settings {
            data,
            listen,
            region,
            domain,
            scheme,
            tls,
            expiry,
            gc_grace,
            inline_max,
            scrub_period,
            dead_after,
            scrub_rate,
            serve_limits,
            body_limits,
            audit_on,
            audit_retention,
            audit_accept_truncation,
            audit_syslog,
            audit_syslog_ca,
            admin_listen,
            allow_sse_c_over_http,
            regions,
            topology: Topology {
                cluster: file.cluster,
                meta: file.meta,
                nodes: file.nodes,
                stores: file.stores,
            },
            keys,
        })
    }
}

/// A period: a number with a unit, `s`, `m`, `h` or `d` (seconds without one); at least a
/// second.
pub(crate) fn parse_period(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: a number and a unit (s, m, h, d)"))?;
    let unit_secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("{text:?}: unknown unit {other:?} (s, m, h, d)")),
    };
    match n.checked_mul(unit_secs) {
        Some(secs) if secs >= 1 => Ok(Duration::from_secs(secs)),
        Some(_) => Err(format!("{text:?}: at least one second")),
        None => Err(format!("{text:?}: too long")),
    }
}
