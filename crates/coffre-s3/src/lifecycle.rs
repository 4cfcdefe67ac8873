//! Put/Get/DeleteBucketLifecycleConfiguration, and the `x-amz-expiration` header. The rules
//! are applied by the engine's background pass (`coffre_engine::lifecycle`).

use crate::context::Ctx;
use crate::http::{empty, set, status, xml_response, Res};
use crate::xml::{Node, Xml};
use crate::S3Error;
use coffre_engine::{
    BucketConfigKind, LifecycleConfig, LifecycleExpiration, LifecycleFilter, LifecycleRule, NoncurrentExpiration,
    ObjectRecord,
};
use coffre_types::time::{iso8601, parse_iso8601};
use http::{Response, StatusCode};
use hyper::body::Incoming;

const MAX_RULES: usize = 1000;
const DAY_MS: i64 = 86_400_000;

fn positive(n: &Node, what: &str) -> Result<u32, S3Error> {
    n.text
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| S3Error::invalid_argument(format!("'{what}' for a lifecycle rule must be a positive integer")))
}

fn size(n: &Node) -> Result<u64, S3Error> {
    n.text
        .trim()
        .parse::<u64>()
        .map_err(|_| S3Error::invalid_argument("An object size in a lifecycle filter must be a non-negative integer"))
}

fn tag(n: &Node) -> Result<(String, String), S3Error> {
    match (n.child("Key"), n.child("Value")) {
        (Some(k), v) => Ok((k.text.clone(), v.map(|v| v.text.clone()).unwrap_or_default())),
        _ => Err(S3Error::malformed_xml("a Tag has no Key")),
    }
}

/// The conditions of a `Filter` element (or of its `And`).
fn filter_of(n: &Node, f: &mut LifecycleFilter) -> Result<(), S3Error> {
    if let Some(p) = n.child("Prefix") {
        f.prefix = p.text.clone();
    }
    for t in n.all("Tag") {
        f.tags.push(tag(t)?);
    }
    if let Some(s) = n.child("ObjectSizeGreaterThan") {
        f.size_greater_than = Some(size(s)?);
    }
    if let Some(s) = n.child("ObjectSizeLessThan") {
        f.size_less_than = Some(size(s)?);
    }
    Ok(())
}

