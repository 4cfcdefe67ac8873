//! Versioning and Object Lock: Put/GetBucketVersioning, ListObjectVersions, the Object Lock
//! configuration of a bucket, and the retention and legal hold of a version.

use crate::context::Ctx;
use crate::http::{empty, set, xml_response, Res};
use crate::xml::Xml;
use crate::S3Error;
use coffre_engine::{
    LockMode, ObjectLockRequest, ObjectRecord, Retention, VersionChange, VersionEntry, VersionSel, VersioningChange,
    VersioningStatus,
};
use coffre_types::time::{iso8601, parse_iso8601};
use http::{Response, StatusCode};
use hyper::body::Incoming;

/// The version a request names with `?versionId=`, if any.
pub(crate) fn version_sel(ctx: &Ctx) -> Result<Option<VersionSel>, S3Error> {
    match ctx.q("versionId") {
        None => Ok(None),
        Some(v) => parse_version_id(v).map(Some),
    }
}

pub(crate) fn parse_version_id(v: &str) -> Result<VersionSel, S3Error> {
    VersionSel::parse(v).ok_or_else(|| S3Error::invalid_argument("Invalid version id specified"))
}

/// `x-amz-version-id` of a response about `rec`: its id in a bucket that has (had) versioning,
/// nothing in one that never had.
pub(crate) fn set_version_header(ctx: &Ctx, r: &mut Res, bucket: &str, rec: &ObjectRecord) -> Result<(), S3Error> {
    if rec.version_state.versioned || ctx.engine().versioning(bucket)?.is_some() {
        set(r, "x-amz-version-id", &rec.version_id());
    }
    Ok(())
}

/// `x-amz-version-id` of a write (PUT, Copy, Complete): only a version with an id of its own
/// is announced; a `null` one (suspended bucket) is not, as S3 answers.
pub(crate) fn set_written_version_header(r: &mut Res, rec: &ObjectRecord) {
    if rec.version_state.versioned {
        set(r, "x-amz-version-id", &rec.version_id());
    }
}

/// A 404 for a key says whether its newest version is a delete marker, as S3 answers.
pub(crate) fn not_found(ctx: &Ctx, bucket: &str, key: &str, e: S3Error) -> S3Error {
    if e.code != "NoSuchKey" {
        return e;
    }
    match ctx.engine().latest_marker(bucket, key) {
        Ok(Some(id)) => e
            .with_header("x-amz-delete-marker", "true")
            .with_header("x-amz-version-id", id),
        _ => e.with_header("x-amz-delete-marker", "false"),
    }
}

/// Whether the request bypasses GOVERNANCE retention: it says so and may.
pub(crate) fn bypass_governance(ctx: &Ctx, bucket: &str, key: &str) -> bool {
    ctx.h("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        && ctx
            .authorize("s3:BypassGovernanceRetention", coffre_iam::Target::Object(bucket, key))
            .is_ok()
}

fn parse_date(s: &str) -> Result<u64, S3Error> {
    parse_iso8601(s)
        .and_then(|ms| u64::try_from(ms).ok())
        .ok_or_else(|| S3Error::invalid_argument(format!("Invalid date: {s}")))
}

/// A retain-until date: in the future, and at most 100 years ahead (`MAX_RETENTION_MS`).
fn retain_until(s: &str) -> Result<u64, S3Error> {
    let until_ms = parse_date(s)?;
    let now = coffre_types::now_millis();
    if until_ms <= now {
        return Err(S3Error::invalid_argument(
            "The retain until date must be in the future!",
        ));
    }
    if until_ms - now > coffre_types::limits::MAX_RETENTION_MS {
        return Err(S3Error::invalid_argument(
            "The retain until date is too far in the future: at most 100 years from now",
        ));
    }
    Ok(until_ms)
}

/// Object Lock headers of a write (PUT, Copy, CreateMultipartUpload). A write with a body
/// must carry `Content-MD5` or a flexible checksum with them (`with_body`), as S3 requires.
pub(crate) fn lock_request(ctx: &Ctx, with_body: bool) -> Result<ObjectLockRequest, S3Error> {
    let mode = ctx.h("x-amz-object-lock-mode");
    let until = ctx.h("x-amz-object-lock-retain-until-date");
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(m), Some(u)) => {
            let mode =
                LockMode::parse(m.trim()).ok_or_else(|| S3Error::invalid_argument("Unknown wormMode directive."))?;
            Some(Retention {
                mode,
                until_ms: retain_until(u)?,
            })
        }
        _ => {
            return Err(S3Error::invalid_argument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ))
        }
    };
    let legal_hold = match ctx.h("x-amz-object-lock-legal-hold").map(str::trim) {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(_) => return Err(S3Error::invalid_argument("Legal Hold must be either of 'ON' or 'OFF'")),
    };
    if (retention.is_some() || legal_hold) && with_body && !has_integrity_header(ctx) {
        return Err(S3Error::invalid_request(
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
        ));
    }
    Ok(ObjectLockRequest { retention, legal_hold })
}

