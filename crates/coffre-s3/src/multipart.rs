//! Multipart uploads: create, upload part (and part copy), complete, abort, list parts and
//! uploads. Each part is stored as its own stripes when it arrives; Complete only writes
//! metadata (one atomic batch) and is idempotent for a retried request.

use crate::body::BodyReader;
use crate::checksum::{multipart_checksum, Algorithm};
use crate::object::{attrs_from_headers, content_md5, copy_source, set};
use crate::router::Ctx;
use crate::server::{empty, xml_response, Res};
use crate::xml::Xml;
use crate::S3Error;
use coffre_meta::{ObjectRecord, UploadPartRecord, UploadRecord};
use coffre_types::time::iso8601;
use coffre_types::{now_millis, VersionId};
use http::{Response, StatusCode};
use hyper::body::Incoming;

const MIN_PART: u64 = 5 << 20;
const MAX_PART: u64 = 5 << 30;
const MAX_PARTS: u32 = 10_000;

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

/// The residency policy a part is written under: the bucket's, with the upload's scheme (all
/// parts of an object share one).
async fn part_policy(ctx: &Ctx, bucket: &str, up: &UploadRecord) -> Result<coffre_cluster::ResidencyPolicy, S3Error> {
    let mut p = crate::engine::policy_of(&crate::bucket::bucket_record(ctx, bucket).await?);
    p.scheme = up.scheme;
    Ok(p)
}

/// Commits an uploaded part; if that fails, its shards go to GC.
fn record_part(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    id: &[u8; 16],
    number: u32,
    info: &coffre_meta::PartInfo,
    layout: &coffre_meta::LayoutRecord,
) -> Result<UploadPartRecord, S3Error> {
    let engine = &ctx.gw.engine;
    let part = UploadPartRecord {
        info: info.clone(),
        last_modified_ms: now_millis(),
    };
    if let Err(e) = engine
        .meta
        .commit_part(bucket, key.as_bytes(), id, number, &part, layout)
    {
        engine.abort(&info.version, &info.nodes, Some(engine.stripes_of(info)));
        return Err(e.into());
    }
    Ok(part)
}

async fn load_upload(ctx: &Ctx, bucket: &str, key: &str, id: &[u8; 16]) -> Result<UploadRecord, S3Error> {
    crate::bucket::bucket_record(ctx, bucket).await?;
    match ctx.gw.engine.meta.get_upload(bucket, key.as_bytes(), id)? {
        Some(u) if u.completed.is_none() => Ok(u),
        _ => Err(S3Error::no_such_upload("The specified upload does not exist")),
    }
}

pub async fn create(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let brec = crate::bucket::bucket_record(ctx, bucket).await?;
    let attrs = attrs_from_headers(ctx)?;
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
    let id = VersionId::random();
    let rec = UploadRecord {
        created_ms: now_millis(),
        scheme: brec.scheme,
        packages_per_stripe: coffre_data::StripeLayout::DEFAULT_PACKAGES as u32,
        sealed: ctx.gw.engine.seal_attrs(bucket, key, &id, &attrs),
        checksum_algorithm: algorithm.map(|a| a.name().to_string()),
        checksum_type: ctype.clone(),
        completed: None,
    };
    ctx.gw.engine.meta.create_upload(bucket, key.as_bytes(), &id.0, &rec)?;
    let mut x = Xml::new("InitiateMultipartUploadResult");
    x.elem("Bucket", bucket).elem("Key", key).elem("UploadId", &id.to_hex());
    let mut r = xml_response(StatusCode::OK, x.finish("InitiateMultipartUploadResult"));
    if let Some(a) = algorithm {
        set(&mut r, "x-amz-checksum-algorithm", &a.name().to_ascii_uppercase());
        set(&mut r, "x-amz-checksum-type", ctype.as_deref().unwrap_or("COMPOSITE"));
    }
    Ok(r)
}

pub async fn upload_part(ctx: &Ctx, bucket: &str, key: &str, body: Incoming) -> Result<Res, S3Error> {
    let id = upload_id(ctx)?;
    let number = part_number(ctx)?;
    let up = load_upload(ctx, bucket, key, &id).await?;
    let md5 = content_md5(ctx)?;
    let (mut reader, slot) = BodyReader::new(body, &ctx.headers, Some(ctx.verified.clone()), MAX_PART)?;
    if let Some(a) = up.checksum_algorithm.as_deref().and_then(Algorithm::parse) {
        reader.ensure_checksum(a);
    }
    let engine = &ctx.gw.engine;
    let (info, layout) = engine
        .write_data(
            bucket,
            key,
            &part_policy(ctx, bucket, &up).await?,
            reader.into_stream(),
            md5,
            Some(slot),
        )
        .await?;
    record_part(ctx, bucket, key, &id, number, &info, &layout)?;
    let mut r = Response::new(empty());
    set(&mut r, "etag", &format!("\"{}\"", info.md5));
    if let Some((a, v)) = &info.checksum {
        set(&mut r, &format!("x-amz-checksum-{a}"), v);
    }
    Ok(r)
}

