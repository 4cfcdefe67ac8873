//! Every metadata mutation is a `MetaCommand`, applied by one state machine (`apply`).
//!
//! A command carries everything its outcome depends on (timestamps included), so applying
//! the same commands in the same order gives the same store: what a replicated log needs.
//! Inside `apply`, each command takes the locks of what it writes, re-reads and re-checks
//! everything it relies on, and writes one atomic, synced WriteBatch. Read-modify-write
//! (a replaced version going to the GC queue, a heal entry appearing or going) happens here,
//! never in the caller.
//!
//! Locks: content writers (objects, uploads, parts) hold their bucket's lock shared and their
//! key's lock; bucket writers (create, delete, policy) hold the bucket's lock exclusively. So a
//! DeleteBucket never interleaves with a PUT into it, and two writers of one key are serial.

use crate::records::{
    decode, encode, GcPart, GcRecord, IntentRecord, Retention, UploadPartRecord, UploadRecord, VersionSel,
    VersioningConfig, VersioningStatus,
};
use crate::versions::{next_seq, Place};
use crate::{keys, BucketRecord, LayoutRecord, MetaError, MetaStore, NodeRecord, ObjectRecord, PartData, PartInfo};
use coffre_types::VersionId;
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

pub(crate) fn sync_opts() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

/// Conditions on the key's current version, checked at commit (S3's `If-Match` and
/// `If-None-Match: *` on writes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteCondition {
    /// The current version must exist with this ETag (`*`: with any ETag).
    pub if_match: Option<String>,
    /// The key must have no current version.
    pub if_none_match: bool,
    /// The bucket must still belong to this tenant, the one the write started for (a bucket
    /// deleted and created again by another tenant meanwhile is not the same bucket).
    pub owner: Option<String>,
}

impl WriteCondition {
    /// Whether it sets no condition on the key (the owner is not the key's).
    pub fn is_none(&self) -> bool {
        self.if_match.is_none() && !self.if_none_match
    }

    /// Whether the condition holds for the key's current version.
    pub fn holds(&self, current: Option<&ObjectRecord>) -> bool {
        if self.if_none_match && current.is_some() {
            return false;
        }
        match (&self.if_match, current) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(e), Some(c)) => e == "*" || *e == c.etag,
        }
    }

    fn check_owner(&self, owner: &str) -> Result<(), MetaError> {
        match &self.owner {
            Some(o) if o != owner => Err(MetaError::NoSuchBucket),
            _ => Ok(()),
        }
    }

    fn check(&self, current: Option<&ObjectRecord>) -> Result<(), MetaError> {
        if self.holds(current) {
            Ok(())
        } else {
            Err(MetaError::PreconditionFailed {
                exists: current.is_some(),
            })
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    CreateBucket {
        name: String,
        record: BucketRecord,
    },
    /// Fails if the bucket holds objects or uploads in progress.
    DeleteBucket {
        name: String,
    },
    UpdateBucket {
        name: String,
        record: BucketRecord,
    },
    /// Sets (or, with `None`, removes) a bucket sub-resource: `value` is its encoded record.
    PutBucketConfig {
        bucket: String,
        kind: crate::BucketConfigKind,
        value: Option<Vec<u8>>,
    },
    PutNode {
        address: String,
        record: NodeRecord,
    },
    DeleteNode {
        address: String,
    },
    /// Shards of `version` are about to be written to `nodes`.
    BeginWrite {
        version: VersionId,
        nodes: Vec<String>,
        now_ms: u64,
    },
    /// A write that will not commit: its intent becomes a GC entry (nothing happens if the
    /// intent is gone: the write did commit).
    AbortWrite {
        version: VersionId,
        nodes: Vec<String>,
        stripes: Option<u32>,
        now_ms: u64,
    },
    /// Makes a written version current: the record and its parts' layouts in, their intents
    /// out, the replaced version queued for GC. Fails if the bucket is gone, the condition
    /// does not hold, or the write was aborted (an intent of `layouts` is gone).
    CommitObject {
        bucket: String,
        key: Vec<u8>,
        record: ObjectRecord,
        layouts: Vec<(VersionId, LayoutRecord)>,
        condition: WriteCondition,
        now_ms: u64,
    },
    /// Deletes objects (their records, and so their wrapped data keys), queueing their
    /// shards for GC. `Outcome::Deleted` says which existed.
    DeleteObjects {
        bucket: String,
        keys: Vec<Vec<u8>>,
        now_ms: u64,
    },
    /// Replaces the sealed attributes of `version` if it is still current; `touch_ms` also
    /// sets its modification time. `Outcome::Object` is the new record, or None.
    UpdateSealed {
        bucket: String,
        key: Vec<u8>,
        version: VersionId,
        sealed: Vec<u8>,
        touch_ms: Option<u64>,
    },
    /// Records healed parts of `version` if it is still current. `Outcome::Done` says whether
    /// it was; the heal entry goes once nothing under the key is degraded.
    UpdateParts {
        bucket: String,
        key: Vec<u8>,
        version: VersionId,
        parts: Vec<PartInfo>,
    },
    CreateUpload {
        bucket: String,
        key: Vec<u8>,
        id: [u8; 16],
        record: UploadRecord,
    },
    /// Records an uploaded part, replacing (and collecting) one with the same number.
    CommitPart {
        bucket: String,
        key: Vec<u8>,
        id: [u8; 16],
        number: u32,
        part: UploadPartRecord,
        layout: LayoutRecord,
        now_ms: u64,
    },
    /// Completes an upload: `record.parts[i]` must still be part `numbers[i]` (a part
    /// re-uploaded meanwhile fails the command with `PartChanged`); the object becomes
    /// current, unused parts go to GC, the upload is marked completed (for retries).
    CompleteUpload {
        bucket: String,
        key: Vec<u8>,
        id: [u8; 16],
        numbers: Vec<u32>,
        record: ObjectRecord,
        condition: WriteCondition,
        now_ms: u64,
    },
    /// Aborts an upload: its parts go to GC. `Outcome::Done` says whether it was in progress.
    AbortUpload {
        bucket: String,
        key: Vec<u8>,
        id: [u8; 16],
        now_ms: u64,
    },
    /// A GC entry's shards are gone: the entry and the layouts of its versions go.
    GcDone {
        raw_key: Vec<u8>,
        versions: Vec<VersionId>,
    },
    /// Forgets a heal entry whose object needs no healing (gone, replaced, healed).
    DropHeal {
        raw_key: Vec<u8>,
    },
    /// Tenants, users, access keys, roles (`iam.rs`).
    Iam(crate::IamCommand),
    /// A bucket with versioning (and Object Lock) on from its creation.
    CreateVersionedBucket {
        name: String,
        record: BucketRecord,
        versioning: VersioningConfig,
    },
    /// Turns versioning on or suspends it, or sets Object Lock (`VersioningChange`).
    ConfigureVersioning {
        bucket: String,
        change: VersioningChange,
    },
    /// Deletes versions or places delete markers (DeleteObject, DeleteObjects, lifecycle).
    /// No key appears twice. `Outcome::DeleteResults` has one result per target.
    DeleteVersions {
        bucket: String,
        targets: Vec<DeleteTarget>,
        bypass_governance: bool,
        now_ms: u64,
    },
    /// Changes one version (`None`: the current object): its sealed attributes, retention or
    /// legal hold. `expect`: the part version it must still have. `Outcome::Object`: the
    /// version as changed.
    UpdateVersion {
        bucket: String,
        key: Vec<u8>,
        sel: Option<VersionSel>,
        expect: Option<VersionId>,
        change: VersionChange,
        bypass_governance: bool,
        now_ms: u64,
    },
    /// Records healed parts of the noncurrent version at `seq` if it still holds `version`
    /// (as `UpdateParts` for a current object). `Outcome::Done` says whether it did.
    UpdateVersionParts {
        bucket: String,
        key: Vec<u8>,
        seq: u64,
        version: VersionId,
        parts: Vec<PartInfo>,
    },
    /// Makes a small object current with its data inlined in the metadata (`packages`: its
    /// one part's sealed AEAD packages, stored under the part's version in `layouts`). As
    /// `CommitObject`, but no shard was written, so no intent is consumed. (Last of the enum:
    /// commands already in a replica's log keep their encoding.)
    CommitInlineObject {
        bucket: String,
        key: Vec<u8>,
        record: ObjectRecord,
        packages: Vec<u8>,
        condition: WriteCondition,
        now_ms: u64,
    },
    /// `cmd`, with the audit note of the request it is applied for written in its batch
    /// (`audit_notes.rs`).
    Noted {
        note: crate::AuditNote,
        cmd: Box<MetaCommand>,
    },
    /// Removes audit notes whose entries are in their gateway's log.
    ForgetAuditNotes {
        origin: String,
        ids: Vec<String>,
    },
}

impl MetaCommand {
    /// Whether the command changes what a client can see or is entitled to (what an audit
    /// note must accompany): not a write's intent, nor its abort, nor notes' upkeep.
    fn is_change(&self) -> bool {
        !matches!(
            self,
            MetaCommand::BeginWrite { .. }
                | MetaCommand::AbortWrite { .. }
                | MetaCommand::Noted { .. }
                | MetaCommand::ForgetAuditNotes { .. }
        )
    }
}

/// What a command's batch starts with: the replica's log position, the request's audit note.
#[derive(Clone, Copy, Default)]
pub(crate) struct Stamp<'a> {
    pub applied: Option<&'a [u8]>,
    pub note: Option<&'a crate::AuditNote>,
}

