//! Server-side encryption headers. Every object is encrypted at rest under the operator's
//! keys whatever the request says, which is what SSE-S3 (`AES256`) promises: requests asking
//! for it are accepted and every object answers it. SSE-KMS (`aws:kms`) puts an object's data
//! keys under one of its tenant's named KMS keys (`coffre_engine::kms`): disabling the key
//! makes the object unreadable, deleting it shreds the object. SSE-C keys come with each
//! request and are never stored.

use crate::http::{set, Res};
use crate::S3Error;
use base64::Engine as _;
use coffre_engine::{BucketConfigKind, CustomerKey, EncryptionConfig, Engine, KmsAttrs};
use http::HeaderMap;

/// The algorithm every object is stored under.
pub const ALGORITHM: &str = "AES256";
/// SSE-KMS, as requests and responses name it.
pub const KMS: &str = "aws:kms";

/// An SSE algorithm a request or a bucket configuration names.
pub fn algorithm(v: &str) -> Result<&'static str, S3Error> {
    match v.trim() {
        "AES256" => Ok(ALGORITHM),
        "aws:kms" => Ok(KMS),
        "aws:kms:dsse" => Err(S3Error::not_implemented(
            "Dual-layer server-side encryption (aws:kms:dsse) is not available: use aws:kms",
        )),
        _ => Err(S3Error::invalid_argument(
            "The encryption method specified is not supported",
        )),
    }
}

/// Whether a request writes an object (where SSE-S3 may be asked for) or reads one (where
/// asking for it is an error, as S3 answers).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Write,
    Read,
}

/// What a write asks of its encryption.
#[derive(Clone, Debug, Default)]
pub enum Requested {
    /// Nothing: the bucket's default applies.
    #[default]
    Default,
    /// `AES256`.
    S3,
    /// `aws:kms`, with the key (or the bucket default's), context and bucket-key flag given.
    Kms {
        key: Option<String>,
        context: Option<String>,
        bucket_key: Option<bool>,
    },
}

/// The largest encryption context accepted (base64), as AWS KMS bounds it.
const MAX_CONTEXT: usize = 8 * 1024;

/// Checks the SSE headers of a request. Customer-provided keys (SSE-C) are refused rather
/// than ignored: a client must never believe its key protects data it does not.
pub fn check_request(headers: &HeaderMap, usage: Use) -> Result<Requested, S3Error> {
    let h = |n: &str| {
        headers
            .get(n)
            .map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or("").trim())
    };
    let customer = headers.keys().any(|k| k.as_str().starts_with(TARGET.0));
    let kms_key = h("x-amz-server-side-encryption-aws-kms-key-id");
    let requested = match h("x-amz-server-side-encryption") {
        None => Requested::Default,
        Some(_) if usage == Use::Read => {
            return Err(S3Error::invalid_argument(
                "The x-amz-server-side-encryption header is not supported for this operation.",
            ))
        }
        Some(_) if customer => return Err(S3Error::invalid_argument(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        )),
        Some(v) => match algorithm(v)? {
            KMS => Requested::Kms {
                key: kms_key.map(str::to_string),
                context: h("x-amz-server-side-encryption-context")
                    .map(check_context)
                    .transpose()?,
                bucket_key: h("x-amz-server-side-encryption-bucket-key-enabled")
                    .map(|b| b.eq_ignore_ascii_case("true")),
            },
            alg if kms_key.is_some() => {
                return Err(S3Error::invalid_argument(format!(
                    "x-amz-server-side-encryption-aws-kms-key-id goes with aws:kms, not {alg}"
                )))
            }
            _ => Requested::S3,
        },
    };
    if kms_key.is_some() && !matches!(requested, Requested::Kms { .. }) {
        return Err(S3Error::invalid_argument(
            "x-amz-server-side-encryption-aws-kms-key-id needs x-amz-server-side-encryption: aws:kms",
        ));
    }
    Ok(requested)
}