fn rule_of(r: &Node) -> Result<LifecycleRule, S3Error> {
    let id = r.child("ID").map(|i| i.text.trim().to_string()).unwrap_or_default();
    if id.len() > 255 {
        return Err(S3Error::invalid_argument(
            "The ID of a lifecycle rule is at most 255 characters",
        ));
    }
    let enabled = match r.child("Status").map(|s| s.text.trim()) {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => return Err(S3Error::malformed_xml("a Rule has a Status, Enabled or Disabled")),
    };
    // Transitions are not supported, but a malformed one is still a client error.
    for t in r.all("Transition") {
        if let Some(d) = t.child("Date") {
            if parse_iso8601(&d.text).is_none_or(|ms| ms.rem_euclid(DAY_MS) != 0) {
                return Err(S3Error::invalid_argument("Invalid date in Transition"));
            }
        }
        if let Some(d) = t.child("Days") {
            d.text
                .trim()
                .parse::<u32>()
                .map_err(|_| S3Error::invalid_argument("'Days' in Transition must be a non-negative integer"))?;
        }
    }
    if r.child("Transition").is_some() || r.child("NoncurrentVersionTransition").is_some() {
        return Err(S3Error::not_implemented(
            "Transition actions are not supported: Coffre has one storage class",
        ));
    }
    let mut filter = LifecycleFilter::default();
    match (r.child("Filter"), r.child("Prefix")) {
        (Some(_), Some(_)) => return Err(S3Error::malformed_xml("a Rule has a Filter or a Prefix, not both")),
        (Some(f), None) => {
            let conditions = f.children.len();
            match f.child("And") {
                Some(and) if conditions == 1 => filter_of(and, &mut filter)?,
                Some(_) => return Err(S3Error::malformed_xml("And is alone in its Filter")),
                None if conditions > 1 => {
                    return Err(S3Error::malformed_xml(
                        "a Filter with several conditions puts them in And",
                    ))
                }
                None => filter_of(f, &mut filter)?,
            }
        }
        (None, Some(p)) => filter.prefix = p.text.clone(),
        (None, None) => {}
    }
    let top_level_prefix = r.child("Filter").is_none() && r.child("Prefix").is_some();
    if let (Some(gt), Some(lt)) = (filter.size_greater_than, filter.size_less_than) {
        if gt >= lt {
            return Err(S3Error::invalid_argument(
                "ObjectSizeGreaterThan must be less than ObjectSizeLessThan",
            ));
        }
    }
    let expiration = match r.child("Expiration") {
        None => None,
        Some(e) => {
            let days = e.child("Days").map(|d| positive(d, "Days")).transpose()?;
            let date_ms = match e.child("Date") {
                None => None,
                Some(d) => {
                    let ms = parse_iso8601(&d.text)
                        .ok_or_else(|| S3Error::invalid_argument("Invalid date in Expiration"))?;
                    if ms.rem_euclid(DAY_MS) != 0 {
                        return Err(S3Error::invalid_argument("'Date' must be at midnight GMT"));
                    }
                    Some(ms.max(0) as u64)
                }
            };
            let marker = match e.child("ExpiredObjectDeleteMarker").map(|m| m.text.trim()) {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(S3Error::malformed_xml("ExpiredObjectDeleteMarker is true or false")),
            };
            match (days.is_some() as u8) + (date_ms.is_some() as u8) + (marker as u8) {
                1 => {}
                0 => {
                    return Err(S3Error::malformed_xml(
                        "Expiration needs Days, Date or ExpiredObjectDeleteMarker",
                    ))
                }
                _ => {
                    return Err(S3Error::malformed_xml(
                        "Expiration takes one of Days, Date and ExpiredObjectDeleteMarker",
                    ))
                }
            }
            if marker && !filter.tags.is_empty() {
                return Err(S3Error::invalid_argument(
                    "ExpiredObjectDeleteMarker cannot be specified with a tag filter",
                ));
            }
            Some(LifecycleExpiration {
                days,
                date_ms,
                expired_object_delete_marker: marker,
            })
        }
    };
    let noncurrent_expiration = match r.child("NoncurrentVersionExpiration") {
        None => None,
        Some(n) => {
            let days = n
                .child("NoncurrentDays")
                .map(|d| positive(d, "NoncurrentDays"))
                .transpose()?;
            let newer_versions = n
                .child("NewerNoncurrentVersions")
                .map(|d| positive(d, "NewerNoncurrentVersions"))
                .transpose()?;
            if days.is_none() {
                return Err(S3Error::malformed_xml(
                    "NoncurrentVersionExpiration needs NoncurrentDays",
                ));
            }
            Some(NoncurrentExpiration { days, newer_versions })
        }
    };
    let abort_incomplete_days = match r.child("AbortIncompleteMultipartUpload") {
        None => None,
        Some(a) => {
            let d = a
                .child("DaysAfterInitiation")
                .ok_or_else(|| S3Error::malformed_xml("AbortIncompleteMultipartUpload needs DaysAfterInitiation"))?;
            if !filter.tags.is_empty() {
                return Err(S3Error::invalid_request(
                    "Tag-based filter cannot be used with AbortIncompleteMultipartUpload action",
                ));
            }
            Some(positive(d, "DaysAfterInitiation")?)
        }
    };
    if expiration.is_none() && noncurrent_expiration.is_none() && abort_incomplete_days.is_none() {
        return Err(S3Error::malformed_xml("a Rule needs at least one action"));
    }
    Ok(LifecycleRule {
        id,
        enabled,
        filter,
        top_level_prefix,
        expiration,
        noncurrent_expiration,
        abort_incomplete_days,
    })
}

