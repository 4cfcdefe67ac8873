//! SSE-KMS as a request meets it: the key a write uses, the check before a read, and the
//! audit entry of each use (the headers themselves are `sse`'s).

use crate::context::{Ctx, Touched};
use crate::S3Error;
use coffre_engine::KmsAttrs;

/// Records a use of a KMS key on `bucket`/`key` for the audit log (an entry of its own,
/// under the bucket owner's tenant, naming the key's ARN).
pub fn audit_use(ctx: &Ctx, op: &'static str, bucket: &str, key: &str, arn: &str, result: Option<&S3Error>) {
    ctx.touch(Touched {
        op,
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: None,
        status: result.map_or(200, |e| e.status.as_u16()),
        error: result.map(|e| e.code),
        detail: Some(arn.to_string()),
    });
}

/// The KMS key a write of the request's object uses (see `sse::kms_for_write`), its use
/// audited.
pub fn key_of_write(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    tenant: &str,
    requested: &crate::sse::Requested,
    sse_c: bool,
) -> Result<Option<KmsAttrs>, S3Error> {
    match crate::sse::kms_for_write(ctx.engine(), bucket, tenant, requested, sse_c) {
        Ok(Some((attrs, arn))) => {
            audit_use(ctx, "kms:GenerateDataKey", bucket, key, &arn, None);
            Ok(Some(attrs))
        }
        Ok(None) => Ok(None),
        Err(e) => {
            if let crate::sse::Requested::Kms { key: Some(k), .. } = requested {
                audit_use(ctx, "kms:GenerateDataKey", bucket, key, k, Some(&e));
            }
            Err(e)
        }
    }
}

/// Before a read of an SSE-KMS object starts: its key must be enabled (403 otherwise, as
/// S3 answers); the use is in the audit log either way.
pub fn check_read(ctx: &Ctx, bucket: &str, key: &str, tenant: &str, kms: Option<&KmsAttrs>) -> Result<(), S3Error> {
    let Some(k) = kms else { return Ok(()) };
    let arn = ctx.engine().kms_key_arn(tenant, &k.key_id);
    let checked = ctx
        .engine()
        .check_kms_readable(tenant, &k.key_id)
        .map_err(S3Error::from);
    audit_use(ctx, "kms:Decrypt", bucket, key, &arn, checked.as_ref().err());
    checked
}