pub async fn upload_part_copy(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let id = upload_id(ctx)?;
    let number = part_number(ctx)?;
    let up = load_upload(ctx, bucket, key, &id).await?;
    let (sb, sk, srec) = copy_source(ctx).await?;
    let (start, end) = match ctx.h("x-amz-copy-source-range") {
        None => (0, srec.size),
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
            if a > b || b >= srec.size {
                return Err(S3Error::invalid_range("The requested range is not satisfiable"));
            }
            (a, b + 1)
        }
    };
    let engine = &ctx.gw.engine;
    let stream = crate::object::stream_of(engine.read(&sb, &sk, &srec, start, end)?);
    let policy = part_policy(ctx, bucket, &up).await?;
    let (info, layout) = engine.write_data(bucket, key, &policy, stream, None, None).await?;
    let part = record_part(ctx, bucket, key, &id, number, &info, &layout)?;
    let mut x = Xml::new("CopyPartResult");
    x.elem("LastModified", &iso8601(part.last_modified_ms))
        .elem("ETag", &format!("\"{}\"", info.md5));
    Ok(xml_response(StatusCode::OK, x.finish("CopyPartResult")))
}

fn complete_result(bucket: &str, key: &str, etag: &str, checksum: Option<&(String, String)>) -> Res {
    let mut x = Xml::new("CompleteMultipartUploadResult");
    x.elem("Location", &format!("/{bucket}/{key}"))
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", &format!("\"{etag}\""));
    if let Some((a, v)) = checksum {
        x.elem(&format!("Checksum{}", a.to_ascii_uppercase()), v);
        x.elem(
            "ChecksumType",
            if v.contains('-') { "COMPOSITE" } else { "FULL_OBJECT" },
        );
    }
    xml_response(StatusCode::OK, x.finish("CompleteMultipartUploadResult"))
}

