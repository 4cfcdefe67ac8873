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

mod buckets;
mod objects;
mod uploads;
mod writes;
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
    CommitObject(CommitObject),
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
    CommitPart(CommitPart),
    /// Completes an upload: `record.parts[i]` must still be part `numbers[i]` (a part
    /// re-uploaded meanwhile fails the command with `PartChanged`); the object becomes
    /// current, unused parts go to GC, the upload is marked completed (for retries).
    CompleteUpload(CompleteUpload),
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
    UpdateVersion(UpdateVersion),
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
    CommitInlineObject(CommitInlineObject),
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
    /// Shard `index` of part `part` (of the current object or a noncurrent version under the
    /// key) was found corrupt or missing (by a scrub): the part lists it as degraded and the
    /// key gets a heal entry. `Outcome::Done` says whether a version holding the part was
    /// found (a part deleted or replaced meanwhile needs nothing).
    MarkDegraded {
        bucket: String,
        key: Vec<u8>,
        part: VersionId,
        index: u8,
    },
    /// The shards node `node` holds of part `part` must go elsewhere (the node is lost for
    /// good, or draining): they are marked degraded where the part is (a version, or an
    /// upload's part), which queues them for repair onto other nodes; an entry whose part
    /// nothing holds there any more leaves the index. `Outcome::Done` says whether something
    /// was marked.
    EvacuatePart {
        node: String,
        part: VersionId,
    },
    /// Shards the repair rebuilt and checked: each is now whole on its node. Applied to the
    /// version as it is when committed, not as the repair read it: a shard marked degraded
    /// meanwhile (a scrub's finding, a lost node) stays marked. For the current object
    /// (`seq: None`) or the noncurrent version at `seq`, if it still is `version`.
    /// `Outcome::Done` says whether it was. (Replaces `UpdateParts`, which wrote back the
    /// repair's whole view and so could drop such a mark; kept for logs written before.)
    HealShards {
        bucket: String,
        key: Vec<u8>,
        seq: Option<u64>,
        version: VersionId,
        healed: Vec<HealedShard>,
    },
}

/// One shard a repair rebuilt: shard `index` of part `part` is now on `node`, whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealedShard {
    pub part: VersionId,
    pub index: u8,
    pub node: String,
}

/// Makes a written version current: the record and its parts' layouts in, their intents
/// out, the replaced version queued for GC. Fails if the bucket is gone, the condition
/// does not hold, or the write was aborted (an intent of `layouts` is gone).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitObject {
    pub bucket: String,
    pub key: Vec<u8>,
    pub record: ObjectRecord,
    pub layouts: Vec<(VersionId, LayoutRecord)>,
    pub condition: WriteCondition,
    pub now_ms: u64,
}

/// Records an uploaded part, replacing (and collecting) one with the same number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitPart {
    pub bucket: String,
    pub key: Vec<u8>,
    pub id: [u8; 16],
    pub number: u32,
    pub part: UploadPartRecord,
    pub layout: LayoutRecord,
    pub now_ms: u64,
}

/// Completes an upload: `record.parts[i]` must still be part `numbers[i]` (a part
/// re-uploaded meanwhile fails the command with `PartChanged`); the object becomes
/// current, unused parts go to GC, the upload is marked completed (for retries).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompleteUpload {
    pub bucket: String,
    pub key: Vec<u8>,
    pub id: [u8; 16],
    pub numbers: Vec<u32>,
    pub record: ObjectRecord,
    pub condition: WriteCondition,
    pub now_ms: u64,
}

/// Changes one version (`None`: the current object): its sealed attributes, retention or
/// legal hold. `expect`: the part version it must still have. `Outcome::Object`: the
/// version as changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateVersion {
    pub bucket: String,
    pub key: Vec<u8>,
    pub sel: Option<VersionSel>,
    pub expect: Option<VersionId>,
    pub change: VersionChange,
    pub bypass_governance: bool,
    pub now_ms: u64,
}

/// Makes a small object current with its data inlined in the metadata (`packages`: its
/// one part's sealed AEAD packages, stored under the part's version in `layouts`). As
/// `CommitObject`, but no shard was written, so no intent is consumed. (Last of the enum:
/// commands already in a replica's log keep their encoding.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitInlineObject {
    pub bucket: String,
    pub key: Vec<u8>,
    pub record: ObjectRecord,
    pub packages: Vec<u8>,
    pub condition: WriteCondition,
    pub now_ms: u64,
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
                | MetaCommand::MarkDegraded { .. }
                | MetaCommand::EvacuatePart { .. }
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

