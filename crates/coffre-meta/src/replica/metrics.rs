//! The replica set as Prometheus sees it (docs/metrics.md): this replica's role, term and
//! indexes, each replica's matched index and lag (the leader's view), the last snapshot.

use super::Replica;
use coffre_types::metrics::{gauge_header, sample};

impl Replica {
    /// The metrics of this replica, from openraft's in-memory view and the snapshot directory.
    pub fn metrics_text(&self) -> String {
        let m = self.raft.metrics().borrow().clone();
        let status = self.status();
        let mut out = String::new();
        gauge_header(
            &mut out,
            "coffre_meta_raft_state",
            "1 for this replica's role (leader, follower, candidate, learner).",
        );
        for state in ["leader", "follower", "candidate", "learner"] {
            sample(
                &mut out,
                "coffre_meta_raft_state",
                &[("state", state)],
                u8::from(status.state == state),
            );
        }
        gauge_header(
            &mut out,
            "coffre_meta_raft_leader_known",
            "1 when this replica knows a leader.",
        );
        sample(
            &mut out,
            "coffre_meta_raft_leader_known",
            &[],
            u8::from(m.current_leader.is_some()),
        );
        gauge_header(&mut out, "coffre_meta_raft_term", "The current Raft term.");
        sample(&mut out, "coffre_meta_raft_term", &[], m.current_term);
        gauge_header(
            &mut out,
            "coffre_meta_raft_last_log_index",
            "The last log index this replica holds.",
        );
        sample(
            &mut out,
            "coffre_meta_raft_last_log_index",
            &[],
            m.last_log_index.unwrap_or(0),
        );
        gauge_header(
            &mut out,
            "coffre_meta_raft_applied_index",
            "The last log index this replica applied.",
        );
        sample(
            &mut out,
            "coffre_meta_raft_applied_index",
            &[],
            m.last_applied.map_or(0, |l| l.index),
        );
        gauge_header(
            &mut out,
            "coffre_meta_raft_voters",
            "Voting replicas in the membership.",
        );
        sample(
            &mut out,
            "coffre_meta_raft_voters",
            &[],
            m.membership_config.membership().voter_ids().count(),
        );
        // The leader's view of every replica: what it holds, how far behind.
        if m.replication.is_some() {
            gauge_header(
                &mut out,
                "coffre_meta_raft_replica_matched_index",
                "The last log index a replica is known to hold (on the leader).",
            );
            for r in &status.replicas {
                let id = r.id.to_string();
                sample(
                    &mut out,
                    "coffre_meta_raft_replica_matched_index",
                    &[("replica", &id)],
                    r.commit_index.unwrap_or(0),
                );
            }
            gauge_header(
                &mut out,
                "coffre_meta_raft_replica_lag",
                "Log entries a replica is behind the leader's log (on the leader).",
            );
            for r in &status.replicas {
                let id = r.id.to_string();
                sample(
                    &mut out,
                    "coffre_meta_raft_replica_lag",
                    &[("replica", &id)],
                    r.lag.unwrap_or(0),
                );
            }
        }
        gauge_header(
            &mut out,
            "coffre_meta_raft_snapshot_index",
            "The log index the last snapshot covers.",
        );
        sample(
            &mut out,
            "coffre_meta_raft_snapshot_index",
            &[],
            m.snapshot.map_or(0, |l| l.index),
        );
        if let Some(age) = self.snapshot_age() {
            gauge_header(
                &mut out,
                "coffre_meta_raft_snapshot_age_seconds",
                "Seconds since the last snapshot was written.",
            );
            sample(&mut out, "coffre_meta_raft_snapshot_age_seconds", &[], age.as_secs());
        }
        out
    }

    /// Since the newest snapshot file was written (none: no snapshot yet).
    fn snapshot_age(&self) -> Option<std::time::Duration> {
        std::fs::read_dir(&self.config.snapshot_dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("snap-") && name.ends_with(".snap")
            })
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .max()
            .and_then(|t| t.elapsed().ok())
    }
}