/// Parses and validates a `LifecycleConfiguration` document. Rules without an ID get one.
pub(crate) fn parse(raw: &[u8]) -> Result<LifecycleConfig, S3Error> {
    let doc = crate::xml::parse(raw, 2 + MAX_RULES * 24)?;
    if doc.name != "LifecycleConfiguration" {
        return Err(S3Error::malformed_xml("expected LifecycleConfiguration"));
    }
    let mut rules = Vec::new();
    for r in doc.all("Rule") {
        rules.push(rule_of(r)?);
    }
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(S3Error::malformed_xml(
            "a lifecycle configuration holds 1 to 1000 rules",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, r) in rules.iter_mut().enumerate() {
        if r.id.is_empty() {
            r.id = format!("rule-{}", i + 1);
        }
        if !seen.insert(r.id.clone()) {
            return Err(S3Error::invalid_argument(
                "Rule ID must be unique. Found same ID for more than one rule",
            ));
        }
    }
    Ok(LifecycleConfig { rules })
}

fn render_filter(x: &mut Xml, f: &LifecycleFilter) {
    let conditions = usize::from(!f.prefix.is_empty())
        + f.tags.len()
        + usize::from(f.size_greater_than.is_some())
        + usize::from(f.size_less_than.is_some());
    x.open("Filter");
    if conditions > 1 {
        x.open("And");
    }
    if !f.prefix.is_empty() || conditions == 0 {
        x.elem("Prefix", &f.prefix);
    }
    for (k, v) in &f.tags {
        x.open("Tag").elem("Key", k).elem("Value", v).close("Tag");
    }
    if let Some(s) = f.size_greater_than {
        x.elem("ObjectSizeGreaterThan", &s.to_string());
    }
    if let Some(s) = f.size_less_than {
        x.elem("ObjectSizeLessThan", &s.to_string());
    }
    if conditions > 1 {
        x.close("And");
    }
    x.close("Filter");
}

fn render(cfg: &LifecycleConfig) -> String {
    let mut x = Xml::new("LifecycleConfiguration");
    for r in &cfg.rules {
        x.open("Rule").elem("ID", &r.id);
        let f = &r.filter;
        if r.top_level_prefix {
            x.elem("Prefix", &f.prefix);
        } else {
            render_filter(&mut x, f);
        }
        x.elem("Status", if r.enabled { "Enabled" } else { "Disabled" });
        if let Some(e) = &r.expiration {
            x.open("Expiration");
            if let Some(d) = e.days {
                x.elem("Days", &d.to_string());
            }
            if let Some(d) = e.date_ms {
                x.elem("Date", &iso8601(d));
            }
            if e.expired_object_delete_marker {
                x.elem("ExpiredObjectDeleteMarker", "true");
            }
            x.close("Expiration");
        }
        if let Some(n) = &r.noncurrent_expiration {
            x.open("NoncurrentVersionExpiration");
            if let Some(d) = n.days {
                x.elem("NoncurrentDays", &d.to_string());
            }
            if let Some(k) = n.newer_versions {
                x.elem("NewerNoncurrentVersions", &k.to_string());
            }
            x.close("NoncurrentVersionExpiration");
        }
        if let Some(d) = r.abort_incomplete_days {
            x.open("AbortIncompleteMultipartUpload")
                .elem("DaysAfterInitiation", &d.to_string())
                .close("AbortIncompleteMultipartUpload");
        }
        x.close("Rule");
    }
    x.finish("LifecycleConfiguration")
}

pub async fn put(ctx: &Ctx, bucket: &str, body: Incoming) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let raw = crate::document::read_document(ctx, body, 1 << 20).await?;
    let cfg = parse(&raw)?;
    ctx.engine()
        .put_bucket_config(bucket, BucketConfigKind::Lifecycle, Some(cfg))
        .await?;
    Ok(Response::new(empty()))
}

