//! AWS Signature Version 4: the Authorization header and presigned URLs.
//!
//! Key derivation and signatures are the `aws-sigv4` crate's primitives
//! (`generate_signing_key`, `calculate_signature`). What verification needs and the crate
//! does not offer is here: the canonical request rebuilt from the request as received (the
//! crate canonicalizes requests it is about to send, from its own types), the parsing of
//! credentials, the clock and expiry checks, the rule that every `x-amz-*` header must be
//! signed, and a constant-time compare. Secrets never reach a log line.

use crate::encoding::{percent_decode, uri_encode};
use crate::S3Error;
use coffre_types::time::parse_amz_date;
use http::HeaderMap;
use subtle::ConstantTimeEq;

pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// The SHA-256 of nothing: an empty body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const MAX_SKEW_SECS: i64 = 15 * 60;
const MAX_PRESIGN_SECS: i64 = 7 * 24 * 3600;
const SERVICE: &str = "s3";
/// Longest session token taken (`x-amz-security-token`).
const MAX_SESSION_TOKEN: usize = 4096;

/// Regions whose signatures are accepted.
pub fn accepted_region(region: &str, ours: &str) -> bool {
    region == ours || region == "us-east-1"
}

/// A SigV4 signing key (one day, one region, one service). Never printed.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// Derives the key from a secret for the credential scope's date (`YYYYMMDD`).
    pub fn derive(secret: &str, date: &str, region: &str, service: &str) -> Result<SigningKey, S3Error> {
        let t = parse_amz_date(&format!("{date}T000000Z"))
            .ok_or_else(|| S3Error::malformed_auth("the credential date is not YYYYMMDD"))?;
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
        let key = aws_sigv4::sign::v4::generate_signing_key(secret, time, region, service);
        Ok(SigningKey(key.as_ref().to_vec()))
    }

    pub fn sign(&self, string_to_sign: &str) -> String {
        aws_sigv4::sign::v4::calculate_signature(&self.0, string_to_sign.as_bytes())
    }
}

/// What a verified request may go on with: the key that signs its chunks, if it streams.
#[derive(Clone)]
pub struct Verified {
    pub access_key: String,
    pub payload: String,
    pub signing_key: SigningKey,
    pub amz_date: String,
    pub scope: String,
    pub seed_signature: String,
    /// Signed in the query string (a presigned URL) rather than a header.
    pub presigned: bool,
}

/// Where signatures find secrets: an access key (with the session token of temporary
/// credentials, if the request carries one) gives its secret and who it is, or the S3 error
/// that refuses it (unknown, disabled, expired).
pub trait Credentials {
    type Identity;
    fn lookup(&self, access_key: &str, session_token: Option<&str>) -> Result<(String, Self::Identity), S3Error>;
}

fn sha256_hex(d: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, d))
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The parts of a request that SigV4 covers.
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
}

struct Auth {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    presigned: bool,
}

impl Auth {
    fn scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

fn query_pairs(raw: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), Vec::new()),
        })
        .collect()
}

/// `AKID/date/region/service/aws4_request` → (access key, date, region, service).
fn parse_credential(c: &str) -> Result<(String, String, String, String), S3Error> {
    let parts: Vec<&str> = c.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return Err(S3Error::malformed_auth(
            "The credential must be AKID/date/region/s3/aws4_request",
        ));
    }
    Ok((
        parts[0].to_string(),
        parts[1].to_string(),
        parts[2].to_string(),
        parts[3].to_string(),
    ))
}

fn header_str<'a>(h: &'a HeaderMap, n: &str) -> Option<&'a str> {
    h.get(n).and_then(|v| v.to_str().ok())
}

