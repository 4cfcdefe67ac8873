//! POST Object: the browser form upload (`multipart/form-data`). The form carries its own
//! authentication, a policy document signed with the uploader's secret, whose conditions
//! bound every other field of the form and the file's size.
//!
//! Fields before the file are read into memory (at most `MAX_PRE_DATA` bytes together, as
//! S3 bounds them); the file is streamed into the same encrypted, erasure-coded write
//! path as a PUT, its size bounded while it streams and its checksum verified before the
//! commit. Fields after the file are ignored, as S3 does.

use crate::auth::{self, PostSignature};
use crate::body::BodyReader;
use crate::context::Gateway;
use crate::http::{set, status, xml_response, Res};
use crate::xml::Xml;
use crate::S3Error;
use bytes::Bytes;
use coffre_engine::checksum::{Algorithm, Checksummer};
use coffre_engine::{BodyInfo, NewObject, SealedAttrs, VerifiedChecksum, WriteCondition};
use coffre_types::limits::{MAX_KEY_LEN, MAX_USER_META};
use futures_util::Stream;
use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use std::sync::Arc;

/// A form field before the file (the policy is the largest: S3 allows 20 KB of fields).
const MAX_FIELD: u64 = 20 * 1024;
const MAX_FIELDS: usize = 100;
/// All the fields before the file together (S3's limit too): what an unauthenticated form
/// makes the gateway hold before its signature can be checked.
const MAX_PRE_DATA: usize = 20 * 1024;

/// Whether a request is a form upload: a POST of `multipart/form-data` on a bucket.
pub fn is_form_upload(method: &http::Method, headers: &HeaderMap, key: &str, raw_query: &str) -> bool {
    method == http::Method::POST
        && key.is_empty()
        && raw_query.is_empty()
        && headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

fn malformed(why: impl std::fmt::Display) -> S3Error {
    S3Error::malformed_post(format!(
        "The body of your POST request is not well-formed multipart/form-data: {why}"
    ))
}

fn from_multer(e: multer::Error) -> S3Error {
    use multer::Error as M;
    match e {
        M::FieldSizeExceeded { .. } => {
            S3Error::max_pre_data("Your POST request fields preceding the upload file were too large.")
        }
        M::StreamSizeExceeded { .. } => {
            S3Error::entity_too_large("Your proposed upload exceeds the maximum allowed size")
        }
        M::StreamReadFailed(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => crate::error::from_body_error(*io),
            Err(other) => S3Error::incomplete_body(format!("reading the form failed: {other}")),
        },
        other => malformed(other),
    }
}

/// The form's fields, in order, names as sent.
struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Fields no policy condition needs to name.
fn exempt(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "policy" | "x-amz-signature" | "signature" | "awsaccesskeyid" | "file"
    ) || n.starts_with("x-ignore-")
}

/// ISO 8601 (`2026-12-02T14:00:00Z`, `…:00.000Z`) → Unix seconds.
fn parse_expiration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once('T')?;
    let time = rest.strip_suffix('Z')?;
    let time = time.split_once('.').map_or(time, |(t, _)| t);
    let compact = format!("{}T{}Z", date.replace('-', ""), time.replace(':', ""));
    coffre_types::time::parse_amz_date(&compact)
}

/// A policy document's conditions, checked against the form.
#[derive(Debug)]
struct Policy {
    conditions: Vec<Condition>,
}

#[derive(Debug)]
enum Condition {
    Eq(String, String),
    StartsWith(String, String),
    LengthRange(u64, u64),
}

impl Condition {
    fn describe(&self) -> String {
        match self {
            Condition::Eq(f, v) => format!("[\"eq\", \"${f}\", \"{v}\"]"),
            Condition::StartsWith(f, v) => format!("[\"starts-with\", \"${f}\", \"{v}\"]"),
            Condition::LengthRange(a, b) => format!("[\"content-length-range\", {a}, {b}]"),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Condition::Eq(f, _) | Condition::StartsWith(f, _) => Some(f),
            Condition::LengthRange(..) => None,
        }
    }
}

fn policy_error(why: impl std::fmt::Display) -> S3Error {
    S3Error::access_denied(format!("Invalid according to Policy: {why}"))
}

fn invalid_policy(why: &str) -> S3Error {
    S3Error::invalid_policy(format!("Invalid Policy: {why}"))
}

