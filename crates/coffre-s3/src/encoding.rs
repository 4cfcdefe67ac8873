//! Percent-encoding as SigV4 and S3 use it, and query strings.

use crate::S3Error;

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

/// Decodes `%XX` escapes (`+` stays a plus, as S3 reads it).
pub fn percent_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

/// `a=1&b=2` → decoded pairs, in order.
pub fn parse_query(raw: &str) -> Result<Vec<(String, String)>, S3Error> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k =
                String::from_utf8(percent_decode(k)).map_err(|_| S3Error::invalid_argument("query is not UTF-8"))?;
            let v =
                String::from_utf8(percent_decode(v)).map_err(|_| S3Error::invalid_argument("query is not UTF-8"))?;
            Ok((k, v))
        })
        .collect()
}
