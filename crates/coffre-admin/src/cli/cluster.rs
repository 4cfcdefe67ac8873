//! The cluster plane through the admin API: status, nodes, metadata replicas, placement,
//! audit, buckets.

use super::api::*;
use super::*;

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
        | AdminCommand::VerifyCertificate { .. }
        | AdminCommand::Ca(_)
        | AdminCommand::NodeIdentity { .. } => unreachable!("dispatched by cli::run"),
        AdminCommand::Bucket(BucketCommand::Quota {
            api,
            bucket,
            bytes,
            objects,
        }) => {
            let v = call(
                &api,
                "PUT",
                &format!("/v1/buckets/{}/quota?{}", enc(&bucket), quota_query(bytes, objects)),
            )?;
            println!(
                "bucket {bucket}: quota set; it holds {} bytes, {} objects",
                v["usage"]["bytes"], v["usage"]["objects"]
            );
            return Ok(());
        }
        AdminCommand::Meta(MetaCommand::Status { api, json }) => {
            let v = call(&api, "GET", "/v1/meta")?;
            if json {
                print_json(&v);
            } else {
                println!("leader {}  term {}", v["leader"], v["term"]);
                for r in v["replicas"].as_array().into_iter().flatten() {
                    println!(
                        "{:>20}  {:<9} {:<32} commit {:<10} lag {}",
                        r["id"],
                        r["state"].as_str().unwrap_or(""),
                        r["address"].as_str().unwrap_or(""),
                        r["commit_index"],
                        r["lag"]
                    );
                }
            }
        }
        AdminCommand::Meta(MetaCommand::Add { api, address }) => {
            let v = call(&api, "POST", &format!("/v1/meta/replicas?address={}", enc(&address)))?;
            println!("replica {} ({address}) added", v["id"]);
        }
        AdminCommand::Meta(MetaCommand::Backup { api, out }) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let (status, answer) = rt.block_on(crate::client::download(
                &api.endpoint,
                &api.token,
                "/v1/meta/backup",
                &out,
            ))?;
            if status != 200 {
                return Err(format!("the admin API answered {status}: {answer}"));
            }
            println!("metadata backup written to {}", out.display());
        }
        AdminCommand::Meta(MetaCommand::Remove { api, id }) => {
            call(&api, "DELETE", &format!("/v1/meta/replicas/{id}"))?;
            println!("replica {id} removed");
        }
        AdminCommand::Nodes(NodesCommand::Add { api, address }) => {
            let v = call(&api, "POST", &format!("/v1/nodes?address={}", enc(&address)))?;
            println!(
                "node {} admitted ({}/{}/{})",
                v["id"].as_str().unwrap_or(""),
                v["country"].as_str().unwrap_or(""),
                v["site"].as_str().unwrap_or(""),
                v["zone"].as_str().unwrap_or("")
            );
        }
        AdminCommand::Nodes(NodesCommand::Drain { api, id, wait }) => {
            call(&api, "POST", &format!("/v1/nodes/{}/drain", enc(&id)))?;
            println!("node {id} draining: no new shards go to it, what it holds moves to the others");
            if wait {
                super::lost::wait_drained(&api, &id)?;
            }
        }
        AdminCommand::Nodes(NodesCommand::Remove { api, id, dead, wait }) => {
            let query = if dead { "?dead=true" } else { "" };
            let v = call(&api, "DELETE", &format!("/v1/nodes/{}{query}", enc(&id)))?;
            let left = &v["left"];
            match left["parts"].as_u64() {
                Some(parts) if dead && parts > 0 => println!(
                    "node {id} removed: its shards of {parts} parts ({} stripes, {} bytes) are rebuilt on the others",
                    left["stripes"], left["bytes"]
                ),
                _ => println!("node {id} removed"),
            }
            if wait {
                super::lost::wait_rebuilt(&api, &id)?;
            }
        }
        AdminCommand::Nodes(NodesCommand::Rebalance { api, wait }) => {
            call(&api, "POST", "/v1/rebalance")?;
            println!("rebalance started: the nodes over their share move shards to the others");
            if wait {
                super::lost::wait_balanced(&api)?;
            }
        }
        AdminCommand::Nodes(NodesCommand::List { api }) => return run(AdminCommand::Status { api, json: false }),
        AdminCommand::Status { api, json } => {
            let v = call(&api, "GET", "/v1/status")?;
            if json {
                print_json(&v);
            } else {
                println!("{} of {} nodes up", v["nodes_up"], v["nodes_total"]);
                println!(
                    "{:<16} {:<4} {:<12} {:<10} {:<5} {:>10} {:>14} {:>14}  SCRUB",
                    "NODE", "CC", "SITE", "ZONE", "STATE", "SHARDS", "USED", "FREE"
                );
                for n in v["nodes"].as_array().into_iter().flatten() {
                    println!(
                        "{:<16} {:<4} {:<12} {:<10} {:<5} {:>10} {:>14} {:>14}  {}",
                        n["id"].as_str().unwrap_or(""),
                        n["country"].as_str().unwrap_or(""),
                        n["site"].as_str().unwrap_or(""),
                        n["zone"].as_str().unwrap_or(""),
                        match (n["up"].as_bool(), n["draining"].as_bool()) {
                            (Some(true), Some(true)) => "drain",
                            (Some(true), _) => "up",
                            _ => "DOWN",
                        },
                        n["shards"],
                        n["used_bytes"],
                        n["free_bytes"],
                        scrub_summary(&n["scrub"])
                    );
                }
                for n in v["lost"].as_array().into_iter().flatten() {
                    println!(
                        "{:<16} removed (dead): {} parts, {} stripes, {} bytes left to rebuild",
                        n["node"].as_str().unwrap_or(""),
                        n["parts_left"],
                        n["stripes_left"],
                        n["bytes_left"]
                    );
                }
            }
        }
        AdminCommand::Placement {
            api,
            bucket,
            key,
            version_id,
            json,
        } => {
            let version = version_id
                .map(|v| format!("&version_id={}", enc(&v)))
                .unwrap_or_default();
            let v = call(
                &api,
                "GET",
                &format!("/v1/placement?bucket={}&key={}{version}", enc(&bucket), enc(&key)),
            )?;
            if json {
                print_json(&v);
            } else {
                println!(
                    "{}/{}: {} bytes, scheme {}",
                    bucket,
                    key,
                    v["size"],
                    v["scheme"].as_str().unwrap_or("")
                );
                if v["inline"].as_bool() == Some(true) {
                    println!("inlined in its metadata record: no shards");
                }
                let shards = v["shards"].as_array().filter(|s| !s.is_empty());
                if shards.is_some() {
                    println!(
                        "{:<5} {:<7} {:<6} {:<16} {:<4} {:<12} {:<10} {:>9}  BLAKE3",
                        "PART", "STRIPE", "INDEX", "NODE", "CC", "SITE", "ZONE", "SIZE"
                    );
                }
                for s in shards.into_iter().flatten() {
                    println!(
                        "{:<5} {:<7} {:<6} {:<16} {:<4} {:<12} {:<10} {:>9}  {}",
                        s["part"],
                        s["stripe"],
                        s["index"],
                        s["node"].as_str().unwrap_or("-"),
                        s["country"].as_str().unwrap_or(""),
                        s["site"].as_str().unwrap_or(""),
                        s["zone"].as_str().unwrap_or(""),
                        s["size"],
                        s["blake3"].as_str().unwrap_or("")
                    );
                }
            }
        }
        AdminCommand::Audit(AuditCommand::Verify { api, from, to, json }) => {
            let mut q = Vec::new();
            for (k, v) in [("from", from), ("to", to)] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", enc(&v)));
                }
            }
            let v = call(&api, "GET", &format!("/v1/audit/verify?{}", q.join("&")))?;
            let report: coffre_engine::audit::Report =
                serde_json::from_value(v).map_err(|e| format!("admin API answered: {e}"))?;
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
            let mut q = vec![format!("tenant={}", enc(&tenant))];
            for (k, v) in [("from", from), ("to", to)] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", enc(&v)));
                }
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let path = format!("/v1/audit/export?{}", q.join("&"));
            let (status, answer) = rt.block_on(crate::client::download(&api.endpoint, &api.token, &path, &out))?;
            if status != 200 {
                return Err(format!("the admin API answered {status}: {answer}"));
            }
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
            let mut q = vec![format!("limit={limit}")];
            for (k, v) in [
                ("tenant", tenant),
                ("bucket", bucket),
                ("key", key),
                ("op", op),
                ("since", since),
                ("until", until),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", enc(&v)));
                }
            }
            let v = call(&api, "GET", &format!("/v1/audit/search?{}", q.join("&")))?;
            if json {
                print_json(&v);
            } else {
                for e in v["events"].as_array().into_iter().flatten() {
                    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
                    println!(
                        "{} {} {} {} {}/{} {}{}",
                        s("time"),
                        s("principal"),
                        s("op"),
                        e["status"],
                        s("bucket"),
                        s("key"),
                        s("source"),
                        e["error"].as_str().map(|c| format!(" {c}")).unwrap_or_default()
                    );
                }
            }
        }
        AdminCommand::Audit(AuditCommand::Residency { api, bucket, json }) => {
            let v = call(&api, "GET", &format!("/v1/audit/residency?bucket={}", enc(&bucket)))?;
            if json {
                print_json(&v);
            } else {
                let bad = v["non_compliant"].as_array().map_or(0, |a| a.len());
                println!(
                    "bucket {}: {} objects, {} shards, {} on compliant nodes ({}), {} not; {} awaiting healing",
                    bucket, v["objects"], v["shards"], v["compliant_shards"], v["countries"], bad, v["degraded_shards"]
                );
                for b in v["non_compliant"].as_array().into_iter().flatten() {
                    println!(
                        "  NOT COMPLIANT: {} part {} shard {} on {} ({})",
                        b["key"], b["part"], b["index"], b["node"], b["country"]
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
            let mut q = Vec::new();
            if let Some(c) = countries {
                q.push(format!("countries={}", enc(&c)));
            }
            if let Some(f) = failure_domain {
                q.push(format!("failure_domain={}", enc(&f)));
            }
            if let Some(s) = scheme {
                q.push(format!("scheme={}", enc(&s)));
            }
            let v = call(
                &api,
                "PUT",
                &format!("/v1/buckets/{}/policy?{}", enc(&bucket), q.join("&")),
            )?;
            println!(
                "bucket {}: countries {}, failure domain {}, scheme {}",
                bucket,
                v["countries"],
                v["failure_domain"].as_str().unwrap_or(""),
                v["scheme"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// A node's scrub in a few words: the pass under way, or when the last ended; findings.
fn scrub_summary(s: &serde_json::Value) -> String {
    if s.is_null() {
        return "-".into();
    }
    let (done, held) = (
        s["pass_shards"].as_u64().unwrap_or(0),
        s["shards"].as_u64().unwrap_or(0),
    );
    let mut out = if s["running"].as_bool() == Some(true) {
        format!("pass at {:.1}%", done.min(held) as f64 * 100.0 / held.max(1) as f64)
    } else {
        match s["last_pass_done_ms"].as_u64() {
            Some(ms) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                format!("last pass {} h ago", now.saturating_sub(ms) / 3_600_000)
            }
            None => "no pass yet".into(),
        }
    };
    if let Some(c) = s["corrupt_found"].as_u64().filter(|c| *c > 0) {
        out.push_str(&format!(", {c} corrupt found"));
    }
    out
}
