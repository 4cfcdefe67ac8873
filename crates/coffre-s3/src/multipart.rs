//! Multipart uploads: create, upload part (and part copy), complete, abort, list parts and
//! uploads. The engine stores each part when it arrives; Complete only writes metadata (one
//! atomic batch) and is idempotent for a retried request.

use crate::context::Ctx;
use crate::copy::copy_source;
use crate::document::content_md5;
use crate::http::{empty, set, status, xml_response, Res};
use crate::object::{attrs_from_headers, checksum_element, checksum_type};
use crate::xml::Xml;
use crate::S3Error;
use coffre_engine::checksum::Algorithm;
use coffre_engine::{BodyInfo, CompleteRequest, CompletedUpload, PartRequest};
use coffre_types::time::iso8601;
use coffre_types::VersionId;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use coffre_types::limits::{MAX_PART, MAX_PARTS, MAX_XML_BODY};

fn upload_id(ctx: &Ctx) -> Result<[u8; 16], S3Error> {
    let raw = ctx.q("uploadId").unwrap_or("");
    VersionId::from_hex(raw)
        .map(|v| v.0)
        .ok_or_else(|| S3Error::no_such_upload("The specified upload does not exist"))
}

fn part_number(ctx: &Ctx) -> Result<u32, S3Error> {
    ctx.q("partNumber")
        .and_then(|p| p.parse().ok())
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or_else(|| S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive"))
}

fn load_upload(ctx: &Ctx, bucket: &str, key: &str, id: &[u8; 16]) -> Result<coffre_engine::UploadRecord, S3Error> {
    ctx.engine().bucket(bucket)?;
    Ok(ctx.engine().upload(bucket, key, id)?)
}

/// The SSE-C key a part of this upload comes with, checked against the upload's, and the
/// upload's SSE-KMS key (the one its creation chose: a part's own SSE headers are ignored,
/// as S3 does).
fn part_key(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    id: &[u8; 16],
    up: &coffre_engine::UploadRecord,
) -> Result<(Option<crate::sse::GivenKey>, Option<coffre_engine::KmsAttrs>), S3Error> {
    let given = ctx.customer_key(crate::sse::TARGET)?;
    let attrs = ctx.engine().open_attrs_for(bucket, key, &VersionId(*id), &up.sealed)?;
    ctx.engine()
        .check_customer_key(&attrs, given.as_ref().map(|g| &g.key))?;
    Ok((given, attrs.kms))
}

/// The tenant owning `bucket`, and the KMS key a part of `key` is written under (its use
/// audited).
fn part_kms(ctx: &Ctx, bucket: &str, key: &str, kms: &Option<coffre_engine::KmsAttrs>) -> Result<String, S3Error> {
    let tenant = ctx.engine().bucket(bucket)?.tenant;
    if let Some(k) = kms {
        let arn = ctx.engine().kms_key_arn(&tenant, &k.key_id);
        crate::kms::audit_use(ctx, "kms:GenerateDataKey", bucket, key, &arn, None);
    }
    Ok(tenant)
}

pub async fn create(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let brec = ctx.engine().bucket(bucket)?;
    let requested = crate::sse::check_request(&ctx.headers, crate::sse::Use::Write)?;
    crate::acl::check_object_write(ctx, bucket)?;
    let given = ctx.customer_key(crate::sse::TARGET)?;
    let mut attrs = attrs_from_headers(ctx)?;
    // Every part must come with the same key: the upload keeps what recognises it.
    attrs.sse_c = given.as_ref().map(|g| g.key.new_check());
    // Every part is written under the KMS key chosen now.
    attrs.kms = crate::kms::key_of_write(ctx, bucket, key, &brec.tenant, &requested, given.is_some())?;
    // Object Lock of the object Complete will make, checked against the bucket now.
    let lock = crate::versioning::lock_request(ctx, false)?;
    if lock.retention.is_some() || lock.legal_hold {
        if !ctx.engine().versioning(bucket)?.is_some_and(|v| v.object_lock) {
            return Err(S3Error::invalid_request("Bucket is missing Object Lock Configuration"));
        }
        attrs.lock = Some((lock.retention, lock.legal_hold));
    }
    let algorithm = match ctx.h("x-amz-checksum-algorithm") {
        Some(a) => Some(
            Algorithm::parse(a)
                .ok_or_else(|| S3Error::invalid_request(format!("unsupported checksum algorithm {a:?}")))?,
        ),
        None => None,
    };
    let ctype = match ctx.h("x-amz-checksum-type").map(str::to_ascii_uppercase) {
        None => None,
        Some(t) if t == "COMPOSITE" || t == "FULL_OBJECT" => Some(t),
        Some(t) => return Err(S3Error::invalid_request(format!("unsupported x-amz-checksum-type {t}"))),
    };
    if ctype.as_deref() == Some("FULL_OBJECT") && !algorithm.is_some_and(Algorithm::combinable) {
        return Err(S3Error::invalid_request(
            "FULL_OBJECT checksums need CRC32, CRC32C or CRC64NVME",
        ));
    }
    let id = ctx
        .engine()
        .create_upload(bucket, &brec, key, &attrs, algorithm, ctype.clone())
        .await?;
    let mut x = Xml::new("InitiateMultipartUploadResult");
    x.elem("Bucket", bucket).elem("Key", key).elem("UploadId", &id.to_hex());
    let mut r = xml_response(StatusCode::OK, x.finish("InitiateMultipartUploadResult"));
    crate::sse::echo_object(
        &mut r,
        ctx.engine(),
        &brec.tenant,
        given.as_ref(),
        attrs.kms.as_ref(),
        true,
    );
    if let Some(a) = algorithm {
        set(&mut r, "x-amz-checksum-algorithm", &a.name().to_ascii_uppercase());
        set(&mut r, "x-amz-checksum-type", ctype.as_deref().unwrap_or("COMPOSITE"));
    }
    Ok(r)
}

pub async fn upload_part(ctx: &Ctx, bucket: &str, key: &str, body: Incoming) -> Result<Res, S3Error> {
    let id = upload_id(ctx)?;
    let number = part_number(ctx)?;
    let up = load_upload(ctx, bucket, key, &id)?;
    crate::sse::check_request(&ctx.headers, crate::sse::Use::Write)?;
    let (given, kms) = part_key(ctx, bucket, key, &id, &up)?;
    let tenant = part_kms(ctx, bucket, key, &kms)?;
    let md5 = content_md5(ctx)?;
    let (mut reader, slot) = ctx.body(body, MAX_PART)?;
    if let Some(a) = up.checksum_algorithm.as_deref().and_then(Algorithm::parse) {
        reader.ensure_checksum(a);
    }
    let info = BodyInfo {
        size_hint: reader.declared_len(),
        content_md5: md5,
        checksum: Some(slot),
        customer_key: given.as_ref().map(|g| g.key.clone()),
        kms_key: kms.as_ref().map(|k| k.key_id.clone()),
        part: false,
    };
    let part = ctx
        .engine()
        .upload_part(bucket, key, &id, &up, number, reader.into_stream(), info)
        .await?;
    let mut r = Response::new(empty());
    set(&mut r, "etag", &format!("\"{}\"", part.info.md5));
    crate::sse::echo_object(&mut r, ctx.engine(), &tenant, given.as_ref(), kms.as_ref(), false);
    if let Some((a, v)) = &ctx.engine().part_checksum(&part.info)? {
        set(&mut r, &format!("x-amz-checksum-{a}"), v);
    }
    Ok(r)
}

pub async fn upload_part_copy(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let id = upload_id(ctx)?;
    let number = part_number(ctx)?;
    let up = load_upload(ctx, bucket, key, &id)?;
    crate::sse::check_request(&ctx.headers, crate::sse::Use::Write)?;
    let (given, kms) = part_key(ctx, bucket, key, &id, &up)?;
    let tenant = part_kms(ctx, bucket, key, &kms)?;
    let target_key = given.clone();
    let (source, _) = copy_source(ctx).await?;
    let size = source.record.size;
    let (start, end) = match ctx.h("x-amz-copy-source-range") {
        None => (0, size),
        Some(r) => {
            let bad = || {
                S3Error::invalid_argument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
            };
            let (a, b) = r
                .trim()
                .strip_prefix("bytes=")
                .and_then(|s| s.split_once('-'))
                .ok_or_else(bad)?;
            let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a > b || b >= size {
                return Err(S3Error::invalid_range("The requested range is not satisfiable"));
            }
            (a, b + 1)
        }
    };
    let engine = ctx.engine();
    let stream = crate::copy::stream_of(engine.read(&source, start, end)?);
    let part = engine
        .upload_part(
            bucket,
            key,
            &id,
            &up,
            number,
            stream,
            BodyInfo {
                size_hint: Some(end - start),
                customer_key: given.map(|g| g.key),
                kms_key: kms.as_ref().map(|k| k.key_id.clone()),
                ..BodyInfo::default()
            },
        )
        .await?;
    let mut x = Xml::new("CopyPartResult");
    x.elem("LastModified", &iso8601(part.last_modified_ms))
        .elem("ETag", &format!("\"{}\"", part.info.md5));
    let mut r = xml_response(StatusCode::OK, x.finish("CopyPartResult"));
    crate::sse::echo_object(&mut r, engine, &tenant, target_key.as_ref(), kms.as_ref(), false);
    if source.record.version_state.versioned || engine.versioning(&source.bucket)?.is_some() {
        crate::http::set(&mut r, "x-amz-copy-source-version-id", &source.record.version_id());
    }
    Ok(r)
}

fn complete_result(ctx: &Ctx, bucket: &str, key: &str, done: &CompletedUpload) -> Res {
    let mut x = Xml::new("CompleteMultipartUploadResult");
    x.elem("Location", &format!("/{bucket}/{key}"))
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", &format!("\"{}\"", done.etag));
    if let Some((a, v)) = &done.checksum {
        x.elem(&checksum_element(a), v);
        x.elem("ChecksumType", checksum_type(v));
    }
    let mut r = xml_response(StatusCode::OK, x.finish("CompleteMultipartUploadResult"));
    // The object's encryption, as its attributes say (an SSE-KMS upload's key).
    let engine = ctx.engine();
    let made = engine
        .head(bucket, key)
        .ok()
        .filter(|rec| rec.etag == done.etag)
        .and_then(|rec| engine.open_attrs(bucket, key, &rec).ok());
    match (made.and_then(|a| a.kms), engine.bucket(bucket)) {
        (Some(k), Ok(b)) => crate::sse::echo_kms(&mut r, engine, &b.tenant, &k, false),
        _ => crate::sse::echo(&mut r),
    }
    if let Some(rec) = &done.record {
        crate::versioning::set_written_version_header(&mut r, rec);
    }
    r
}