impl MetaCommand {
    /// The command's name (traces, logs).
    pub fn name(&self) -> &'static str {
        match self {
            MetaCommand::CreateBucket { .. } => "CreateBucket",
            MetaCommand::DeleteBucket { .. } => "DeleteBucket",
            MetaCommand::UpdateBucket { .. } => "UpdateBucket",
            MetaCommand::PutBucketConfig { .. } => "PutBucketConfig",
            MetaCommand::PutNode { .. } => "PutNode",
            MetaCommand::DeleteNode { .. } => "DeleteNode",
            MetaCommand::BeginWrite { .. } => "BeginWrite",
            MetaCommand::AbortWrite { .. } => "AbortWrite",
            MetaCommand::CommitObject(..) => "CommitObject",
            MetaCommand::DeleteObjects { .. } => "DeleteObjects",
            MetaCommand::UpdateSealed { .. } => "UpdateSealed",
            MetaCommand::UpdateParts { .. } => "UpdateParts",
            MetaCommand::CreateUpload { .. } => "CreateUpload",
            MetaCommand::CommitPart(..) => "CommitPart",
            MetaCommand::CompleteUpload(..) => "CompleteUpload",
            MetaCommand::AbortUpload { .. } => "AbortUpload",
            MetaCommand::GcDone { .. } => "GcDone",
            MetaCommand::DropHeal { .. } => "DropHeal",
            MetaCommand::Iam(..) => "Iam",
            MetaCommand::CreateVersionedBucket { .. } => "CreateVersionedBucket",
            MetaCommand::ConfigureVersioning { .. } => "ConfigureVersioning",
            MetaCommand::DeleteVersions { .. } => "DeleteVersions",
            MetaCommand::UpdateVersion(..) => "UpdateVersion",
            MetaCommand::UpdateVersionParts { .. } => "UpdateVersionParts",
            MetaCommand::CommitInlineObject(..) => "CommitInlineObject",
            MetaCommand::Noted { .. } => "Noted",
            MetaCommand::ForgetAuditNotes { .. } => "ForgetAuditNotes",
            MetaCommand::MarkDegraded { .. } => "MarkDegraded",
            MetaCommand::EvacuatePart { .. } => "EvacuatePart",
            MetaCommand::HealShards { .. } => "HealShards",
        }
    }
}

impl MetaStore {
    /// Applies one command: through the replicated log when the store is a replica (the
    /// command is applied by every replica's state machine, and this returns its outcome
    /// here once committed), directly otherwise.
    pub fn apply(&self, cmd: MetaCommand) -> Result<Outcome, MetaError> {
        let _span = tracing::info_span!(target: "coffre::trace", "meta.command", command = cmd.name()).entered();
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
        let b = self.batch(stamp);
        let outcome = match cmd {
            C::CreateBucket { name, record } => self.create_bucket_in(b, &name, &record, None)?,
            C::CreateVersionedBucket {
                name,
                record,
                versioning,
            } => self.create_bucket_in(b, &name, &record, Some(versioning))?,
            C::ConfigureVersioning { bucket, change } => self.apply_configure_versioning(b, bucket, change)?,
            C::DeleteVersions {
                bucket,
                targets,
                bypass_governance,
                now_ms,
            } => self.apply_delete_versions(b, bucket, targets, bypass_governance, now_ms)?,
            C::UpdateVersion(cmd) => self.apply_update_version(b, cmd)?,
            C::DeleteBucket { name } => self.apply_delete_bucket(b, name)?,
            C::UpdateBucket { name, record } => self.apply_update_bucket(b, name, record)?,
            C::PutBucketConfig { bucket, kind, value } => self.apply_put_bucket_config(b, bucket, kind, value)?,
            C::PutNode { address, record } => self.apply_put_node(b, address, record)?,
            C::DeleteNode { address } => self.apply_delete_node(b, address)?,
            C::BeginWrite { version, nodes, now_ms } => self.apply_begin_write(b, version, nodes, now_ms)?,
            C::AbortWrite {
                version,
                nodes,
                stripes,
                now_ms,
            } => self.apply_abort_write(b, version, nodes, stripes, now_ms)?,
            C::CommitObject(cmd) => self.apply_commit_object(b, cmd)?,
            C::CommitInlineObject(cmd) => self.apply_commit_inline_object(b, cmd)?,
            C::DeleteObjects {
                bucket,
                keys: names,
                now_ms,
            } => self.apply_delete_objects(b, bucket, names, now_ms)?,
            C::UpdateSealed {
                bucket,
                key,
                version,
                sealed,
                touch_ms,
            } => self.apply_update_sealed(b, bucket, key, version, sealed, touch_ms)?,
            C::UpdateParts {
                bucket,
                key,
                version,
                parts,
            } => self.apply_update_parts(b, bucket, key, version, parts)?,
            C::CreateUpload {
                bucket,
                key,
                id,
                record,
            } => self.apply_create_upload(b, bucket, key, id, record)?,
            C::CommitPart(cmd) => self.apply_commit_part(b, cmd)?,
            C::CompleteUpload(cmd) => self.apply_complete_upload(b, cmd)?,
            C::AbortUpload {
                bucket,
                key,
                id,
                now_ms,
            } => self.apply_abort_upload(b, bucket, key, id, now_ms)?,
            C::GcDone { raw_key, versions } => self.apply_gc_done(b, raw_key, versions)?,
            C::DropHeal { raw_key } => self.apply_drop_heal(b, raw_key)?,
            C::UpdateVersionParts {
                bucket,
                key,
                seq,
                version,
                parts,
            } => self.apply_update_version_parts(b, bucket, key, seq, version, parts)?,
            C::Iam(c) => self.apply_iam(c, stamp)?,
            C::ForgetAuditNotes { origin, ids } => self.apply_forget_audit_notes(b, origin, ids)?,
            C::MarkDegraded {
                bucket,
                key,
                part,
                index,
            } => self.apply_mark_degraded(b, bucket, key, part, index)?,
            C::EvacuatePart { node, part } => self.apply_evacuate_part(b, node, part)?,
            C::HealShards {
                bucket,
                key,
                seq,
                version,
                healed,
            } => self.apply_heal_shards(b, bucket, key, seq, version, healed)?,
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
}
