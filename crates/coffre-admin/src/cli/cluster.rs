//! The cluster plane through the admin API: status, nodes, metadata replicas, placement,
//! audit, buckets.

use super::api::*;
use super::*;
use crate::api::*;

/// The commands of the cluster plane (status, nodes, metadata replicas, placement, audit,
/// buckets), each one admin API call or a few.
pub(super) fn run(cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::Tenant(_)
        | AdminCommand::User(_)
        | AdminCommand::Key(_)
        | AdminCommand::Role(_)
        | AdminCommand::Workers(_)
        | AdminCommand::Scrub(_)
        | AdminCommand::Keys(_)
        | AdminCommand::KmsKey(_)
        | AdminCommand::VerifyCertificate { .. }
        | AdminCommand::Ca(_)
        | AdminCommand::NodeIdentity { .. } => unreachable!("dispatched by cli::run"),
        AdminCommand::Bucket(BucketCommand::Quota {
            api,
            bucket,
            bytes,
            objects,
        }) => {
            let quota = QuotaQuery {
                quota_bytes: bytes,
                quota_objects: objects,
            };
            let v = ask::<BucketsQuotaPut>(&api, bucket.clone(), quota, ())?;
            println!(
                "bucket {bucket}: quota set; it holds {} bytes, {} objects",
                v.usage.bytes, v.usage.objects
            );
        }
        AdminCommand::Meta(MetaCommand::Status { api, json }) => {
            let v = ask_at::<MetaGet>(&api, ())?;
            if json {
                print_json(&v);
            } else {
                println!("leader {}  term {}", opt(v.leader), v.term);
                for r in &v.replicas {
                    println!(
                        "{:>20}  {:<9} {:<32} commit {:<10} lag {}",
                        r.id,
                        r.state,
                        r.address,
                        opt(r.commit_index),
                        opt(r.lag)
                    );
                }
            }
        }
        AdminCommand::Meta(MetaCommand::Add { api, address }) => {
            let v = ask::<MetaReplicasCreate>(
                &api,
                (),
                AddReplicaQuery {
                    address: address.clone(),
                },
                (),
            )?;
            println!("replica {} ({address}) added", v.id);
        }
        AdminCommand::Meta(MetaCommand::Backup { api, out }) => {
            download::<MetaBackupGet>(&api, NoQuery {}, &out)?;
            println!("metadata backup written to {}", out.display());
        }
        AdminCommand::Meta(MetaCommand::Remove { api, id }) => {
            ask_at::<MetaReplicasDelete>(&api, id.to_string())?;
            println!("replica {id} removed");
        }
        AdminCommand::Nodes(NodesCommand::Add { api, address }) => {
            let v = ask::<NodesCreate>(&api, (), AddNodeQuery { address }, ())?;
            println!("node {} admitted ({}/{}/{})", v.id, v.country, v.site, v.zone);
        }
        AdminCommand::Nodes(NodesCommand::Drain { api, id, wait }) => {
            ask_at::<NodeDrain>(&api, id.clone())?;
            println!("node {id} draining: no new shards go to it, what it holds moves to the others");
            if wait {
                super::lost::wait_drained(&api, &id)?;
            }
        }
        AdminCommand::Nodes(NodesCommand::Remove { api, id, dead, wait }) => {
            let v = ask::<NodesDelete>(&api, id.clone(), RemoveNodeQuery { dead }, ())?;
            match v.left.parts {
                parts if dead && parts > 0 => println!(
                    "node {id} removed: its shards of {parts} parts ({} stripes, {} bytes) are rebuilt on the others",
                    v.left.stripes, v.left.bytes
                ),
                _ => println!("node {id} removed"),
            }
            if wait {
                super::lost::wait_rebuilt(&api, &id)?;
            }
        }
        AdminCommand::Nodes(NodesCommand::Rebalance { api, wait }) => {
            ask_at::<RebalanceCreate>(&api, ())?;
            println!("rebalance started: the nodes over their share move shards to the others");
            if wait {
                super::lost::wait_balanced(&api)?;
            }
        }
        AdminCommand::Nodes(NodesCommand::List { api }) => return run(AdminCommand::Status { api, json: false }),
        AdminCommand::Status { api, json } => {
            let v = ask_at::<StatusGet>(&api, ())?;
            if json {
                print_json(&v);
            } else {
                println!("{} of {} nodes up", v.nodes_up, v.nodes_total);
                println!(
                    "{:<16} {:<4} {:<12} {:<10} {:<5} {:>10} {:>14} {:>14}  SCRUB",
                    "NODE", "CC", "SITE", "ZONE", "STATE", "SHARDS", "USED", "FREE"
                );
                for n in &v.nodes {
                    println!(
                        "{:<16} {:<4} {:<12} {:<10} {:<5} {:>10} {:>14} {:>14}  {}",
                        n.id,
                        n.country,
                        n.site,
                        n.zone,
                        match (n.up, n.draining) {
                            (true, true) => "drain",
                            (true, false) => "up",
                            _ => "DOWN",
                        },
                        n.shards,
                        n.used_bytes,
                        n.free_bytes,
                        scrub_summary(n.scrub.as_ref())
                    );
                }
                for n in &v.lost {
                    println!(
                        "{:<16} removed (dead): {} parts, {} stripes, {} bytes left to rebuild",
                        n.node, n.parts_left, n.stripes_left, n.bytes_left
                    );
                }
            }
        }
        AdminCommand::Placement {
            api,
            bucket,
            key,
            version_id,
            proof: true,
            nonce,
            ..
        } => {
            let nonce = nonce.unwrap_or_else(|| hex::encode(coffre_types::random_bytes::<16>()));
            let query = PlacementProofQuery {
                bucket,
                key,
                version_id,
                nonce,
            };
            print_json(&ask::<PlacementProofGet>(&api, (), query, ())?);
        }
        AdminCommand::Placement {
            api,
            bucket,
            key,
            version_id,
            json,
            ..
        } => {
            let query = PlacementQuery {
                bucket: bucket.clone(),
                key: key.clone(),
                version_id,
            };
            let v = ask::<PlacementGet>(&api, (), query, ())?;
            if json {
                print_json(&v);
            } else {
                println!("{}/{}: {} bytes, scheme {}", bucket, key, v.size, v.scheme);
                if v.inline {
                    println!("inlined in its metadata record: no shards");
                }
                if !v.shards.is_empty() {
                    println!(
                        "{:<5} {:<7} {:<6} {:<16} {:<4} {:<12} {:<10} {:>9}  BLAKE3",
                        "PART", "STRIPE", "INDEX", "NODE", "CC", "SITE", "ZONE", "SIZE"
                    );
                }
                for s in &v.shards {
                    println!(
                        "{:<5} {:<7} {:<6} {:<16} {:<4} {:<12} {:<10} {:>9}  {}",
                        s.part,
                        s.stripe,
                        s.index,
                        if s.node.is_empty() { "-" } else { &s.node },
                        s.country,
                        s.site,
                        s.zone,
                        s.size,
                        s.blake3
                    );
                }
            }
        }
        AdminCommand::Audit(AuditCommand::Verify { api, from, to, json }) => {
            let report = ask::<AuditVerifyGet>(&api, (), TimeRangeQuery { from, to }, ())?;
            if !crate::audit_log::print_report(&report, json) {
                return Err("the audit chain does not verify".into());
            }
        }
        AdminCommand::Audit(AuditCommand::Export {
            api,
            tenant,
            from,
            to,
            format,
            out,
        }) => {
            if format != "jsonl" {
                return Err(format!("--format {format}: only jsonl"));
            }
            let query = ExportQuery {
                tenant: tenant.clone(),
                from,
                to,
            };
            download::<AuditExportGet>(&api, query, &out)?;
            println!("audit events of tenant {tenant} written to {}", out.display());
        }
        AdminCommand::Audit(AuditCommand::Search {
            api,
            tenant,
            bucket,
            key,
            op,
            since,
            until,
            limit,
            json,
        }) => {
            let query = AuditSearchQuery {
                tenant,
                bucket,
                key,
                op,
                since,
                until,
                limit: Some(limit as u64),
            };
            let v = ask::<AuditSearchGet>(&api, (), query, ())?;
            if json {
                print_json(&v);
            } else {
                for e in &v.events {
                    println!(
                        "{} {} {} {} {}/{} {}{}",
                        e.time,
                        e.principal,
                        e.op,
                        e.status,
                        e.bucket,
                        e.key,
                        e.source.as_deref().unwrap_or(""),
                        e.error.as_ref().map(|c| format!(" {c}")).unwrap_or_default()
                    );
                }
            }
        }
        AdminCommand::Audit(AuditCommand::Residency {
            api,
            bucket,
            proof: true,
            sample,
            nonce,
            ..
        }) => {
            let nonce = nonce.unwrap_or_else(|| hex::encode(coffre_types::random_bytes::<16>()));
            let query = BucketProofQuery { bucket, sample, nonce };
            print_json(&ask::<AuditResidencyProofGet>(&api, (), query, ())?);
        }
        AdminCommand::Audit(AuditCommand::Residency { api, bucket, json, .. }) => {
            let v = ask::<AuditResidencyGet>(&api, (), BucketQuery { bucket: bucket.clone() }, ())?;
            if json {
                print_json(&v);
            } else {
                println!(
                    "bucket {}: {} objects, {} shards, {} on compliant nodes ({:?}), {} not; {} awaiting healing",
                    bucket,
                    v.objects,
                    v.shards,
                    v.compliant_shards,
                    v.countries,
                    v.non_compliant.len(),
                    v.degraded_shards
                );
                for b in &v.non_compliant {
                    println!(
                        "  NOT COMPLIANT: {:?} part {} shard {} on {:?} ({:?})",
                        b.key, b.part, b.index, b.node, b.country
                    );
                }
            }
        }
        AdminCommand::Bucket(BucketCommand::Policy {
            api,
            bucket,
            countries,
            failure_domain,
            scheme,
        }) => {
            let query = BucketPolicyQuery {
                countries,
                failure_domain,
                scheme,
            };
            let v = ask::<BucketsPolicyPut>(&api, bucket.clone(), query, ())?;
            println!(
                "bucket {}: countries {:?}, failure domain {}, scheme {}",
                bucket, v.countries, v.failure_domain, v.scheme
            );
        }
    }
    Ok(())
}

/// A number, or `null` when absent (as the JSON said it).
fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "null".to_string(), |n| n.to_string())
}

/// A node's scrub in a few words: the pass under way, or when the last ended; findings.
fn scrub_summary(s: Option<&ScrubState>) -> String {
    let Some(s) = s else {
        return "-".into();
    };
    let (done, held) = (s.pass_shards, s.shards);
    let mut out = if s.running {
        format!("pass at {:.1}%", done.min(held) as f64 * 100.0 / held.max(1) as f64)
    } else {
        match s.last_pass_done_ms {
            Some(ms) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                format!("last pass {} h ago", now.saturating_sub(ms) / 3_600_000)
            }
            None => "no pass yet".into(),
        }
    };
    if s.corrupt_found > 0 {
        out.push_str(&format!(", {} corrupt found", s.corrupt_found));
    }
    out
}
