//! Where the master key lives (`--key-provider`, `[keys]`), and opening the keyring with it:
//! the `file` provider (DATA/master.key or COFFRE_MASTER_KEY, the default), or a PKCS#11
//! token that holds the master key and wraps the store's own key (DATA/store.key).
//! docs/keys.md says what each protects against.

use coffre_crypto::provider::kmip::{KmipConfig, KmipProvider};
use coffre_crypto::provider::pkcs11::{Pkcs11Config, Pkcs11Provider};
use coffre_crypto::{Keyring, MasterKey};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Default)]
pub(crate) struct KeyArgs {
    /// Where the master key lives: `file` (DATA/master.key or COFFRE_MASTER_KEY, the
    /// default), `pkcs11` (a token of an HSM, which never lets it out) or `kmip` (a KMIP
    /// server, which keeps it likewise).
    #[arg(long, env = "COFFRE_KEY_PROVIDER")]
    key_provider: Option<String>,
    /// pkcs11: the token vendor's PKCS#11 library.
    #[arg(long, env = "COFFRE_PKCS11_MODULE")]
    pkcs11_module: Option<PathBuf>,
    /// pkcs11: the token's label.
    #[arg(long, env = "COFFRE_PKCS11_TOKEN")]
    pkcs11_token: Option<String>,
    /// pkcs11: a file holding the token's user PIN (else COFFRE_PKCS11_PIN).
    #[arg(long, env = "COFFRE_PKCS11_PIN_FILE")]
    pkcs11_pin_file: Option<PathBuf>,
    /// kmip: the KMIP server, HOST:PORT.
    #[arg(long, env = "COFFRE_KMIP_ENDPOINT")]
    kmip_endpoint: Option<String>,
    /// kmip: this gateway's client certificate (PEM).
    #[arg(long, env = "COFFRE_KMIP_CERT")]
    kmip_cert: Option<PathBuf>,
    /// kmip: the client certificate's private key (PEM).
    #[arg(long, env = "COFFRE_KMIP_KEY")]
    kmip_key: Option<PathBuf>,
    /// kmip: the CA of the KMIP server's certificate (PEM).
    #[arg(long, env = "COFFRE_KMIP_CA")]
    kmip_ca: Option<PathBuf>,
    /// Seconds an unwrapped tenant key stays in memory before the provider is asked again
    /// (300 by default).
    #[arg(long, env = "COFFRE_KEY_CACHE_SECONDS")]
    key_cache_seconds: Option<u64>,
}

/// `[keys]` of the TOML file (flags and variables win).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeysSection {
    provider: Option<String>,
    pkcs11_module: Option<PathBuf>,
    pkcs11_token: Option<String>,
    pkcs11_pin_file: Option<PathBuf>,
    kmip_endpoint: Option<String>,
    kmip_cert: Option<PathBuf>,
    kmip_key: Option<PathBuf>,
    kmip_ca: Option<PathBuf>,
    cache_seconds: Option<u64>,
}

pub(crate) enum Provider {
    File,
    Pkcs11(Pkcs11Config),
    Kmip(KmipConfig),
}

pub(crate) struct KeySettings {
    pub provider: Provider,
    pub cache_ttl: Duration,
}

