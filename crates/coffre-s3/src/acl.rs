//! Access control lists, as far as Coffre takes them. Access is decided by policies; ACLs
//! are answered as S3 does for a bucket owner (FULL_CONTROL), and a canned ACL is either a
//! no-op (`private`, `bucket-owner-full-control`), translated into the equivalent policy
//! (a bucket's `public-read`, `public-read-write`, when the bucket's ownership controls allow
//! ACLs), or refused with an error that says so — never silently ignored.

use crate::context::Ctx;
use crate::xml::Xml;
use crate::S3Error;
use coffre_engine::{BucketConfigKind, Engine, OwnershipConfig};

/// Canned ACLs a bucket may hold (stored as `BucketConfigKind::Acl`).
pub const PUBLIC_READ: &str = "public-read";
pub const PUBLIC_READ_WRITE: &str = "public-read-write";

const GRANT_HEADERS: [&str; 5] = [
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
];

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

/// Whether a bucket's ownership controls allow ACLs (`BucketOwnerEnforced`, the default,
/// disables them, as in S3 since 2023; `ObjectWriter`, `BucketOwnerPreferred` or deleted
/// controls allow them).
pub fn acls_enabled(engine: &Engine, bucket: &str) -> Result<bool, S3Error> {
    let cfg: Option<OwnershipConfig> = engine.bucket_config(bucket, BucketConfigKind::Ownership)?;
    Ok(cfg.is_some_and(|c| c.rule != "BucketOwnerEnforced"))
}

fn not_supported() -> S3Error {
    S3Error::acl_not_supported("The bucket does not allow ACLs")
}

fn object_grants_refused() -> S3Error {
    S3Error::not_implemented(
        "Object ACLs that grant access to others are not supported: grant it with a bucket policy (PutBucketPolicy)",
    )
}

/// An object write's ACL (`x-amz-acl`, `x-amz-grant-*` headers): only the owner's own
/// access can be asked for.
pub fn check_object_write(ctx: &Ctx, bucket: &str) -> Result<(), S3Error> {
    let grants = GRANT_HEADERS.iter().any(|h| ctx.headers.contains_key(*h));
    let canned = ctx.h("x-amz-acl").map(str::trim);
    if !grants && matches!(canned, None | Some("private") | Some("bucket-owner-full-control")) {
        return Ok(());
    }
    if !acls_enabled(ctx.engine(), bucket)? {
        return Err(not_supported());
    }
    Err(object_grants_refused())
}

/// A canned ACL for a bucket, as what Coffre stores: `None` for `private`.
pub fn bucket_canned(v: &str) -> Result<Option<&'static str>, S3Error> {
    match v.trim() {
        "private" => Ok(None),
        "public-read" => Ok(Some(PUBLIC_READ)),
        "public-read-write" => Ok(Some(PUBLIC_READ_WRITE)),
        other => Err(S3Error::not_implemented(format!(
            "The canned ACL '{other}' is not supported on buckets: use private, public-read or public-read-write, or a bucket policy"
        ))),
    }
}

/// The canned ACL an `AccessControlPolicy` document amounts to: the owner's FULL_CONTROL,
/// plus READ (and WRITE) for everyone.
pub fn canned_of_document(raw: &[u8], owner: &str) -> Result<Option<&'static str>, S3Error> {
    let doc = crate::xml::parse(raw, 64)?;
    if doc.name != "AccessControlPolicy" {
        return Err(S3Error::malformed_xml("expected AccessControlPolicy"));
    }
    let (mut read, mut write) = (false, false);
    for g in doc.child("AccessControlList").into_iter().flat_map(|l| l.all("Grant")) {
        let grantee = g.child("Grantee");
        let id = grantee.and_then(|e| e.child("ID")).map(|i| i.text.trim());
        let uri = grantee.and_then(|e| e.child("URI")).map(|u| u.text.trim());
        let perm = g.child("Permission").map(|p| p.text.trim()).unwrap_or("");
        match (id, uri, perm) {
            (Some(i), None, "FULL_CONTROL") if i == owner => {}
            (None, Some(ALL_USERS), "READ") => read = true,
            (None, Some(ALL_USERS), "WRITE") => write = true,
            _ => {
                return Err(S3Error::not_implemented(
                    "Grants to other accounts or groups are not supported: use a bucket policy",
                ))
            }
        }
    }
    Ok(match (read, write) {
        (false, false) => None,
        (true, false) => Some(PUBLIC_READ),
        (_, true) => Some(PUBLIC_READ_WRITE),
    })
}

/// The `AccessControlPolicy` answered for a bucket (with its canned ACL) or an object.
pub fn document(owner: &str, canned: Option<&str>) -> String {
    let mut x = Xml::new("AccessControlPolicy");
    x.open("Owner")
        .elem("ID", owner)
        .elem("DisplayName", owner)
        .close("Owner");
    x.open("AccessControlList");
    let grant = |x: &mut Xml, perm: &str, everyone: bool| {
        x.raw("<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"");
        if everyone {
            x.raw(" xsi:type=\"Group\">");
            x.elem("URI", ALL_USERS);
        } else {
            x.raw(" xsi:type=\"CanonicalUser\">");
            x.elem("ID", owner).elem("DisplayName", owner);
        }
        x.raw("</Grantee>");
        x.elem("Permission", perm);
        x.raw("</Grant>");
    };
    grant(&mut x, "FULL_CONTROL", false);
    if matches!(canned, Some(PUBLIC_READ) | Some(PUBLIC_READ_WRITE)) {
        grant(&mut x, "READ", true);
    }
    if canned == Some(PUBLIC_READ_WRITE) {
        grant(&mut x, "WRITE", true);
    }
    x.close("AccessControlList");
    x.finish("AccessControlPolicy")
}
