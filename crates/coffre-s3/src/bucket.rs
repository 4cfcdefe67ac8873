//! Bucket operations: create, head, delete, list, location, versioning, default encryption,
//! ownership controls.

use crate::context::Ctx;
use crate::http::{empty, status, xml_response, Res};
use crate::xml::Xml;
use crate::S3Error;
use coffre_engine::{BucketConfigKind, BucketRecord, EncryptionConfig, OwnershipConfig};
use coffre_types::time::iso8601;
use http::{Response, StatusCode};
use hyper::body::Incoming;

/// S3's naming rules for new buckets.
pub fn valid_bucket_name(n: &str) -> bool {
    let b = n.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !n.contains("..")
        && !n.starts_with("xn--")
        && !n.ends_with("-s3alias")
        && n.parse::<std::net::Ipv4Addr>().is_err()
}

pub async fn create(ctx: &Ctx, bucket: &str, body: Incoming) -> Result<Res, S3Error> {
    if !valid_bucket_name(bucket) {
        return Err(S3Error::invalid_bucket_name("The specified bucket is not valid"));
    }
    let (reader, _) = ctx.body(body, 1 << 20)?;
    let raw = reader.read_all(64 * 1024).await?;
    let cfg = &ctx.gw.config;
    let mut region = cfg.region.clone();
    if !raw.iter().all(u8::is_ascii_whitespace) {
        let doc = crate::xml::parse(&raw, 16)?;
        if doc.name != "CreateBucketConfiguration" {
            return Err(S3Error::malformed_xml("expected CreateBucketConfiguration"));
        }
        if let Some(lc) = doc
            .child("LocationConstraint")
            .map(|l| l.text.trim())
            .filter(|l| !l.is_empty())
        {
            region = lc.to_string();
        }
    }
    let policy = cfg
        .regions
        .iter()
        .find(|(name, _)| *name == region)
        .map(|(_, p)| p.clone())
        .ok_or_else(|| {
            let known: Vec<&str> = cfg.regions.iter().map(|(n, _)| n.as_str()).collect();
            S3Error::invalid_location(format!(
                "The specified location-constraint '{region}' is not valid: this store serves {}",
                known.join(", ")
            ))
        })?;
    let rec = BucketRecord {
        created_ms: coffre_types::now_millis(),
        region,
        countries: policy.countries,
        failure_domain: policy.failure_domain.to_string(),
        scheme: policy.scheme,
    };
    let ownership = match ctx.h("x-amz-object-ownership") {
        None => None,
        Some(o) => Some(ownership_rule(o)?),
    };
    ctx.engine().create_bucket(bucket, rec).await?;
    if let Some(rule) = ownership {
        ctx.engine()
            .put_bucket_config(bucket, BucketConfigKind::Ownership, Some(OwnershipConfig { rule }))
            .await?;
    }
    let mut r = Response::new(empty());
    r.headers_mut().insert(
        "location",
        format!("/{bucket}")
            .parse()
            .map_err(|_| S3Error::internal("location header"))?,
    );
    Ok(r)
}

pub async fn head(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    let rec = ctx.engine().bucket(bucket)?;
    let mut r = Response::new(empty());
    r.headers_mut().insert(
        "x-amz-bucket-region",
        rec.region.parse().map_err(|_| S3Error::internal("region header"))?,
    );
    Ok(r)
}

pub async fn delete(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().delete_bucket(bucket).await?;
    Ok(status(StatusCode::NO_CONTENT))
}

pub async fn list_buckets(ctx: &Ctx) -> Result<Res, S3Error> {
    let mut x = Xml::new("ListAllMyBucketsResult");
    x.open("Owner")
        .elem("ID", &ctx.gw.config.access_key)
        .elem("DisplayName", "coffre")
        .close("Owner");
    x.open("Buckets");
    for (name, rec) in ctx.engine().list_buckets()? {
        x.open("Bucket")
            .elem("Name", &name)
            .elem("CreationDate", &iso8601(rec.created_ms))
            .elem("BucketRegion", &rec.region)
            .close("Bucket");
    }
    x.close("Buckets");
    Ok(xml_response(StatusCode::OK, x.finish("ListAllMyBucketsResult")))
}

pub async fn location(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    let rec = ctx.engine().bucket(bucket)?;
    Ok(xml_response(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
            crate::xml::NS,
            crate::xml::escape(&rec.region)
        ),
    ))
}

pub async fn versioning(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    Ok(xml_response(
        StatusCode::OK,
        Xml::new("VersioningConfiguration").finish("VersioningConfiguration"),
    ))
}

/// A bucket's default encryption: SSE-S3 (AES256) unless configured otherwise.
fn encryption_of(ctx: &Ctx, bucket: &str) -> Result<EncryptionConfig, S3Error> {
    Ok(ctx
        .engine()
        .bucket_config(bucket, BucketConfigKind::Encryption)?
        .unwrap_or(EncryptionConfig {
            algorithm: "AES256".into(),
            bucket_key_enabled: false,
        }))
}