/// A change of a bucket's versioning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum VersioningChange {
    Status(VersioningStatus),
    /// PutObjectLockConfiguration: Object Lock on (for good) with this default retention.
    ObjectLock(Option<crate::records::DefaultRetention>),
}

/// A change of one version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum VersionChange {
    Sealed { sealed: Vec<u8>, touch_ms: Option<u64> },
    Retention(Option<Retention>),
    LegalHold(bool),
}

/// One key of a `DeleteVersions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeleteTarget {
    pub key: Vec<u8>,
    /// The version to remove for good; `None`: delete the key (a delete marker in a versioned
    /// bucket).
    pub version: Option<VersionSel>,
    /// The tag of the marker that may be placed (random, chosen by the proposer so that
    /// every replica places the same).
    pub marker_tag: VersionId,
    pub guard: DeleteGuard,
}

/// What must still hold when the delete is applied (lifecycle decides on a read made before).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteGuard {
    None,
    /// The key's newest version has this seq.
    LatestIs(u64),
    /// The version is not the key's current object.
    Noncurrent,
    /// The version is a delete marker and the key's only version.
    LoneMarker,
}

/// What a `DeleteTarget` did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeleteResult {
    /// The version removed for good: (its versionId, whether it was a delete marker).
    pub removed: Option<(String, bool)>,
    /// The versionId of the delete marker placed.
    pub marker: Option<String>,
    /// Why nothing was done: the version is locked.
    pub refused: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Unit,
    Done(bool),
    Deleted(Vec<bool>),
    Object(Option<ObjectRecord>),
    DeleteResults(Vec<DeleteResult>),
}

impl MetaStore {
    /// Applies one command: through the replicated log when the store is a replica (the
    /// command is applied by every replica's state machine, and this returns its outcome
    /// here once committed), directly otherwise.
    pub fn apply(&self, cmd: MetaCommand) -> Result<Outcome, MetaError> {
        let cmd = match crate::audit_notes::current() {
            Some(note) if cmd.is_change() => MetaCommand::Noted {
                note: (*note).clone(),
                cmd: Box::new(cmd),
            },
            _ => cmd,
        };
        match self.replicator() {
            Some(r) => r.propose(cmd),
            None => self.apply_at(cmd, None),
        }
    }