pub async fn complete(ctx: &Ctx, bucket: &str, key: &str, body: Incoming) -> Result<Res, S3Error> {
    let id = upload_id(ctx)?;
    let engine = ctx.engine();
    engine.bucket(bucket)?;
    let earlier = engine.completed_upload(bucket, key, &id)?;
    // The checksum headers of a Complete are the whole object's, not its XML body's.
    let (reader, _) = ctx.body_ignoring_checksums(body, MAX_XML_BODY as u64)?;
    let raw = reader.read_all(MAX_XML_BODY).await?;
    crate::document::check_content_md5(ctx, &raw)?;
    if let Some(done) = earlier {
        // A retry of a Complete that succeeded: answer the same.
        return Ok(complete_result(ctx, bucket, key, &done));
    }
    // Part, PartNumber, ETag and one checksum per part.
    let doc = crate::xml::parse(&raw, 2 + 4 * MAX_PARTS as usize)?;
    if doc.name != "CompleteMultipartUpload" {
        return Err(S3Error::malformed_xml("expected CompleteMultipartUpload"));
    }
    let mut wanted = Vec::new();
    for p in doc.all("Part") {
        let number: u32 = p
            .child("PartNumber")
            .and_then(|n| n.text.trim().parse().ok())
            .ok_or_else(|| S3Error::malformed_xml("a Part has no valid PartNumber"))?;
        let etag = p
            .child("ETag")
            .map(|e| e.text.trim().trim_matches('"').to_string())
            .ok_or_else(|| S3Error::malformed_xml("a Part has no ETag"))?;
        let checksums = Algorithm::ALL
            .into_iter()
            .filter_map(|a| {
                p.child(&checksum_element(a.name()))
                    .map(|v| (a.name().to_string(), v.text.trim().to_string()))
            })
            .collect();
        wanted.push(PartRequest {
            number,
            etag,
            checksums,
        });
    }
    if wanted.is_empty() {
        return Err(S3Error::malformed_xml("You must specify at least one part"));
    }
    if wanted.windows(2).any(|w| w[0].number >= w[1].number) {
        return Err(S3Error::invalid_part_order(
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    // The object's checksum: not validated as a part's would be (a composite one ends in
    // `-N`); the engine compares it with what the parts make.
    let mut checksum = None;
    for a in Algorithm::ALL {
        if let Some(v) = ctx.h(&a.header()) {
            if checksum.is_some() {
                return Err(S3Error::invalid_request("Expecting a single x-amz-checksum- header"));
            }
            checksum = Some((a.name().to_string(), v.trim().to_string()));
        }
    }
    let req = CompleteRequest {
        parts: wanted,
        checksum,
        checksum_type: ctx.h("x-amz-checksum-type").map(|t| t.trim().to_ascii_uppercase()),
        condition: crate::object::write_condition(ctx)?,
    };
    let done = engine.complete_upload(bucket, key, &id, &req).await?;
    Ok(complete_result(ctx, bucket, key, &done))
}

pub async fn abort(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let id = upload_id(ctx)?;
    ctx.engine().bucket(bucket)?;
    if !ctx.engine().abort_upload(bucket, key, &id).await? {
        return Err(S3Error::no_such_upload("The specified upload does not exist"));
    }
    Ok(status(StatusCode::NO_CONTENT))
}

pub async fn list_parts(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let id = upload_id(ctx)?;
    load_upload(ctx, bucket, key, &id)?;
    let marker: u32 = ctx.q("part-number-marker").map_or(Ok(0), |m| {
        m.parse()
            .map_err(|_| S3Error::invalid_argument("part-number-marker must be an integer"))
    })?;
    let max: usize = ctx
        .q("max-parts")
        .map_or(Ok(1000), |m| {
            m.parse()
                .map_err(|_| S3Error::invalid_argument("max-parts must be an integer"))
        })?
        .min(coffre_types::limits::MAX_PAGE);
    let (parts, truncated) = ctx.engine().list_parts(&id, marker, max)?;
    let mut x = Xml::new("ListPartsResult");
    x.elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", &hex::encode(id));
    x.elem("PartNumberMarker", &marker.to_string());
    if let (true, Some((n, _))) = (truncated, parts.last()) {
        x.elem("NextPartNumberMarker", &n.to_string());
    }
    x.elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    x.elem("StorageClass", "STANDARD");
    for (n, p) in &parts {
        x.open("Part")
            .elem("PartNumber", &n.to_string())
            .elem("LastModified", &iso8601(p.last_modified_ms))
            .elem("ETag", &format!("\"{}\"", p.info.md5))
            .elem("Size", &p.info.size.to_string());
        if let Some((a, v)) = &ctx.engine().part_checksum(&p.info)? {
            x.elem(&checksum_element(a), v);
        }
        x.close("Part");
    }
    Ok(xml_response(StatusCode::OK, x.finish("ListPartsResult")))
}

pub async fn list_uploads(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let prefix = ctx.q("prefix").unwrap_or("");
    let delimiter = ctx.q("delimiter").filter(|d| !d.is_empty());
    let max: usize = ctx
        .q("max-uploads")
        .map_or(Ok(1000), |m| {
            m.parse()
                .map_err(|_| S3Error::invalid_argument("max-uploads must be an integer"))
        })?
        .min(coffre_types::limits::MAX_PAGE);
    let key_marker = ctx.q("key-marker").filter(|k| !k.is_empty());
    let id_marker = ctx.q("upload-id-marker").and_then(VersionId::from_hex).map(|v| v.0);
    let after = key_marker.map(|k| (k.as_bytes(), id_marker));
    // Uploads are few (they expire): roll common prefixes up in memory.
    let (all, _) = ctx
        .engine()
        .list_uploads(bucket, prefix.as_bytes(), after, usize::MAX)?;
    let owner = ctx.owner_of(bucket)?;
    let mut x = Xml::new("ListMultipartUploadsResult");
    x.elem("Bucket", bucket)
        .elem("KeyMarker", key_marker.unwrap_or(""))
        .elem("UploadIdMarker", ctx.q("upload-id-marker").unwrap_or(""));
    x.elem("Prefix", prefix).elem("MaxUploads", &max.to_string());
    if let Some(d) = delimiter {
        x.elem("Delimiter", d);
    }
    let mut count = 0;
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    let mut next: Option<(String, String)> = None;
    for (k, id, rec) in &all {
        let key = String::from_utf8_lossy(k).into_owned();
        if let Some(d) = delimiter {
            if let Some(i) = key[prefix.len()..].find(d) {
                let cp = key[..prefix.len() + i + d.len()].to_string();
                if prefixes.last() != Some(&cp) {
                    if count == max {
                        truncated = true;
                        break;
                    }
                    prefixes.push(cp);
                    count += 1;
                }
                continue;
            }
        }
        if count == max {
            truncated = true;
            break;
        }
        count += 1;
        next = Some((key.clone(), hex::encode(id)));
        x.open("Upload").elem("Key", &key).elem("UploadId", &hex::encode(id));
        x.open("Initiator")
            .elem("ID", &owner)
            .elem("DisplayName", &owner)
            .close("Initiator");
        x.open("Owner")
            .elem("ID", &owner)
            .elem("DisplayName", &owner)
            .close("Owner");
        x.elem("StorageClass", "STANDARD")
            .elem("Initiated", &iso8601(rec.created_ms))
            .close("Upload");
    }
    for p in &prefixes {
        x.open("CommonPrefixes").elem("Prefix", p).close("CommonPrefixes");
    }
    x.elem("IsTruncated", if truncated { "true" } else { "false" });
    if let (true, Some((k, id))) = (truncated, next) {
        x.elem("NextKeyMarker", &k).elem("NextUploadIdMarker", &id);
    }
    Ok(xml_response(StatusCode::OK, x.finish("ListMultipartUploadsResult")))
}