/// The one `Rule` of a `root` document (encryption, ownership controls).
fn single_rule<'a>(doc: &'a crate::xml::Node, root: &str) -> Result<&'a crate::xml::Node, S3Error> {
    let mut rules = doc.all("Rule");
    match (doc.name == root, rules.next(), rules.next()) {
        (true, Some(rule), None) => Ok(rule),
        _ => Err(S3Error::malformed_xml(format!("expected {root} with one Rule"))),
    }
}

pub async fn put_encryption(ctx: &Ctx, bucket: &str, body: Incoming) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let raw = crate::object::read_document(ctx, body, 64 * 1024).await?;
    let doc = crate::xml::parse(&raw, 32)?;
    let rule = single_rule(&doc, "ServerSideEncryptionConfiguration")?;
    let algorithm = rule
        .child("ApplyServerSideEncryptionByDefault")
        .and_then(|d| d.child("SSEAlgorithm"))
        .map(|a| a.text.as_str())
        .ok_or_else(|| S3Error::malformed_xml("the Rule needs ApplyServerSideEncryptionByDefault/SSEAlgorithm"))?;
    let cfg = EncryptionConfig {
        algorithm: crate::sse::algorithm(algorithm)?.to_string(),
        bucket_key_enabled: rule.child("BucketKeyEnabled").is_some_and(|b| b.text.trim() == "true"),
    };
    ctx.engine()
        .put_bucket_config(bucket, BucketConfigKind::Encryption, Some(cfg))
        .await?;
    Ok(Response::new(empty()))
}

pub async fn get_encryption(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let cfg = encryption_of(ctx, bucket)?;
    let mut x = Xml::new("ServerSideEncryptionConfiguration");
    x.open("Rule")
        .open("ApplyServerSideEncryptionByDefault")
        .elem("SSEAlgorithm", &cfg.algorithm)
        .close("ApplyServerSideEncryptionByDefault")
        .elem(
            "BucketKeyEnabled",
            if cfg.bucket_key_enabled { "true" } else { "false" },
        )
        .close("Rule");
    Ok(xml_response(
        StatusCode::OK,
        x.finish("ServerSideEncryptionConfiguration"),
    ))
}

/// Back to the default (AES256): objects stay encrypted whatever the configuration.
pub async fn delete_encryption(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    ctx.engine()
        .put_bucket_config::<EncryptionConfig>(bucket, BucketConfigKind::Encryption, None)
        .await?;
    Ok(status(StatusCode::NO_CONTENT))
}

fn ownership_rule(v: &str) -> Result<String, S3Error> {
    match v.trim() {
        r @ ("BucketOwnerEnforced" | "BucketOwnerPreferred" | "ObjectWriter") => Ok(r.to_string()),
        _ => Err(S3Error::invalid_argument(
            "ObjectOwnership is BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter",
        )),
    }
}

pub async fn put_ownership(ctx: &Ctx, bucket: &str, body: Incoming) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let raw = crate::object::read_document(ctx, body, 64 * 1024).await?;
    let doc = crate::xml::parse(&raw, 16)?;
    let rule = single_rule(&doc, "OwnershipControls")?
        .child("ObjectOwnership")
        .ok_or_else(|| S3Error::malformed_xml("the Rule needs ObjectOwnership"))?;
    let cfg = OwnershipConfig {
        rule: ownership_rule(&rule.text)?,
    };
    ctx.engine()
        .put_bucket_config(bucket, BucketConfigKind::Ownership, Some(cfg))
        .await?;
    Ok(Response::new(empty()))
}

/// A new bucket has `BucketOwnerEnforced` (as in S3 since 2023) until its controls are set
/// or deleted; deleted controls are kept as an empty rule, so GET answers 404.
pub async fn get_ownership(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let cfg: Option<OwnershipConfig> = ctx.engine().bucket_config(bucket, BucketConfigKind::Ownership)?;
    let rule = match cfg {
        None => "BucketOwnerEnforced".to_string(),
        Some(c) if c.rule.is_empty() => {
            return Err(S3Error::no_ownership_controls(
                "The bucket ownership controls were not found",
            ))
        }
        Some(c) => c.rule,
    };
    let mut x = Xml::new("OwnershipControls");
    x.open("Rule").elem("ObjectOwnership", &rule).close("Rule");
    Ok(xml_response(StatusCode::OK, x.finish("OwnershipControls")))
}

pub async fn delete_ownership(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let none = OwnershipConfig { rule: String::new() };
    ctx.engine()
        .put_bucket_config(bucket, BucketConfigKind::Ownership, Some(none))
        .await?;
    Ok(status(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bucket_names() {
        use super::valid_bucket_name as v;
        assert!(v("my-bucket.01"));
        assert!(!v("ab"));
        assert!(!v("Upper"));
        assert!(!v("-start"));
        assert!(!v("a..b"));
        assert!(!v("192.168.1.1"));
        assert!(!v("xn--abc"));
        assert!(!v(&"a".repeat(64)));
    }
}
