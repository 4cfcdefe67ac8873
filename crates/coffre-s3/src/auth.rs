//! AWS Signature Version 4: the Authorization header and presigned URLs. Signatures are
//! compared in constant time; secrets never reach a log line.

use crate::S3Error;
use coffre_types::time::parse_amz_date;
use http::HeaderMap;
use ring::hmac;
use subtle::ConstantTimeEq;

pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const MAX_SKEW_SECS: i64 = 15 * 60;
const MAX_PRESIGN_SECS: i64 = 7 * 24 * 3600;

/// Regions whose signatures are accepted.
pub fn accepted_region(region: &str, ours: &str) -> bool {
    region == ours || region == "us-east-1"
}

/// What a verified request may go on with: the key that signs its chunks, if it streams.
#[derive(Clone)]
pub struct Verified {
    pub access_key: String,
    pub payload: String,
    pub signing_key: hmac::Key,
    pub amz_date: String,
    pub scope: String,
    pub seed_signature: String,
}

pub trait Credentials {
    fn secret_for(&self, access_key: &str) -> Option<String>;
}

/// AWS's URI encoding: everything but `A-Za-z0-9-_.~` (and `/` in paths) as `%XX`.
pub fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut o = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

pub fn percent_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

fn sha256_hex(d: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, d))
}

pub fn signing_key(secret: &str, date: &str, region: &str) -> hmac::Key {
    let mut k = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes()),
        date.as_bytes(),
    );
    for part in [region, "s3", "aws4_request"] {
        k = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()), part.as_bytes());
    }
    hmac::Key::new(hmac::HMAC_SHA256, k.as_ref())
}

pub fn sign_hex(key: &hmac::Key, data: &str) -> String {
    hex::encode(hmac::sign(key, data.as_bytes()))
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
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    presigned: bool,
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

fn parse_credential(c: &str) -> Result<(String, String, String), S3Error> {
    let parts: Vec<&str> = c.split('/').collect();
    if parts.len() != 5 || parts[3] != "s3" || parts[4] != "aws4_request" {
        return Err(S3Error::malformed_auth(
            "The credential must be AKID/date/region/s3/aws4_request",
        ));
    }
    Ok((parts[0].to_string(), parts[1].to_string(), parts[2].to_string()))
}

fn header_str<'a>(h: &'a HeaderMap, n: &str) -> Option<&'a str> {
    h.get(n).and_then(|v| v.to_str().ok())
}