/// An encryption context: the base64 of a JSON object of strings, bounded.
fn check_context(v: &str) -> Result<String, S3Error> {
    let bad = || {
        S3Error::invalid_argument("x-amz-server-side-encryption-context must be the base64 of a JSON object of strings")
    };
    if v.len() > MAX_CONTEXT {
        return Err(bad());
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(v).map_err(|_| bad())?;
    match serde_json::from_slice::<serde_json::Value>(&raw) {
        Ok(serde_json::Value::Object(m)) if m.values().all(|v| v.is_string()) => Ok(v.to_string()),
        _ => Err(bad()),
    }
}

/// The SSE-KMS key a write of `bucket`/`key` uses, if any: the one the request names, or the
/// bucket's default (for an `aws:kms` request without a key, or a request that names none).
/// Checked enabled in the bucket owner's tenant; each use is in the audit log.
pub fn kms_for_write(
    engine: &Engine,
    bucket: &str,
    tenant: &str,
    requested: &Requested,
    sse_c: bool,
) -> Result<Option<(KmsAttrs, String)>, S3Error> {
    let default = || -> Result<Option<EncryptionConfig>, S3Error> {
        Ok(engine
            .bucket_config::<EncryptionConfig>(bucket, BucketConfigKind::Encryption)?
            .filter(|c| c.algorithm == KMS))
    };
    let (key, context, bucket_key) = match requested {
        Requested::S3 => return Ok(None),
        Requested::Default if sse_c => return Ok(None),
        Requested::Default => match default()? {
            Some(c) => (c.kms_key_id.clone(), None, c.bucket_key_enabled),
            None => return Ok(None),
        },
        Requested::Kms {
            key,
            context,
            bucket_key,
        } => {
            let d = default()?;
            let key = key.clone().or_else(|| d.as_ref().and_then(|c| c.kms_key_id.clone()));
            let bucket_key = bucket_key.unwrap_or_else(|| d.is_some_and(|c| c.bucket_key_enabled));
            (key, context.clone(), bucket_key)
        }
    };
    let key = key.ok_or_else(|| {
        S3Error::invalid_argument(
            "aws:kms needs x-amz-server-side-encryption-aws-kms-key-id (or a bucket default key): Coffre has no AWS-managed key",
        )
    })?;
    let found = engine.kms_key_for_write(tenant, &key)?;
    Ok(Some((
        KmsAttrs {
            key_id: found.key_id,
            named: found.named,
            context,
            bucket_key,
        },
        found.arn,
    )))
}

/// What every object response says of its encryption.
pub fn echo(r: &mut Res) {
    set(r, "x-amz-server-side-encryption", ALGORITHM);
}

/// What a response says of an SSE-KMS object: the key as its writer named it by name, or its
/// ARN; the context only where S3 gives it (writes).
pub fn echo_kms(r: &mut Res, engine: &Engine, tenant: &str, k: &KmsAttrs, with_context: bool) {
    set(r, "x-amz-server-side-encryption", KMS);
    let id = match &k.named {
        Some(n) => n.clone(),
        None => engine.kms_key_arn(tenant, &k.key_id),
    };
    set(r, "x-amz-server-side-encryption-aws-kms-key-id", &id);
    if k.bucket_key {
        set(r, "x-amz-server-side-encryption-bucket-key-enabled", "true");
    }
    if let (true, Some(c)) = (with_context, &k.context) {
        set(r, "x-amz-server-side-encryption-context", c);
    }
}

/// What an object response says of its encryption: SSE-C (with the key's MD5), SSE-KMS or
/// SSE-S3.
pub fn echo_object(
    r: &mut Res,
    engine: &Engine,
    tenant: &str,
    given: Option<&GivenKey>,
    kms: Option<&KmsAttrs>,
    write: bool,
) {
    match (given, kms) {
        (None, Some(k)) => echo_kms(r, engine, tenant, k, write),
        _ => echo_for(r, given),
    }
}

/// Which SSE-C headers: those of the object written or read, or those of a copy's source.
pub struct KeyHeaders(&'static str);
pub const TARGET: KeyHeaders = KeyHeaders("x-amz-server-side-encryption-customer-");
pub const COPY_SOURCE: KeyHeaders = KeyHeaders("x-amz-copy-source-server-side-encryption-customer-");

/// A customer key as a request gave it, with the MD5 it is echoed by.
#[derive(Clone)]
pub struct GivenKey {
    pub key: CustomerKey,
    pub md5: String,
}

/// The SSE-C key a request gives (`…-algorithm`, `…-key`, `…-key-MD5`), checked as S3 checks
/// it. Over plain HTTP only when the operator allowed it: the key travels in the headers.
pub fn customer_key(
    headers: &HeaderMap,
    which: KeyHeaders,
    secure: bool,
    allow_http: bool,
) -> Result<Option<GivenKey>, S3Error> {
    let h = |n: &str| {
        headers
            .get(format!("{}{n}", which.0))
            .map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or("").trim().to_string())
    };
    let (alg, key, md5) = (h("algorithm"), h("key"), h("key-md5"));
    if alg.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    if !secure && !allow_http {
        return Err(S3Error::invalid_request(
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ));
    }
    let (Some(alg), Some(key), Some(md5)) = (alg, key, md5) else {
        return Err(S3Error::invalid_argument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key and its MD5.",
        ));
    };
    if alg != ALGORITHM {
        return Err(S3Error::invalid_argument(
            "The requested encryption algorithm is not valid, must be AES256.",
        ));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw: [u8; 32] = b64
        .decode(&key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| S3Error::invalid_argument("The secret key was invalid for the specified algorithm."))?;
    let digest: [u8; 16] = {
        use md5::Digest;
        md5::Md5::digest(raw).into()
    };
    let given_md5 = b64.decode(&md5).unwrap_or_default();
    if !crate::auth::constant_time_eq(&hex::encode(digest), &hex::encode(given_md5)) {
        return Err(S3Error::invalid_argument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    Ok(Some(GivenKey {
        key: CustomerKey::from_bytes(raw),
        md5: b64.encode(digest),
    }))
}

/// What an object response says of its encryption: SSE-C (with the key's MD5) or SSE-S3.
pub fn echo_for(r: &mut Res, key: Option<&GivenKey>) {
    match key {
        Some(k) => {
            set(r, "x-amz-server-side-encryption-customer-algorithm", ALGORITHM);
            set(r, "x-amz-server-side-encryption-customer-key-md5", &k.md5);
        }
        None => echo(r),
    }
}