impl KeySettings {
    pub fn resolve(args: KeyArgs, file: KeysSection) -> Result<KeySettings, String> {
        let cache_ttl = args
            .key_cache_seconds
            .or(file.cache_seconds)
            .map_or(coffre_types::limits::KEY_CACHE_TTL, Duration::from_secs);
        let provider = match args.key_provider.or(file.provider).as_deref().unwrap_or("file") {
            "file" => Provider::File,
            "pkcs11" => {
                let module = args
                    .pkcs11_module
                    .or(file.pkcs11_module)
                    .ok_or("--key-provider pkcs11 needs --pkcs11-module (the token's PKCS#11 library)")?;
                let token = args
                    .pkcs11_token
                    .or(file.pkcs11_token)
                    .ok_or("--key-provider pkcs11 needs --pkcs11-token (the token's label)")?;
                let pin = match args.pkcs11_pin_file.or(file.pkcs11_pin_file) {
                    Some(p) => std::fs::read_to_string(&p)
                        .map_err(|e| format!("the PKCS#11 PIN file {}: {e}", p.display()))?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                    None => std::env::var("COFFRE_PKCS11_PIN").map_err(|_| {
                        "--key-provider pkcs11 needs the token's PIN: COFFRE_PKCS11_PIN or --pkcs11-pin-file"
                    })?,
                };
                Provider::Pkcs11(Pkcs11Config { module, token, pin })
            }
            "kmip" => {
                let need =
                    |v: Option<PathBuf>, flag: &str| v.ok_or_else(|| format!("--key-provider kmip needs --{flag}"));
                Provider::Kmip(KmipConfig {
                    endpoint: args
                        .kmip_endpoint
                        .or(file.kmip_endpoint)
                        .ok_or("--key-provider kmip needs --kmip-endpoint HOST:PORT")?,
                    cert: need(
                        args.kmip_cert.or(file.kmip_cert),
                        "kmip-cert (the client certificate, PEM)",
                    )?,
                    key: need(args.kmip_key.or(file.kmip_key), "kmip-key (its private key, PEM)")?,
                    ca: need(args.kmip_ca.or(file.kmip_ca), "kmip-ca (the server's CA, PEM)")?,
                })
            }
            other => return Err(format!("--key-provider {other}: file, pkcs11 or kmip")),
        };
        Ok(KeySettings { provider, cache_ttl })
    }
}

/// The keyring of a store: with `file`, the master key (and an interrupted rotation's
/// previous one); with a token, the store key the token unwraps (made and wrapped by it on
/// the first start). A store never silently changes provider: each refuses the other's.
pub(crate) fn open_keyring(data: &Path, settings: &KeySettings) -> Result<Keyring, String> {
    let store_key = data.join(coffre_crypto::STORE_KEY_FILE);
    if store_key.exists() && data.join("master.key").exists() {
        return Err(format!(
            "a move of this store's master key into a security container was interrupted ({} and {} both exist): run `coffre admin keys migrate` again to finish it",
            data.join("master.key").display(),
            store_key.display()
        ));
    }
    let provider: Arc<dyn coffre_crypto::KeyProvider> = match &settings.provider {
        Provider::File => {
            if store_key.exists() && !data.join("master.key").exists() && std::env::var("COFFRE_MASTER_KEY").is_err() {
                return Err(format!(
                    "this store's master key is in a security container ({} is its wrapped store key): start with the --key-provider it was made with",
                    store_key.display()
                ));
            }
            return load_keyring(data);
        }
        // Checked before the provider opens: opening makes a master key in an empty one.
        _ if data.join("master.key").exists() => {
            return Err(format!(
                "this store's master key is the file {}: a security container cannot open what it wrapped",
                data.join("master.key").display()
            ));
        }
        _ => open_provider(&settings.provider)?,
    };
    Keyring::open_with_provider(&store_key, provider).map_err(|e| format!("the store key {}: {e}", store_key.display()))
}

/// A security container, opened (a PKCS#11 token logged in, a KMIP server's key found or made).
fn open_provider(provider: &Provider) -> Result<Arc<dyn coffre_crypto::KeyProvider>, String> {
    Ok(match provider {
        Provider::File => return Err("the file provider is not a security container".into()),
        Provider::Pkcs11(config) => Arc::new(Pkcs11Provider::open(config).map_err(|e| e.to_string())?),
        Provider::Kmip(config) => Arc::new(KmipProvider::open(config).map_err(|e| e.to_string())?),
    })
}

