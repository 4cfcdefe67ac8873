//! The master key's rotation while serving (a provider that holds versions: pkcs11). A new
//! version is added in the provider, then every tenant's key and the store key are wrapped
//! again under it; reads and writes go on meanwhile, since every earlier version still
//! unwraps what it made. Running it again resumes an unfinished rotation rather than adding
//! another version; when every key is under the current version, the operator may disable
//! the older ones in the provider (docs/keys.md).

use crate::{Engine, EngineError, EngineResult};
use coffre_meta::{IamCommand, MetaCommand, MetaError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Where the keys stand.
#[derive(Clone, Debug, Default)]
pub struct KeyStatus {
    /// `file` or `pkcs11`.
    pub provider: String,
    /// The master key version that wraps now.
    pub current_version: String,
    pub tenants: u64,
    /// Tenants whose key the current version wraps.
    pub tenants_current: u64,
    /// Whether the current version wraps the store key (always with `file`).
    pub store_key_current: bool,
    /// Whether a rotation is running on this gateway.
    pub rotating: bool,
    /// What stopped the last rotation, if it did not finish.
    pub last_error: Option<String>,
}

impl KeyStatus {
    /// Whether every key is under the current version.
    pub fn done(&self) -> bool {
        self.tenants_current == self.tenants && self.store_key_current
    }
}

/// A rotation running on this gateway, and how the last one ended.
#[derive(Default)]
pub(crate) struct KeyRotation {
    running: AtomicBool,
    last_error: Mutex<Option<String>>,
}

fn provider_error(e: coffre_crypto::CryptoError) -> EngineError {
    match e {
        coffre_crypto::CryptoError::Unavailable(_) => EngineError::Unavailable(e.to_string()),
        coffre_crypto::CryptoError::Provider(m) => EngineError::InvalidRequest(m),
        e => EngineError::Internal(e.to_string()),
    }
}

impl Engine {
    pub fn key_status(&self) -> EngineResult<KeyStatus> {
        let tenants = self.meta.list_tenants()?;
        let current = tenants
            .iter()
            .filter(|(_, t)| self.keys.tenant_key_is_current(&t.kek))
            .count();
        Ok(KeyStatus {
            provider: self.keys.provider().kind().to_string(),
            current_version: self.keys.provider().current_version(),
            tenants: tenants.len() as u64,
            tenants_current: current as u64,
            store_key_current: self.keys.store_key_is_current().map_err(provider_error)?,
            rotating: self.key_rotation.running.load(Ordering::SeqCst),
            last_error: self
                .key_rotation
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        })
    }

    /// Starts a rotation, or resumes an unfinished one: a new master key version only when
    /// every key is already under the current one. Returns at once; `key_status` follows it.
    pub fn rotate_master_key_online(self: &Arc<Self>) -> EngineResult<KeyStatus> {
        if self.key_rotation.running.swap(true, Ordering::SeqCst) {
            return self.key_status();
        }
        let started = (|| {
            if self.key_status()?.done() {
                let version = self.keys.provider().add_version().map_err(provider_error)?;
                tracing::info!(version, "master key rotation: a new version wraps from now on");
            }
            Ok(())
        })();
        if let Err(e) = started {
            self.key_rotation.running.store(false, Ordering::SeqCst);
            return Err(e);
        }
        *self.key_rotation.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let engine = self.clone();
        tokio::spawn(async move {
            let result = engine.rewrap_keys().await;
            if let Err(e) = &result {
                tracing::warn!("master key rotation stopped: {e} (run it again to resume)");
            }
            *engine.key_rotation.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                result.err().map(|e| e.to_string());
            engine.key_rotation.running.store(false, Ordering::SeqCst);
        });
        self.key_status()
    }

    /// Wraps the store key and every tenant's key again under the current version.
    async fn rewrap_keys(self: &Arc<Self>) -> EngineResult<()> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.keys.rewrap_store_key())
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(provider_error)?;
        for (name, t) in self.meta.list_tenants()? {
            if self.keys.tenant_key_is_current(&t.kek) {
                continue;
            }
            let (keys, n, from) = (self.keys.clone(), name.clone(), t.kek.clone());
            let to = tokio::task::spawn_blocking(move || {
                let tk = keys.unwrap_tenant_key(&from, &n)?;
                keys.wrap_tenant_key(&tk, &n)
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(provider_error)?;
            let cmd = MetaCommand::Iam(IamCommand::RewrapTenantKey {
                name: name.clone(),
                from: t.kek,
                to,
            });
            match self.meta_apply(cmd).await? {
                // Deleted meanwhile, or its key changed: nothing left to rotate for it here.
                Ok(_) | Err(MetaError::PreconditionFailed { .. } | MetaError::NoSuchEntity(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
