//! The one error type of the S3 layer and its mapping to S3 codes and HTTP statuses.

use coffre_engine::{EngineError, MetaError};
use coffre_iam::IamError;
use http::StatusCode;

#[derive(Debug, Clone)]
pub struct S3Error {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
    /// Headers the error response carries (a delete marker's `x-amz-delete-marker`…).
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.headers.push((name, value.into()));
        self
    }
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for S3Error {}

macro_rules! codes {
    ($($fn:ident => $code:literal, $status:ident;)*) => {
        impl S3Error {
            $(pub fn $fn(message: impl Into<String>) -> S3Error {
                S3Error { code: $code, status: StatusCode::$status, message: message.into(), headers: Vec::new() }
            })*
        }
    };
}

codes! {
    access_denied => "AccessDenied", FORBIDDEN;
    access_forbidden => "AccessForbidden", FORBIDDEN;
    acl_not_supported => "AccessControlListNotSupported", BAD_REQUEST;
    invalid_policy => "InvalidPolicyDocument", BAD_REQUEST;
    malformed_post => "MalformedPOSTRequest", BAD_REQUEST;
    max_pre_data => "MaxPostPreDataLengthExceeded", BAD_REQUEST;
    bad_request => "BadRequest", BAD_REQUEST;
    no_such_cors => "NoSuchCORSConfiguration", NOT_FOUND;
    no_ownership_controls => "OwnershipControlsNotFoundError", NOT_FOUND;
    bad_digest => "BadDigest", BAD_REQUEST;
    bucket_already_owned => "BucketAlreadyOwnedByYou", CONFLICT;
    bucket_already_exists => "BucketAlreadyExists", CONFLICT;
    quota_exceeded => "QuotaExceeded", FORBIDDEN;
    invalid_token => "InvalidToken", BAD_REQUEST;
    expired_token => "ExpiredToken", BAD_REQUEST;
    malformed_policy => "MalformedPolicy", BAD_REQUEST;
    no_such_bucket_policy => "NoSuchBucketPolicy", NOT_FOUND;
    acl_with_ownership => "InvalidBucketAclWithObjectOwnership", BAD_REQUEST;
    unresolvable_grant => "UnresolvableGrantByEmailAddress", BAD_REQUEST;
    bucket_not_empty => "BucketNotEmpty", CONFLICT;
    conditional_conflict => "ConditionalRequestConflict", CONFLICT;
    entity_too_large => "EntityTooLarge", BAD_REQUEST;
    incomplete_body => "IncompleteBody", BAD_REQUEST;
    internal => "InternalError", INTERNAL_SERVER_ERROR;
    invalid_access_key => "InvalidAccessKeyId", FORBIDDEN;
    invalid_argument => "InvalidArgument", BAD_REQUEST;
    invalid_bucket_name => "InvalidBucketName", BAD_REQUEST;
    invalid_digest => "InvalidDigest", BAD_REQUEST;
    invalid_location => "InvalidLocationConstraint", BAD_REQUEST;
    invalid_range => "InvalidRange", RANGE_NOT_SATISFIABLE;
    invalid_request => "InvalidRequest", BAD_REQUEST;
    key_too_long => "KeyTooLongError", BAD_REQUEST;
    malformed_auth => "AuthorizationHeaderMalformed", BAD_REQUEST;
    malformed_xml => "MalformedXML", BAD_REQUEST;
    metadata_too_large => "MetadataTooLarge", BAD_REQUEST;
    method_not_allowed => "MethodNotAllowed", METHOD_NOT_ALLOWED;
    invalid_part_number => "InvalidPartNumber", RANGE_NOT_SATISFIABLE;
    invalid_tag => "InvalidTag", BAD_REQUEST;
    invalid_part => "InvalidPart", BAD_REQUEST;
    invalid_part_order => "InvalidPartOrder", BAD_REQUEST;
    entity_too_small => "EntityTooSmall", BAD_REQUEST;
    no_such_upload => "NoSuchUpload", NOT_FOUND;
    request_timeout => "RequestTimeout", BAD_REQUEST;
    slow_down => "SlowDown", SERVICE_UNAVAILABLE;
    insufficient_storage => "InsufficientStorage", INSUFFICIENT_STORAGE;
    missing_content_length => "MissingContentLength", LENGTH_REQUIRED;
    no_such_bucket => "NoSuchBucket", NOT_FOUND;
    no_such_key => "NoSuchKey", NOT_FOUND;
    not_implemented => "NotImplemented", NOT_IMPLEMENTED;
    not_modified => "NotModified", NOT_MODIFIED;
    precondition_failed => "PreconditionFailed", PRECONDITION_FAILED;
    signature_mismatch => "SignatureDoesNotMatch", FORBIDDEN;
    service_unavailable => "ServiceUnavailable", SERVICE_UNAVAILABLE;
    sha256_mismatch => "XAmzContentSHA256Mismatch", BAD_REQUEST;
    time_skewed => "RequestTimeTooSkewed", FORBIDDEN;
    no_such_version => "NoSuchVersion", NOT_FOUND;
    invalid_bucket_state => "InvalidBucketState", CONFLICT;
    no_lock_configuration => "ObjectLockConfigurationNotFoundError", NOT_FOUND;
    no_such_lock_configuration => "NoSuchObjectLockConfiguration", NOT_FOUND;
    no_such_lifecycle => "NoSuchLifecycleConfiguration", NOT_FOUND;
    invalid_retention_period => "InvalidRetentionPeriod", BAD_REQUEST;
    kms_not_found => "KMS.NotFoundException", BAD_REQUEST;
    kms_disabled => "KMS.DisabledException", FORBIDDEN;
    kms_invalid_state => "KMS.KMSInvalidStateException", FORBIDDEN;
}

