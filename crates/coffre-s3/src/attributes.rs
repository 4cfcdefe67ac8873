//! GetObjectAttributes: an object's ETag, checksum, parts, storage class and size without
//! reading its data.

use crate::context::Ctx;
use crate::http::{set, xml_response, Res};
use crate::object::{checksum_element, checksum_type, http_date, load};
use crate::xml::Xml;
use crate::S3Error;
use http::StatusCode;

/// GetObjectAttributes: what `x-amz-object-attributes` asks of the current version, without
/// reading its data.
pub async fn attributes(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    crate::sse::check_request(&ctx.headers, crate::sse::Use::Read)?;
    const NAMES: [&str; 5] = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"];
    // One header with a list, or the header repeated: both are how SDKs send it.
    let asked: Vec<&str> = ctx
        .headers
        .get_all("x-amz-object-attributes")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if asked.is_empty() {
        return Err(S3Error::invalid_argument(
            "x-amz-object-attributes names at least one attribute",
        ));
    }
    if let Some(a) = asked.iter().find(|a| !NAMES.contains(a)) {
        return Err(S3Error::invalid_argument(format!(
            "Invalid attribute name specified: {a}"
        )));
    }
    let wants = |n: &str| asked.contains(&n);
    let number = |h: &str, default: u32| -> Result<u32, S3Error> {
        ctx.h(h).map_or(Ok(default), |v| {
            v.trim()
                .parse()
                .map_err(|_| S3Error::invalid_argument(format!("{h} must be a non-negative integer")))
        })
    };
    let max_parts = number("x-amz-max-parts", 1000)?.min(1000);
    let marker = number("x-amz-part-number-marker", 0)?;
    let rec = load(ctx, bucket, key)?;
    let attrs = ctx.engine().open_attrs(bucket, key, &rec)?;
    let given = ctx.customer_key(crate::sse::TARGET)?;
    ctx.engine()
        .check_customer_key(&attrs, given.as_ref().map(|g| &g.key))?;
    let mut x = Xml::new("GetObjectAttributesResponse");
    if wants("ETag") {
        x.elem("ETag", &rec.etag);
    }
    if wants("Checksum") {
        if let Some((a, v)) = attrs.checksums.first() {
            let kind = checksum_type(v);
            x.open("Checksum")
                .elem(&checksum_element(a), v)
                .elem("ChecksumType", kind)
                .close("Checksum");
        }
    }
    if wants("ObjectParts") && rec.etag.contains('-') {
        let total = rec.parts.len();
        let from = (marker as usize).min(total);
        let to = from.saturating_add(max_parts as usize).min(total);
        let truncated = to < total;
        x.open("ObjectParts")
            .elem("PartsCount", &total.to_string())
            .elem("PartNumberMarker", &marker.to_string());
        if truncated {
            x.elem("NextPartNumberMarker", &to.to_string());
        }
        x.elem("MaxParts", &max_parts.to_string())
            .elem("IsTruncated", if truncated { "true" } else { "false" });
        for (i, p) in rec.parts.iter().enumerate().take(to).skip(from) {
            x.open("Part").elem("PartNumber", &(i + 1).to_string());
            if let Some((a, v)) = ctx.engine().part_checksum(p)? {
                x.elem(&checksum_element(&a), &v);
            }
            x.elem("Size", &p.size.to_string()).close("Part");
        }
        x.close("ObjectParts");
    }
    if wants("StorageClass") {
        x.elem("StorageClass", "STANDARD");
    }
    if wants("ObjectSize") {
        x.elem("ObjectSize", &rec.size.to_string());
    }
    let mut r = xml_response(StatusCode::OK, x.finish("GetObjectAttributesResponse"));
    set(&mut r, "last-modified", &http_date(rec.last_modified_ms));
    Ok(r)
}
