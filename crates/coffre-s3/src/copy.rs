//! CopyObject, and the source of a copy (CopyObject and UploadPartCopy): its own read,
//! authorized and audited under its owner, its `x-amz-copy-source-if-*` conditions, its SSE-C
//! key.

use crate::context::Ctx;
use crate::http::{set, xml_response, Res};
use crate::object::{attrs_from_headers, etag_matches, open, parse_http_date, write_condition};
use crate::xml::Xml;
use crate::S3Error;
use coffre_engine::{BodyInfo, NewObject, ObjectRecord, ReadHandle, SealedAttrs};
use coffre_types::time::iso8601;
use http::StatusCode;

/// The object named by `x-amz-copy-source`, once its `x-amz-copy-source-if-*` conditions hold
/// and its SSE-C key (if it has one) is given, with its opened attributes.
pub(crate) async fn copy_source(ctx: &Ctx) -> Result<(ReadHandle, SealedAttrs), S3Error> {
    let src = ctx.h("x-amz-copy-source").unwrap_or("");
    let (src, raw_version) = match src.split_once("?versionId=") {
        Some((s, v)) => (s, Some(v)),
        None => (src, None),
    };
    let src_version = raw_version.map(crate::versioning::parse_version_id).transpose()?;
    let src = String::from_utf8(crate::encoding::percent_decode(src))
        .map_err(|_| S3Error::invalid_argument("x-amz-copy-source is not UTF-8"))?;
    let (sb, sk) = src
        .trim_start_matches('/')
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| S3Error::invalid_argument("x-amz-copy-source must be bucket/key"))?;
    // Reading the source is a GetObject (GetObjectVersion) of its own, whoever owns it.
    let action = match src_version {
        Some(_) => "s3:GetObjectVersion",
        None => "s3:GetObject",
    };
    // The read is audited under the source's owner, allowed or not.
    let authorized = ctx.authorize_version(action, coffre_iam::Target::Object(sb, sk), src_version);
    ctx.touch(crate::context::Touched {
        op: "CopySource",
        bucket: sb.to_string(),
        key: sk.to_string(),
        version_id: raw_version.map(str::to_string),
        status: if authorized.is_ok() { 200 } else { 403 },
        error: authorized.as_ref().err().map(|e| e.code),
        detail: None,
    });
    authorized?;
    if let Some(expected) = ctx.h("x-amz-source-expected-bucket-owner") {
        if !crate::auth::constant_time_eq(expected, &ctx.owner_of(sb)?) {
            return Err(S3Error::access_denied(
                "Access Denied: the source bucket has another owner",
            ));
        }
    }
    let mut source = open(ctx, sb, sk, src_version)?;
    let given = ctx.customer_key(crate::sse::COPY_SOURCE)?;
    let attrs = ctx.engine().open_attrs(sb, sk, &source.record)?;
    ctx.engine()
        .check_customer_key(&attrs, given.as_ref().map(|g| &g.key))?;
    source.customer_key = given.map(|g| g.key);
    crate::kms::check_read(ctx, sb, sk, &source.tenant, attrs.kms.as_ref())?;
    let srec = &source.record;
    let modified = srec.last_modified_ms / 1000;
    let h = |n| ctx.h(n);
    let failed = h("x-amz-copy-source-if-match").is_some_and(|m| !etag_matches(m, &srec.etag))
        || h("x-amz-copy-source-if-none-match").is_some_and(|m| etag_matches(m, &srec.etag))
        || h("x-amz-copy-source-if-unmodified-since")
            .and_then(parse_http_date)
            .is_some_and(|t| modified > t)
        || h("x-amz-copy-source-if-modified-since")
            .and_then(parse_http_date)
            .is_some_and(|t| modified <= t);
    if failed {
        return Err(S3Error::precondition_failed(
            "At least one of the pre-conditions you specified did not hold",
        ));
    }
    Ok((source, attrs))
}

