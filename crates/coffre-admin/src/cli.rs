//! `coffre admin …`: cluster identities (offline, with the CA) and the commands that talk to
//! a gateway's admin API. The binary embeds `AdminCommand` and calls `run`.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// The cluster CA.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Issue a node's (or gateway's) certificate carrying its signed location.
    NodeIdentity {
        /// The CA directory (from `coffre admin ca init`).
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        id: String,
        /// ISO 3166-1 alpha-2 country code, e.g. FR.
        #[arg(long)]
        country: String,
        #[arg(long)]
        site: String,
        #[arg(long, default_value = "default")]
        zone: String,
        /// What the certificate allows: `node` (serves shards) or `gateway` (reads and writes
        /// shards on nodes).
        #[arg(long, default_value = "node")]
        role: coffre_cluster::identity::Role,
        #[arg(long)]
        out: PathBuf,
    },
    /// Nodes with location, state and capacity.
    Status {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        json: bool,
    },
    /// Where every shard of an object is: stripe, index, node, country, site, zone, size, BLAKE3.
    Placement {
        #[command(flatten)]
        api: Api,
        bucket: String,
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Audits.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Buckets.
    #[command(subcommand)]
    Bucket(BucketCommand),
    /// Cluster membership (persisted by the gateway).
    #[command(subcommand)]
    Nodes(NodesCommand),
}

#[derive(Subcommand)]
pub enum NodesCommand {
    /// Admit a node by address; its id and location come from its certificate.
    Add {
        #[command(flatten)]
        api: Api,
        /// https://HOST:PORT
        address: String,
    },
    /// Stop placing new shards on a node (its shards stay readable).
    Drain {
        #[command(flatten)]
        api: Api,
        id: String,
    },
    /// Forget a node: its shards are read from parity from now on.
    Remove {
        #[command(flatten)]
        api: Api,
        id: String,
    },
    /// Nodes with location and state.
    List {
        #[command(flatten)]
        api: Api,
    },
}

#[derive(Subcommand)]
pub enum CaCommand {
    /// Create the cluster CA in DIR.
    Init {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Scan every object of a bucket: are all shards on nodes its policy allows?
    Residency {
        #[command(flatten)]
        api: Api,
        bucket: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum BucketCommand {
    /// Set a bucket's residency policy (applies to new writes).
    Policy {
        #[command(flatten)]
        api: Api,
        bucket: String,
        /// Allowed countries, comma-separated ISO 3166-1 alpha-2 codes.
        #[arg(long)]
        countries: Option<String>,
        /// node, zone or site.
        #[arg(long)]
        failure_domain: Option<String>,
        /// Erasure scheme, K+M.
        #[arg(long)]
        scheme: Option<String>,
    },
}

#[derive(Args)]
pub struct Api {
    /// The gateway's admin API.
    #[arg(long, env = "COFFRE_ADMIN_ENDPOINT", default_value = "http://127.0.0.1:9001")]
    endpoint: String,
    /// Bearer token (DATA/admin.token on the gateway).
    #[arg(long, env = "COFFRE_ADMIN_TOKEN")]
    token: String,
}

fn call(api: &Api, method: &str, path: &str) -> Result<serde_json::Value, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (status, body) = rt.block_on(crate::client::call(&api.endpoint, &api.token, method, path))?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("admin API answered {status}: {e}"))?;
    if status != 200 {
        return Err(format!("admin API: {status}: {}", v["error"].as_str().unwrap_or(&body)));
    }
    Ok(v)
}

fn enc(s: &str) -> String {
    crate::client::encode(s)
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn run(cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::Ca(CaCommand::Init { out }) => {
            coffre_cluster::identity::init_ca(&out)?;
            println!(
                "cluster CA created in {} (keep ca.key offline and secret)",
                out.display()
            );
        }
        AdminCommand::NodeIdentity {
            ca,
            id,
            country,
            site,
            zone,
            role,
            out,
        } => {
            let loc = coffre_cluster::Location {
                country: country.to_ascii_uppercase(),
                site,
                zone,
            };
            let serial = coffre_cluster::identity::issue(&ca, &id, &loc, role, &out)?;
            println!(
                "identity of {role} {id} ({}/{}/{}) written to {} (serial {serial})",
                loc.country,
                loc.site,
                loc.zone,
                out.display()
            );
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
        AdminCommand::Nodes(NodesCommand::Drain { api, id }) => {
            call(&api, "POST", &format!("/v1/nodes/{}/drain", enc(&id)))?;
            println!("node {id} draining: no new shards go to it");
        }
        AdminCommand::Nodes(NodesCommand::Remove { api, id }) => {
            call(&api, "DELETE", &format!("/v1/nodes/{}", enc(&id)))?;
            println!("node {id} removed");
        }
        AdminCommand::Nodes(NodesCommand::List { api }) => return run(AdminCommand::Status { api, json: false }),
        AdminCommand::Status { api, json } => {
            let v = call(&api, "GET", "/v1/status")?;
            if json {
                print_json(&v);
            } else {
                println!("{} of {} nodes up", v["nodes_up"], v["nodes_total"]);
                println!(
                    "{:<16} {:<4} {:<12} {:<10} {:<5} {:>10} {:>14} {:>14}",
                    "NODE", "CC", "SITE", "ZONE", "STATE", "SHARDS", "USED", "FREE"
                );
                for n in v["nodes"].as_array().into_iter().flatten() {
                    println!(
                        "{:<16} {:<4} {:<12} {:<10} {:<5} {:>10} {:>14} {:>14}",
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
                        n["free_bytes"]
                    );
                }
            }
        }
        AdminCommand::Placement { api, bucket, key, json } => {
            let v = call(
                &api,
                "GET",
                &format!("/v1/placement?bucket={}&key={}", enc(&bucket), enc(&key)),
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
                println!(
                    "{:<5} {:<7} {:<6} {:<16} {:<4} {:<12} {:<10} {:>9}  BLAKE3",
                    "PART", "STRIPE", "INDEX", "NODE", "CC", "SITE", "ZONE", "SIZE"
                );
                for s in v["shards"].as_array().into_iter().flatten() {
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
        AdminCommand::Audit(AuditCommand::Residency { api, bucket, json }) => {
            let v = call(&api, "GET", &format!("/v1/audit/residency?bucket={}", enc(&bucket)))?;
            if json {
                print_json(&v);
            } else {
                let bad = v["non_compliant"].as_array().map_or(0, |a| a.len());
                println!(
                    "bucket {}: {} objects, {} shards, {} on compliant nodes ({}), {} not",
                    bucket, v["objects"], v["shards"], v["compliant_shards"], v["countries"], bad
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