    /// The state machine: applies one command atomically. `applied` (a replica's log
    /// position, encoded) is written in the command's own batch, so a crash never leaves a
    /// command applied but not recorded as such (commands are not idempotent: a commit
    /// applied twice would collect the version it made current).
    pub(crate) fn apply_at(&self, cmd: MetaCommand, applied: Option<&[u8]>) -> Result<Outcome, MetaError> {
        match cmd {
            MetaCommand::Noted { note, cmd } => self.apply_stamped(
                *cmd,
                Stamp {
                    applied,
                    note: Some(&note),
                },
            ),
            cmd => self.apply_stamped(cmd, Stamp { applied, note: None }),
        }
    }

    fn apply_stamped(&self, cmd: MetaCommand, stamp: Stamp<'_>) -> Result<Outcome, MetaError> {
        use MetaCommand as C;
        let mut b = self.batch(stamp);
        let outcome = match cmd {
            C::CreateBucket { name, record } => self.create_bucket_in(b, &name, &record, None)?,
            C::CreateVersionedBucket {
                name,
                record,
                versioning,
            } => self.create_bucket_in(b, &name, &record, Some(versioning))?,
            C::ConfigureVersioning { bucket, change } => {
                let _g = self.bucket_itself(&bucket);
                self.require_bucket(&bucket)?;
                let current = self.versioning(&bucket)?;
                let next = match (change, current) {
                    (VersioningChange::Status(VersioningStatus::Suspended), Some(c)) if c.object_lock => {
                        return Err(MetaError::InvalidBucketState(
                            "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.".into(),
                        ))
                    }
                    (VersioningChange::Status(status), Some(c)) => VersioningConfig { status, ..c },
                    (VersioningChange::Status(status), None) => VersioningConfig {
                        status,
                        object_lock: false,
                        default_retention: None,
                    },
                    (VersioningChange::ObjectLock(default_retention), Some(c))
                        if c.status == VersioningStatus::Enabled =>
                    {
                        VersioningConfig {
                            object_lock: true,
                            default_retention,
                            ..c
                        }
                    }
                    (VersioningChange::ObjectLock(_), _) => {
                        return Err(MetaError::InvalidBucketState(
                            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration".into(),
                        ))
                    }
                };
                b.put_cf(
                    self.cf(keys::CF_BUCKET_CONFIG),
                    keys::bucket_config(&bucket, crate::BucketConfigKind::Versioning.key()),
                    encode(&next),
                );
                self.write(b)?;
                self.bump_generation();
                Outcome::Unit
            }
            C::DeleteVersions {
                bucket,
                targets,
                bypass_governance,
                now_ms,
            } => {
                let _b = self.bucket_content(&bucket);
                let names: Vec<Vec<u8>> = targets.iter().map(|t| t.key.clone()).collect();
                let _k = self.lock_keys(&bucket, &names);
                let mut distinct = std::collections::HashSet::new();
                if !names.iter().all(|k| distinct.insert(k)) {
                    return Err(MetaError::InvalidRequest("a key is named twice in one delete".into()));
                }
                let owner = self.require_bucket(&bucket)?.tenant;
                let versioning = self.versioning(&bucket)?;
                let mut tally = (0i64, 0i64);
                let mut results = Vec::with_capacity(targets.len());
                for t in &targets {
                    results.push(self.delete_target_in(
                        &mut b,
                        &bucket,
                        versioning.as_ref(),
                        t,
                        bypass_governance,
                        now_ms,
                        &mut tally,
                    )?);
                }
                self.add_usage(&mut b, &owner, &bucket, tally.0, tally.1);
                self.write(b)?;
                Outcome::DeleteResults(results)
            }
            C::UpdateVersion {
                bucket,
                key,
                sel,
                expect,
                change,
                bypass_governance,
                now_ms,
            } => {
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_key(&bucket, &key);
                self.require_bucket(&bucket)?;
                let found = match sel {
                    None => self.get_object(&bucket, &key)?.map(|r| (r, Place::Current)),
                    Some(sel) => self.find_version(&bucket, &key, sel)?,
                };
                let (mut rec, place) = match (found, sel) {
                    (Some(f), _) => f,
                    (None, Some(_)) => return Err(MetaError::NoSuchVersion),
                    (None, None) => return Err(MetaError::NoSuchKey),
                };
                if expect.is_some_and(|v| v != rec.version) {
                    return Ok(Outcome::Object(None));
                }
                if rec.is_delete_marker() {
                    return Err(MetaError::MethodNotAllowed(
                        "The specified method is not allowed against a delete marker".into(),
                    ));
                }
                let lock_enabled = self.versioning(&bucket)?.is_some_and(|v| v.object_lock);
                match change {
                    VersionChange::Sealed { sealed, touch_ms } => {
                        rec.sealed = sealed;
                        if let Some(t) = touch_ms {
                            rec.last_modified_ms = t;
                        }
                    }
                    VersionChange::Retention(new) => {
                        if !lock_enabled {
                            return Err(no_lock_configuration());
                        }
                        check_retention_change(rec.version_state.retention, new, now_ms, bypass_governance)?;
                        rec.version_state.retention = new;
                    }
                    VersionChange::LegalHold(on) => {
                        if !lock_enabled {
                            return Err(no_lock_configuration());
                        }
                        rec.version_state.legal_hold = on;
                    }
                }
                let raw = match place {
                    Place::Current => (keys::CF_OBJECTS, keys::object(&bucket, &key)),
                    Place::Noncurrent => (
                        keys::CF_VERSIONS,
                        keys::object_version(&bucket, &key, rec.version_state.seq),
                    ),
                };
                b.put_cf(self.cf(raw.0), raw.1, rec.encode());
                self.write(b)?;
                Outcome::Object(Some(rec))
            }
            C::DeleteBucket { name } => {
                let _g = self.bucket_itself(&name);
                self.delete_bucket_in(&mut b, &name)?;
                self.write(b)?;
                self.bump_generation();
                Outcome::Unit
            }
            C::UpdateBucket { name, record } => {
                let _g = self.bucket_itself(&name);
                match self.get_bucket(&name)? {
                    None => return Err(MetaError::NoSuchBucket),
                    // The owner is not a residency setting: it never changes here.
                    Some(old) if old.tenant != record.tenant => {
                        return Err(MetaError::DeleteConflict("a bucket's owner cannot change".into()))
                    }
                    Some(_) => {}
                }
                b.put_cf(self.cf(keys::CF_BUCKETS), keys::bucket(&name), record.encode());
                self.write(b)?;
                self.bump_generation();
                Outcome::Unit
            }
            C::PutBucketConfig { bucket, kind, value } => {
                if kind == crate::BucketConfigKind::Versioning {
                    return Err(MetaError::InvalidRequest(
                        "versioning changes through ConfigureVersioning".into(),
                    ));
                }
                let _g = self.bucket_itself(&bucket);
                self.require_bucket(&bucket)?;
                let k = keys::bucket_config(&bucket, kind.key());
                match value {
                    Some(v) => b.put_cf(self.cf(keys::CF_BUCKET_CONFIG), k, v),
                    None => b.delete_cf(self.cf(keys::CF_BUCKET_CONFIG), k),
                }
                self.write(b)?;
                self.bump_generation();
                Outcome::Unit
            }
            C::PutNode { address, record } => {
                b.put_cf(self.cf(keys::CF_NODES), address.as_bytes(), encode(&record));
                self.write(b)?;
                Outcome::Unit
            }
            C::DeleteNode { address } => {
                b.delete_cf(self.cf(keys::CF_NODES), address.as_bytes());
                self.write(b)?;
                Outcome::Unit
            }
            C::BeginWrite { version, nodes, now_ms } => {
                let rec = IntentRecord {
                    started_ms: now_ms,
                    nodes,
                };
                b.put_cf(self.cf(keys::CF_INTENTS), keys::version(&version), encode(&rec));
                self.write(b)?;
                Outcome::Unit
            }
            C::AbortWrite {
                version,
                nodes,
                stripes,
                now_ms,
            } => {
                // Without its intent, the write was committed (a commit whose answer was
                // lost, then applied) or aborted already: its shards are not garbage.
                let intent = keys::version(&version);
                if self.db.get_pinned_cf(self.cf(keys::CF_INTENTS), &intent)?.is_some() {
                    let part = GcPart {
                        version,
                        nodes,
                        stripes,
                    };
                    self.queue_gc(&mut b, GcRecord { parts: vec![part] }, now_ms);
                    b.delete_cf(self.cf(keys::CF_INTENTS), intent);
                }
                self.write(b)?;
                Outcome::Unit
            }
            C::CommitObject {
                bucket,
                key,
                record,
                layouts,
                condition,
                now_ms,
            } => {
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_key(&bucket, &key);
                let (owner, current) = self.check_write(&bucket, &key, &condition)?;
                for (v, _) in &layouts {
                    self.require_intent(v)?;
                }
                let (record, _q) = self.commit_version_in(&mut b, &owner, &bucket, &key, record, current, now_ms)?;
                for (v, l) in &layouts {
                    b.put_cf(self.cf(keys::CF_LAYOUTS), keys::version(v), encode(l));
                    b.delete_cf(self.cf(keys::CF_INTENTS), keys::version(v));
                }
                self.write(b)?;
                Outcome::Object(Some(record))
            }
            C::CommitInlineObject {
                bucket,
                key,
                record,
                packages,
                condition,
                now_ms,
            } => {
                let [part] = record.parts.as_slice() else {
                    return Err(MetaError::Corrupt("an inlined object has exactly one part".into()));
                };
                let part_key = keys::version(&part.version);
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_key(&bucket, &key);
                let (owner, current) = self.check_write(&bucket, &key, &condition)?;
                let (record, _q) = self.commit_version_in(&mut b, &owner, &bucket, &key, record, current, now_ms)?;
                b.put_cf(self.cf(keys::CF_LAYOUTS), part_key, PartData::Inline(packages).encode());
                self.write(b)?;
                Outcome::Object(Some(record))
            }
            C::DeleteObjects {
                bucket,
                keys: names,
                now_ms,
            } => {
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_keys(&bucket, &names);
                let owner = self.get_bucket(&bucket)?.map(|r| r.tenant).unwrap_or_default();
                let (mut freed_bytes, mut freed_objects) = (0i64, 0i64);
                let mut existed = Vec::with_capacity(names.len());
                // A key named twice is deleted once: the second sees the batch's view.
                let mut gone = std::collections::HashSet::new();
                for key in &names {
                    let okey = keys::object(&bucket, key);
                    let old = match gone.contains(&okey) {
                        true => None,
                        false => self.get_object_at(keys::CF_OBJECTS, &okey)?,
                    };
                    existed.push(old.is_some());
                    if let Some(old) = old {
                        freed_bytes = freed_bytes.saturating_add(old.size as i64);
                        freed_objects += 1;
                        self.queue_gc(&mut b, old.gc_record(), now_ms);
                        b.delete_cf(self.cf(keys::CF_OBJECTS), &okey);
                        b.delete_cf(self.cf(keys::CF_HEAL), &okey);
                        gone.insert(okey);
                    }
                }
                self.account(&mut b, &owner, &bucket, -freed_bytes, -freed_objects)?;
                self.write(b)?;
                Outcome::Deleted(existed)
            }
            C::UpdateSealed {
                bucket,
                key,
                version,
                sealed,
                touch_ms,
            } => {
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_key(&bucket, &key);
                let okey = keys::object(&bucket, &key);
                match self.get_object_at(keys::CF_OBJECTS, &okey)? {
                    Some(mut rec) if rec.version == version => {
                        rec.sealed = sealed;
                        if let Some(t) = touch_ms {
                            rec.last_modified_ms = t;
                        }
                        b.put_cf(self.cf(keys::CF_OBJECTS), &okey, rec.encode());
                        self.write(b)?;
                        Outcome::Object(Some(rec))
                    }
                    _ => Outcome::Object(None),
                }
            }
            C::UpdateParts {
                bucket,
                key,
                version,
                parts,
            } => {
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_key(&bucket, &key);
                let okey = keys::object(&bucket, &key);
                // The heal entry stays: `DropHeal` removes it once nothing under the key is
                // degraded.
                let current = self.get_object_at(keys::CF_OBJECTS, &okey)?;
                let updated = match current {
                    Some(mut rec) if rec.version == version => {
                        self.forget_heal_intents_in(&mut b, &parts);
                        rec.parts = parts;
                        b.put_cf(self.cf(keys::CF_OBJECTS), &okey, rec.encode());
                        true
                    }
                    _ => false,
                };
                self.write(b)?;
                Outcome::Done(updated)
            }
            C::CreateUpload {
                bucket,
                key,
                id,
                record,
            } => {
                let _b = self.bucket_content(&bucket);
                self.require_bucket(&bucket)?;
                b.put_cf(
                    self.cf(keys::CF_UPLOADS),
                    keys::upload(&bucket, &key, &id),
                    encode(&record),
                );
                self.write(b)?;
                Outcome::Unit
            }
            C::CommitPart {
                bucket,
                key,
                id,
                number,
                part,
                layout,
                now_ms,
            } => {
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_key(&bucket, &key);
                let up = self.upload_in_progress(&bucket, &key, &id)?;
                self.require_intent(&part.info.version)?;
                let pkey = keys::part(&id, number);
                if let Some(old) = self.get::<UploadPartRecord>(keys::CF_PARTS, &pkey)? {
                    let gc = GcRecord {
                        parts: vec![GcPart::of(&old.info, up.packages_per_stripe)],
                    };
                    self.queue_gc(&mut b, gc, now_ms);
                }
                b.put_cf(self.cf(keys::CF_PARTS), &pkey, encode(&part));
                b.put_cf(
                    self.cf(keys::CF_LAYOUTS),
                    keys::version(&part.info.version),
                    encode(&layout),
                );
                b.delete_cf(self.cf(keys::CF_INTENTS), keys::version(&part.info.version));
                self.write(b)?;
                Outcome::Unit
            }
            C::CompleteUpload {
                bucket,
                key,
                id,
                numbers,
                record,
                condition,
                now_ms,
            } => {
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_key(&bucket, &key);
                let owner = self.require_bucket(&bucket)?.tenant;
                condition.check_owner(&owner)?;
                let mut up = self.upload_in_progress(&bucket, &key, &id)?;
                let uploaded = self.all_parts(&id)?;
                if numbers.len() != record.parts.len() {
                    return Err(MetaError::PartChanged);
                }
                for (n, p) in numbers.iter().zip(&record.parts) {
                    let current = uploaded.iter().find(|(m, _)| m == n);
                    if current.is_none_or(|(_, c)| c.info.version != p.version) {
                        return Err(MetaError::PartChanged);
                    }
                }
                let current = self.get_object(&bucket, &key)?;
                condition.check(current.as_ref())?;
                let (record, _q) = self.commit_version_in(&mut b, &owner, &bucket, &key, record, current, now_ms)?;
                let used: std::collections::HashSet<VersionId> = record.parts.iter().map(|p| p.version).collect();
                let unused: Vec<GcPart> = uploaded
                    .iter()
                    .filter(|(_, p)| !used.contains(&p.info.version))
                    .map(|(_, p)| GcPart::of(&p.info, up.packages_per_stripe))
                    .collect();
                self.queue_gc(&mut b, GcRecord { parts: unused }, now_ms);
                self.delete_parts_in(&mut b, &id);
                up.completed = Some((record.version, record.etag.clone()));
                up.sealed.clear();
                b.put_cf(self.cf(keys::CF_UPLOADS), keys::upload(&bucket, &key, &id), encode(&up));
                self.write(b)?;
                Outcome::Object(Some(record))
            }
            C::AbortUpload {
                bucket,
                key,
                id,
                now_ms,
            } => {
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_key(&bucket, &key);
                let Some(up) = self.get_upload(&bucket, &key, &id)? else {
                    return Ok(Outcome::Done(false));
                };
                if up.completed.is_none() {
                    let parts = self
                        .all_parts(&id)?
                        .iter()
                        .map(|(_, p)| GcPart::of(&p.info, up.packages_per_stripe))
                        .collect();
                    self.queue_gc(&mut b, GcRecord { parts }, now_ms);
                    self.delete_parts_in(&mut b, &id);
                }
                b.delete_cf(self.cf(keys::CF_UPLOADS), keys::upload(&bucket, &key, &id));
                self.write(b)?;
                Outcome::Done(up.completed.is_none())
            }
            C::GcDone { raw_key, versions } => {
                b.delete_cf(self.cf(keys::CF_GC), raw_key);
                for v in &versions {
                    b.delete_cf(self.cf(keys::CF_LAYOUTS), keys::version(v));
                }
                // Not synced: losing it only makes the GC delete the (missing) shards again.
                self.db.write(b)?;
                Outcome::Unit
            }
            C::DropHeal { raw_key } => {
                // Only if nothing under the key is degraded now: a degraded write or an
                // overwrite may have come since the heal pass looked.
                let zero = raw_key.iter().position(|c| *c == 0).unwrap_or(raw_key.len());
                let bucket = String::from_utf8_lossy(&raw_key[..zero]).into_owned();
                let key = raw_key.get(zero + 1..).unwrap_or_default().to_vec();
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_key(&bucket, &key);
                let degraded = self.get_object(&bucket, &key)?.is_some_and(|r| r.is_degraded())
                    || self
                        .noncurrent_versions(&bucket, &key)?
                        .iter()
                        .any(ObjectRecord::is_degraded);
                if degraded {
                    return Ok(Outcome::Done(false));
                }
                b.delete_cf(self.cf(keys::CF_HEAL), raw_key);
                self.db.write(b)?;
                Outcome::Done(true)
            }
            C::UpdateVersionParts {
                bucket,
                key,
                seq,
                version,
                parts,
            } => {
                let _b = self.bucket_content(&bucket);
                let _k = self.lock_key(&bucket, &key);
                let raw = keys::object_version(&bucket, &key, seq);
                let updated = match self.get_object_at(keys::CF_VERSIONS, &raw)? {
                    Some(mut rec) if rec.version == version => {
                        self.forget_heal_intents_in(&mut b, &parts);
                        rec.parts = parts;
                        b.put_cf(self.cf(keys::CF_VERSIONS), &raw, rec.encode());
                        true
                    }
                    _ => false,
                };
                self.write(b)?;
                Outcome::Done(updated)
            }
            C::Iam(c) => self.apply_iam(c, stamp)?,
            C::ForgetAuditNotes { origin, ids } => {
                self.forget_audit_notes_in(&mut b, &origin, &ids);
                self.write(b)?;
                Outcome::Unit
            }
            C::Noted { .. } => return Err(MetaError::InvalidRequest("a note inside a note".into())),
        };
        Ok(outcome)
    }

