//! Opening the gateway's audit log: its signing key (certified by the cluster CA when the
//! gateway's identity carries one, else sealed under the master key), the chain head kept in
//! the metadata, and the events the store notices at start.

use crate::{Engine, MetaAuditHead};
use coffre_audit::{AuditConfig, AuditLog, Event};
use coffre_crypto::Keyring;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where and how the log is kept.
pub struct AuditOptions {
    /// `DATA/audit`.
    pub dir: PathBuf,
    /// The gateway's identity directory (cluster mode): its `audit-key.pem` and `audit.pem`.
    pub identity: Option<PathBuf>,
    /// The gateway's id (`server` for the embedded one).
    pub gateway: String,
    pub retention: Duration,
    pub accept_truncation: bool,
    /// A SIEM to forward entries to (`tcp://…` or `tls://…`, and the CA of a TLS collector).
    pub syslog: Option<(String, Option<Vec<u8>>)>,
}

/// The log's tenant tag key (`DIR/tag.key`, sealed under the master key): read, or made on
/// first use.
fn tag_key(dir: &Path, keys: &Keyring) -> Result<coffre_audit::Hash, String> {
    let path = dir.join("tag.key");
    let key = coffre_crypto::sealed_secret(&path, keys, coffre_crypto::AUDIT_TAG_KEY_AAD, || {
        Ok(coffre_types::random_bytes::<32>().to_vec())
    })
    .map_err(|e| format!("audit tag key {}: {e}", path.display()))?;
    key.try_into()
        .map_err(|_| format!("audit tag key {}: not 32 bytes", path.display()))
}

/// Seals the audit log's keys in `dir` (`DATA/audit`) again under the current master key
/// (after a rotation; what is not there yet is left to the next start).
pub fn reseal_audit_keys(dir: &Path, keys: &Keyring) -> Result<(), String> {
    let signing = dir.join("audit.key");
    if signing.exists() {
        coffre_crypto::sealed_signing_key(&signing, keys, coffre_crypto::AUDIT_KEY_AAD)
            .map_err(|e| format!("audit signing key: {e}"))?;
    }
    if dir.join("tag.key").exists() {
        tag_key(dir, keys)?;
    }
    Ok(())
}

impl Engine {
    /// Opens the audit log and gives it to the engine (must run in the runtime).
    pub fn open_audit(&self, o: AuditOptions) -> Result<Arc<AuditLog>, String> {
        std::fs::create_dir_all(&o.dir).map_err(|e| format!("{}: {e}", o.dir.display()))?;
        let certified = o
            .identity
            .as_ref()
            .map(|d| (d.join("audit-key.pem"), d.join("audit.pem")))
            .filter(|(k, c)| k.exists() && c.exists());
        let (pkcs8, certificate) = match certified {
            Some((key, cert)) => (
                coffre_cluster::audit_cert::load_audit_key(&key)?,
                Some(std::fs::read_to_string(&cert).map_err(|e| format!("{}: {e}", cert.display()))?),
            ),
            None => {
                if o.identity.is_some() {
                    tracing::warn!(
                        "the gateway identity has no audit key (audit-key.pem): checkpoints are signed with a local key the CA does not certify; reissue the identity with `coffre admin node-identity --role gateway`"
                    );
                }
                let path = o.dir.join("audit.key");
                let key = coffre_crypto::sealed_signing_key(&path, &self.keys, coffre_crypto::AUDIT_KEY_AAD)
                    .map_err(|e| format!("audit signing key {}: {e}", path.display()))?;
                (key, None)
            }
        };
        let mut config = AuditConfig::new(o.dir.clone(), &o.gateway);
        // Tenant tags are keyed by a secret of this log's own, kept across audit key changes.
        config.tag_key = Some(tag_key(&o.dir, &self.keys)?);
        config.retention = o.retention;
        config.accept_truncation = o.accept_truncation;
        config.syslog = match &o.syslog {
            Some((url, ca)) => Some(coffre_audit::SyslogTarget::parse(url, ca.as_deref(), &o.gateway)?),
            None => None,
        };
        let log = AuditLog::open(config, &pkcs8, certificate, Arc::new(MetaAuditHead(self.meta.clone())))?;
        // A master key rotation happens with the server stopped: the first start after it
        // records it.
        let id_file = o.dir.join("master-key.id");
        let current = self.keys.current().id_hex();
        let previous = std::fs::read_to_string(&id_file).ok().map(|s| s.trim().to_string());
        if previous.as_deref() != Some(current.as_str()) {
            if let Some(previous) = previous {
                let e = Event::admin(
                    "RotateMasterKey",
                    format!("master key {previous} replaced by {current}"),
                    200,
                );
                log.record(e);
            }
            std::fs::write(&id_file, &current).map_err(|e| format!("{}: {e}", id_file.display()))?;
        }
        self.set_audit(log.clone());
        Ok(log)
    }
}