fn parse_auth(req: &RequestParts<'_>) -> Result<Option<Auth>, S3Error> {
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
        let (access_key, date, region) = parse_credential(cred)?;
        let amz_date = header_str(req.headers, "x-amz-date")
            .map(str::to_string)
            .ok_or_else(|| S3Error::access_denied("x-amz-date header is required"))?;
        return Ok(Some(Auth {
            access_key,
            date,
            region,
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
    let now = coffre_types::now_millis() as i64 / 1000;
    if now > t + expires {
        return Err(S3Error::access_denied("Request has expired"));
    }
    if t - now > MAX_SKEW_SECS {
        return Err(S3Error::time_skewed("The request time is too far in the future"));
    }
    let (access_key, date, region) = parse_credential(&cred)?;
    Ok(Some(Auth {
        access_key,
        date,
        region,
        signed_headers: sh.split(';').map(str::to_string).collect(),
        signature: sig,
        amz_date,
        presigned: true,
    }))
}

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

/// Verifies the request's signature. `Ok(None)`: the request is anonymous.
pub fn verify(req: &RequestParts<'_>, creds: &dyn Credentials, our_region: &str) -> Result<Option<Verified>, S3Error> {
    let Some(auth) = parse_auth(req)? else {
        return Ok(None);
    };
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(S3Error::malformed_auth("SignedHeaders must include host"));
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
    if !auth.presigned {
        let now = coffre_types::now_millis() as i64 / 1000;
        if (now - t).abs() > MAX_SKEW_SECS {
            return Err(S3Error::time_skewed(
                "The difference between the request time and the server's time is too large",
            ));
        }
    }
    let secret = creds.secret_for(&auth.access_key).ok_or_else(|| {
        S3Error::invalid_access_key("The AWS Access Key Id you provided does not exist in our records")
    })?;
    let payload = match header_str(req.headers, "x-amz-content-sha256") {
        Some(p) => p.to_string(),
        None if auth.presigned => UNSIGNED_PAYLOAD.to_string(),
        None => {
            return Err(S3Error::invalid_request(
                "Missing required header for this request: x-amz-content-sha256",
            ))
        }
    };
    let canonical = canonical_request(req, &auth, &payload)?;
    let scope = format!("{}/{}/s3/aws4_request", auth.date, auth.region);
    let sts = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        auth.amz_date,
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(&secret, &auth.date, &auth.region);
    let expected = sign_hex(&key, &sts);
    if !constant_time_eq(&expected, &auth.signature.to_ascii_lowercase()) {
        return Err(S3Error::signature_mismatch(
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    Ok(Some(Verified {
        access_key: auth.access_key,
        payload,
        signing_key: key,
        amz_date: auth.amz_date,
        scope,
        seed_signature: expected,
    }))
}

impl Verified {
    /// Signature of one aws-chunked chunk, chained from the previous one.
    pub fn chunk_signature(&self, previous: &str, chunk_sha256_hex: &str) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{}\n{chunk_sha256_hex}",
            self.amz_date,
            self.scope,
            sha256_hex(b"")
        );
        sign_hex(&self.signing_key, &sts)
    }

    /// Signature of the trailing headers of an aws-chunked body.
    pub fn trailer_signature(&self, previous: &str, trailer: &str) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{previous}\n{}",
            self.amz_date,
            self.scope,
            sha256_hex(trailer.as_bytes())
        );
        sign_hex(&self.signing_key, &sts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One;
    impl Credentials for One {
        fn secret_for(&self, a: &str) -> Option<String> {
            (a == "AKIAIOSFODNN7EXAMPLE").then(|| "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string())
        }
    }

    /// The GET-object example of AWS's SigV4 documentation for S3.
    #[test]
    fn aws_documented_example() {
        let mut h = HeaderMap::new();
        h.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        h.insert("range", "bytes=0-9".parse().unwrap());
        h.insert(
            "x-amz-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse()
                .unwrap(),
        );
        h.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        let canonical_expected = "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let req = RequestParts {
            method: "GET",
            raw_path: "/test.txt",
            raw_query: "",
            headers: &h,
        };
        let auth = Auth {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            date: "20130524".into(),
            region: "us-east-1".into(),
            signed_headers: vec![
                "host".into(),
                "range".into(),
                "x-amz-content-sha256".into(),
                "x-amz-date".into(),
            ],
            signature: String::new(),
            amz_date: "20130524T000000Z".into(),
            presigned: false,
        };
        let c = canonical_request(
            &req,
            &auth,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .unwrap();
        assert_eq!(c, canonical_expected);
        let key = signing_key(
            &One.secret_for("AKIAIOSFODNN7EXAMPLE").unwrap(),
            "20130524",
            "us-east-1",
        );
        let sts = format!(
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n{}",
            sha256_hex(c.as_bytes())
        );
        assert_eq!(
            sign_hex(&key, &sts),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        // The clock check rejects this 2013 request.
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41".parse().unwrap(),
        );
        let req = RequestParts {
            method: "GET",
            raw_path: "/test.txt",
            raw_query: "",
            headers: &h,
        };
        assert_eq!(verify(&req, &One, "fr-par").err().unwrap().code, "RequestTimeTooSkewed");
    }

    #[test]
    fn uri_encoding() {
        assert_eq!(uri_encode(b"a b/c~d+e", true), "a%20b/c~d%2Be");
        assert_eq!(uri_encode("é".as_bytes(), false), "%C3%A9");
    }
}