/// A data-path receiver as the body stream `Engine::put` takes.
pub(crate) fn stream_of(
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, coffre_engine::DataError>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Unpin {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item.map_err(|e| std::io::Error::other(e.to_string())), rx))
    }))
}

fn copy_result(ctx: &Ctx, rec: &ObjectRecord, source: &ReadHandle) -> Result<Res, S3Error> {
    let mut x = Xml::new("CopyObjectResult");
    x.elem("LastModified", &iso8601(rec.last_modified_ms))
        .elem("ETag", &format!("\"{}\"", rec.etag));
    let mut r = xml_response(StatusCode::OK, x.finish("CopyObjectResult"));
    crate::versioning::set_written_version_header(&mut r, rec);
    if source.record.version_state.versioned || ctx.engine().versioning(&source.bucket)?.is_some() {
        set(&mut r, "x-amz-copy-source-version-id", &source.record.version_id());
    }
    Ok(r)
}

pub async fn copy(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let dst_bucket = ctx.engine().bucket(bucket)?;
    let requested = crate::sse::check_request(&ctx.headers, crate::sse::Use::Write)?;
    crate::acl::check_object_write(ctx, bucket)?;
    let condition = write_condition(ctx)?;
    let (source, src_attrs) = copy_source(ctx).await?;
    let (sb, sk, srec) = (source.bucket.as_str(), source.key.as_str(), &source.record);
    let replace = match ctx.h("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => return Err(S3Error::invalid_argument("x-amz-metadata-directive is COPY or REPLACE")),
    };
    if sb == bucket && sk == key && !replace {
        return Err(S3Error::invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let mut attrs = if replace {
        attrs_from_headers(ctx)?
    } else {
        src_attrs.clone()
    };
    attrs.checksums = src_attrs.checksums.clone();
    match ctx.h("x-amz-tagging-directive") {
        Some("REPLACE") => {}
        _ => attrs.tags = src_attrs.tags.clone(),
    }
    let engine = ctx.engine();
    let given = ctx.customer_key(crate::sse::TARGET)?;
    // The copy's encryption is the request's (or the destination bucket's default), never
    // the source's: copying is how an object moves from one KMS key to another.
    attrs.kms = crate::kms::key_of_write(ctx, bucket, key, &dst_bucket.tenant, &requested, given.is_some())?;
    let kms = attrs.kms.clone();
    let rekeyed = given.is_some() || source.customer_key.is_some() || kms.is_some() || src_attrs.kms.is_some();
    let lock = crate::versioning::lock_request(ctx, false)?;
    // Onto itself (metadata REPLACE) in a bucket that keeps no versions: only the metadata
    // changes, no data is copied. (In a versioned bucket the copy is a new version.)
    let in_place = sb == bucket
        && sk == key
        && condition.is_none()
        && !rekeyed
        && engine.versioning(bucket)?.is_none()
        && lock.retention.is_none()
        && !lock.legal_hold;
    if in_place {
        if let Some(rec) = engine.update_attrs(bucket, key, &srec.version, &attrs, true).await? {
            let mut r = copy_result(ctx, &rec, &source)?;
            crate::sse::echo(&mut r);
            return Ok(r);
        }
    }
    // Data is re-encrypted under the destination's identity and a fresh key: a copy shares
    // nothing with its source, so deleting one never affects the other.
    let stream = stream_of(engine.read(&source, 0, srec.size)?);
    let out = engine
        .put(
            bucket,
            &dst_bucket,
            key,
            stream,
            NewObject {
                attrs,
                body: BodyInfo {
                    size_hint: Some(srec.size),
                    customer_key: given.as_ref().map(|g| g.key.clone()),
                    kms_key: kms.as_ref().map(|k| k.key_id.clone()),
                    ..BodyInfo::default()
                },
                condition,
                lock,
            },
        )
        .await?;
    let mut r = copy_result(ctx, &out, &source)?;
    crate::sse::echo_object(&mut r, engine, &dst_bucket.tenant, given.as_ref(), kms.as_ref(), true);
    Ok(r)
}
