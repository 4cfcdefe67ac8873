//! The S3 operations, each declared once: how a request is matched to it, what it acts on,
//! the policy action that authorizes it (and the one for a named version), the actions its
//! headers call for, and its handler. Routing, authorization, the audit's `op` and dispatch
//! all read this table; an operation cannot be declared without its resource and action.

use crate::router::{self, Shape};
use crate::S3Error;
use crate::{attributes, bucket, copy, cors, lifecycle, list, multipart, object, versioning};
use coffre_iam::Target;
use http::{HeaderMap, Method};

/// Declares the operations: `Op`, its `Spec`, the matching of a request against it (the
/// first operation in declaration order whose method, resource and condition fit), and
/// `dispatch` to its handler.
///
/// Each entry reads `Name: METHOD Resource [if condition], action "s3:…" | none
/// [, version "s3:…"] [, headers ["header" => "s3:…", …]] => handler;`, where the condition
/// and handler use the names given in the header line. An entry without its resource or
/// action does not compile:
///
/// ```compile_fail
/// coffre_s3::operations! {
///     match (shape) dispatch (ctx, bucket, key, body);
///     ListBuckets: GET Service => async { Err(coffre_s3::S3Error::not_implemented("example")) };
/// }
/// ```
///
/// ```
/// coffre_s3::operations! {
///     match (shape) dispatch (ctx, bucket, key, body);
///     ListBuckets: GET Service, action "s3:ListAllMyBuckets"
///         => async { Err(coffre_s3::S3Error::not_implemented("example")) };
///     GetObject: GET Object if !shape.has("tagging"), action "s3:GetObject", version "s3:GetObjectVersion"
///         => async { Err(coffre_s3::S3Error::not_implemented("example")) };
/// }
/// assert_eq!(Op::GetObject.spec().version_action, Some("s3:GetObjectVersion"));
/// ```
#[macro_export]
macro_rules! operations {
    (@action none) => { None };
    (@action $action:literal) => { Some($action) };
    (@version) => { None };
    (@version $action:literal) => { Some($action) };
    (
        match ($shape:ident) dispatch ($ctx:ident, $bucket:ident, $key:ident, $body:ident);
        $(
            $name:ident: $method:ident $resource:ident $(if $cond:expr)?,
                action $action:tt $(, version $vaction:literal)?
                $(, headers [$($header:literal => $haction:literal),* $(,)?])?
                => $handler:expr;
        )*
    ) => {
        /// An S3 operation (its `Spec` says what it is).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Op {
            $($name,)*
        }

        impl Op {
            /// Every operation, in the order requests are matched against them.
            pub const ALL: &'static [Op] = &[$(Op::$name,)*];

            pub fn spec(self) -> &'static $crate::router::Spec {
                match self {
                    $(Op::$name => &$crate::router::Spec {
                        name: stringify!($name),
                        method: stringify!($method),
                        resource: $crate::router::Resource::$resource,
                        action: $crate::operations!(@action $action),
                        version_action: $crate::operations!(@version $($vaction)?),
                        header_actions: &[$($(($header, $haction),)*)?],
                    },)*
                }
            }

            /// Whether a request is this operation (before the operations declared after it).
            #[allow(unused_variables)]
            pub fn matches(self, $shape: &$crate::router::Shape<'_>) -> bool {
                match self {
                    $(Op::$name => $shape.fits(self.spec()) $(&& $cond)?,)*
                }
            }
        }

        /// Runs the operation's handler.
        #[allow(unused_variables)]
        pub async fn dispatch(
            op: Op,
            $ctx: &$crate::context::Ctx,
            $bucket: &str,
            $key: &str,
            $body: $crate::router::Body,
        ) -> Result<$crate::http::Res, $crate::S3Error> {
            match op {
                $(Op::$name => $handler.await,)*
            }
        }
    };
}

