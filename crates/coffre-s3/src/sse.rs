//! Server-side encryption headers. Every object is encrypted at rest under the operator's
//! keys whatever the request says, which is what SSE-S3 (`AES256`) promises: requests asking
//! for it are accepted and every object answers it. There is no KMS to hold `aws:kms` keys.

use crate::http::{set, Res};
use crate::S3Error;
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
    let customer = headers.keys().any(|k| {
        let k = k.as_str();
        k.starts_with("x-amz-server-side-encryption-customer-")
            || k.starts_with("x-amz-copy-source-server-side-encryption-customer-")
    });
    if customer {
        return Err(S3Error::not_implemented(
            "Server-side encryption with customer-provided keys (SSE-C) is not implemented yet",
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
