//! Multipart uploads: each part is stored as its own stripes when it arrives (its own version
//! id and data key); Complete only writes metadata, in one atomic batch, and a retried
//! Complete of a completed upload answers the same.

use crate::checksum::{multipart_checksum, Algorithm};
use crate::object::BodyInfo;
use crate::{policy_of, Engine, EngineError, EngineResult};
use bytes::Bytes;
use coffre_meta::{
    BucketRecord, MetaCommand, MetaError, ObjectRecord, Outcome, PartInfo, SealedAttrs, UploadPartRecord, UploadRecord,
    WriteCondition,
};
use coffre_types::{now_millis, VersionId};
use futures_util::Stream;

use coffre_types::limits::MIN_PART;

/// A part as Complete names it: its number, the ETag the client got for it, and the checksums
/// it names (`(algorithm, value)`), which must be the part's.
pub struct PartRequest {
    pub number: u32,
    pub etag: String,
    pub checksums: Vec<(String, String)>,
}

/// A CompleteMultipartUpload: the parts, and what the whole object must be.
pub struct CompleteRequest {
    pub parts: Vec<PartRequest>,
    /// The object's checksum as the client computed it (`x-amz-checksum-*`): Complete fails
    /// with BadDigest, before anything is committed, unless it is what the parts make.
    pub checksum: Option<(String, String)>,
    /// `x-amz-checksum-type`: must be the upload's.
    pub checksum_type: Option<String>,
    pub condition: WriteCondition,
}

/// What Complete made.
pub struct CompletedUpload {
    pub etag: String,
    /// The version made, when the bucket is versioned (S3's `x-amz-version-id`).
    pub record: Option<ObjectRecord>,
    /// The object's checksum, `(algorithm, value)`, when the upload declared one.
    pub checksum: Option<(String, String)>,
}

/// A page of uploads in progress: (key, upload id, record), and whether more follow.
pub type UploadListing = (Vec<coffre_meta::UploadEntry>, bool);

impl Engine {
    pub async fn create_upload(
        &self,
        bucket: &str,
        bucket_rec: &BucketRecord,
        key: &str,
        attrs: &SealedAttrs,
        checksum_algorithm: Option<Algorithm>,
        checksum_type: Option<String>,
    ) -> EngineResult<VersionId> {
        let id = VersionId::random();
        let rec = UploadRecord {
            created_ms: now_millis(),
            scheme: bucket_rec.scheme,
            packages_per_stripe: coffre_data::StripeLayout::DEFAULT_PACKAGES as u32,
            sealed: self.seal_attrs(bucket, key, &id, attrs),
            checksum_algorithm: checksum_algorithm.map(|a| a.name().to_string()),
            checksum_type,
            completed: None,
        };
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.meta_call(move |m| m.create_upload(&bucket, key.as_bytes(), &id.0, &rec))
            .await?;
        Ok(id)
    }

    /// An upload in progress (not completed).
    pub fn upload(&self, bucket: &str, key: &str, id: &[u8; 16]) -> EngineResult<UploadRecord> {
        match self.meta.get_upload(bucket, key.as_bytes(), id)? {
            Some(u) if u.completed.is_none() => Ok(u),
            _ => Err(EngineError::Meta(MetaError::NoSuchUpload)),
        }
    }