/// The one place engine errors become S3 errors.
impl From<EngineError> for S3Error {
    fn from(e: EngineError) -> S3Error {
        use EngineError as E;
        match e {
            E::Meta(m) => m.into(),
            E::Conflict(m) => S3Error::conditional_conflict(m),
            E::BadDigest(m) => S3Error::bad_digest(m),
            E::InvalidPart(m) => S3Error::invalid_part(m),
            E::InvalidRequest(m) => S3Error::invalid_request(m),
            E::PartTooSmall(m) => S3Error::entity_too_small(m),
            E::Forbidden(m) => S3Error::access_denied(m),
            E::Unavailable(m) => S3Error::service_unavailable(m),
            E::InsufficientStorage(m) => S3Error::insufficient_storage(m),
            E::Body(io) => from_body_error(io),
            E::Corrupt(m) => corrupt(m),
            E::Internal(m) => {
                tracing::error!(error = %m, "internal failure");
                S3Error::internal("internal failure")
            }
            E::Kms(k) => {
                use coffre_engine::KmsError as K;
                match k {
                    K::NotFound(m) => S3Error::kms_not_found(m),
                    K::Disabled(m) => S3Error::kms_disabled(m),
                    K::InvalidState(m) => S3Error::kms_invalid_state(m),
                    K::AccessDenied(m) => S3Error::access_denied(m),
                }
            }
            // Named by its id: S3 answers 405 and says what it is.
            E::DeleteMarker { version_id } => {
                S3Error::method_not_allowed("The specified method is not allowed against this resource.")
                    .with_header("x-amz-delete-marker", "true")
                    .with_header("x-amz-version-id", version_id)
            }
        }
    }
}

fn corrupt(m: String) -> S3Error {
    tracing::error!(error = %m, "stored data or metadata is corrupt");
    S3Error::internal("stored data is damaged; the operator has been told")
}

/// The one place the metadata's refusals become S3 errors.
impl From<MetaError> for S3Error {
    fn from(e: MetaError) -> S3Error {
        use MetaError as M;
        match e {
            M::NoSuchBucket => S3Error::no_such_bucket("The specified bucket does not exist"),
            M::NoSuchKey => S3Error::no_such_key("The specified key does not exist."),
            M::NoSuchUpload => S3Error::no_such_upload(
                "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            ),
            M::BucketExists => S3Error::bucket_already_owned(
                "Your previous request to create the named bucket succeeded and you already own it",
            ),
            M::BucketNotEmpty => S3Error::bucket_not_empty("The bucket you tried to delete is not empty"),
            M::BucketTaken => S3Error::bucket_already_exists(
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
            ),
            M::QuotaExceeded(m) => S3Error::quota_exceeded(format!("Quota exceeded: {m}; nothing was stored")),
            M::NoSuchEntity(m) => S3Error::access_denied(format!("Access Denied: {m} does not exist")),
            M::EntityExists(m) => S3Error::invalid_request(format!("{m} already exists")),
            M::DeleteConflict(m) => S3Error::invalid_request(m),
            M::PreconditionFailed { .. } => {
                S3Error::precondition_failed("At least one of the pre-conditions you specified did not hold")
            }
            M::PartChanged => S3Error::conditional_conflict(
                "A part of this upload was uploaded again while it was being completed; retry",
            ),
            M::Unavailable(m) => S3Error::service_unavailable(m),
            M::NoSuchVersion => S3Error::no_such_version("The specified version does not exist."),
            M::Locked(m) => S3Error::access_denied(format!("Access Denied because object protected by object lock: {m}")),
            M::InvalidBucketState(m) => S3Error::invalid_bucket_state(m),
            M::InvalidRequest(m) => S3Error::invalid_request(m),
            M::MethodNotAllowed(m) => S3Error::method_not_allowed(m),
            M::Corrupt(m) => corrupt(m),
            M::Db(e) => corrupt(format!("metadata store: {e}")),
        }
    }
}

/// Identity errors on the S3 listener.
impl From<IamError> for S3Error {
    fn from(e: IamError) -> S3Error {
        match e {
            IamError::AccessDenied(m) => S3Error::access_denied(m),
            IamError::InvalidAccessKeyId(m) => S3Error::invalid_access_key(m),
            IamError::InvalidToken(m) => S3Error::invalid_token(m),
            IamError::ExpiredToken(m) => S3Error::expired_token(m),
            IamError::MalformedPolicy(m) => S3Error::malformed_policy(m),
            IamError::InvalidInput(m) => S3Error::invalid_argument(m),
            IamError::NoSuchEntity(m) => S3Error::access_denied(format!("Access Denied: {m} does not exist")),
            IamError::EntityAlreadyExists(m) | IamError::DeleteConflict(m) => S3Error::invalid_request(m),
            IamError::InvalidIdentityToken(m) | IamError::IdpCommunication(m) => S3Error::access_denied(m),
            IamError::NoSuchBucket => S3Error::no_such_bucket("The specified bucket does not exist"),
            IamError::Corrupt(m) => S3Error::internal(m),
            IamError::KeyUnavailable(m) => S3Error::service_unavailable(m),
            IamError::Meta(e) => e.into(),
        }
    }
}

impl From<coffre_engine::DataError> for S3Error {
    fn from(e: coffre_engine::DataError) -> S3Error {
        EngineError::from(e).into()
    }
}

/// Body streams carry S3 errors inside `io::Error`s; anything else means the client's
/// connection broke.
pub fn from_body_error(e: std::io::Error) -> S3Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<S3Error>()) {
        Some(s3) => s3.clone(),
        None => S3Error::incomplete_body(format!("reading the request body failed: {e}")),
    }
}

pub fn into_io(e: S3Error) -> std::io::Error {
    std::io::Error::other(e)
}