operations! {
    match (shape) dispatch (ctx, bucket, key, body);

    ListBuckets: GET Service, action "s3:ListAllMyBuckets" => bucket::list_buckets(ctx);
    CreateBucket: PUT NewBucket if shape.query.is_empty(), action "s3:CreateBucket",
        headers [
            "x-amz-bucket-object-lock-enabled" => "s3:PutBucketObjectLockConfiguration",
            "x-amz-bucket-object-lock-enabled" => "s3:PutBucketVersioning",
            "x-amz-object-ownership" => "s3:PutBucketOwnershipControls",
        ]
        => bucket::create(ctx, bucket, body);
    HeadBucket: HEAD Bucket, action "s3:ListBucket" => bucket::head(ctx, bucket);
    DeleteBucket: DELETE Bucket if shape.query.is_empty(), action "s3:DeleteBucket" => bucket::delete(ctx, bucket);
    GetBucketLocation: GET Bucket if shape.has("location"), action "s3:GetBucketLocation"
        => bucket::location(ctx, bucket);
    GetBucketVersioning: GET Bucket if shape.has("versioning"), action "s3:GetBucketVersioning"
        => versioning::get_versioning(ctx, bucket);
    PutBucketVersioning: PUT Bucket if shape.has("versioning"), action "s3:PutBucketVersioning"
        => versioning::put_versioning(ctx, bucket, body);
    ListObjectVersions: GET Bucket if shape.has("versions"), action "s3:ListBucketVersions"
        => versioning::list_versions(ctx, bucket);
    PutBucketLifecycleConfiguration: PUT Bucket if shape.has("lifecycle"), action "s3:PutLifecycleConfiguration"
        => lifecycle::put(ctx, bucket, body);
    GetBucketLifecycleConfiguration: GET Bucket if shape.has("lifecycle"), action "s3:GetLifecycleConfiguration"
        => lifecycle::get(ctx, bucket);
    DeleteBucketLifecycle: DELETE Bucket if shape.has("lifecycle"), action "s3:PutLifecycleConfiguration"
        => lifecycle::delete(ctx, bucket);
    GetObjectLockConfiguration: GET Bucket if shape.has("object-lock"), action "s3:GetBucketObjectLockConfiguration"
        => versioning::get_lock_configuration(ctx, bucket);
    PutObjectLockConfiguration: PUT Bucket if shape.has("object-lock"), action "s3:PutBucketObjectLockConfiguration"
        => versioning::put_lock_configuration(ctx, bucket, body);
    GetObjectRetention: GET Object if shape.has("retention"), action "s3:GetObjectRetention"
        => versioning::get_retention(ctx, bucket, key);
    PutObjectRetention: PUT Object if shape.has("retention"), action "s3:PutObjectRetention"
        => versioning::put_retention(ctx, bucket, key, body);
    GetObjectLegalHold: GET Object if shape.has("legal-hold"), action "s3:GetObjectLegalHold"
        => versioning::get_legal_hold(ctx, bucket, key);
    PutObjectLegalHold: PUT Object if shape.has("legal-hold"), action "s3:PutObjectLegalHold"
        => versioning::put_legal_hold(ctx, bucket, key, body);
    PutBucketCors: PUT Bucket if shape.has("cors"), action "s3:PutBucketCORS" => cors::put(ctx, bucket, body);
    GetBucketCors: GET Bucket if shape.has("cors"), action "s3:GetBucketCORS" => cors::get(ctx, bucket);
    DeleteBucketCors: DELETE Bucket if shape.has("cors"), action "s3:PutBucketCORS" => cors::delete(ctx, bucket);
    PutBucketEncryption: PUT Bucket if shape.has("encryption"), action "s3:PutEncryptionConfiguration"
        => bucket::put_encryption(ctx, bucket, body);
    GetBucketEncryption: GET Bucket if shape.has("encryption"), action "s3:GetEncryptionConfiguration"
        => bucket::get_encryption(ctx, bucket);
    DeleteBucketEncryption: DELETE Bucket if shape.has("encryption"), action "s3:PutEncryptionConfiguration"
        => bucket::delete_encryption(ctx, bucket);
    PutBucketOwnershipControls: PUT Bucket if shape.has("ownershipControls"), action "s3:PutBucketOwnershipControls"
        => bucket::put_ownership(ctx, bucket, body);
    GetBucketOwnershipControls: GET Bucket if shape.has("ownershipControls"), action "s3:GetBucketOwnershipControls"
        => bucket::get_ownership(ctx, bucket);
    DeleteBucketOwnershipControls: DELETE Bucket if shape.has("ownershipControls"),
        action "s3:PutBucketOwnershipControls"
        => bucket::delete_ownership(ctx, bucket);
    GetObjectAttributes: GET Object if shape.has("attributes"), action "s3:GetObjectAttributes",
        version "s3:GetObjectVersionAttributes"
        => attributes::attributes(ctx, bucket, key);
    PutBucketPolicy: PUT Bucket if shape.has("policy"), action "s3:PutBucketPolicy"
        => bucket::put_policy(ctx, bucket, body);
    GetBucketPolicy: GET Bucket if shape.has("policy"), action "s3:GetBucketPolicy" => bucket::get_policy(ctx, bucket);
    DeleteBucketPolicy: DELETE Bucket if shape.has("policy"), action "s3:DeleteBucketPolicy"
        => bucket::delete_policy(ctx, bucket);
    GetBucketPolicyStatus: GET Bucket if shape.has("policyStatus"), action "s3:GetBucketPolicyStatus"
        => bucket::policy_status(ctx, bucket);
    GetBucketAcl: GET Bucket if shape.has("acl"), action "s3:GetBucketAcl" => bucket::get_acl(ctx, bucket);
    PutBucketAcl: PUT Bucket if shape.has("acl"), action "s3:PutBucketAcl" => bucket::put_acl(ctx, bucket, body);
    GetObjectAcl: GET Object if shape.has("acl"), action "s3:GetObjectAcl", version "s3:GetObjectVersionAcl"
        => object::get_acl(ctx, bucket, key);
    PutObjectAcl: PUT Object if shape.has("acl"), action "s3:PutObjectAcl", version "s3:PutObjectVersionAcl"
        => object::put_acl(ctx, bucket, key, body);
    ListMultipartUploads: GET Bucket if shape.has("uploads"), action "s3:ListBucketMultipartUploads"
        => multipart::list_uploads(ctx, bucket);
    ListObjectsV2: GET Bucket if shape.q("list-type") == Some("2"), action "s3:ListBucket"
        => list::list_objects(ctx, bucket, true);
    ListObjects: GET Bucket, action "s3:ListBucket" => list::list_objects(ctx, bucket, false);
    // Each key it names is authorized as `s3:DeleteObject` (or its version action).
    DeleteObjects: POST Bucket if shape.has("delete"), action none => object::delete_objects(ctx, bucket, body);
    PutObjectTagging: PUT Object if shape.has("tagging"), action "s3:PutObjectTagging",
        version "s3:PutObjectVersionTagging"
        => object::put_tagging(ctx, bucket, key, body);
    GetObjectTagging: GET Object if shape.has("tagging"), action "s3:GetObjectTagging",
        version "s3:GetObjectVersionTagging"
        => object::get_tagging(ctx, bucket, key);
    DeleteObjectTagging: DELETE Object if shape.has("tagging"), action "s3:DeleteObjectTagging",
        version "s3:DeleteObjectVersionTagging"
        => object::delete_tagging(ctx, bucket, key);
    CreateMultipartUpload: POST Object if shape.has("uploads"), action "s3:PutObject",
        headers [
            "x-amz-tagging" => "s3:PutObjectTagging",
            "x-amz-object-lock-mode" => "s3:PutObjectRetention",
            "x-amz-object-lock-retain-until-date" => "s3:PutObjectRetention",
            "x-amz-object-lock-legal-hold" => "s3:PutObjectLegalHold",
        ]
        => multipart::create(ctx, bucket, key);
    CompleteMultipartUpload: POST Object if shape.has("uploadId"), action "s3:PutObject"
        => multipart::complete(ctx, bucket, key, body);
    UploadPartCopy: PUT Object if shape.has("uploadId") && shape.header("x-amz-copy-source"), action "s3:PutObject"
        => multipart::upload_part_copy(ctx, bucket, key);
    UploadPart: PUT Object if shape.has("uploadId"), action "s3:PutObject"
        => multipart::upload_part(ctx, bucket, key, body);
    AbortMultipartUpload: DELETE Object if shape.has("uploadId"), action "s3:AbortMultipartUpload"
        => multipart::abort(ctx, bucket, key);
    ListParts: GET Object if shape.has("uploadId"), action "s3:ListMultipartUploadParts"
        => multipart::list_parts(ctx, bucket, key);
    CopyObject: PUT Object if shape.header("x-amz-copy-source"), action "s3:PutObject",
        headers [
            "x-amz-tagging" => "s3:PutObjectTagging",
            "x-amz-object-lock-mode" => "s3:PutObjectRetention",
            "x-amz-object-lock-retain-until-date" => "s3:PutObjectRetention",
            "x-amz-object-lock-legal-hold" => "s3:PutObjectLegalHold",
        ]
        => copy::copy(ctx, bucket, key);
    PutObject: PUT Object, action "s3:PutObject",
        headers [
            "x-amz-tagging" => "s3:PutObjectTagging",
            "x-amz-object-lock-mode" => "s3:PutObjectRetention",
            "x-amz-object-lock-retain-until-date" => "s3:PutObjectRetention",
            "x-amz-object-lock-legal-hold" => "s3:PutObjectLegalHold",
        ]
        => object::put(ctx, bucket, key, body);
    GetObject: GET Object, action "s3:GetObject", version "s3:GetObjectVersion" => object::get(ctx, bucket, key, false);
    HeadObject: HEAD Object, action "s3:GetObject", version "s3:GetObjectVersion" => object::get(ctx, bucket, key, true);
    DeleteObject: DELETE Object, action "s3:DeleteObject", version "s3:DeleteObjectVersion"
        => object::delete(ctx, bucket, key);
}