    /// A batch for one command, starting with the replica's log position and the request's
    /// audit note, if any.
    pub(crate) fn batch(&self, stamp: Stamp<'_>) -> WriteBatch {
        let mut b = WriteBatch::default();
        if let Some(a) = stamp.applied {
            b.put_cf(self.cf(keys::CF_RAFT_STATE), keys::RAFT_APPLIED, a);
        }
        if let Some(note) = stamp.note {
            self.note_in(&mut b, note);
        }
        b
    }

    pub(crate) fn write(&self, b: WriteBatch) -> Result<(), MetaError> {
        let mut w = WriteOptions::default();
        w.set_sync(self.sync_applies.load(std::sync::atomic::Ordering::Acquire));
        self.db.write_opt(b, &w)?;
        Ok(())
    }

    /// A write commits only while its intent is there: an abort (its writer's, after an
    /// answer that never came, or an expiry) removes the intent and queues the shards for
    /// GC, and a commit arriving after it must not make those shards current. Abort and
    /// commit exclude each other here, whatever order they reach the log in.
    fn require_intent(&self, version: &VersionId) -> Result<(), MetaError> {
        match self
            .db
            .get_pinned_cf(self.cf(keys::CF_INTENTS), keys::version(version))?
        {
            Some(_) => Ok(()),
            None => Err(MetaError::Unavailable(
                "the write was aborted before it could commit; retry it".into(),
            )),
        }
    }

