//! Master key rotation (offline): tenants' keys re-wrapped, data keys still wrapped by a
//! master key moved under their tenant's key (or re-wrapped), every sealed value re-sealed
//! under the new key; no object data is rewritten. The same walk moves a store from the file
//! provider to a security container (`migrate_master_key`).

use crate::{attrs_aad, EngineResult};
use coffre_crypto::Keyring;
use coffre_meta::{MetaError, MetaStore, PartInfo};
use coffre_types::VersionId;

/// How many records a key rotation rewrote.
#[derive(Debug, Default)]
pub struct Rotation {
    pub tenants: usize,
    pub access_keys: usize,
    pub objects: usize,
    pub parts: usize,
    pub uploads: usize,
}

/// Re-wraps tenants' keys and the data keys a master key wrapped, and re-seals every sealed
/// value, under the keyring's current master key. Keys already under the current key are
/// left alone and sealed values open under either key, so an interrupted rotation is resumed
/// by running it again.
pub fn rotate_master_key(meta: &MetaStore, keys: &Keyring) -> EngineResult<Rotation> {
    let fail = |e: coffre_crypto::CryptoError| {
        MetaError::Corrupt(format!("cannot open a record with any known master key: {e}"))
    };
    // Tenants' keys first: the data keys moved under them below need them.
    let tenants = meta.rewrite_tenants(|name, t| {
        if keys.tenant_key_is_current(&t.kek) {
            return Ok(false);
        }
        let tk = keys.unwrap_tenant_key(&t.kek, name).map_err(fail)?;
        t.kek = keys.wrap_tenant_key(&tk, name).map_err(fail)?;
        Ok(true)
    })?;
    let mut tenant_keys: std::collections::HashMap<String, coffre_crypto::TenantKey> = Default::default();
    for (name, t) in meta.list_tenants()? {
        tenant_keys.insert(name.clone(), keys.unwrap_tenant_key(&t.kek, &name).map_err(fail)?);
    }
    let access_keys = meta.rewrite_access_keys(|id, k| {
        let aad = coffre_crypto::access_key_aad(id);
        let plain = keys.open(&aad, &k.secret).map_err(fail)?;
        k.secret = keys.seal(&aad, &plain);
        Ok(true)
    })?;
    // A data key wrapped by a master key (written before tenants had keys) moves under its
    // tenant's key when the tenant is known, so that erasing the tenant reaches it too.
    let rewrap = |p: &mut PartInfo, tenant: Option<&coffre_crypto::TenantKey>| -> Result<bool, MetaError> {
        let mut changed = false;
        if keys.knows(&p.wrapped_key) && (tenant.is_some() || !keys.is_current(&p.wrapped_key)) {
            let dk = keys.unwrap(&p.wrapped_key, &p.version.0).map_err(fail)?;
            p.wrapped_key = match tenant {
                Some(tk) => tk.wrap(&dk, &p.version.0),
                None => keys.wrap(&dk, &p.version.0),
            };
            changed = true;
        }
        // The sealed checksum, re-sealed under the new key whoever wraps the data key.
        if let Some((_, v)) = p.checksum.as_mut() {
            if let Some(b64) = v.strip_prefix('~') {
                use base64::Engine as _;
                let std = base64::engine::general_purpose::STANDARD;
                let sealed = std
                    .decode(b64)
                    .map_err(|_| MetaError::Corrupt("sealed checksum".into()))?;
                let aad = crate::object::checksum_aad(&p.version);
                let plain = keys.open(&aad, &sealed).map_err(fail)?;
                *v = format!("~{}", std.encode(keys.seal(&aad, &plain)));
                changed = true;
            }
        }
        Ok(changed)
    };
    let reseal = |aad: Vec<u8>, sealed: &mut Vec<u8>| -> Result<(), MetaError> {
        if !sealed.is_empty() {
            let plain = keys.open(&aad, sealed).map_err(fail)?;
            *sealed = keys.seal(&aad, &plain);
        }
        Ok(())
    };
    let mut owners: std::collections::HashMap<String, String> = Default::default();
    for (name, b) in meta.list_buckets()? {
        owners.insert(name, b.tenant);
    }
    let objects = meta.rewrite_objects(|bucket, key, rec| {
        let mut changed = false;
        let tk = owners.get(bucket).and_then(|t| tenant_keys.get(t));
        for p in &mut rec.parts {
            changed |= rewrap(p, tk)?;
        }
        let key = String::from_utf8_lossy(key);
        reseal(attrs_aad(bucket, &key, &rec.version), &mut rec.sealed)?;
        Ok(changed || !rec.sealed.is_empty())
    })?;
    let parts = meta.rewrite_parts(|p| rewrap(&mut p.info, None))?;
    let uploads = meta.rewrite_uploads(|bucket, key, id, up| {
        reseal(
            attrs_aad(bucket, &String::from_utf8_lossy(key), &VersionId(*id)),
            &mut up.sealed,
        )?;
        Ok(!up.sealed.is_empty())
    })?;
    Ok(Rotation {
        tenants,
        access_keys,
        objects,
        parts,
        uploads,
    })
}

/// Moves a store's keys from the `file` provider (`old`) to a security container (`new`, whose
/// store key is fresh and which also opens what `old` sealed, `Keyring::also_opening`): every
/// tenant's key unwrapped by the file master key and wrapped by the container, then every
/// sealed value and master-wrapped data key under the new store key. Offline, and resumable:
/// what is already under `new` is left alone.
pub fn migrate_master_key(meta: &MetaStore, old: &Keyring, new: &Keyring) -> EngineResult<Rotation> {
    let fail = |e: coffre_crypto::CryptoError| MetaError::Corrupt(format!("cannot move a tenant's key: {e}"));
    let tenants = meta.rewrite_tenants(|name, t| {
        if new.tenant_key_is_current(&t.kek) {
            return Ok(false);
        }
        let tk = old.unwrap_tenant_key(&t.kek, name).map_err(fail)?;
        t.kek = new.wrap_tenant_key(&tk, name).map_err(fail)?;
        Ok(true)
    })?;
    let done = rotate_master_key(meta, new)?;
    Ok(Rotation { tenants, ..done })
}