/// Whether the request carries `Content-MD5` or a flexible checksum (what S3 requires of
/// Object Lock requests).
fn has_integrity_header(ctx: &Ctx) -> bool {
    ctx.h("content-md5").is_some()
        || ctx.h("x-amz-sdk-checksum-algorithm").is_some()
        || ctx.h("x-amz-trailer").is_some_and(|t| t.contains("x-amz-checksum-"))
        || ctx.headers.keys().any(|k| k.as_str().starts_with("x-amz-checksum-"))
}

fn require_integrity(ctx: &Ctx) -> Result<(), S3Error> {
    match has_integrity_header(ctx) {
        true => Ok(()),
        false => Err(S3Error::invalid_request(
            "Content-MD5 OR x-amz-checksum- HTTP header is required for this request",
        )),
    }
}

pub async fn get_versioning(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let mut x = Xml::new("VersioningConfiguration");
    match ctx.engine().versioning(bucket)?.map(|v| v.status) {
        Some(VersioningStatus::Enabled) => {
            x.elem("Status", "Enabled");
        }
        Some(VersioningStatus::Suspended) => {
            x.elem("Status", "Suspended");
        }
        None => {}
    }
    Ok(xml_response(StatusCode::OK, x.finish("VersioningConfiguration")))
}

pub async fn put_versioning(ctx: &Ctx, bucket: &str, body: Incoming) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let raw = crate::document::read_document(ctx, body, 64 * 1024).await?;
    let doc = crate::xml::parse(&raw, 8)?;
    if doc.name != "VersioningConfiguration" {
        return Err(S3Error::malformed_xml("expected VersioningConfiguration"));
    }
    if doc.child("MfaDelete").is_some_and(|m| m.text.trim() == "Enabled") {
        return Err(S3Error::not_implemented("MFA delete is not supported"));
    }
    let status = match doc.child("Status").map(|s| s.text.trim()) {
        Some("Enabled") => VersioningStatus::Enabled,
        Some("Suspended") => VersioningStatus::Suspended,
        // No status: nothing changes (as S3 answers).
        None => return Ok(Response::new(empty())),
        Some(_) => return Err(S3Error::malformed_xml("Status is Enabled or Suspended")),
    };
    ctx.engine()
        .configure_versioning(bucket, VersioningChange::Status(status))
        .await?;
    Ok(Response::new(empty()))
}