    /// What a commit of a new version of `key` re-checks under the bucket's and the key's
    /// locks (the caller holds them): the bucket is there and still the writer's tenant's, and
    /// the write's condition holds on the current object. Returns the owner and that object.
    fn check_write(
        &self,
        bucket: &str,
        key: &[u8],
        condition: &WriteCondition,
    ) -> Result<(String, Option<ObjectRecord>), MetaError> {
        let owner = self.require_bucket(bucket)?.tenant;
        condition.check_owner(&owner)?;
        let current = self.get_object(bucket, key)?;
        condition.check(current.as_ref())?;
        Ok((owner, current))
    }

    fn require_bucket(&self, bucket: &str) -> Result<crate::BucketRecord, MetaError> {
        self.get_bucket(bucket)?.ok_or(MetaError::NoSuchBucket)
    }

    fn upload_in_progress(&self, bucket: &str, key: &[u8], id: &[u8; 16]) -> Result<UploadRecord, MetaError> {
        match self.get_upload(bucket, key, id)? {
            Some(u) if u.completed.is_none() => Ok(u),
            _ => Err(MetaError::NoSuchUpload),
        }
    }

    /// Adds "object := rec" to a batch, with a heal entry if it is degraded. In a bucket
    /// without versions, a healthy object also clears the key's entry (nothing else under the
    /// key can be degraded); in a versioned one the entry may stand for a noncurrent version,
    /// and `DropHeal` clears it. Caller holds the key lock.
    fn put_object_in(&self, b: &mut WriteBatch, bucket: &str, key: &[u8], rec: &ObjectRecord, versioned: bool) {
        let okey = keys::object(bucket, key);
        b.put_cf(self.cf(keys::CF_OBJECTS), &okey, rec.encode());
        if rec.is_degraded() {
            b.put_cf(self.cf(keys::CF_HEAL), &okey, []);
        } else if !versioned {
            b.delete_cf(self.cf(keys::CF_HEAL), &okey);
        }
    }

