//! Object operations: PUT, GET/HEAD (ranges, conditions), DELETE, DeleteObjects, Copy, tagging.

use crate::context::Ctx;
use crate::document::{check_md5, content_md5, read_document};
use crate::http::{empty, set, status, xml_response, Res};
use crate::versioning::{not_found, set_version_header, version_sel};
use crate::xml::Xml;
use crate::S3Error;
use coffre_engine::{BodyInfo, NewObject, ReadHandle, VersionSel};
use coffre_engine::{ObjectRecord, SealedAttrs, WriteCondition};
use coffre_types::limits::{MAX_DELETE_KEYS, MAX_KEY_LEN, MAX_OBJECT_TAGS, MAX_USER_META, MAX_XML_BODY};
use coffre_types::time::iso8601;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use std::time::{Duration, UNIX_EPOCH};

/// Standard headers stored with an object and returned on GET/HEAD.
pub(crate) const STORED_HEADERS: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

/// Parses `k1=v1&k2=v2` (x-amz-tagging) or validates a tag set.
fn validate_tags(tags: &[(String, String)]) -> Result<(), S3Error> {
    if tags.len() > MAX_OBJECT_TAGS {
        return Err(S3Error::invalid_tag("Object tags cannot be greater than 10"));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(S3Error::invalid_tag(
                "A tag key is 1-128 characters and a value at most 256",
            ));
        }
        if !seen.insert(k) {
            return Err(S3Error::invalid_tag("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

pub(crate) fn attrs_from_headers(ctx: &Ctx) -> Result<SealedAttrs, S3Error> {
    let mut a = SealedAttrs::default();
    for h in STORED_HEADERS {
        if let Some(v) = ctx.h(h) {
            a.headers.push((h.to_string(), v.to_string()));
        }
    }
    let mut meta_len = 0;
    for (name, value) in &ctx.headers {
        if let Some(m) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = std::str::from_utf8(value.as_bytes())
                .map_err(|_| S3Error::invalid_argument("user metadata must be UTF-8"))?;
            meta_len += m.len() + v.len();
            a.user_meta.push((m.to_string(), v.to_string()));
        }
    }
    if meta_len > MAX_USER_META {
        return Err(S3Error::metadata_too_large(
            "Your metadata headers exceed the maximum allowed metadata size (2 KB)",
        ));
    }
    if let Some(t) = ctx.h("x-amz-tagging") {
        a.tags = crate::encoding::parse_query(t)?;
        validate_tags(&a.tags)?;
    }
    Ok(a)
}

/// `If-Match` / `If-None-Match: *` on a write (PUT, Copy destination, Complete), as S3 reads
/// them: the condition is on the key's current version, checked again at commit.
pub(crate) fn write_condition(ctx: &Ctx) -> Result<WriteCondition, S3Error> {
    let if_none_match = match ctx.h("if-none-match").map(str::trim) {
        None => false,
        Some("*") => true,
        Some(_) => {
            return Err(S3Error::not_implemented(
                "A header you provided implies functionality that is not implemented: If-None-Match on a write takes only *",
            ))
        }
    };
    let if_match = ctx
        .h("if-match")
        .map(|m| m.trim().trim_start_matches("W/").trim_matches('"').to_string());
    if if_match.as_deref() == Some("") {
        return Err(S3Error::invalid_argument("If-Match needs an ETag"));
    }
    Ok(WriteCondition {
        if_match,
        if_none_match,
        owner: None,
    })
}

pub async fn put(ctx: &Ctx, bucket: &str, key: &str, body: Incoming) -> Result<Res, S3Error> {
    let brec = ctx.engine().bucket(bucket)?;
    let requested = crate::sse::check_request(&ctx.headers, crate::sse::Use::Write)?;
    crate::acl::check_object_write(ctx, bucket)?;
    let mut attrs = attrs_from_headers(ctx)?;
    let md5 = content_md5(ctx)?;
    if ctx.h("content-length").is_none()
        && ctx.h("x-amz-decoded-content-length").is_none()
        && ctx.h("transfer-encoding").is_none()
    {
        return Err(S3Error::missing_content_length(
            "You must provide the Content-Length HTTP header",
        ));
    }
    let given = ctx.customer_key(crate::sse::TARGET)?;
    attrs.kms = crate::kms::key_of_write(ctx, bucket, key, &brec.tenant, &requested, given.is_some())?;
    let kms = attrs.kms.clone();
    let (reader, slot) = ctx.body(body, ctx.gw.config.max_put)?;
    let new = NewObject {
        attrs,
        body: BodyInfo {
            size_hint: reader.declared_len(),
            content_md5: md5,
            checksum: Some(slot),
            customer_key: given.as_ref().map(|g| g.key.clone()),
            kms_key: kms.as_ref().map(|k| k.key_id.clone()),
            part: false,
        },
        condition: write_condition(ctx)?,
        lock: crate::versioning::lock_request(ctx, true)?,
    };
    let rec = ctx.engine().put(bucket, &brec, key, reader.into_stream(), new).await?;
    let mut r = Response::new(empty());
    set(&mut r, "etag", &format!("\"{}\"", rec.etag));
    crate::versioning::set_written_version_header(&mut r, &rec);
    crate::lifecycle::set_expiration(ctx, &mut r, bucket, key, &rec);
    crate::sse::echo_object(&mut r, ctx.engine(), &brec.tenant, given.as_ref(), kms.as_ref(), true);
    if let Some((a, v)) = rec
        .parts
        .first()
        .map(|p| ctx.engine().part_checksum(p))
        .transpose()?
        .flatten()
    {
        set(&mut r, &format!("x-amz-checksum-{a}"), &v);
    }
    Ok(r)
}

pub(crate) fn http_date(ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

pub(crate) fn parse_http_date(s: &str) -> Option<u64> {
    httpdate::parse_http_date(s)
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

pub(crate) fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == "*" || t == etag)
}

/// RFC 7232 / S3 precondition evaluation for GET and HEAD.
fn check_conditions(ctx: &Ctx, rec: &ObjectRecord) -> Result<(), S3Error> {
    let modified = rec.last_modified_ms / 1000;
    let if_match = ctx.h("if-match");
    if let Some(m) = if_match {
        if !etag_matches(m, &rec.etag) {
            return Err(S3Error::precondition_failed(
                "At least one of the pre-conditions you specified did not hold",
            ));
        }
    } else if let Some(t) = ctx.h("if-unmodified-since").and_then(parse_http_date) {
        if modified > t {
            return Err(S3Error::precondition_failed(
                "At least one of the pre-conditions you specified did not hold",
            ));
        }
    }
    if let Some(m) = ctx.h("if-none-match") {
        if etag_matches(m, &rec.etag) {
            return Err(S3Error::not_modified("Not Modified"));
        }
    } else if let Some(t) = ctx.h("if-modified-since").and_then(parse_http_date) {
        if modified <= t {
            return Err(S3Error::not_modified("Not Modified"));
        }
    }
    Ok(())
}

/// `Range: bytes=…` → `[start, end)`. Malformed or multiple ranges are ignored, as S3 does.
fn parse_range(h: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = || S3Error::invalid_range("The requested range is not satisfiable");
    let range = match (a.trim(), b.trim()) {
        ("", "") => return Ok(None),
        ("", n) => {
            let Ok(n) = n.parse::<u64>() else {
                return Ok(None);
            };
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            (size.saturating_sub(n), size)
        }
        (a, b) => {
            let Ok(a) = a.parse::<u64>() else {
                return Ok(None);
            };
            let end = if b.is_empty() {
                size
            } else {
                let Ok(b) = b.parse::<u64>() else {
                    return Ok(None);
                };
                if b < a {
                    return Ok(None);
                }
                b.saturating_add(1).min(size)
            };
            if a >= size {
                return Err(unsatisfiable());
            }
            (a, end)
        }
    };
    Ok(Some(range))
}

/// The version of an object the request names (`versionId`, else the current one), for
/// metadata only.
pub(crate) fn load(ctx: &Ctx, bucket: &str, key: &str) -> Result<ObjectRecord, S3Error> {
    ctx.engine().bucket(bucket)?;
    let sel = version_sel(ctx)?;
    match ctx.engine().head_version(bucket, key, sel) {
        Ok((rec, _)) => Ok(rec),
        Err(e) => Err(not_found(ctx, bucket, key, e.into())),
    }
}

/// The current version of an object, opened for reading its data.
/// Opens an object for reading. A key that does not exist is `NoSuchKey` only to a caller
/// that may list it (`s3:ListBucket` with the key as prefix); to others it is AccessDenied,
/// as S3 answers, so that reads do not reveal which keys exist.
pub(crate) fn open(ctx: &Ctx, bucket: &str, key: &str, sel: Option<VersionSel>) -> Result<ReadHandle, S3Error> {
    ctx.engine().bucket(bucket)?;
    match ctx.engine().open_version(bucket, key, sel) {
        Err(coffre_engine::EngineError::Meta(coffre_engine::MetaError::NoSuchKey)) if !ctx.may_list(bucket, key) => {
            Err(S3Error::access_denied("Access Denied"))
        }
        Err(e) => Err(not_found(ctx, bucket, key, e.into())),
        Ok(h) => Ok(h),
    }
}

/// The `response-*` parameters a GET may override its answer's headers with.
const RESPONSE_OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

pub async fn get(ctx: &Ctx, bucket: &str, key: &str, head: bool) -> Result<Res, S3Error> {
    // An anonymous link must not choose how a browser renders the object (S3 refuses too).
    if ctx.verified.is_none() && RESPONSE_OVERRIDES.iter().any(|(q, _)| ctx.q(q).is_some()) {
        return Err(S3Error::invalid_request(
            "Request specific response headers cannot be used for anonymous GET requests.",
        ));
    }
    crate::sse::check_request(&ctx.headers, crate::sse::Use::Read)?;
    let given = ctx.customer_key(crate::sse::TARGET)?;
    let mut handle = open(ctx, bucket, key, version_sel(ctx)?)?;
    let attrs = ctx.engine().open_attrs(bucket, key, &handle.record)?;
    ctx.engine()
        .check_customer_key(&attrs, given.as_ref().map(|g| &g.key))?;
    handle.customer_key = given.as_ref().map(|g| g.key.clone());
    if !head {
        crate::kms::check_read(ctx, bucket, key, &handle.tenant, attrs.kms.as_ref())?;
    }
    let rec = &handle.record;
    match check_conditions(ctx, rec) {
        // A 304 still names the version it stands for, as S3 answers it.
        Err(e) if e.status == StatusCode::NOT_MODIFIED => {
            let mut r = status(StatusCode::NOT_MODIFIED);
            set(&mut r, "etag", &format!("\"{}\"", rec.etag));
            set(&mut r, "last-modified", &http_date(rec.last_modified_ms));
            return Ok(r);
        }
        other => other?,
    }
    let multipart = rec.etag.contains('-');
    let range = match ctx.q("partNumber") {
        Some(p) => {
            let n: usize = p
                .parse()
                .map_err(|_| S3Error::invalid_argument("partNumber must be an integer"))?;
            if n == 0 || n > rec.parts.len() {
                return Err(S3Error::invalid_part_number(
                    "The requested partnumber is not satisfiable",
                ));
            }
            let start: u64 = rec.parts[..n - 1].iter().map(|p| p.size).sum();
            // A simple object's part 1 is the object itself: a 200, as S3 answers.
            multipart.then_some((start, start + rec.parts[n - 1].size))
        }
        None => parse_range(ctx.h("range"), rec.size)?,
    };
    let (start, end) = range.unwrap_or((0, rec.size));
    let mut r = Response::new(empty());
    if range.is_some() {
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
        set(
            &mut r,
            "content-range",
            &format!("bytes {}-{}/{}", start, end - 1, rec.size),
        );
    }
    set(&mut r, "content-length", &(end - start).to_string());
    set(&mut r, "etag", &format!("\"{}\"", rec.etag));
    set(&mut r, "last-modified", &http_date(rec.last_modified_ms));
    set(&mut r, "accept-ranges", "bytes");
    set_version_header(ctx, &mut r, bucket, rec)?;
    lock_headers(ctx, &mut r, bucket, key, rec);
    crate::lifecycle::set_expiration(ctx, &mut r, bucket, key, rec);
    crate::sse::echo_object(
        &mut r,
        ctx.engine(),
        &handle.tenant,
        given.as_ref(),
        attrs.kms.as_ref(),
        false,
    );
    set(&mut r, "content-type", "binary/octet-stream");
    for (h, v) in &attrs.headers {
        set(&mut r, h, v);
    }
    for (m, v) in &attrs.user_meta {
        set(&mut r, &format!("x-amz-meta-{m}"), v);
    }
    if multipart && ctx.q("partNumber").is_some() {
        set(&mut r, "x-amz-mp-parts-count", &rec.parts.len().to_string());
    }
    if !attrs.tags.is_empty() {
        set(&mut r, "x-amz-tagging-count", &attrs.tags.len().to_string());
    }
    if ctx
        .h("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("enabled"))
    {
        let part = ctx.q("partNumber").and_then(|n| n.parse::<usize>().ok());
        for (a, v) in &attrs.checksums {
            let kind = checksum_type(v);
            match (range, part) {
                // The whole object: its checksum.
                (None, _) => set(&mut r, &format!("x-amz-checksum-{a}"), v),
                // One part of a multipart object: that part's.
                (Some(_), Some(n)) => {
                    if let Some((pa, pv)) = ctx.engine().part_checksum(&rec.parts[n - 1])? {
                        set(&mut r, &format!("x-amz-checksum-{pa}"), &pv);
                    }
                }
                // A byte range has no checksum of its own.
                (Some(_), None) => continue,
            }
            set(&mut r, "x-amz-checksum-type", kind);
        }
    }
    for (q, h) in RESPONSE_OVERRIDES {
        if let Some(v) = ctx.q(q) {
            set(&mut r, h, v);
        }
    }
    if head || start == end {
        return Ok(r);
    }
    let mut rx = ctx.engine().read(&handle, start, end)?;
    // Wait for the first bytes before answering, so that an unreadable object gets a proper
    // error response rather than a cut connection.
    let first = match rx.recv().await {
        Some(Ok(b)) => b,
        Some(Err(e)) => return Err(e.into()),
        None => return Err(S3Error::internal("object stream ended early")),
    };
    let stream = futures_util::stream::unfold((Some(first), rx), |(first, mut rx)| async move {
        if let Some(f) = first {
            return Some((Ok(Frame::data(f)), (None, rx)));
        }
        match rx.recv().await? {
            Ok(b) => Some((Ok(Frame::data(b)), (None, rx))),
            Err(e) => {
                tracing::error!(error = %e, "object read failed mid-stream; closing the connection");
                Some((Err(std::io::Error::other(e.to_string())), (None, rx)))
            }
        }
    });
    let (parts, _) = r.into_parts();
    Ok(Response::from_parts(
        parts,
        http_body_util::StreamBody::new(stream).boxed(),
    ))
}

/// `x-amz-object-lock-*` of a version, to a caller that may read them (as S3 answers).
fn lock_headers(ctx: &Ctx, r: &mut Res, bucket: &str, key: &str, rec: &ObjectRecord) {
    let vs = &rec.version_state;
    let target = coffre_iam::Target::Object(bucket, key);
    if let Some(ret) = vs.retention {
        if ctx.authorize("s3:GetObjectRetention", target).is_ok() {
            set(r, "x-amz-object-lock-mode", ret.mode.as_str());
            set(r, "x-amz-object-lock-retain-until-date", &iso8601(ret.until_ms));
        }
    }
    if vs.legal_hold && ctx.authorize("s3:GetObjectLegalHold", target).is_ok() {
        set(r, "x-amz-object-lock-legal-hold", "ON");
    }
}

pub async fn delete(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let sel = version_sel(ctx)?;
    let bypass = crate::versioning::bypass_governance(ctx, bucket, key);
    let out = ctx.engine().delete(bucket, key, sel, bypass).await?;
    if let Some(why) = out.refused {
        return Err(coffre_engine::MetaError::Locked(why).into());
    }
    let mut r = status(StatusCode::NO_CONTENT);
    match (&out.marker, &out.removed) {
        (Some(marker), _) => {
            set(&mut r, "x-amz-delete-marker", "true");
            set(&mut r, "x-amz-version-id", marker);
        }
        (None, Some((id, was_marker))) if sel.is_some() => {
            if *was_marker {
                set(&mut r, "x-amz-delete-marker", "true");
            }
            set(&mut r, "x-amz-version-id", id);
        }
        // A version that does not exist: S3 answers 204 naming it.
        _ => {
            if let Some(v) = ctx.q("versionId") {
                set(&mut r, "x-amz-version-id", v);
            }
        }
    }
    Ok(r)
}

pub async fn delete_objects(ctx: &Ctx, bucket: &str, body: Incoming) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    // The list is read before its keys are authorized: an anonymous one within a budget
    // all anonymous requests share.
    let _room = match ctx.verified {
        Some(_) => None,
        None => {
            let declared = ctx.h("content-length").and_then(|l| l.parse::<usize>().ok());
            let bytes = declared.unwrap_or(MAX_XML_BODY).min(MAX_XML_BODY);
            Some(ctx.gw.room_for_anonymous_document(bytes)?)
        }
    };
    let md5 = content_md5(ctx)?;
    let (reader, _) = ctx.body(body, MAX_XML_BODY as u64)?;
    let raw = reader.read_all(MAX_XML_BODY).await?;
    check_md5(md5, &raw)?;
    // Object, Key and VersionId per key, then Quiet.
    let doc = crate::xml::parse(&raw, 2 + 3 * MAX_DELETE_KEYS)?;
    if doc.name != "Delete" {
        return Err(S3Error::malformed_xml("expected a Delete element"));
    }
    let quiet = doc.child("Quiet").is_some_and(|q| q.text.trim() == "true");
    // (key, versionId as given)
    let items: Vec<(String, Option<String>)> = doc
        .all("Object")
        .map(|o| {
            let key = o
                .child("Key")
                .map(|k| k.text.clone())
                .ok_or_else(|| S3Error::malformed_xml("an Object has no Key"))?;
            Ok((key, o.child("VersionId").map(|v| v.text.trim().to_string())))
        })
        .collect::<Result<_, S3Error>>()?;
    if items.is_empty() || items.len() > MAX_DELETE_KEYS {
        return Err(S3Error::malformed_xml("Delete holds 1 to 1000 objects"));
    }
    let bypass_asked = ctx
        .h("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let mut x = Xml::new("DeleteResult");
    let error = |x: &mut Xml, k: &str, v: &Option<String>, code: &str, message: &str| {
        x.open("Error").elem("Key", k);
        if let Some(v) = v {
            x.elem("VersionId", v);
        }
        x.elem("Code", code).elem("Message", message).close("Error");
    };
    // Each key has an audit entry of its own, deleted or refused.
    let touch = |k: &str, version_id: Option<String>, status: u16, error: Option<&'static str>| {
        ctx.touch(crate::context::Touched {
            op: "BatchDeleteObject",
            bucket: bucket.to_string(),
            key: k.to_string(),
            version_id,
            status,
            error,
            detail: None,
        })
    };
    // Each key is a DeleteObject (or DeleteObjectVersion) of its own, as S3 authorizes it.
    let mut allowed: Vec<(String, Option<String>, Option<VersionSel>)> = Vec::with_capacity(items.len());
    let mut bypass = bypass_asked;
    for (k, v) in items {
        if k.is_empty() || k.len() > MAX_KEY_LEN {
            error(&mut x, &k, &v, "KeyTooLongError", "key must be 1 to 1024 bytes");
            continue;
        }
        let sel = match v.as_deref().map(crate::versioning::parse_version_id).transpose() {
            Ok(sel) => sel,
            Err(e) => {
                error(&mut x, &k, &v, e.code, &e.message);
                continue;
            }
        };
        let action = match sel {
            Some(_) => "s3:DeleteObjectVersion",
            None => "s3:DeleteObject",
        };
        match ctx.authorize(action, coffre_iam::Target::Object(bucket, &k)) {
            Ok(()) => {
                bypass &= !bypass_asked || crate::versioning::bypass_governance(ctx, bucket, &k);
                allowed.push((k, v, sel));
            }
            Err(e) => {
                touch(&k, v.clone(), 403, Some(e.code));
                error(&mut x, &k, &v, e.code, &e.message)
            }
        }
    }
    if !allowed.is_empty() {
        let targets = allowed.iter().map(|(k, _, sel)| (k.clone(), *sel)).collect();
        let results = ctx.engine().delete_many(bucket, targets, bypass).await?;
        for ((k, v, _), res) in allowed.iter().zip(results) {
            if let Some(why) = res.refused {
                touch(k, v.clone(), 403, Some("AccessDenied"));
                error(&mut x, k, v, "AccessDenied", &why);
                continue;
            }
            // The version removed, or the marker placed.
            let version = res
                .marker
                .clone()
                .or_else(|| res.removed.as_ref().map(|(id, _)| id.clone()));
            touch(k, version, 204, None);
            if quiet {
                continue;
            }
            x.open("Deleted").elem("Key", k);
            if let Some(v) = v {
                x.elem("VersionId", v);
            }
            match (&res.marker, &res.removed) {
                (Some(m), _) => {
                    x.elem("DeleteMarker", "true").elem("DeleteMarkerVersionId", m);
                }
                (None, Some((id, true))) => {
                    x.elem("DeleteMarker", "true").elem("DeleteMarkerVersionId", id);
                }
                _ => {}
            }
            x.close("Deleted");
        }
    }
    Ok(xml_response(StatusCode::OK, x.finish("DeleteResult")))
}

/// `ChecksumSHA256`… as S3 names a checksum element.
pub(crate) fn checksum_element(algorithm: &str) -> String {
    format!("Checksum{}", algorithm.to_ascii_uppercase())
}

/// The type of an object's checksum, from its value: a composite one ends in `-N`.
pub(crate) fn checksum_type(value: &str) -> &'static str {
    if value.contains('-') {
        "COMPOSITE"
    } else {
        "FULL_OBJECT"
    }
}

pub async fn get_tagging(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let rec = load(ctx, bucket, key)?;
    let attrs = ctx.engine().open_attrs(bucket, key, &rec)?;
    let mut x = Xml::new("Tagging");
    x.open("TagSet");
    for (k, v) in &attrs.tags {
        x.open("Tag").elem("Key", k).elem("Value", v).close("Tag");
    }
    x.close("TagSet");
    let mut r = xml_response(StatusCode::OK, x.finish("Tagging"));
    set_version_header(ctx, &mut r, bucket, &rec)?;
    Ok(r)
}

async fn replace_tags(ctx: &Ctx, bucket: &str, key: &str, tags: Vec<(String, String)>) -> Result<Res, S3Error> {
    let rec = load(ctx, bucket, key)?;
    let engine = ctx.engine();
    let mut attrs = engine.open_attrs(bucket, key, &rec)?;
    attrs.tags = tags;
    let sel = version_sel(ctx)?;
    let Some(rec) = engine
        .update_version_attrs(bucket, key, sel, &rec.version, &attrs)
        .await?
    else {
        return Err(S3Error::no_such_key("The object was replaced or deleted meanwhile"));
    };
    let mut r = Response::new(empty());
    set_version_header(ctx, &mut r, bucket, &rec)?;
    Ok(r)
}

/// A `Tagging` document's tag set, validated.
pub(crate) fn parse_tagging(raw: &[u8]) -> Result<Vec<(String, String)>, S3Error> {
    let doc = crate::xml::parse(raw, 2 + 3 * 50)?;
    let set = doc
        .child("TagSet")
        .filter(|_| doc.name == "Tagging")
        .ok_or_else(|| S3Error::malformed_xml("expected Tagging/TagSet"))?;
    let tags: Vec<(String, String)> = set
        .all("Tag")
        .map(|t| match (t.child("Key"), t.child("Value")) {
            (Some(k), v) => Ok((k.text.clone(), v.map(|v| v.text.clone()).unwrap_or_default())),
            _ => Err(S3Error::malformed_xml("a Tag has no Key")),
        })
        .collect::<Result<_, _>>()?;
    validate_tags(&tags)?;
    Ok(tags)
}

pub async fn put_tagging(ctx: &Ctx, bucket: &str, key: &str, body: Incoming) -> Result<Res, S3Error> {
    let (reader, _) = ctx.body(body, 1 << 20)?;
    let tags = parse_tagging(&reader.read_all(64 * 1024).await?)?;
    replace_tags(ctx, bucket, key, tags).await
}

pub async fn delete_tagging(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let mut r = replace_tags(ctx, bucket, key, Vec::new()).await?;
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

/// Objects belong to their bucket's owner, who has FULL_CONTROL.
pub async fn get_acl(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    load(ctx, bucket, key)?;
    Ok(xml_response(
        StatusCode::OK,
        crate::acl::document(&ctx.owner_of(bucket)?, None),
    ))
}

/// Only the owner's own access can be set on an object (`private`,
/// `bucket-owner-full-control`, or a document granting the owner FULL_CONTROL).
pub async fn put_acl(ctx: &Ctx, bucket: &str, key: &str, body: Incoming) -> Result<Res, S3Error> {
    load(ctx, bucket, key)?;
    let raw = read_document(ctx, body, 64 * 1024).await?;
    crate::acl::check_object_write(ctx, bucket)?;
    if ctx.h("x-amz-acl").is_none() && !raw.iter().all(u8::is_ascii_whitespace) {
        let owner = ctx.owner_of(bucket)?;
        if crate::acl::canned_of_document(&raw, &owner)?.is_some() {
            return Err(if crate::acl::acls_enabled(ctx.engine(), bucket)? {
                S3Error::not_implemented(
                    "Object ACLs that grant access to others are not supported: grant it with a bucket policy (PutBucketPolicy)",
                )
            } else {
                S3Error::acl_not_supported("The bucket does not allow ACLs")
            });
        }
    }
    Ok(Response::new(empty()))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100).unwrap(), Some((0, 10)));
        assert_eq!(parse_range(Some("bytes=90-"), 100).unwrap(), Some((90, 100)));
        assert_eq!(parse_range(Some("bytes=-10"), 100).unwrap(), Some((90, 100)));
        assert_eq!(parse_range(Some("bytes=-1000"), 100).unwrap(), Some((0, 100)));
        assert_eq!(parse_range(Some("bytes=50-1000"), 100).unwrap(), Some((50, 100)));
        assert_eq!(parse_range(Some("bytes=100-"), 100).unwrap_err().code, "InvalidRange");
        assert_eq!(parse_range(Some("bytes=0-0"), 0).unwrap_err().code, "InvalidRange");
        assert_eq!(parse_range(Some("bytes=5-2"), 100).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=a-b"), 100).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 100).unwrap(), None);
        assert_eq!(parse_range(None, 100).unwrap(), None);
        // A last byte past u64::MAX would overflow: the range simply ends with the object.
        assert_eq!(
            parse_range(Some("bytes=0-18446744073709551615"), 100).unwrap(),
            Some((0, 100))
        );
    }

    proptest::proptest! {
        /// Any Range header: no panic, and a range, when there is one, lies inside the object.
        #[test]
        fn ranges_stay_inside(h in "bytes=[0-9]{0,21}-[0-9]{0,21}|[ -~]{0,30}", size in 0u64..u64::MAX) {
            if let Ok(Some((a, b))) = parse_range(Some(&h), size) {
                proptest::prop_assert!(a < b && b <= size, "{h} on {size}: {a}..{b}");
            }
        }
    }
}