pub async fn get(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let cfg: Option<LifecycleConfig> = ctx.engine().bucket_config(bucket, BucketConfigKind::Lifecycle)?;
    match cfg {
        Some(c) => Ok(xml_response(StatusCode::OK, render(&c))),
        None => Err(S3Error::no_such_lifecycle("The lifecycle configuration does not exist")),
    }
}

pub async fn delete(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    ctx.engine()
        .put_bucket_config::<LifecycleConfig>(bucket, BucketConfigKind::Lifecycle, None)
        .await?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// `x-amz-expiration` of a current object a rule will expire, as S3 announces it.
pub(crate) fn set_expiration(ctx: &Ctx, r: &mut Res, bucket: &str, key: &str, rec: &ObjectRecord) {
    if let Ok(Some((at, rule))) = ctx.engine().expiration_of(bucket, key, rec) {
        let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(at));
        set(
            r,
            "x-amz-expiration",
            &format!("expiry-date=\"{date}\", rule-id=\"{}\"", rule.replace('"', "")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_render_back() {
        let doc = br#"<LifecycleConfiguration>
            <Rule><ID>logs</ID><Filter><And><Prefix>logs/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter>
              <Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>
            <Rule><Prefix>old/</Prefix><Status>Disabled</Status>
              <NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>
              <AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>
            <Rule><ID>markers</ID><Filter></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>
        </LifecycleConfiguration>"#;
        let cfg = parse(doc).unwrap();
        assert_eq!(cfg.rules.len(), 3);
        assert_eq!(cfg.rules[0].filter.prefix, "logs/");
        assert_eq!(cfg.rules[0].filter.tags, [("k".to_string(), "v".to_string())]);
        assert_eq!(cfg.rules[0].filter.size_greater_than, Some(10));
        assert_eq!(cfg.rules[1].id, "rule-2");
        assert!(!cfg.rules[1].enabled);
        assert_eq!(cfg.rules[1].abort_incomplete_days, Some(7));
        assert!(cfg.rules[2].expiration.as_ref().unwrap().expired_object_delete_marker);
        // What GET answers parses into the same rules.
        assert_eq!(parse(render(&cfg).as_bytes()).unwrap(), cfg);
    }

    #[test]
    fn bad_rules_are_refused_with_s3_codes() {
        let rule = |body: &str| format!("<LifecycleConfiguration><Rule>{body}</Rule></LifecycleConfiguration>");
        for (body, code) in [
            ("<Status>Enabled</Status>", "MalformedXML"),
            ("<Status>On</Status><Expiration><Days>1</Days></Expiration>", "MalformedXML"),
            ("<Status>Enabled</Status><Expiration><Days>0</Days></Expiration>", "InvalidArgument"),
            ("<Status>Enabled</Status><Expiration><Days>-1</Days></Expiration>", "InvalidArgument"),
            ("<Status>Enabled</Status><Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>", "InvalidArgument"),
            ("<Status>Enabled</Status><Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>", "MalformedXML"),
            ("<Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>", "NotImplemented"),
            ("<Filter><Tag><Key>a</Key></Tag></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>", "InvalidRequest"),
            ("<Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>", "MalformedXML"),
        ] {
            assert_eq!(parse(rule(body).as_bytes()).unwrap_err().code, code, "{body}");
        }
        let twice = "<LifecycleConfiguration><Rule><ID>a</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>a</ID><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule></LifecycleConfiguration>";
        assert_eq!(parse(twice.as_bytes()).unwrap_err().code, "InvalidArgument");
    }

    proptest::proptest! {
        /// Any document: rules or an S3 error, never a panic.
        #[test]
        fn parsing_never_panics(body in "[ -~]{0,300}") {
            let _ = parse(format!("<LifecycleConfiguration><Rule>{body}</Rule></LifecycleConfiguration>").as_bytes());
            let _ = parse(body.as_bytes());
        }
    }
}