pub async fn list_versions(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let prefix = ctx.q("prefix").unwrap_or("").to_string();
    let delimiter = ctx.q("delimiter").filter(|d| !d.is_empty()).map(str::to_string);
    let max_keys = crate::list::max_keys(ctx)?;
    let url = crate::list::url_encoding(ctx)?;
    let key_marker = ctx.q("key-marker").filter(|k| !k.is_empty());
    let version_marker = match (ctx.q("version-id-marker").filter(|v| !v.is_empty()), key_marker) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(S3Error::invalid_argument(
                "A version-id marker cannot be specified without a key marker.",
            ))
        }
        (Some(v), Some(_)) => Some(parse_version_id(v)?),
    };
    let (entries, truncated) = match max_keys {
        0 => (Vec::new(), false),
        n => ctx
            .engine()
            .list_versions(bucket, &prefix, delimiter.as_deref(), key_marker, version_marker, n)?,
    };
    let enc = |s: &str| match url {
        true => crate::encoding::uri_encode(s.as_bytes(), true),
        false => s.to_string(),
    };
    let root = "ListVersionsResult";
    let mut x = Xml::new(root);
    x.elem("Name", bucket)
        .elem("Prefix", &enc(&prefix))
        .elem("KeyMarker", &enc(key_marker.unwrap_or("")))
        .elem("VersionIdMarker", ctx.q("version-id-marker").unwrap_or(""))
        .elem("MaxKeys", &max_keys.to_string());
    if let Some(d) = &delimiter {
        x.elem("Delimiter", &enc(d));
    }
    if url {
        x.elem("EncodingType", "url");
    }
    x.elem("IsTruncated", if truncated { "true" } else { "false" });
    if truncated {
        match entries.last() {
            Some(VersionEntry::Version { key, record, .. }) => {
                x.elem("NextKeyMarker", &enc(&String::from_utf8_lossy(key)))
                    .elem("NextVersionIdMarker", &record.version_id());
            }
            Some(VersionEntry::CommonPrefix(p)) => {
                x.elem("NextKeyMarker", &enc(&String::from_utf8_lossy(p)));
            }
            None => {}
        }
    }
    let owner = ctx.owner_of(bucket)?;
    let mut prefixes = Vec::new();
    for e in &entries {
        match e {
            VersionEntry::Version { key, record, is_latest } => {
                let element = match record.is_delete_marker() {
                    true => "DeleteMarker",
                    false => "Version",
                };
                x.open(element)
                    .elem("Key", &enc(&String::from_utf8_lossy(key)))
                    .elem("VersionId", &record.version_id())
                    .elem("IsLatest", if *is_latest { "true" } else { "false" })
                    .elem("LastModified", &iso8601(record.last_modified_ms));
                if !record.is_delete_marker() {
                    x.elem("ETag", &format!("\"{}\"", record.etag))
                        .elem("Size", &record.size.to_string())
                        .elem("StorageClass", "STANDARD");
                }
                x.open("Owner")
                    .elem("ID", &owner)
                    .elem("DisplayName", &owner)
                    .close("Owner")
                    .close(element);
            }
            VersionEntry::CommonPrefix(p) => prefixes.push(String::from_utf8_lossy(p).into_owned()),
        }
    }
    for p in prefixes {
        x.open("CommonPrefixes")
            .elem("Prefix", &enc(&p))
            .close("CommonPrefixes");
    }
    Ok(xml_response(StatusCode::OK, x.finish(root)))
}

pub async fn get_lock_configuration(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let Some(v) = ctx.engine().versioning(bucket)?.filter(|v| v.object_lock) else {
        return Err(S3Error::no_lock_configuration(
            "Object Lock configuration does not exist for this bucket",
        ));
    };
    let mut x = Xml::new("ObjectLockConfiguration");
    x.elem("ObjectLockEnabled", "Enabled");
    if let Some(d) = v.default_retention {
        x.open("Rule").open("DefaultRetention").elem("Mode", d.mode.as_str());
        if let Some(days) = d.days {
            x.elem("Days", &days.to_string());
        }
        if let Some(years) = d.years {
            x.elem("Years", &years.to_string());
        }
        x.close("DefaultRetention").close("Rule");
    }
    Ok(xml_response(StatusCode::OK, x.finish("ObjectLockConfiguration")))
}

pub async fn put_lock_configuration(ctx: &Ctx, bucket: &str, body: Incoming) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    require_integrity(ctx)?;
    let raw = crate::document::read_document(ctx, body, 64 * 1024).await?;
    let doc = crate::xml::parse(&raw, 16)?;
    if doc.name != "ObjectLockConfiguration" {
        return Err(S3Error::malformed_xml("expected ObjectLockConfiguration"));
    }
    if doc.child("ObjectLockEnabled").map(|e| e.text.trim()) != Some("Enabled") {
        return Err(S3Error::malformed_xml("ObjectLockEnabled must be Enabled"));
    }
    let default_retention = match doc.child("Rule") {
        None => None,
        Some(rule) => {
            let d = rule
                .child("DefaultRetention")
                .ok_or_else(|| S3Error::malformed_xml("a Rule holds a DefaultRetention"))?;
            let mode = d
                .child("Mode")
                .and_then(|m| LockMode::parse(m.text.trim()))
                .ok_or_else(|| S3Error::malformed_xml("Mode is GOVERNANCE or COMPLIANCE"))?;
            let number = |n: &str| -> Result<Option<u32>, S3Error> {
                match d.child(n) {
                    None => Ok(None),
                    Some(v) => v
                        .text
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|v| *v > 0)
                        .map(Some)
                        .ok_or_else(|| {
                            S3Error::invalid_retention_period(
                                "Default retention period must be a positive integer value",
                            )
                        }),
                }
            };
            let (days, years) = (number("Days")?, number("Years")?);
            match (days, years) {
                (Some(d), None) if d <= 36_500 => {}
                (None, Some(y)) if y <= 100 => {}
                (Some(_), Some(_)) | (None, None) => {
                    return Err(S3Error::malformed_xml("DefaultRetention holds either Days or Years"))
                }
                _ => {
                    return Err(S3Error::invalid_retention_period(
                        "Default retention period is too large (at most 100 years)",
                    ))
                }
            }
            Some(coffre_engine::DefaultRetention { mode, days, years })
        }
    };
    ctx.engine()
        .configure_versioning(bucket, VersioningChange::ObjectLock(default_retention))
        .await?;
    Ok(Response::new(empty()))
}

