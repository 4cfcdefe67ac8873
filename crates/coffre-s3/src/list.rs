//! ListObjectsV2 and ListObjects (v1). A page is one seek-driven range scan in metadata.

use crate::context::Ctx;
use crate::http::{xml_response, Res};
use crate::xml::Xml;
use crate::S3Error;
use base64::Engine as _;
use coffre_engine::ListEntry;
use coffre_types::time::iso8601;
use http::StatusCode;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A listing's `max-keys`: non-negative, at most a page (1000 if not given).
pub(crate) fn max_keys(ctx: &Ctx) -> Result<usize, S3Error> {
    match ctx.q("max-keys") {
        Some(m) => Ok(m
            .parse::<i64>()
            .ok()
            .filter(|m| *m >= 0)
            .ok_or_else(|| S3Error::invalid_argument("max-keys must be a non-negative integer"))?
            .min(coffre_types::limits::MAX_PAGE as i64) as usize),
        None => Ok(1000),
    }
}

/// Whether a listing asks for `encoding-type=url` (no other encoding exists).
pub(crate) fn url_encoding(ctx: &Ctx) -> Result<bool, S3Error> {
    match ctx.q("encoding-type") {
        None => Ok(false),
        Some("url") => Ok(true),
        Some(_) => Err(S3Error::invalid_argument(
            "Invalid Encoding Method specified in Request",
        )),
    }
}

pub async fn list_objects(ctx: &Ctx, bucket: &str, v2: bool) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let prefix = ctx.q("prefix").unwrap_or("").to_string();
    let delimiter = ctx.q("delimiter").filter(|d| !d.is_empty()).map(str::to_string);
    let max_keys = max_keys(ctx)?;
    let url = url_encoding(ctx)?;
    let token = ctx.q("continuation-token");
    let after: Option<Vec<u8>> = if v2 {
        match token {
            Some(t) => Some(
                B64.decode(t)
                    .map_err(|_| S3Error::invalid_argument("The continuation token provided is incorrect"))?,
            ),
            None => ctx.q("start-after").map(|s| s.as_bytes().to_vec()),
        }
    } else {
        ctx.q("marker").map(|s| s.as_bytes().to_vec())
    };
    let (entries, truncated) = if max_keys == 0 {
        (Vec::new(), false)
    } else {
        ctx.engine().list(
            bucket,
            prefix.as_bytes(),
            delimiter.as_deref().map(str::as_bytes),
            after.as_deref(),
            max_keys,
        )?
    };
    let enc = |s: &str| {
        if url {
            crate::encoding::uri_encode(s.as_bytes(), true)
        } else {
            s.to_string()
        }
    };
    let root = "ListBucketResult";
    let mut x = Xml::new(root);
    x.elem("Name", bucket)
        .elem("Prefix", &enc(&prefix))
        .elem("MaxKeys", &max_keys.to_string());
    if let Some(d) = &delimiter {
        x.elem("Delimiter", &enc(d));
    }
    if url {
        x.elem("EncodingType", "url");
    }
    x.elem("IsTruncated", if truncated { "true" } else { "false" });
    let last = entries.last().map(|e| match e {
        ListEntry::Object(k, _) => k.clone(),
        ListEntry::CommonPrefix(p) => p.clone(),
    });
    if v2 {
        x.elem("KeyCount", &entries.len().to_string());
        if let Some(t) = token {
            x.elem("ContinuationToken", t);
        }
        if let Some(s) = ctx.q("start-after") {
            x.elem("StartAfter", &enc(s));
        }
        if let (true, Some(l)) = (truncated, &last) {
            x.elem("NextContinuationToken", &B64.encode(l));
        }
    } else {
        x.elem("Marker", &enc(ctx.q("marker").unwrap_or("")));
        if let (true, Some(l)) = (truncated, &last) {
            x.elem("NextMarker", &enc(&String::from_utf8_lossy(l)));
        }
    }
    let owner_id = match !v2 || ctx.q("fetch-owner") == Some("true") {
        true => Some(ctx.owner_of(bucket)?),
        false => None,
    };
    let mut prefixes = Vec::new();
    for e in &entries {
        match e {
            ListEntry::Object(k, rec) => {
                x.open("Contents")
                    .elem("Key", &enc(&String::from_utf8_lossy(k)))
                    .elem("LastModified", &iso8601(rec.last_modified_ms))
                    .elem("ETag", &format!("\"{}\"", rec.etag))
                    .elem("Size", &rec.size.to_string())
                    .elem("StorageClass", "STANDARD");
                if let Some(o) = &owner_id {
                    x.open("Owner").elem("ID", o).elem("DisplayName", o).close("Owner");
                }
                x.close("Contents");
            }
            ListEntry::CommonPrefix(p) => prefixes.push(String::from_utf8_lossy(p).into_owned()),
        }
    }
    for p in prefixes {
        x.open("CommonPrefixes")
            .elem("Prefix", &enc(&p))
            .close("CommonPrefixes");
    }
    Ok(xml_response(StatusCode::OK, x.finish(root)))
}