    /// Shards a heal placed on nodes outside a part's list were covered by an intent until
    /// recorded: recording them ends it.
    fn forget_heal_intents_in(&self, b: &mut WriteBatch, parts: &[PartInfo]) {
        for p in parts {
            b.delete_cf(self.cf(keys::CF_INTENTS), keys::version(&p.version));
        }
    }

    /// Queues shards for removal. Their layouts stay until the GC is done with them: a reader
    /// holding a lease may still need them.
    fn queue_gc(&self, b: &mut WriteBatch, gc: GcRecord, now_ms: u64) {
        let Some(first) = gc.parts.first().map(|p| p.version) else {
            return;
        };
        b.put_cf(self.cf(keys::CF_GC), keys::gc(now_ms, &first), encode(&gc));
    }

    fn delete_parts_in(&self, b: &mut WriteBatch, id: &[u8; 16]) {
        match keys::prefix_successor(id) {
            Some(end) => b.delete_range_cf(self.cf(keys::CF_PARTS), keys::part(id, 0), end),
            None => b.delete_range_cf(self.cf(keys::CF_PARTS), keys::part(id, 0), vec![0xFF; 21]),
        }
    }

    fn delete_bucket_in(&self, b: &mut WriteBatch, name: &str) -> Result<(), MetaError> {
        if self.get_bucket(name)?.is_none() {
            return Err(MetaError::NoSuchBucket);
        }
        let start = keys::object_prefix(name, b"");
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_OBJECTS));
        it.seek(&start);
        if it.valid() && it.key().is_some_and(|k| k.starts_with(&start)) {
            return Err(MetaError::BucketNotEmpty);
        }
        it.status()?;
        // Noncurrent versions and delete markers keep it too (as in S3).
        if self.has_versions(name)? {
            return Err(MetaError::BucketNotEmpty);
        }
        // Uploads in progress keep the bucket; markers of completed ones go with it.
        let iter = self.db.iterator_cf(
            self.cf(keys::CF_UPLOADS),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&start) {
                break;
            }
            if decode::<UploadRecord>(&v)?.completed.is_none() {
                return Err(MetaError::BucketNotEmpty);
            }
            b.delete_cf(self.cf(keys::CF_UPLOADS), k);
        }
        // Its sub-resources go with it: a bucket created again under the name starts bare.
        let configs = keys::bucket_config(name, "");
        if let Some(end) = keys::prefix_successor(&configs) {
            b.delete_range_cf(self.cf(keys::CF_BUCKET_CONFIG), configs, end);
        }
        b.delete_cf(self.cf(keys::CF_BUCKETS), keys::bucket(name));
        b.delete_cf(self.cf(keys::CF_USAGE), keys::usage_bucket(name));
        Ok(())
    }
}