impl Op {
    /// The S3 API name of the operation (as AWS names it in its logs, and the audit's `op`).
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The policy action that authorizes it: the version's where the request names one.
    pub fn action(self, names_version: bool) -> Option<&'static str> {
        let spec = self.spec();
        match names_version {
            true => spec.version_action.or(spec.action),
            false => spec.action,
        }
    }

    /// What a request of this operation acts on, for authorization.
    pub fn target<'a>(self, bucket: &'a str, key: &'a str) -> Target<'a> {
        router::target_of(self.spec().resource, bucket, key)
    }

    /// The further actions a request's headers call for (retention, legal hold, tags…).
    pub fn header_actions(self, headers: &HeaderMap) -> impl Iterator<Item = &'static str> + '_ {
        router::header_actions(self.spec(), headers)
    }
}

/// A request matched to its operation.
pub struct Routed {
    pub op: Op,
    pub bucket: String,
    pub key: String,
    pub query: Vec<(String, String)>,
}

/// The operation a request is: the first in the table that it fits.
pub fn route(
    method: &Method,
    headers: &HeaderMap,
    raw_path: &str,
    raw_query: &str,
    domain: Option<&str>,
) -> Result<Routed, S3Error> {
    let router::Named { bucket, key, query } = router::screen(headers, raw_path, raw_query, domain)?;
    let shape = Shape {
        method,
        bucket: &bucket,
        key: &key,
        query: &query,
        headers,
    };
    let op = Op::ALL
        .iter()
        .copied()
        .find(|op| op.matches(&shape))
        .ok_or_else(|| shape.unmatched())?;
    Ok(Routed { op, bucket, key, query })
}

#[cfg(test)]
mod tests;