/// The signature's claims, from the Authorization header or the presigned query. `now` (Unix
/// seconds) bounds a presigned URL's validity.
fn parse_auth(req: &RequestParts<'_>, now: i64) -> Result<Option<Auth>, S3Error> {
    if let Some(a) = header_str(req.headers, "authorization") {
        let rest = a
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or_else(|| S3Error::invalid_argument("Only AWS4-HMAC-SHA256 signatures are supported"))?;
        let (mut cred, mut sh, mut sig) = (None, None, None);
        for f in rest.split(',') {
            let f = f.trim();
            if let Some(v) = f.strip_prefix("Credential=") {
                cred = Some(v);
            } else if let Some(v) = f.strip_prefix("SignedHeaders=") {
                sh = Some(v);
            } else if let Some(v) = f.strip_prefix("Signature=") {
                sig = Some(v);
            }
        }
        let (Some(cred), Some(sh), Some(sig)) = (cred, sh, sig) else {
            return Err(S3Error::malformed_auth(
                "Authorization needs Credential, SignedHeaders and Signature",
            ));
        };
        let (access_key, date, region, service) = parse_credential(cred)?;
        let amz_date = header_str(req.headers, "x-amz-date")
            .map(str::to_string)
            .ok_or_else(|| S3Error::access_denied("x-amz-date header is required"))?;
        return Ok(Some(Auth {
            access_key,
            date,
            region,
            service,
            signed_headers: sh.split(';').map(str::to_string).collect(),
            signature: sig.to_string(),
            amz_date,
            presigned: false,
        }));
    }
    let q = query_pairs(req.raw_query);
    let get = |n: &str| {
        q.iter()
            .find(|(k, _)| k == n.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let Some(alg) = get("X-Amz-Algorithm") else {
        return Ok(None);
    };
    if alg != "AWS4-HMAC-SHA256" {
        return Err(S3Error::invalid_argument(
            "Only AWS4-HMAC-SHA256 presigned URLs are supported",
        ));
    }
    let (Some(cred), Some(amz_date), Some(expires), Some(sh), Some(sig)) = (
        get("X-Amz-Credential"),
        get("X-Amz-Date"),
        get("X-Amz-Expires"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Signature"),
    ) else {
        return Err(S3Error::malformed_auth(
            "A presigned URL needs X-Amz-Credential, -Date, -Expires, -SignedHeaders, -Signature",
        ));
    };
    let expires: i64 = expires
        .parse()
        .map_err(|_| S3Error::invalid_argument("X-Amz-Expires must be a number"))?;
    if !(1..=MAX_PRESIGN_SECS).contains(&expires) {
        return Err(S3Error::invalid_argument(
            "X-Amz-Expires must be between 1 and 604800 seconds",
        ));
    }
    let t = parse_amz_date(&amz_date).ok_or_else(|| S3Error::malformed_auth("X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?;
    if now > t.saturating_add(expires) {
        return Err(S3Error::access_denied("Request has expired"));
    }
    if t.saturating_sub(now) > MAX_SKEW_SECS {
        return Err(S3Error::time_skewed("The request time is too far in the future"));
    }
    let (access_key, date, region, service) = parse_credential(&cred)?;
    Ok(Some(Auth {
        access_key,
        date,
        region,
        service,
        signed_headers: sh.split(';').map(str::to_string).collect(),
        signature: sig,
        amz_date,
        presigned: true,
    }))
}

/// The canonical request of the request as received. S3 neither normalizes the path (`a/../b`
/// and `b` are different keys) nor encodes it twice.
fn canonical_request(req: &RequestParts<'_>, auth: &Auth, payload: &str) -> Result<String, S3Error> {
    let path = uri_encode(&percent_decode(req.raw_path), true);
    let mut q: Vec<(String, String)> = query_pairs(req.raw_query)
        .into_iter()
        .filter(|(k, _)| !(auth.presigned && k == b"X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    q.sort();
    let query = q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut headers = String::new();
    for name in &auth.signed_headers {
        // Raw bytes: user metadata may hold UTF-8, which `to_str` refuses.
        let values: Vec<String> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if values.is_empty() && name != "host" {
            return Err(S3Error::signature_mismatch(format!("Signed header {name} is missing")));
        }
        let joined = values
            .iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(",");
        headers.push_str(&format!("{name}:{joined}\n"));
    }
    Ok(format!(
        "{}\n{path}\n{query}\n{headers}\n{}\n{payload}",
        req.method,
        auth.signed_headers.join(";")
    ))
}

fn string_to_sign(auth: &Auth, canonical: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        auth.amz_date,
        auth.scope(),
        sha256_hex(canonical.as_bytes())
    )
}

/// Headers whose presence changes what a request does: they must be signed, or anyone holding
/// a presigned URL or replaying a request could add them (AWS answers the same).
fn must_be_signed(name: &str) -> bool {
    name.starts_with("x-amz-") || name == "content-md5"
}

/// Verifies an S3 request's signature. `Ok(None)`: the request is anonymous.
pub fn verify<C: Credentials + ?Sized>(
    req: &RequestParts<'_>,
    creds: &C,
    our_region: &str,
) -> Result<Option<(Verified, C::Identity)>, S3Error> {
    verify_for(req, creds, our_region, SERVICE, None)
}

/// The session token of temporary credentials, from the header or a presigned query.
fn session_token(req: &RequestParts<'_>) -> Result<Option<String>, S3Error> {
    let t = match header_str(req.headers, "x-amz-security-token") {
        Some(t) => Some(t.to_string()),
        None => query_pairs(req.raw_query)
            .into_iter()
            .find(|(k, _)| k == b"X-Amz-Security-Token")
            .map(|(_, v)| String::from_utf8_lossy(&v).into_owned()),
    };
    if t.as_ref().is_some_and(|t| t.len() > MAX_SESSION_TOKEN) {
        return Err(S3Error::invalid_token(
            "The provided token is malformed or otherwise invalid.",
        ));
    }
    Ok(t)
}

/// Verifies a request signed for `service` (`s3`, or `iam` and `sts` for the query APIs,
/// whose clients send no `x-amz-content-sha256`: `body_sha256` is then the hash of the body
/// as received).
pub fn verify_for<C: Credentials + ?Sized>(
    req: &RequestParts<'_>,
    creds: &C,
    our_region: &str,
    service: &str,
    body_sha256: Option<&str>,
) -> Result<Option<(Verified, C::Identity)>, S3Error> {
    let now = coffre_types::now_millis() as i64 / 1000;
    let Some(auth) = parse_auth(req, now)? else {
        return Ok(None);
    };
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(S3Error::malformed_auth("SignedHeaders must include host"));
    }
    if auth.service != service {
        return Err(S3Error::malformed_auth(format!(
            "the credential's service is '{}'; expecting '{service}'",
            auth.service
        )));
    }
    if !accepted_region(&auth.region, our_region) {
        return Err(S3Error::malformed_auth(format!(
            "the region '{}' is wrong; expecting '{our_region}'",
            auth.region
        )));
    }
    let t =
        parse_amz_date(&auth.amz_date).ok_or_else(|| S3Error::access_denied("x-amz-date is not YYYYMMDDTHHMMSSZ"))?;
    if !auth.amz_date.starts_with(&auth.date) {
        return Err(S3Error::malformed_auth("The credential date does not match x-amz-date"));
    }
    if !auth.presigned && now.saturating_sub(t).saturating_abs() > MAX_SKEW_SECS {
        return Err(S3Error::time_skewed(
            "The difference between the request time and the server's time is too large",
        ));
    }
    let unsigned: Vec<&str> = req
        .headers
        .keys()
        .map(|n| n.as_str())
        .filter(|n| must_be_signed(n) && !auth.signed_headers.iter().any(|s| s == n))
        .collect();
    if !unsigned.is_empty() {
        return Err(S3Error::access_denied(format!(
            "There were headers present in the request which were not signed: {}",
            unsigned.join(", ")
        )));
    }
    let (secret, identity) = creds.lookup(&auth.access_key, session_token(req)?.as_deref())?;
    let payload = match (header_str(req.headers, "x-amz-content-sha256"), body_sha256) {
        // A body read whole before the check (the query APIs): what is signed must be what
        // was received, whatever a header claims.
        (Some(claimed), Some(actual)) if claimed != actual => {
            return Err(S3Error::sha256_mismatch(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ))
        }
        (_, Some(actual)) if auth.presigned && actual != EMPTY_SHA256 => {
            return Err(S3Error::invalid_request(
                "A presigned query-API call carries its parameters in its URL, not in a body",
            ))
        }
        (_, Some(_)) if auth.presigned => UNSIGNED_PAYLOAD.to_string(),
        (_, Some(actual)) => actual.to_string(),
        (Some(p), None) => p.to_string(),
        (None, None) if auth.presigned => UNSIGNED_PAYLOAD.to_string(),
        (None, None) => {
            return Err(S3Error::invalid_request(
                "Missing required header for this request: x-amz-content-sha256",
            ))
        }
    };
    let canonical = canonical_request(req, &auth, &payload)?;
    let key = SigningKey::derive(&secret, &auth.date, &auth.region, service)?;
    let expected = key.sign(&string_to_sign(&auth, &canonical));
    if !constant_time_eq(&expected, &auth.signature.to_ascii_lowercase()) {
        return Err(S3Error::signature_mismatch(
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    Ok(Some((
        Verified {
            scope: auth.scope(),
            access_key: auth.access_key,
            payload,
            signing_key: key,
            amz_date: auth.amz_date,
            seed_signature: expected,
            presigned: auth.presigned,
        },
        identity,
    )))
}

/// The signature fields of a POST Object form, by lower-case name.
pub struct PostSignature<'a> {
    /// The base64 policy document, as the form holds it (what is signed).
    pub policy: &'a str,
    pub field: &'a dyn Fn(&str) -> Option<&'a str>,
}

/// Verifies a POST Object form's signature over its policy: SigV4 (`x-amz-algorithm`,
/// `x-amz-credential`, `x-amz-date`, `x-amz-signature`), or the older HMAC-SHA1 signature
/// (`AWSAccessKeyId`, `signature`) that SDKs and tests still send. Returns who signed it.
/// `Ok(None)`: the form is not signed (anonymous).
pub fn verify_post<C: Credentials + ?Sized>(
    form: &PostSignature<'_>,
    creds: &C,
    our_region: &str,
) -> Result<Option<C::Identity>, S3Error> {
    let f = form.field;
    let token = f("x-amz-security-token");
    if let Some(sig) = f("x-amz-signature") {
        if f("x-amz-algorithm") != Some("AWS4-HMAC-SHA256") {
            return Err(S3Error::invalid_argument("x-amz-algorithm must be AWS4-HMAC-SHA256"));
        }
        let cred = f("x-amz-credential").ok_or_else(|| S3Error::invalid_argument("the form needs x-amz-credential"))?;
        let amz_date = f("x-amz-date").ok_or_else(|| S3Error::invalid_argument("the form needs x-amz-date"))?;
        let (access_key, date, region, service) = parse_credential(cred)?;
        if service != SERVICE || !accepted_region(&region, our_region) {
            return Err(S3Error::malformed_auth(format!(
                "the credential scope must be {our_region}/s3"
            )));
        }
        if !amz_date.starts_with(&date) || parse_amz_date(amz_date).is_none() {
            return Err(S3Error::malformed_auth("The credential date does not match x-amz-date"));
        }
        let (secret, who) = creds.lookup(&access_key, token)?;
        let expected = SigningKey::derive(&secret, &date, &region, SERVICE)?.sign(form.policy);
        if !constant_time_eq(&expected, &sig.to_ascii_lowercase()) {
            return Err(S3Error::signature_mismatch(
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ));
        }
        return Ok(Some(who));
    }
    if let (Some(access_key), Some(sig)) = (f("awsaccesskeyid"), f("signature")) {
        let (secret, who) = creds.lookup(access_key, token)?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
        let mac = ring::hmac::sign(&key, form.policy.as_bytes());
        use base64::Engine as _;
        let expected = base64::engine::general_purpose::STANDARD.encode(mac.as_ref());
        if !constant_time_eq(&expected, sig.trim()) {
            return Err(S3Error::signature_mismatch(
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ));
        }
        return Ok(Some(who));
    }
    Ok(None)
}

impl Verified {
    /// Signature of one aws-chunked chunk, chained from the previous one.
    pub fn chunk_signature(&self, previous: &str, chunk_sha256_hex: &str) -> String {
        self.signing_key.sign(&format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{}\n{chunk_sha256_hex}",
            self.amz_date,
            self.scope,
            sha256_hex(b"")
        ))
    }

    /// Signature of the trailing headers of an aws-chunked body.
    pub fn trailer_signature(&self, previous: &str, trailer: &str) -> String {
        self.signing_key.sign(&format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{previous}\n{}",
            self.amz_date,
            self.scope,
            sha256_hex(trailer.as_bytes())
        ))
    }
}

#[cfg(test)]
mod tests;