/// `coffre admin keys migrate --to pkcs11|kmip`: moves a store from the file provider into a
/// security container, its server stopped (docs/keys.md). Crash-safe and resumable: the
/// wrapped store key is written first and every step leaves what it did readable by the next
/// run; the master key file is destroyed last.
pub(crate) fn migrate(m: coffre_admin::cli::MigrateArgs) -> Result<(), String> {
    let data = m.data.as_path();
    let args = KeyArgs {
        key_provider: Some(m.to),
        pkcs11_module: m.pkcs11_module,
        pkcs11_token: m.pkcs11_token,
        pkcs11_pin_file: m.pkcs11_pin_file,
        kmip_endpoint: m.kmip_endpoint,
        kmip_cert: m.kmip_cert,
        kmip_key: m.kmip_key,
        kmip_ca: m.kmip_ca,
        key_cache_seconds: None,
    };
    let settings = KeySettings::resolve(args, KeysSection::default())?;
    let master_file = data.join("master.key");
    let from_env = std::env::var("COFFRE_MASTER_KEY").is_ok();
    if !master_file.exists() && !from_env {
        return Err(match data.join(coffre_crypto::STORE_KEY_FILE).exists() {
            true => "this store's master key is already in a security container".into(),
            false => format!("{} not found: no store to migrate here", master_file.display()),
        });
    }
    if data.join("master.key.next").exists() {
        return Err("a master key rotation was interrupted: finish it first with `coffre rotate-master-key`".into());
    }
    // The metadata first: it refuses while a server holds it.
    let meta = coffre_meta::MetaStore::open(&data.join("meta"))
        .map_err(|e| format!("metadata (is the server still running?): {e}"))?;
    let old = load_keyring(data)?;
    let store_key = data.join(coffre_crypto::STORE_KEY_FILE);
    let new = Keyring::open_with_provider(&store_key, open_provider(&settings.provider)?)
        .map_err(|e| format!("the store key {}: {e}", store_key.display()))?
        .also_opening(&old);
    let done = coffre_engine::migrate_master_key(&meta, &old, &new).map_err(|e| e.to_string())?;
    drop(meta);
    reseal_key_files(data, &new)?;
    if master_file.exists() {
        destroy(&master_file)?;
    }
    println!(
        "moved into {}: {} tenant keys wrapped by it; {} access keys, {} objects, {} parts, {} uploads sealed again under the new store key",
        new.provider().kind(),
        done.tenants,
        done.access_keys,
        done.objects,
        done.parts,
        done.uploads
    );
    if from_env {
        println!("unset COFFRE_MASTER_KEY and destroy every copy of it: nothing needs it any more");
    }
    println!("start the server with --key-provider {}", new.provider().kind());
    Ok(())
}

/// Seals the keys kept in files of the data directory (the operator's signing key, the audit
/// log's keys) again under `keys`' store key: each is opened with whichever key sealed it and
/// sealed again as it is read. What a rotation and a migration do once the records are done.
pub(crate) fn reseal_key_files(data: &Path, keys: &Keyring) -> Result<(), String> {
    let signing = data.join("operator.key");
    if signing.exists() {
        coffre_engine::OperatorKey::load_or_create(&signing, keys).map_err(|e| format!("operator signing key: {e}"))?;
    }
    coffre_engine::reseal_audit_keys(&data.join("audit"), keys)
}

/// Overwrites a key file, syncs, and removes it (and syncs its directory).
fn destroy(path: &Path) -> Result<(), String> {
    use std::io::Write;
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len() as usize;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    f.write_all(&vec![0u8; len])
        .and_then(|_| f.sync_all())
        .map_err(|e| e.to_string())?;
    drop(f);
    std::fs::remove_file(path).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The master key (COFFRE_MASTER_KEY, else DATA/master.key, created on first start) and the
/// keys that may still have wrapped some records: COFFRE_MASTER_KEY_PREVIOUS, or the
/// DATA/master.key.next of an interrupted rotation.
pub(crate) fn load_keyring(data: &Path) -> Result<Keyring, String> {
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