    /// Stores one part from a verified body stream and records it under `number`, replacing
    /// (and collecting) a part with the same number.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part<S>(
        &self,
        bucket: &str,
        key: &str,
        id: &[u8; 16],
        up: &UploadRecord,
        number: u32,
        body: S,
        info: BodyInfo,
    ) -> EngineResult<UploadPartRecord>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send,
    {
        let brec = self.bucket(bucket)?;
        let mut policy = policy_of(&brec);
        // All parts of an object share the upload's scheme.
        policy.scheme = up.scheme;
        let info = BodyInfo { part: true, ..info };
        let (info, layout) = self.write_data(bucket, &brec.tenant, key, &policy, body, info).await?;
        let part = UploadPartRecord {
            info: info.clone(),
            last_modified_ms: now_millis(),
        };
        let committed = {
            let (bucket, key, id, part) = (bucket.to_string(), key.to_string(), *id, part.clone());
            self.meta_call(move |m| m.commit_part(&bucket, key.as_bytes(), &id, number, &part, &layout))
                .await
        };
        if let Err(e) = committed {
            self.abort(&info.version, &info.nodes, Some(self.stripes_of(&info)))
                .await;
            return Err(e);
        }
        Ok(part)
    }

    /// For a retried Complete: what the completed upload made, if the object is still it.
    /// `Ok(None)`: the upload is in progress.
    pub fn completed_upload(&self, bucket: &str, key: &str, id: &[u8; 16]) -> EngineResult<Option<CompletedUpload>> {
        let up = self
            .meta
            .get_upload(bucket, key.as_bytes(), id)?
            .ok_or(EngineError::Meta(MetaError::NoSuchUpload))?;
        let Some((version, etag)) = &up.completed else {
            return Ok(None);
        };
        match self.meta.get_object(bucket, key.as_bytes())? {
            Some(rec) if rec.version == *version => Ok(Some(CompletedUpload {
                etag: etag.clone(),
                checksum: self.open_attrs(bucket, key, &rec)?.checksums.into_iter().next(),
                record: Some(rec),
            })),
            _ => Err(EngineError::Meta(MetaError::NoSuchUpload)),
        }
    }

    /// Completes an upload with the parts named (in ascending order): the object made of them
    /// becomes visible, the other parts are collected. The commit re-checks that every part is
    /// still the one the object was built from; a part uploaded again meanwhile makes it
    /// start over with the new part.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        id: &[u8; 16],
        req: &CompleteRequest,
    ) -> EngineResult<CompletedUpload> {
        let owner = self.bucket(bucket)?.tenant;
        let wanted = &req.parts;
        let condition = WriteCondition {
            owner: Some(owner),
            ..req.condition.clone()
        };
        self.check_condition(bucket, key, &condition)?;
        const ATTEMPTS: usize = 4;
        for attempt in 1..=ATTEMPTS {
            let up = self.upload(bucket, key, id)?;
            let (record, done) = self.completion(bucket, key, id, &up, req)?;
            let cmd = MetaCommand::CompleteUpload(coffre_meta::CompleteUpload {
                bucket: bucket.to_string(),
                key: key.as_bytes().to_vec(),
                id: *id,
                numbers: wanted.iter().map(|w| w.number).collect(),
                record,
                condition: condition.clone(),
                now_ms: now_millis(),
            });
            match self.meta_apply(cmd).await? {
                Ok(Outcome::Object(Some(rec))) => {
                    return Ok(CompletedUpload {
                        record: Some(rec),
                        ..done
                    })
                }
                Ok(_) => return Ok(done),
                Err(MetaError::PartChanged) if attempt < ATTEMPTS => continue,
                Err(e) => return Err(crate::object::failed_at_commit(&condition, e)),
            }
        }
        Err(EngineError::Conflict("parts kept changing during Complete".into()))
    }

    /// The object an upload's current parts make, and what Complete answers for it.
    fn completion(
        &self,
        bucket: &str,
        key: &str,
        id: &[u8; 16],
        up: &UploadRecord,
        req: &CompleteRequest,
    ) -> EngineResult<(ObjectRecord, CompletedUpload)> {
        let wanted = &req.parts;
        let upload_type = up
            .checksum_algorithm
            .as_ref()
            .map(|_| up.checksum_type.as_deref().unwrap_or("COMPOSITE"));
        if let Some(t) = &req.checksum_type {
            if upload_type.is_none_or(|u| !u.eq_ignore_ascii_case(t)) {
                return Err(EngineError::InvalidRequest(format!(
                    "The upload was created with checksum type {}, not {t}",
                    upload_type.unwrap_or("none")
                )));
            }
        }
        let uploaded: std::collections::HashMap<u32, UploadPartRecord> =
            self.meta.list_parts(id, 0, usize::MAX)?.0.into_iter().collect();
        let mut parts: Vec<PartInfo> = Vec::with_capacity(wanted.len());
        for (i, w) in wanted.iter().enumerate() {
            let p = uploaded
                .get(&w.number)
                .filter(|p| p.info.md5 == w.etag)
                .ok_or_else(|| {
                    EngineError::InvalidPart(format!(
                    "One or more of the specified parts could not be found or its entity tag did not match (part {}).",
                    w.number
                ))
                })?;
            if !w.checksums.is_empty() {
                let stored = self.part_checksum(&p.info)?;
                for (a, v) in &w.checksums {
                    let same = stored
                        .as_ref()
                        .is_some_and(|(sa, sv)| sa.eq_ignore_ascii_case(a) && sv == v);
                    if !same {
                        return Err(EngineError::InvalidPart(format!(
                            "One or more of the specified parts could not be found: the {a} checksum of part {} is not the part's",
                            w.number
                        )));
                    }
                }
            }
            if i + 1 < wanted.len() && p.info.size < MIN_PART {
                return Err(EngineError::PartTooSmall(format!(
                    "Your proposed upload is smaller than the minimum allowed size: part {} is {} bytes, parts but the last must be at least 5 MiB",
                    w.number, p.info.size
                )));
            }
            parts.push(p.info.clone());
        }
        let mut md5s = Vec::with_capacity(parts.len() * 16);
        for p in &parts {
            md5s.extend_from_slice(&hex::decode(&p.md5).map_err(|_| EngineError::Corrupt("part md5".into()))?);
        }
        let etag = {
            use md5::Digest;
            format!("{}-{}", hex::encode(md5::Md5::digest(&md5s)), parts.len())
        };
        let mut attrs = self.open_attrs_for(bucket, key, &VersionId(*id), &up.sealed)?;
        let lock = attrs.lock.take();
        if let Some(a) = up.checksum_algorithm.as_deref().and_then(Algorithm::parse) {
            let mut sums = Some(Vec::with_capacity(parts.len()));
            for p in &parts {
                let c = self.part_checksum(p)?.filter(|(n, _)| n == a.name());
                match (c, sums.as_mut()) {
                    (Some((_, v)), Some(s)) => s.push((v, p.size)),
                    _ => sums = None,
                }
            }
            let full = up.checksum_type.as_deref() == Some("FULL_OBJECT");
            if let Some(v) = sums.and_then(|s| multipart_checksum(a, &s, full)) {
                attrs.checksums = vec![(a.name().to_string(), v)];
            }
        }
        if let Some((a, v)) = &req.checksum {
            let computed = attrs.checksums.iter().find(|(n, _)| n.eq_ignore_ascii_case(a));
            // A composite value may be given with or without its `-N` suffix.
            let same = |c: &String| c == v || c.rsplit_once('-').is_some_and(|(bare, _)| bare == v);
            if computed.is_none_or(|(_, c)| !same(c)) {
                return Err(EngineError::BadDigest(format!(
                    "The x-amz-checksum-{a} you specified did not match the calculated checksum."
                )));
            }
        }
        let version = VersionId::random();
        let record = ObjectRecord {
            version,
            size: parts.iter().fold(0u64, |n, p| n.saturating_add(p.size)),
            etag: etag.clone(),
            last_modified_ms: now_millis(),
            scheme: up.scheme,
            packages_per_stripe: up.packages_per_stripe,
            parts,
            sealed: self.seal_attrs(bucket, key, &version, &attrs),
            // Object Lock asked for at CreateMultipartUpload.
            version_state: coffre_meta::VersionState {
                retention: lock.and_then(|(r, _)| r),
                legal_hold: lock.is_some_and(|(_, h)| h),
                ..Default::default()
            },
        };
        let done = CompletedUpload {
            record: None,
            etag,
            checksum: attrs.checksums.into_iter().next(),
        };
        Ok((record, done))
    }

    /// Aborts an upload: its parts go to GC. Returns false if none was in progress.
    pub async fn abort_upload(&self, bucket: &str, key: &str, id: &[u8; 16]) -> EngineResult<bool> {
        let (bucket, key, id) = (bucket.to_string(), key.to_string(), *id);
        self.meta_call(move |m| m.abort_upload(&bucket, key.as_bytes(), &id))
            .await
    }

    /// Parts with numbers greater than `after`, at most `limit`; and whether more follow.
    pub fn list_parts(
        &self,
        id: &[u8; 16],
        after: u32,
        limit: usize,
    ) -> EngineResult<(Vec<(u32, UploadPartRecord)>, bool)> {
        Ok(self.meta.list_parts(id, after, limit)?)
    }

    /// Uploads in progress under `prefix`, strictly after the marker.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &[u8],
        after: Option<(&[u8], Option<[u8; 16]>)>,
        limit: usize,
    ) -> EngineResult<UploadListing> {
        Ok(self.meta.list_uploads(bucket, prefix, after, limit)?)
    }
}