/// Decodes and parses the policy; `now` (Unix seconds) against its expiration.
fn parse_policy(b64: &str, now: i64) -> Result<Policy, S3Error> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| invalid_policy("the policy is not base64"))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&raw).map_err(|e| invalid_policy(&format!("the policy is not JSON: {e}")))?;
    let expiration = doc
        .get("expiration")
        .and_then(|e| e.as_str())
        .ok_or_else(|| invalid_policy("Policy missing expiration."))?;
    let expires = parse_expiration(expiration).ok_or_else(|| invalid_policy("Invalid 'expiration' value."))?;
    if now > expires {
        return Err(policy_error("Policy expired."));
    }
    let list = doc
        .get("conditions")
        .and_then(|c| c.as_array())
        .ok_or_else(|| invalid_policy("Policy missing conditions."))?;
    let text = |v: &serde_json::Value| -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let field_name = |v: &serde_json::Value| -> Result<String, S3Error> {
        v.as_str()
            .and_then(|s| s.strip_prefix('$'))
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| invalid_policy("a condition names its field as \"$field\""))
    };
    let mut conditions = Vec::with_capacity(list.len());
    for c in list {
        match c {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let v = text(v).ok_or_else(|| invalid_policy("a condition's value is a string"))?;
                    conditions.push(Condition::Eq(k.to_ascii_lowercase(), v));
                }
            }
            serde_json::Value::Array(a) if a.len() == 3 => {
                let op = a[0].as_str().unwrap_or("").to_ascii_lowercase();
                match op.as_str() {
                    "eq" | "starts-with" => {
                        let f = field_name(&a[1])?;
                        let v = text(&a[2]).ok_or_else(|| invalid_policy("a condition's value is a string"))?;
                        conditions.push(if op == "eq" {
                            Condition::Eq(f, v)
                        } else {
                            Condition::StartsWith(f, v)
                        });
                    }
                    "content-length-range" => {
                        let n = |v: &serde_json::Value| {
                            v.as_u64()
                                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                                .ok_or_else(|| invalid_policy("content-length-range takes two non-negative integers"))
                        };
                        conditions.push(Condition::LengthRange(n(&a[1])?, n(&a[2])?));
                    }
                    _ => return Err(invalid_policy(&format!("Invalid condition operator: {op}"))),
                }
            }
            _ => return Err(invalid_policy("a condition is an object or a 3-element array")),
        }
    }
    Ok(Policy { conditions })
}

impl Policy {
    /// Every condition holds, and every field of the form is named by one.
    fn check(&self, form: &Form, bucket: &str) -> Result<(u64, u64), S3Error> {
        let value = |f: &str| -> String {
            if f == "bucket" {
                return bucket.to_string();
            }
            form.get(f).unwrap_or("").to_string()
        };
        let mut range = (0u64, u64::MAX);
        for c in &self.conditions {
            let ok = match c {
                Condition::Eq(f, v) => value(f) == *v,
                // Content-Type may list several values: each must start so.
                Condition::StartsWith(f, v) if f == "content-type" => {
                    value(f).split(',').all(|t| t.trim_start().starts_with(v.as_str()))
                }
                Condition::StartsWith(f, v) => value(f).starts_with(v.as_str()),
                Condition::LengthRange(a, b) => {
                    range = (range.0.max(*a), range.1.min(*b));
                    true
                }
            };
            if !ok {
                return Err(policy_error(format!("Policy Condition failed: {}", c.describe())));
            }
        }
        let extra: Vec<&str> = form
            .fields
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !exempt(k))
            .filter(|k| {
                !self
                    .conditions
                    .iter()
                    .any(|c| c.field() == Some(&k.to_ascii_lowercase()))
            })
            .collect();
        if !extra.is_empty() {
            return Err(policy_error(format!("Extra input fields: {}", extra.join(", "))));
        }
        Ok(range)
    }
}

/// The object's attributes from the form, as a PUT takes them from its headers.
fn attrs_of(form: &Form) -> Result<SealedAttrs, S3Error> {
    let mut a = SealedAttrs::default();
    for h in crate::object::STORED_HEADERS {
        if let Some(v) = form.get(h) {
            a.headers.push((h.to_string(), v.to_string()));
        }
    }
    let mut meta_len = 0usize;
    for (k, v) in &form.fields {
        let lower = k.to_ascii_lowercase();
        if let Some(m) = lower.strip_prefix("x-amz-meta-") {
            meta_len = meta_len.saturating_add(m.len() + v.len());
            a.user_meta.push((m.to_string(), v.clone()));
        }
    }
    if meta_len > MAX_USER_META {
        return Err(S3Error::metadata_too_large(
            "Your metadata headers exceed the maximum allowed metadata size (2 KB)",
        ));
    }
    if let Some(t) = form.get("tagging") {
        a.tags = crate::object::parse_tagging(t.as_bytes())?;
    }
    Ok(a)
}

