//! `coffre`: the command line. Parses flags, reads the config, wires the crates together.

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

mod config;
mod keys;
mod offline;
mod server;

use config::ServerArgs;
use offline::{restore_metadata, rotate_master_key, run_node, verify_audit};
use server::run_server;

#[derive(Parser)]
#[command(name = "coffre", version, about = "Coffre: sovereign S3-compatible object storage")]
struct Cli {
    /// How logs (stderr) are written: `text` for people, `json` (one object a line) for a
    /// collector. In `json`, the access log (one line per S3 request) is on by default.
    #[arg(long, global = true, env = "COFFRE_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// Export OpenTelemetry traces (OTLP over HTTP, JSON) to this collector, `http://HOST:PORT`:
    /// a span per S3 request, its authentication, metadata commands and shard reads and writes.
    #[arg(long, global = true, env = "COFFRE_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr in `format` (`RUST_LOG` overrides the levels, docs/operations.md); with an
/// OTLP endpoint, the spans of `coffre::trace` are exported as OpenTelemetry traces.
fn init_logs(format: LogFormat, otlp: Option<&str>) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    // Trace spans are for the exporter, not the logs.
    let default = match format {
        LogFormat::Text => "info,coffre::access=warn,coffre::trace=off",
        LogFormat::Json => "info,coffre::trace=off",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.with_filter(filter).boxed(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
    };
    let traces = match otlp {
        Some(endpoint) => {
            let (layer, _) = coffre_telemetry::layer(endpoint, "coffre")?;
            let only =
                tracing_subscriber::filter::Targets::new().with_target(coffre_telemetry::TARGET, tracing::Level::INFO);
            Some(layer.with_filter(only))
        }
        None => None,
    };
    tracing_subscriber::registry().with(logs).with(traces).init();
    Ok(())
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
    /// Check a proof of possession (`coffre admin placement … --proof`) offline, trusting only
    /// the cluster CA: every signature and certificate, the nonce, every shard attested by a
    /// distinct node with the layout's BLAKE3, in a country of the policy. Exit 0 only if so.
    VerifyPlacement {
        /// The proof (JSON).
        file: PathBuf,
        /// The cluster CA certificate (PEM).
        #[arg(long)]
        ca: PathBuf,
        /// The nonce the auditor chose: the proof must answer it (else the file's own).
        #[arg(long)]
        nonce: Option<String>,
        /// A list of revoked certificate serials (hex, one per line) as the CA's operator
        /// publishes it: statements signed under them are refused.
        #[arg(long)]
        revoked: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
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
pub(crate) fn tighten_permissions(dir: &Path, depth: usize) {
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
    if let Err(e) = init_logs(cli.log_format, cli.otlp_endpoint.as_deref()) {
        eprintln!("coffre: --otlp-endpoint: {e}");
        std::process::exit(2);
    }
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
        Command::Admin(coffre_admin::cli::AdminCommand::Keys(coffre_admin::cli::KeysCommand::Migrate(m))) => {
            keys::migrate(m)
        }
        Command::Admin(cmd) => coffre_admin::cli::run(cmd),
        Command::Meta(MetaCommand::Restore { from, data, config }) => restore_metadata(&from, &data, config.as_deref()),
        Command::Audit(AuditCommand::Verify {
            dir,
            trust,
            from,
            to,
            json,
        }) => verify_audit(&dir, &trust, from, to, json),
        Command::VerifyPlacement {
            file,
            ca,
            nonce,
            revoked,
            json,
        } => offline::verify_placement(&file, &ca, nonce.as_deref(), revoked.as_deref(), json),
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

pub(crate) async fn shutdown_signal() {
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