/// The version a retention or legal hold request names, checked to be in a lock-enabled bucket.
fn locked_version(ctx: &Ctx, bucket: &str, key: &str) -> Result<(ObjectRecord, Option<VersionSel>), S3Error> {
    ctx.engine().bucket(bucket)?;
    if !ctx.engine().versioning(bucket)?.is_some_and(|v| v.object_lock) {
        return Err(S3Error::invalid_request("Bucket is missing Object Lock Configuration"));
    }
    let sel = version_sel(ctx)?;
    let (rec, _) = ctx
        .engine()
        .head_version(bucket, key, sel)
        .map_err(|e| not_found(ctx, bucket, key, e.into()))?;
    Ok((rec, sel))
}

pub async fn get_retention(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let (rec, _) = locked_version(ctx, bucket, key)?;
    let Some(r) = rec.version_state.retention else {
        return Err(S3Error::no_such_lock_configuration(
            "The specified object does not have a ObjectLock configuration",
        ));
    };
    let mut x = Xml::new("Retention");
    x.elem("Mode", r.mode.as_str())
        .elem("RetainUntilDate", &iso8601(r.until_ms));
    Ok(xml_response(StatusCode::OK, x.finish("Retention")))
}

pub async fn put_retention(ctx: &Ctx, bucket: &str, key: &str, body: Incoming) -> Result<Res, S3Error> {
    let (_, sel) = locked_version(ctx, bucket, key)?;
    require_integrity(ctx)?;
    let raw = crate::document::read_document(ctx, body, 64 * 1024).await?;
    let doc = crate::xml::parse(&raw, 8)?;
    if doc.name != "Retention" {
        return Err(S3Error::malformed_xml("expected Retention"));
    }
    let mode = doc.child("Mode").map(|m| m.text.trim().to_string());
    let until = doc.child("RetainUntilDate").map(|d| d.text.trim().to_string());
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(m), Some(u)) => {
            let mode = LockMode::parse(&m).ok_or_else(|| S3Error::malformed_xml("Mode is GOVERNANCE or COMPLIANCE"))?;
            Some(Retention {
                mode,
                until_ms: retain_until(&u)?,
            })
        }
        _ => return Err(S3Error::malformed_xml("Retention holds both Mode and RetainUntilDate")),
    };
    let bypass = bypass_governance(ctx, bucket, key);
    let rec = ctx
        .engine()
        .update_version(bucket, key, sel, VersionChange::Retention(retention), bypass)
        .await?;
    let mut r = Response::new(empty());
    set_version_header(ctx, &mut r, bucket, &rec)?;
    Ok(r)
}

pub async fn get_legal_hold(ctx: &Ctx, bucket: &str, key: &str) -> Result<Res, S3Error> {
    let (rec, _) = locked_version(ctx, bucket, key)?;
    let mut x = Xml::new("LegalHold");
    x.elem("Status", if rec.version_state.legal_hold { "ON" } else { "OFF" });
    Ok(xml_response(StatusCode::OK, x.finish("LegalHold")))
}

pub async fn put_legal_hold(ctx: &Ctx, bucket: &str, key: &str, body: Incoming) -> Result<Res, S3Error> {
    let (_, sel) = locked_version(ctx, bucket, key)?;
    require_integrity(ctx)?;
    let raw = crate::document::read_document(ctx, body, 64 * 1024).await?;
    let doc = crate::xml::parse(&raw, 4)?;
    if doc.name != "LegalHold" {
        return Err(S3Error::malformed_xml("expected LegalHold"));
    }
    let on = match doc.child("Status").map(|s| s.text.trim()) {
        Some("ON") => true,
        Some("OFF") => false,
        _ => return Err(S3Error::malformed_xml("Status is ON or OFF")),
    };
    let rec = ctx
        .engine()
        .update_version(bucket, key, sel, VersionChange::LegalHold(on), false)
        .await?;
    let mut r = Response::new(empty());
    set_version_header(ctx, &mut r, bucket, &rec)?;
    Ok(r)
}