/// The file field as a body stream: its size kept within `range` and its checksum (if the
/// form gives one) verified; any failure is the stream's last item, so nothing commits.
fn file_stream(
    field: multer::Field<'static>,
    range: (u64, u64),
    checksum: Option<(Algorithm, String)>,
    slot: VerifiedChecksum,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
    struct St {
        field: multer::Field<'static>,
        seen: u64,
        range: (u64, u64),
        sum: Option<(Checksummer, String)>,
        slot: VerifiedChecksum,
        done: bool,
    }
    let st = St {
        field,
        seen: 0,
        range,
        sum: checksum.map(|(a, v)| (Checksummer::new(a), v)),
        slot,
        done: false,
    };
    let io = |e: S3Error| std::io::Error::other(e);
    Box::pin(futures_util::stream::unfold(st, move |mut st| async move {
        if st.done {
            return None;
        }
        match st.field.chunk().await {
            Ok(Some(b)) => {
                st.seen = st.seen.saturating_add(b.len() as u64);
                if st.seen > st.range.1 {
                    st.done = true;
                    return Some((
                        Err(io(S3Error::entity_too_large(
                            "Your proposed upload exceeds the maximum allowed size",
                        ))),
                        st,
                    ));
                }
                if let Some((c, _)) = &mut st.sum {
                    c.update(&b);
                }
                Some((Ok(b), st))
            }
            Ok(None) => {
                st.done = true;
                if st.seen < st.range.0 {
                    return Some((
                        Err(io(S3Error::entity_too_small(
                            "Your proposed upload is smaller than the minimum allowed size",
                        ))),
                        st,
                    ));
                }
                if let Some((c, expected)) = st.sum.take() {
                    if let Err(e) = crate::body::settle_checksum(c, Some(&expected), &st.slot) {
                        return Some((Err(io(e)), st));
                    }
                }
                None
            }
            Err(e) => {
                st.done = true;
                Some((Err(io(from_multer(e))), st))
            }
        }
    }))
}

