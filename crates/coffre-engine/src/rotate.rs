//! Master key rotation (offline): every data key re-wrapped and every sealed attribute
//! re-sealed under the new key; no object data is rewritten.

use crate::{attrs_aad, EngineResult};
use coffre_crypto::Keyring;
use coffre_meta::{MetaError, MetaStore, PartInfo};
use coffre_types::VersionId;

/// How many records a key rotation rewrote.
#[derive(Debug, Default)]
pub struct Rotation {
    pub objects: usize,
    pub parts: usize,
    pub uploads: usize,
}

/// Re-wraps every data key and re-seals every sealed attribute under the keyring's current
/// master key. Records already under the current key are left alone, so an interrupted
/// rotation is resumed by running it again.
pub fn rotate_master_key(meta: &MetaStore, keys: &Keyring) -> EngineResult<Rotation> {
    let fail = |e: coffre_crypto::CryptoError| {
        MetaError::Corrupt(format!("cannot open a record with any known master key: {e}"))
    };
    let rewrap = |p: &mut PartInfo| -> Result<bool, MetaError> {
        if keys.is_current(&p.wrapped_key) {
            return Ok(false);
        }
        let dk = keys.unwrap(&p.wrapped_key, &p.version.0).map_err(fail)?;
        p.wrapped_key = keys.wrap(&dk, &p.version.0);
        // The sealed checksum, re-sealed under the new key too.
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
            }
        }
        Ok(true)
    };
    let reseal = |aad: Vec<u8>, sealed: &mut Vec<u8>| -> Result<(), MetaError> {
        if !sealed.is_empty() {
            let plain = keys.open(&aad, sealed).map_err(fail)?;
            *sealed = keys.seal(&aad, &plain);
        }
        Ok(())
    };
    let objects = meta.rewrite_objects(|bucket, key, rec| {
        let mut changed = false;
        for p in &mut rec.parts {
            changed |= rewrap(p)?;
        }
        let key = String::from_utf8_lossy(key);
        reseal(attrs_aad(bucket, &key, &rec.version), &mut rec.sealed)?;
        Ok(changed || !rec.sealed.is_empty())
    })?;
    let parts = meta.rewrite_parts(|p| rewrap(&mut p.info))?;
    let uploads = meta.rewrite_uploads(|bucket, key, id, up| {
        reseal(
            attrs_aad(bucket, &String::from_utf8_lossy(key), &VersionId(*id)),
            &mut up.sealed,
        )?;
        Ok(!up.sealed.is_empty())
    })?;
    Ok(Rotation {
        objects,
        parts,
        uploads,
    })
}
