//! Server-side encryption headers. Every object is encrypted at rest under the operator's
//! keys whatever the request says, which is what SSE-S3 (`AES256`) promises: requests asking
//! for it are accepted and every object answers it. There is no KMS to hold `aws:kms` keys.

use crate::http::{set, Res};
use crate::S3Error;
use base64::Engine as _;
use coffre_engine::CustomerKey;
use http::HeaderMap;

/// The algorithm every object is stored under.
pub const ALGORITHM: &str = "AES256";

/// An SSE algorithm a request or a bucket configuration names.
pub fn algorithm(v: &str) -> Result<&'static str, S3Error> {
    match v.trim() {
        "AES256" => Ok(ALGORITHM),
        "aws:kms" | "aws:kms:dsse" => Err(S3Error::not_implemented(
            "Server-side encryption with KMS keys is not available: objects are encrypted at rest under the operator's keys (AES256)",
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

/// Checks the SSE headers of a request. Customer-provided keys (SSE-C) are refused rather
/// than ignored: a client must never believe its key protects data it does not.
pub fn check_request(headers: &HeaderMap, usage: Use) -> Result<(), S3Error> {
    if let Some(v) = headers.get("x-amz-server-side-encryption") {
        if usage == Use::Read {
            return Err(S3Error::invalid_argument(
                "The x-amz-server-side-encryption header is not supported for this operation.",
            ));
        }
        let alg = algorithm(std::str::from_utf8(v.as_bytes()).unwrap_or(""))?;
        if headers.contains_key("x-amz-server-side-encryption-aws-kms-key-id") {
            return Err(S3Error::invalid_argument(format!(
                "x-amz-server-side-encryption-aws-kms-key-id goes with aws:kms, not {alg}"
            )));
        }
    }
    let customer = headers.keys().any(|k| k.as_str().starts_with(TARGET.0));
    if customer && headers.contains_key("x-amz-server-side-encryption") {
        return Err(S3Error::invalid_argument(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        ));
    }
    if headers.contains_key("x-amz-server-side-encryption-aws-kms-key-id") {
        return Err(S3Error::invalid_argument(
            "x-amz-server-side-encryption-aws-kms-key-id needs x-amz-server-side-encryption: aws:kms, which is not available",
        ));
    }
    Ok(())
}

/// What every object response says of its encryption.
pub fn echo(r: &mut Res) {
    set(r, "x-amz-server-side-encryption", ALGORITHM);
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