impl MetaStore {
    fn create_bucket_in(
        &self,
        mut b: WriteBatch,
        name: &str,
        record: &BucketRecord,
        versioning: Option<VersioningConfig>,
    ) -> Result<Outcome, MetaError> {
        // The tenant cannot be deleted meanwhile (its deletion takes the same lock).
        let _t = self.iam_guard();
        let _g = self.bucket_itself(name);
        if let Some(existing) = self.get_bucket(name)? {
            return Err(match existing.tenant == record.tenant {
                true => MetaError::BucketExists,
                false => MetaError::BucketTaken,
            });
        }
        if self.get_tenant(&record.tenant)?.is_none() {
            return Err(MetaError::NoSuchEntity(format!("tenant '{}'", record.tenant)));
        }
        b.put_cf(self.cf(keys::CF_BUCKETS), keys::bucket(name), record.encode());
        if let Some(v) = versioning {
            b.put_cf(
                self.cf(keys::CF_BUCKET_CONFIG),
                keys::bucket_config(name, crate::BucketConfigKind::Versioning.key()),
                encode(&v),
            );
        }
        self.write(b)?;
        self.bump_generation();
        Ok(Outcome::Unit)
    }

    /// Makes `rec` the key's newest version, as the bucket's versioning says: replacing the
    /// current object (unversioned), keeping it as noncurrent (enabled), or replacing only the
    /// `null` version (suspended). Sets the version's seq, id kind and default retention;
    /// accounts for the growth (quota checked: the guard is held until the batch is written).
    #[allow(clippy::too_many_arguments)]
    fn commit_version_in(
        &self,
        b: &mut WriteBatch,
        owner: &str,
        bucket: &str,
        key: &[u8],
        mut rec: ObjectRecord,
        current: Option<ObjectRecord>,
        now_ms: u64,
    ) -> Result<(ObjectRecord, Option<std::sync::MutexGuard<'_, ()>>), MetaError> {
        let versioning = self.versioning(bucket)?;
        let lock_enabled = versioning.is_some_and(|v| v.object_lock);
        let vs = &mut rec.version_state;
        if (vs.retention.is_some() || vs.legal_hold) && !lock_enabled {
            return Err(no_lock_configuration());
        }
        if let (None, Some(d)) = (vs.retention, versioning.and_then(|v| v.default_retention)) {
            vs.retention = Some(Retention {
                mode: d.mode,
                until_ms: d.until(now_ms),
            });
        }
        let latest = match (&current, &versioning) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(_)) => self.newest_noncurrent(bucket, key)?,
            (None, None) => None,
        };
        vs.seq = next_seq(now_ms, latest.as_ref());
        vs.delete_marker = false;
        let status = versioning.map(|v| v.status);
        vs.versioned = status == Some(VersioningStatus::Enabled);
        // The version this write removes for good, if any.
        let mut removed = None;
        match (status, current) {
            (None, current) => removed = current,
            (Some(VersioningStatus::Enabled), Some(c)) => self.demote_in(b, bucket, key, &c),
            (Some(VersioningStatus::Enabled), None) => {}
            (Some(VersioningStatus::Suspended), current) => {
                match current {
                    Some(c) if !c.version_state.versioned => removed = Some(c),
                    Some(c) => self.demote_in(b, bucket, key, &c),
                    None => {}
                }
                if removed.is_none() {
                    if let Some(null) = self.noncurrent_null(bucket, key)? {
                        self.remove_noncurrent_in(b, bucket, key, &null);
                        removed = Some(null);
                    }
                }
            }
        }
        let (mut bytes, mut objects) = (rec.size as i64, 1i64);
        if let Some(old) = &removed {
            if let Some(why) = old.version_state.protection(now_ms, false) {
                return Err(MetaError::Locked(why.into()));
            }
            bytes = bytes.saturating_sub(old.size as i64);
            objects -= 1;
        }
        let guard = self.account(b, owner, bucket, bytes, objects)?;
        if let Some(old) = removed.filter(|o| !o.is_delete_marker()) {
            self.queue_gc(b, old.gc_record(), now_ms);
        }
        self.put_object_in(b, bucket, key, &rec, versioning.is_some());
        Ok((rec, guard))
    }

    /// One target of a `DeleteVersions`; `tally` sums what it adds to the bucket's usage.
    #[allow(clippy::too_many_arguments)]
    fn delete_target_in(
        &self,
        b: &mut WriteBatch,
        bucket: &str,
        versioning: Option<&VersioningConfig>,
        t: &DeleteTarget,
        bypass_governance: bool,
        now_ms: u64,
        tally: &mut (i64, i64),
    ) -> Result<DeleteResult, MetaError> {
        let key = &t.key[..];
        let okey = keys::object(bucket, key);
        let current = self.get_object(bucket, key)?;
        let mut result = DeleteResult::default();
        let Some(sel) = t.version else {
            // Deleting the key: gone for good (unversioned), or hidden under a marker.
            let latest = match &current {
                Some(c) => Some(c.clone()),
                None if versioning.is_some() => self.newest_noncurrent(bucket, key)?,
                None => None,
            };
            if let DeleteGuard::LatestIs(seq) = t.guard {
                if latest.as_ref().map(|l| l.version_state.seq) != Some(seq) {
                    return Ok(result);
                }
            }
            let Some(status) = versioning.map(|v| v.status) else {
                if let Some(c) = current {
                    if let Some(why) = c.version_state.protection(now_ms, bypass_governance) {
                        result.refused = Some(why.into());
                        return Ok(result);
                    }
                    b.delete_cf(self.cf(keys::CF_OBJECTS), &okey);
                    b.delete_cf(self.cf(keys::CF_HEAL), &okey);
                    self.queue_gc(b, c.gc_record(), now_ms);
                    tally.0 = tally.0.saturating_sub(c.size as i64);
                    tally.1 -= 1;
                    result.removed = Some((c.version_id(), false));
                }
                return Ok(result);
            };
            let mut marker = ObjectRecord::delete_marker(t.marker_tag, now_ms);
            marker.version_state.seq = next_seq(now_ms, latest.as_ref());
            marker.version_state.versioned = status == VersioningStatus::Enabled;
            let mut removed = None;
            if let Some(c) = current {
                b.delete_cf(self.cf(keys::CF_OBJECTS), &okey);
                match status == VersioningStatus::Suspended && !c.version_state.versioned {
                    true => removed = Some(c),
                    false => self.demote_in(b, bucket, key, &c),
                }
            }
            if status == VersioningStatus::Suspended && removed.is_none() {
                if let Some(null) = self.noncurrent_null(bucket, key)? {
                    self.remove_noncurrent_in(b, bucket, key, &null);
                    removed = Some(null);
                }
            }
            if let Some(old) = removed {
                if let Some(why) = old.version_state.protection(now_ms, bypass_governance) {
                    return Err(MetaError::Locked(why.into()));
                }
                tally.0 = tally.0.saturating_sub(old.size as i64);
                tally.1 -= 1;
                if !old.is_delete_marker() {
                    self.queue_gc(b, old.gc_record(), now_ms);
                }
            }
            self.put_marker_in(b, bucket, key, &marker);
            tally.1 += 1;
            result.marker = Some(marker.version_id());
            return Ok(result);
        };
        // Removing one version for good.
        let Some((found, place)) = self.find_version(bucket, key, sel)? else {
            return Ok(result);
        };
        let allowed = match t.guard {
            DeleteGuard::None | DeleteGuard::LatestIs(_) => true,
            DeleteGuard::Noncurrent => place == Place::Noncurrent,
            DeleteGuard::LoneMarker => {
                found.is_delete_marker()
                    && current.is_none()
                    && self.newest_noncurrent(bucket, key)?.as_ref() == Some(&found)
                    && self.versions_of_key_count(bucket, key, 2)? == 1
            }
        };
        if !allowed {
            return Ok(result);
        }
        if let Some(why) = found.version_state.protection(now_ms, bypass_governance) {
            result.refused = Some(why.into());
            return Ok(result);
        }
        match place {
            Place::Current => {
                b.delete_cf(self.cf(keys::CF_OBJECTS), &okey);
                if versioning.is_none() {
                    b.delete_cf(self.cf(keys::CF_HEAL), &okey);
                }
            }
            Place::Noncurrent => self.remove_noncurrent_in(b, bucket, key, &found),
        }
        // With no current object left, the newest remaining version becomes current if it is
        // an object (a marker stays where it is: the key then reads as deleted). If the
        // version removed was not the newest, the newest is a marker and nothing moves.
        if place == Place::Current || current.is_none() {
            let removed_seq = (place == Place::Noncurrent).then_some(found.version_state.seq);
            if let Some(next) = self.newest_noncurrent_except(bucket, key, removed_seq)? {
                if !next.is_delete_marker() {
                    self.remove_noncurrent_in(b, bucket, key, &next);
                    self.put_object_in(b, bucket, key, &next, true);
                }
            }
        }
        tally.0 = tally.0.saturating_sub(found.size as i64);
        tally.1 -= 1;
        if !found.is_delete_marker() {
            self.queue_gc(b, found.gc_record(), now_ms);
        }
        result.removed = Some((found.version_id(), found.is_delete_marker()));
        Ok(result)
    }

    /// How many entries a key has in `versions`, counting up to `max`.
    fn versions_of_key_count(&self, bucket: &str, key: &[u8], max: usize) -> Result<usize, MetaError> {
        let prefix = keys::versions_of_key(bucket, key);
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_VERSIONS));
        it.seek(&prefix);
        let mut n = 0;
        while n < max && it.key().is_some_and(|k| k.starts_with(&prefix)) {
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }
}