pub async fn complete(ctx: &Ctx, bucket: &str, key: &str, body: Incoming) -> Result<Res, S3Error> {
    let id = upload_id(ctx)?;
    crate::bucket::bucket_record(ctx, bucket).await?;
    let engine = &ctx.gw.engine;
    let up = engine
        .meta
        .get_upload(bucket, key.as_bytes(), &id)?
        .ok_or_else(|| S3Error::no_such_upload("The specified upload does not exist"))?;
    let (reader, _) = BodyReader::new(body, &ctx.headers, Some(ctx.verified.clone()), 4 << 20)?;
    let raw = reader.read_all(4 << 20).await?;
    if let Some((version, etag)) = &up.completed {
        // A retry of a Complete that succeeded: answer the same, if the object is still it.
        let current = engine.meta.get_object(bucket, key.as_bytes())?;
        return match current {
            Some(rec) if rec.version == *version => {
                let attrs = engine.open_attrs(bucket, key, &rec)?;
                Ok(complete_result(bucket, key, etag, attrs.checksums.first()))
            }
            _ => Err(S3Error::no_such_upload("The specified upload does not exist")),
        };
    }
    let doc = crate::xml::parse(&raw)?;
    if doc.name != "CompleteMultipartUpload" {
        return Err(S3Error::malformed_xml("expected CompleteMultipartUpload"));
    }
    let mut wanted = Vec::new();
    for p in doc.all("Part") {
        let n: u32 = p
            .child("PartNumber")
            .and_then(|n| n.text.trim().parse().ok())
            .ok_or_else(|| S3Error::malformed_xml("a Part has no valid PartNumber"))?;
        let etag = p
            .child("ETag")
            .map(|e| e.text.trim().trim_matches('"').to_string())
            .ok_or_else(|| S3Error::malformed_xml("a Part has no ETag"))?;
        wanted.push((n, etag));
    }
    if wanted.is_empty() {
        return Err(S3Error::malformed_xml("You must specify at least one part"));
    }
    if wanted.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(S3Error::invalid_part_order(
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    let uploaded: std::collections::HashMap<u32, UploadPartRecord> =
        engine.meta.list_parts(&id, 0, usize::MAX)?.0.into_iter().collect();
    let mut parts = Vec::with_capacity(wanted.len());
    for (i, (n, etag)) in wanted.iter().enumerate() {
        let p = uploaded.get(n).filter(|p| p.info.md5 == *etag).ok_or_else(|| {
            S3Error::invalid_part(format!(
                "One or more of the specified parts could not be found or its entity tag did not match (part {n})."
            ))
        })?;
        if i + 1 < wanted.len() && p.info.size < MIN_PART {
            return Err(S3Error::entity_too_small(format!("Your proposed upload is smaller than the minimum allowed size: part {n} is {} bytes, parts but the last must be at least 5 MiB", p.info.size)));
        }
        parts.push(p.info.clone());
    }
    let mut md5s = Vec::with_capacity(parts.len() * 16);
    for p in &parts {
        md5s.extend_from_slice(&hex::decode(&p.md5).map_err(|_| S3Error::internal("part md5 corrupt"))?);
    }
    let etag = {
        use md5::Digest;
        format!("{}-{}", hex::encode(md5::Md5::digest(&md5s)), parts.len())
    };
    let mut attrs = engine.open_attrs_for(bucket, key, &VersionId(id), &up.sealed)?;
    if let Some(a) = up.checksum_algorithm.as_deref().and_then(Algorithm::parse) {
        let sums: Option<Vec<(String, u64)>> = parts
            .iter()
            .map(|p| {
                p.checksum
                    .as_ref()
                    .filter(|(n, _)| n == a.name())
                    .map(|(_, v)| (v.clone(), p.size))
            })
            .collect();
        let full = up.checksum_type.as_deref() == Some("FULL_OBJECT");
        if let Some(v) = sums.and_then(|s| multipart_checksum(a, &s, full)) {
            attrs.checksums = vec![(a.name().to_string(), v)];
        }
    }
    let version = VersionId::random();
    let rec = ObjectRecord {
        version,
        size: parts.iter().map(|p| p.size).sum(),
        etag: etag.clone(),
        last_modified_ms: now_millis(),
        scheme: up.scheme,
        packages_per_stripe: up.packages_per_stripe,
        parts,
        sealed: engine.seal_attrs(bucket, key, &version, &attrs),
    };
    engine.meta.complete_upload(bucket, key.as_bytes(), &id, &rec)?;
    Ok(complete_result(bucket, key, &etag, attrs.checksums.first()))
}

pub async fn abort(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let id = upload_id(ctx)?;
    crate::bucket::bucket_record(ctx, bucket).await?;
    if !ctx.gw.engine.meta.abort_upload(bucket, key.as_bytes(), &id)? {
        return Err(S3Error::no_such_upload("The specified upload does not exist"));
    }
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

pub async fn list_parts(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let id = upload_id(ctx)?;
    load_upload(ctx, bucket, key, &id).await?;
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
        .min(1000);
    let (parts, truncated) = ctx.gw.engine.meta.list_parts(&id, marker, max)?;
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
        if let Some((a, v)) = &p.info.checksum {
            x.elem(&format!("Checksum{}", a.to_ascii_uppercase()), v);
        }
        x.close("Part");
    }
    Ok(xml_response(StatusCode::OK, x.finish("ListPartsResult")))
}

pub async fn list_uploads(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    crate::bucket::bucket_record(ctx, bucket).await?;
    let prefix = ctx.q("prefix").unwrap_or("");
    let delimiter = ctx.q("delimiter").filter(|d| !d.is_empty());
    let max: usize = ctx
        .q("max-uploads")
        .map_or(Ok(1000), |m| {
            m.parse()
                .map_err(|_| S3Error::invalid_argument("max-uploads must be an integer"))
        })?
        .min(1000);
    let key_marker = ctx.q("key-marker").filter(|k| !k.is_empty());
    let id_marker = ctx.q("upload-id-marker").and_then(VersionId::from_hex).map(|v| v.0);
    let after = key_marker.map(|k| (k.as_bytes(), id_marker));
    // Uploads are few (they expire): roll common prefixes up in memory.
    let (all, _) = ctx
        .gw
        .engine
        .meta
        .list_uploads(bucket, prefix.as_bytes(), after, usize::MAX)?;
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
            .elem("ID", &ctx.gw.config.access_key)
            .elem("DisplayName", "coffre")
            .close("Initiator");
        x.open("Owner")
            .elem("ID", &ctx.gw.config.access_key)
            .elem("DisplayName", "coffre")
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