/// Handles a form upload on `bucket`.
pub async fn post_object(
    gw: Arc<Gateway>,
    headers: &HeaderMap,
    bucket: &str,
    body: Incoming,
    origin: crate::context::Origin,
    trail: &mut crate::audit::Trail,
) -> Result<Res, S3Error> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|e| malformed(format!("{e}")))?;
    let engine = gw.engine.clone();
    let brec = engine.bucket(bucket)?;
    let max_put = gw.config.max_put;
    // The body as the form's transport: length and slowness bounded like any body; none of
    // the request's checksum headers apply to it.
    let mut plain = HeaderMap::new();
    if let Some(l) = headers.get("content-length") {
        plain.insert("content-length", l.clone());
    }
    let (reader, _) = BodyReader::new(
        body,
        &plain,
        None,
        max_put.saturating_add(1 << 20),
        gw.config.body_limits,
    )?;
    let limits = multer::SizeLimit::new()
        .whole_stream(max_put.saturating_add(1 << 20))
        .per_field(MAX_FIELD)
        .for_field("file", max_put);
    let mut mp = multer::Multipart::with_constraints(
        reader.into_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut form = Form { fields: Vec::new() };
    let mut pre_data = 0usize;
    let file = loop {
        let field = mp
            .next_field()
            .await
            .map_err(from_multer)?
            .ok_or_else(|| S3Error::invalid_argument("POST requires exactly one file upload per request."))?;
        let name = field.name().unwrap_or("").to_string();
        if name.eq_ignore_ascii_case("file") {
            break field;
        }
        if form.fields.len() >= MAX_FIELDS {
            return Err(S3Error::max_pre_data(
                "Your POST request fields preceding the upload file were too large.",
            ));
        }
        let value = field.text().await.map_err(from_multer)?;
        // One value per field: the one the policy checks is the one stored.
        if form.get(&name).is_some() {
            return Err(S3Error::invalid_argument(format!(
                "The form field '{name}' is given more than once"
            )));
        }
        pre_data = pre_data.saturating_add(name.len() + value.len());
        if pre_data > MAX_PRE_DATA {
            return Err(S3Error::max_pre_data(
                "Your POST request fields preceding the upload file were too large.",
            ));
        }
        form.fields.push((name, value));
    };
    let filename = file.file_name().unwrap_or("").to_string();

    // Who signed it, and what the policy allows.
    let policy_b64 = form.get("policy").unwrap_or("").to_string();
    let lookup = |n: &str| form.get(n);
    let signer = auth::verify_post(
        &PostSignature {
            policy: &policy_b64,
            field: &lookup,
        },
        gw.iam.as_ref(),
        &gw.config.region,
    )?;
    let key_field = form.get("key").ok_or_else(|| {
        S3Error::invalid_argument(
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
        )
    })?;
    let key = key_field.replace("${filename}", &filename);
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(S3Error::key_too_long("A key is 1 to 1024 bytes"));
    }
    // A signed form is its signer's PutObject; an unsigned one is anonymous, allowed only
    // where the bucket's policy lets everyone write (and then bounded by nothing but it).
    let range = match &signer {
        Some(_) => {
            if policy_b64.is_empty() {
                return Err(S3Error::invalid_argument("A signed POST form needs a policy field"));
            }
            let now = coffre_types::now_millis() as i64 / 1000;
            parse_policy(&policy_b64, now)?.check(&form, bucket)?
        }
        None => (0, gw.config.max_put),
    };
    let caller = signer.unwrap_or_else(coffre_iam::Caller::anonymous);
    // The entry names who signed the form and the key it writes.
    let access_key = form
        .get("x-amz-credential")
        .and_then(|c| c.split('/').next())
        .filter(|_| caller.principal.tenant().is_some());
    trail.caller(&caller, access_key);
    trail.key = key.clone();
    crate::audit::draft(&engine, trail, &origin);
    let auth_type = if caller.principal.tenant().is_some() {
        "POST"
    } else {
        "Anonymous"
    };
    let facts = crate::context::RequestFacts {
        caller: &caller,
        headers,
        query: &[],
        origin,
        auth_type,
        object: None,
    };
    gw.iam.authorize(
        &caller,
        "s3:PutObject",
        coffre_iam::Target::Object(bucket, &key),
        &facts,
    )?;
    // Tags are a label of their own: their action too, as for a PUT's `x-amz-tagging`.
    if form.get("tagging").is_some() {
        gw.iam.authorize(
            &caller,
            "s3:PutObjectTagging",
            coffre_iam::Target::Object(bucket, &key),
            &facts,
        )?;
    }
    match form.get("acl").map(str::trim) {
        None | Some("private") | Some("bucket-owner-full-control") => {}
        Some(_) if crate::acl::acls_enabled(&engine, bucket)? => {
            return Err(S3Error::not_implemented(
                "Object ACLs that grant access to others are not supported: grant it with a bucket policy (PutBucketPolicy)",
            ));
        }
        Some(_) => {
            return Err(S3Error::acl_not_supported("The bucket does not allow ACLs"));
        }
    }
    let requested = match form
        .get("x-amz-server-side-encryption")
        .map(crate::sse::algorithm)
        .transpose()?
    {
        None => crate::sse::Requested::Default,
        Some(crate::sse::KMS) => crate::sse::Requested::Kms {
            key: form
                .get("x-amz-server-side-encryption-aws-kms-key-id")
                .map(|k| k.trim().to_string()),
            context: None,
            bucket_key: None,
        },
        Some(_) => crate::sse::Requested::S3,
    };
    if form.fields.iter().any(|(k, _)| {
        k.to_ascii_lowercase()
            .starts_with("x-amz-server-side-encryption-customer-")
    }) {
        return Err(S3Error::not_implemented(
            "Server-side encryption with customer-provided keys (SSE-C) is not implemented yet",
        ));
    }
    let checksum = crate::body::named_checksum(|n| form.get(n), "field")?.map(|(a, v)| (a, v.to_string()));
    let mut attrs = attrs_of(&form)?;
    attrs.kms = crate::sse::kms_for_write(&engine, bucket, &brec.tenant, &requested, false)?.map(|(k, _)| k);
    let kms = attrs.kms.clone();
    let slot = VerifiedChecksum::default();
    let stream = file_stream(file, range, checksum, slot.clone());
    let rec = engine
        .put(
            bucket,
            &brec,
            &key,
            stream,
            NewObject {
                attrs,
                body: BodyInfo {
                    size_hint: None,
                    content_md5: None,
                    checksum: Some(slot),
                    customer_key: None,
                    kms_key: kms.as_ref().map(|k| k.key_id.clone()),
                    part: false,
                },
                condition: WriteCondition::default(),
                lock: Default::default(),
            },
        )
        .await?;
    drop(mp);
    let etag = format!("\"{}\"", rec.etag);
    let location = format!("/{bucket}/{}", crate::encoding::uri_encode(key.as_bytes(), true));
    let redirect = form
        .get("success_action_redirect")
        .or_else(|| form.get("redirect"))
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"));
    let mut r = if let Some(url) = redirect {
        let q = |s: &str| crate::encoding::uri_encode(s.as_bytes(), false);
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut r = status(StatusCode::SEE_OTHER);
        set(
            &mut r,
            "location",
            &format!("{url}{sep}bucket={}&key={}&etag={}", q(bucket), q(&key), q(&etag)),
        );
        r
    } else {
        match form.get("success_action_status").map(str::trim) {
            Some("200") => status(StatusCode::OK),
            Some("201") => {
                let mut x = Xml::new("PostResponse");
                x.elem("Location", &location)
                    .elem("Bucket", bucket)
                    .elem("Key", &key)
                    .elem("ETag", &etag);
                xml_response(StatusCode::CREATED, x.finish("PostResponse"))
            }
            _ => status(StatusCode::NO_CONTENT),
        }
    };
    set(&mut r, "etag", &etag);
    if redirect.is_none() {
        set(&mut r, "location", &location);
    }
    crate::sse::echo_object(&mut r, &engine, &brec.tenant, None, kms.as_ref(), true);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn form(fields: &[(&str, &str)]) -> Form {
        Form {
            fields: fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn policy(json: &str, now: i64) -> Result<Policy, S3Error> {
        parse_policy(&base64::engine::general_purpose::STANDARD.encode(json), now)
    }

    #[test]
    fn expirations() {
        assert_eq!(parse_expiration("2026-11-26T13:51:25Z"), Some(1_795_701_085));
        assert_eq!(parse_expiration("2026-11-26T13:51:25.000Z"), Some(1_795_701_085));
        assert_eq!(parse_expiration("2026-11-26 13:51:25"), None);
    }

    #[test]
    fn conditions_bound_every_field() {
        let doc = r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [
            {"bucket": "docs"}, ["starts-with", "$key", "uploads/"], {"acl": "private"},
            ["starts-with", "$Content-Type", "image/"], ["content-length-range", 10, 1000],
            ["eq", "$x-amz-meta-user", "ana"]]}"#;
        let p = policy(doc, 0).unwrap();
        let ok = form(&[
            ("key", "uploads/a.png"),
            ("acl", "private"),
            ("Content-Type", "image/png"),
            ("x-amz-meta-user", "ana"),
            ("policy", "…"),
            ("x-amz-signature", "…"),
        ]);
        assert_eq!(p.check(&ok, "docs").unwrap(), (10, 1000));
        assert_eq!(p.check(&ok, "other").unwrap_err().code, "AccessDenied");
        let wrong_key = form(&[
            ("key", "elsewhere/a.png"),
            ("acl", "private"),
            ("Content-Type", "image/png"),
            ("x-amz-meta-user", "ana"),
        ]);
        let e = p.check(&wrong_key, "docs").unwrap_err();
        assert!(e.message.contains("starts-with"), "{}", e.message);
        let extra = form(&[
            ("key", "uploads/a.png"),
            ("acl", "private"),
            ("Content-Type", "image/png"),
            ("x-amz-meta-user", "ana"),
            ("x-amz-meta-other", "1"),
        ]);
        assert!(p
            .check(&extra, "docs")
            .unwrap_err()
            .message
            .contains("Extra input fields: x-amz-meta-other"));
        // Expired, malformed, unknown operators.
        assert!(policy(doc, 2_000_000_000).unwrap_err().message.contains("expired"));
        assert_eq!(policy("{}", 0).err().unwrap().code, "InvalidPolicyDocument");
        assert_eq!(
            policy(
                r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["lt", "$key", "a"]]}"#,
                0
            )
            .err()
            .unwrap()
            .code,
            "InvalidPolicyDocument"
        );
        assert_eq!(parse_policy("%%%", 0).err().unwrap().code, "InvalidPolicyDocument");
    }

    proptest::proptest! {
        /// Any policy text: a policy or an S3 error, never a panic.
        #[test]
        fn policies_never_panic(doc in r#"\{"expiration": "[0-9TZ:.-]{0,24}", "conditions": \[[\[\]{}",$a-z0-9 -]{0,80}\]\}"#,
                                junk in "[ -~]{0,60}") {
            let _ = policy(&doc, 0);
            let _ = policy(&junk, 0);
            let _ = parse_expiration(&junk);
        }
    }
}
