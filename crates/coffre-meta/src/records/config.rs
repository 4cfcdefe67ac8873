//! A bucket's configurations (`bucket_config`): versioning and Object Lock, lifecycle rules,
//! CORS rules, default encryption, ownership controls.

use super::LockMode;
use serde::{Deserialize, Serialize};

/// A bucket sub-resource stored in `bucket_config`, by the name of its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BucketConfigKind {
    Cors,
    Encryption,
    Ownership,
    /// The bucket policy: its JSON document, as given (validated by the IAM layer).
    Policy,
    /// Limits on the bucket's content (`Quota`).
    Quota,
    /// The bucket's canned ACL when it grants others access (`public-read`, …).
    Acl,
    /// Versioning and Object Lock (`VersioningConfig`); absent: never versioned.
    Versioning,
    /// Lifecycle rules (`LifecycleConfig`).
    Lifecycle,
}

impl BucketConfigKind {
    pub fn key(self) -> &'static str {
        match self {
            BucketConfigKind::Cors => "cors",
            BucketConfigKind::Encryption => "encryption",
            BucketConfigKind::Ownership => "ownership",
            BucketConfigKind::Policy => "policy",
            BucketConfigKind::Quota => "quota",
            BucketConfigKind::Acl => "acl",
            BucketConfigKind::Versioning => "versioning",
            BucketConfigKind::Lifecycle => "lifecycle",
        }
    }
}

/// A bucket's versioning status once it has been turned on (it never goes back to off).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum VersioningStatus {
    Enabled,
    Suspended,
}

/// The retention given to new versions of a lock-enabled bucket that name none.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DefaultRetention {
    pub mode: LockMode,
    /// Exactly one of `days` and `years` is set (as the configuration gave it).
    pub days: Option<u32>,
    pub years: Option<u32>,
}

impl DefaultRetention {
    /// The retain-until date of a version written at `now_ms`.
    pub fn until(&self, now_ms: u64) -> u64 {
        const DAY_MS: u64 = 86_400_000;
        let days = match (self.days, self.years) {
            (Some(d), _) => u64::from(d),
            (None, Some(y)) => u64::from(y).saturating_mul(365),
            (None, None) => 0,
        };
        now_ms.saturating_add(days.saturating_mul(DAY_MS))
    }
}

/// Versioning and Object Lock of a bucket (`BucketConfigKind::Versioning`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersioningConfig {
    pub status: VersioningStatus,
    /// Object Lock enabled: versions may carry retentions and legal holds, and versioning
    /// can no longer be suspended.
    pub object_lock: bool,
    pub default_retention: Option<DefaultRetention>,
}

/// A bucket's lifecycle rules (validated by the protocol layer).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LifecycleConfig {
    pub rules: Vec<LifecycleRule>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    pub filter: LifecycleFilter,
    /// The rule named its prefix with the older top-level `Prefix` (no `Filter`): answered
    /// back the same way.
    pub top_level_prefix: bool,
    pub expiration: Option<LifecycleExpiration>,
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    /// AbortIncompleteMultipartUpload: days after an upload was started.
    pub abort_incomplete_days: Option<u32>,
}

/// What a rule applies to: every condition given must hold.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LifecycleFilter {
    pub prefix: String,
    pub tags: Vec<(String, String)>,
    pub size_greater_than: Option<u64>,
    pub size_less_than: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LifecycleExpiration {
    pub days: Option<u32>,
    /// Midnight UTC of the date given, in ms.
    pub date_ms: Option<u64>,
    pub expired_object_delete_marker: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NoncurrentExpiration {
    pub days: Option<u32>,
    /// Keep this many newer noncurrent versions whatever their age.
    pub newer_versions: Option<u32>,
}

/// One CORS rule, as PutBucketCors gives it (validated by the protocol layer).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_secs: Option<u32>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CorsConfig {
    pub rules: Vec<CorsRule>,
}

/// Default server-side encryption of a bucket. Everything is encrypted at rest whatever it
/// says; this is what GetBucketEncryption answers and PUTs echo.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EncryptionConfig {
    pub algorithm: String,
    pub bucket_key_enabled: bool,
    /// `KMSMasterKeyID` of an `aws:kms` default, as given (an id, an ARN, `alias/NAME` or a
    /// name of the bucket owner's keys).
    pub kms_key_id: Option<String>,
}

/// Configurations written before `kms_key_id` existed end after `bucket_key_enabled`: a
/// field missing at the end of the record is `None` (postcard has no field names).
impl<'de> Deserialize<'de> for EncryptionConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EncryptionConfig, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = EncryptionConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an encryption configuration")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<EncryptionConfig, A::Error> {
                let missing = || serde::de::Error::custom("an encryption configuration is truncated");
                let algorithm = seq.next_element()?.ok_or_else(missing)?;
                let bucket_key_enabled = seq.next_element()?.ok_or_else(missing)?;
                // The end of an old record: postcard says so with an error, not `None`.
                let kms_key_id = seq.next_element::<Option<String>>().ok().flatten().flatten();
                Ok(EncryptionConfig {
                    algorithm,
                    bucket_key_enabled,
                    kms_key_id,
                })
            }
        }
        d.deserialize_struct(
            "EncryptionConfig",
            &["algorithm", "bucket_key_enabled", "kms_key_id"],
            V,
        )
    }
}

/// Object ownership (`BucketOwnerEnforced`, `BucketOwnerPreferred`, `ObjectWriter`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OwnershipConfig {
    pub rule: String,
}