fn no_lock_configuration() -> MetaError {
    MetaError::InvalidRequest("Bucket is missing Object Lock Configuration".into())
}

/// A retention may be set, extended, or made COMPLIANCE; shortened, removed or made
/// GOVERNANCE only while it is not in force, or (GOVERNANCE) with the bypass.
fn check_retention_change(
    old: Option<Retention>,
    new: Option<Retention>,
    now_ms: u64,
    bypass_governance: bool,
) -> Result<(), MetaError> {
    let Some(old) = old.filter(|o| o.until_ms > now_ms) else {
        return Ok(());
    };
    // Any change of mode needs the bypass (GOVERNANCE to COMPLIANCE, as S3) or is refused.
    let weaker = match new {
        None => true,
        Some(n) => n.until_ms < old.until_ms || n.mode != old.mode,
    };
    match (weaker, old.mode) {
        (false, _) => Ok(()),
        (true, crate::records::LockMode::Governance) if bypass_governance => Ok(()),
        (true, crate::records::LockMode::Governance) => Err(MetaError::Locked(
            "The retention of a version in GOVERNANCE mode can be shortened or removed only with x-amz-bypass-governance-retention".into(),
        )),
        (true, crate::records::LockMode::Compliance) => Err(MetaError::Locked(
            "The retention of a version in COMPLIANCE mode can only be extended".into(),
        )),
    }
}
