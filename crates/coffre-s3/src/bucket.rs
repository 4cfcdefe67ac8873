//! Bucket operations: create, head, delete, list, location, versioning, default encryption,
//! ownership controls, policy and ACL.

use crate::acl;
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
        tenant: ctx.tenant()?.to_string(),
    };
    let ownership = match ctx.h("x-amz-object-ownership") {
        None => None,
        Some(o) => Some(ownership_rule(o)?),
    };
    // A canned ACL other than private needs ACLs, which BucketOwnerEnforced (the default)
    // disables — as S3 answers.
    let canned = match ctx.h("x-amz-acl") {
        None => None,
        Some(a) => acl::bucket_canned(a)?,
    };
    if [
        "x-amz-grant-read",
        "x-amz-grant-write",
        "x-amz-grant-read-acp",
        "x-amz-grant-write-acp",
        "x-amz-grant-full-control",
    ]
    .iter()
    .any(|h| ctx.headers.contains_key(*h))
    {
        return Err(S3Error::not_implemented(
            "Grants to other accounts are not supported: use a bucket policy",
        ));
    }
    if canned.is_some() && ownership.as_deref().is_none_or(|o| o == "BucketOwnerEnforced") {
        return Err(S3Error::acl_with_ownership(
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
        ));
    }
    let object_lock = match ctx.h("x-amz-bucket-object-lock-enabled").map(str::trim) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(S3Error::invalid_argument(
                "x-amz-bucket-object-lock-enabled is true or false",
            ))
        }
    };
    match object_lock {
        // Object Lock turns versioning on with the bucket, in one command.
        true => ctx.engine().create_versioned_bucket(bucket, rec, true).await?,
        false => ctx.engine().create_bucket(bucket, rec).await?,
    }
    if let Some(rule) = ownership {
        ctx.engine()
            .put_bucket_config(bucket, BucketConfigKind::Ownership, Some(OwnershipConfig { rule }))
            .await?;
    }
    if let Some(c) = canned {
        ctx.engine()
            .put_bucket_config(bucket, BucketConfigKind::Acl, Some(c.to_string()))
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

/// The caller's tenant's buckets only.
pub async fn list_buckets(ctx: &Ctx) -> Result<Res, S3Error> {
    let tenant = ctx.tenant()?;
    let mut x = Xml::new("ListAllMyBucketsResult");
    x.open("Owner")
        .elem("ID", tenant)
        .elem("DisplayName", tenant)
        .close("Owner");
    x.open("Buckets");
    for (name, rec) in ctx
        .engine()
        .list_buckets()?
        .into_iter()
        .filter(|(_, r)| r.tenant == tenant)
    {
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

/// A bucket's default encryption: SSE-S3 (AES256) unless configured otherwise.
fn encryption_of(ctx: &Ctx, bucket: &str) -> Result<EncryptionConfig, S3Error> {
    Ok(ctx
        .engine()
        .bucket_config(bucket, BucketConfigKind::Encryption)?
        .unwrap_or(EncryptionConfig {
            algorithm: "AES256".into(),
            bucket_key_enabled: false,
            kms_key_id: None,
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
    let brec = ctx.engine().bucket(bucket)?;
    let raw = crate::document::read_document(ctx, body, 64 * 1024).await?;
    let doc = crate::xml::parse(&raw, 32)?;
    let rule = single_rule(&doc, "ServerSideEncryptionConfiguration")?;
    let algorithm = rule
        .child("ApplyServerSideEncryptionByDefault")
        .and_then(|d| d.child("SSEAlgorithm"))
        .map(|a| a.text.as_str())
        .ok_or_else(|| S3Error::malformed_xml("the Rule needs ApplyServerSideEncryptionByDefault/SSEAlgorithm"))?;
    let algorithm = crate::sse::algorithm(algorithm)?;
    let kms_key_id = rule
        .child("ApplyServerSideEncryptionByDefault")
        .and_then(|d| d.child("KMSMasterKeyID"))
        .map(|k| k.text.trim().to_string())
        .filter(|k| !k.is_empty());
    match (&kms_key_id, algorithm) {
        // A key of the bucket owner's, whatever its state now (it is checked at each write).
        (Some(k), crate::sse::KMS) => {
            ctx.engine().resolve_kms_key(&brec.tenant, k)?;
        }
        (Some(_), _) => {
            return Err(S3Error::invalid_argument(
                "KMSMasterKeyID goes with the aws:kms algorithm",
            ))
        }
        (None, crate::sse::KMS) => {
            return Err(S3Error::invalid_argument(
                "aws:kms needs a KMSMasterKeyID: Coffre has no AWS-managed key (coffre admin kms-key create)",
            ))
        }
        (None, _) => {}
    }
    let cfg = EncryptionConfig {
        algorithm: algorithm.to_string(),
        bucket_key_enabled: rule.child("BucketKeyEnabled").is_some_and(|b| b.text.trim() == "true"),
        kms_key_id,
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
        .elem("SSEAlgorithm", &cfg.algorithm);
    if let Some(k) = &cfg.kms_key_id {
        x.elem("KMSMasterKeyID", k);
    }
    x.close("ApplyServerSideEncryptionByDefault")
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
    let raw = crate::document::read_document(ctx, body, 64 * 1024).await?;
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

pub async fn put_policy(ctx: &Ctx, bucket: &str, body: Incoming) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let raw = crate::document::read_document(ctx, body, coffre_iam::policy::MAX_BUCKET_POLICY + 1).await?;
    let doc = String::from_utf8(raw).map_err(|_| S3Error::malformed_policy("Policies must be valid JSON (UTF-8)"))?;
    coffre_iam::Policy::parse(&doc, &coffre_iam::PolicyKind::Bucket(bucket.to_string()))
        .map_err(S3Error::malformed_policy)?;
    ctx.engine()
        .put_bucket_config(bucket, BucketConfigKind::Policy, Some(doc))
        .await?;
    Ok(status(StatusCode::NO_CONTENT))
}

pub async fn get_policy(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let doc: String = ctx
        .engine()
        .bucket_config(bucket, BucketConfigKind::Policy)?
        .ok_or_else(|| S3Error::no_such_bucket_policy("The bucket policy does not exist"))?;
    let mut r = Response::new(crate::http::full(doc));
    r.headers_mut()
        .insert("content-type", http::HeaderValue::from_static("application/json"));
    Ok(r)
}

pub async fn delete_policy(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    ctx.engine()
        .put_bucket_config::<String>(bucket, BucketConfigKind::Policy, None)
        .await?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// Public when the policy allows everyone something without condition, or the bucket's
/// canned ACL grants everyone access.
pub async fn policy_status(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let doc: Option<String> = ctx.engine().bucket_config(bucket, BucketConfigKind::Policy)?;
    let canned: Option<String> = ctx.engine().bucket_config(bucket, BucketConfigKind::Acl)?;
    let public = doc
        .and_then(|d| coffre_iam::Policy::parse(&d, &coffre_iam::PolicyKind::Bucket(bucket.to_string())).ok())
        .is_some_and(|p| p.is_public())
        || canned.is_some();
    let mut x = Xml::new("PolicyStatus");
    x.elem("IsPublic", if public { "true" } else { "false" });
    Ok(xml_response(StatusCode::OK, x.finish("PolicyStatus")))
}

pub async fn get_acl(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let canned: Option<String> = ctx.engine().bucket_config(bucket, BucketConfigKind::Acl)?;
    Ok(xml_response(
        StatusCode::OK,
        acl::document(&ctx.owner_of(bucket)?, canned.as_deref()),
    ))
}

/// A canned ACL (`x-amz-acl`) or an `AccessControlPolicy` document: the owner's own access,
/// or (when the bucket allows ACLs) read / read-write for everyone, kept as the policy
/// statements they amount to.
pub async fn put_acl(ctx: &Ctx, bucket: &str, body: Incoming) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let raw = crate::document::read_document(ctx, body, 64 * 1024).await?;
    let canned = match ctx.h("x-amz-acl") {
        Some(a) => acl::bucket_canned(a)?,
        None if raw.iter().all(u8::is_ascii_whitespace) => {
            return Err(S3Error::malformed_xml(
                "PutBucketAcl needs x-amz-acl or an AccessControlPolicy",
            ))
        }
        None => acl::canned_of_document(&raw, &ctx.owner_of(bucket)?)?,
    };
    if canned.is_some() && !acl::acls_enabled(ctx.engine(), bucket)? {
        return Err(S3Error::acl_not_supported("The bucket does not allow ACLs"));
    }
    ctx.engine()
        .put_bucket_config(bucket, BucketConfigKind::Acl, canned.map(str::to_string))
        .await?;
    Ok(Response::new(empty()))
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
