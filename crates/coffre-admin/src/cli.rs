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
        /// Keep an identity already in OUT if the same CA issued it for the same id, location
        /// and role (idempotent provisioning, e.g. a container's init step); refuse otherwise.
        #[arg(long)]
        if_missing: bool,
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
        /// One version of the object (its S3 versionId, or `null`) rather than the current one.
        #[arg(long)]
        version_id: Option<String>,
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
    /// The replicated metadata: its replicas, leader and lag; membership.
    #[command(subcommand)]
    Meta(MetaCommand),
    /// Tenants (accounts): each owns its buckets, users and key-encryption key.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Users of a tenant.
    #[command(subcommand)]
    User(UserCommand),
    /// Access keys of a tenant's users.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Roles a tenant's web identities (OIDC) may assume through STS.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Check a signed erasure certificate (exit 0 only if untampered and the operator's).
    VerifyCertificate {
        /// The certificate (JSON), as `tenant delete --erase` printed it.
        file: PathBuf,
        /// The operator's public key (base64); by default asked of the admin API.
        #[arg(long)]
        public_key: Option<String>,
        #[arg(long, env = "COFFRE_ADMIN_ENDPOINT", default_value = "http://127.0.0.1:9001")]
        endpoint: String,
        #[arg(long, env = "COFFRE_ADMIN_TOKEN")]
        token: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its admin user; prints the admin's access key and secret (once).
    Create {
        #[command(flatten)]
        api: Api,
        name: String,
        #[arg(long)]
        quota_bytes: Option<u64>,
        #[arg(long)]
        quota_objects: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Tenants with usage and quotas.
    List {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        json: bool,
    },
    /// One tenant: usage, quotas, buckets, users, key id.
    Show {
        #[command(flatten)]
        api: Api,
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a tenant that owns no bucket; --erase deletes its (empty) buckets and destroys
    /// its key, printing a signed erasure certificate; --force also deletes their objects.
    Delete {
        #[command(flatten)]
        api: Api,
        name: String,
        #[arg(long)]
        erase: bool,
        #[arg(long, requires = "erase")]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Set (or with no limit given, remove) a tenant's quota.
    Quota {
        #[command(flatten)]
        api: Api,
        name: String,
        #[arg(long)]
        bytes: Option<u64>,
        #[arg(long)]
        objects: Option<u64>,
    },
    /// Set the tenant's OpenID Connect issuer (or --remove it).
    Oidc {
        #[command(flatten)]
        api: Api,
        name: String,
        #[arg(long, required_unless_present = "remove")]
        issuer: Option<String>,
        /// What `aud` must hold (the client id at the issuer).
        #[arg(long, required_unless_present = "remove")]
        audience: Option<String>,
        /// The issuer's keys (a JWKS file), kept inline: no outbound call.
        #[arg(long, conflicts_with = "jwks_url")]
        jwks_file: Option<PathBuf>,
        /// Where to fetch the issuer's keys from (the gateway then calls it).
        #[arg(long)]
        jwks_url: Option<String>,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user (with no key and no right until given some).
    Create {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a user and its keys.
    Delete {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        name: String,
    },
    List {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Attach (or --remove) an inline IAM policy to a user.
    Policy {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        user: String,
        /// The policy's name.
        name: String,
        /// The JSON policy document.
        #[arg(long, required_unless_present = "remove")]
        file: Option<PathBuf>,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// A new access key for a user; prints the secret (once).
    Create {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        /// The key stops working after this many seconds.
        #[arg(long)]
        expires_in_secs: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    Disable {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        key: String,
    },
    Enable {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        key: String,
    },
    Delete {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        key: String,
    },
    List {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// Create or replace a role: its sessions get the policy; tokens must carry the claims.
    Put {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        name: String,
        /// The JSON policy document of its sessions.
        #[arg(long)]
        policy_file: PathBuf,
        /// A claim the web identity token must carry, NAME=PATTERN (`*` wildcards); repeatable.
        #[arg(long)]
        claim: Vec<String>,
        #[arg(long)]
        max_session_secs: Option<u32>,
    },
    Delete {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        name: String,
    },
    List {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand)]
pub enum MetaCommand {
    /// The leader, the term, and each replica's state, commit index and lag.
    Status {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        json: bool,
    },
    /// Add a replica by its Raft address: it joins as a learner, catches up (by snapshot
    /// if needed), then votes.
    Add {
        #[command(flatten)]
        api: Api,
        /// https://HOST:PORT
        address: String,
    },
    /// Remove a replica (by the id `meta status` shows).
    Remove {
        #[command(flatten)]
        api: Api,
        id: u64,
    },
    /// Write a consistent backup of the metadata, sealed with the master key, while the
    /// gateway serves (restore with `coffre meta restore`).
    Backup {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        out: PathBuf,
    },
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
        /// Succeed without change if DIR already holds a CA (idempotent provisioning).
        #[arg(long)]
        if_missing: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify this gateway's audit log: the hash chain, every checkpoint's signature, and the
    /// chain head recorded in the metadata. Exits non-zero at the first bad position.
    Verify {
        #[command(flatten)]
        api: Api,
        /// From this time (2026-12-01, 2026-12-01T10:00:00Z, or an age: 7d, 12h).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A tenant's audit events with what proves them (JSON lines), verifiable offline with
    /// `coffre audit verify --dir FILE --trust CA`.
    Export {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// jsonl (the only one).
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Audit events by tenant, bucket, key and time (newest last).
    Search {
        #[command(flatten)]
        api: Api,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        bucket: Option<String>,
        #[arg(long)]
        key: Option<String>,
        /// An age (7d, 12h, 30m) or a date.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
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
    /// Set (or with no limit given, remove) a bucket's quota.
    Quota {
        #[command(flatten)]
        api: Api,
        bucket: String,
        #[arg(long)]
        bytes: Option<u64>,
        #[arg(long)]
        objects: Option<u64>,
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
    call_with(api, method, path, None)
}

fn call_with(api: &Api, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<serde_json::Value, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (status, body) = rt.block_on(crate::client::call(&api.endpoint, &api.token, method, path, body))?;
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

/// `?a=1&b=2` of the limits given (none: no limit).
fn quota_query(bytes: Option<u64>, objects: Option<u64>) -> String {
    let mut q = Vec::new();
    if let Some(b) = bytes {
        q.push(format!("quota_bytes={b}"));
    }
    if let Some(o) = objects {
        q.push(format!("quota_objects={o}"));
    }
    q.join("&")
}

fn read_file(p: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn print_tenant(v: &serde_json::Value) {
    let limit = |x: &serde_json::Value| x.as_u64().map_or("unlimited".to_string(), |n| n.to_string());
    println!(
        "tenant {}: {} bytes, {} objects (quota {} bytes, {} objects); buckets {}; users {}; key {}{}",
        v["tenant"].as_str().unwrap_or(""),
        v["usage"]["bytes"],
        v["usage"]["objects"],
        limit(&v["quota_bytes"]),
        limit(&v["quota_objects"]),
        v["buckets"],
        v["users"],
        v["kek_id"].as_str().unwrap_or(""),
        v["oidc_issuer"]
            .as_str()
            .map(|i| format!("; issuer {i}"))
            .unwrap_or_default()
    );
}

fn tenant_command(cmd: TenantCommand) -> Result<(), String> {
    match cmd {
        TenantCommand::Create {
            api,
            name,
            quota_bytes,
            quota_objects,
            json,
        } => {
            let q = quota_query(quota_bytes, quota_objects);
            let v = call(&api, "POST", &format!("/v1/tenants?name={}&{q}", enc(&name)))?;
            if json {
                println!("{v}");
            } else {
                println!("tenant {name} created; its admin user's key (the secret is shown only now):");
                println!("  access key: {}", v["access_key"].as_str().unwrap_or(""));
                println!("  secret key: {}", v["secret_key"].as_str().unwrap_or(""));
            }
        }
        TenantCommand::List { api, json } => {
            let v = call(&api, "GET", "/v1/tenants")?;
            if json {
                print_json(&v);
            } else {
                for t in v["tenants"].as_array().into_iter().flatten() {
                    print_tenant(t);
                }
            }
        }
        TenantCommand::Show { api, name, json } => {
            let v = call(&api, "GET", &format!("/v1/tenants/{}", enc(&name)))?;
            if json {
                print_json(&v);
            } else {
                print_tenant(&v);
            }
        }
        TenantCommand::Delete {
            api,
            name,
            erase,
            force,
            json,
        } => {
            let v = call(
                &api,
                "DELETE",
                &format!("/v1/tenants/{}?erase={erase}&force={force}", enc(&name)),
            )?;
            match (&v["certificate"], json) {
                (c, _) if c.is_object() => print_json(c),
                (_, true) => println!("{v}"),
                _ => println!("tenant {name} deleted"),
            }
        }
        TenantCommand::Quota {
            api,
            name,
            bytes,
            objects,
        } => {
            call(
                &api,
                "PUT",
                &format!("/v1/tenants/{}/quota?{}", enc(&name), quota_query(bytes, objects)),
            )?;
            println!("tenant {name}: quota set");
        }
        TenantCommand::Oidc {
            api,
            name,
            issuer,
            audience,
            jwks_file,
            jwks_url,
            remove,
        } => {
            let body = if remove {
                Vec::new()
            } else {
                let jwks = match &jwks_file {
                    Some(f) => Some(String::from_utf8(read_file(f)?).map_err(|_| "the JWKS is not UTF-8")?),
                    None => None,
                };
                if jwks.is_none() && jwks_url.is_none() {
                    return Err("give --jwks-file or --jwks-url".into());
                }
                serde_json::to_vec(&serde_json::json!({
                    "issuer": issuer, "audience": audience, "jwks": jwks, "jwks_url": jwks_url
                }))
                .map_err(|e| e.to_string())?
            };
            call_with(&api, "PUT", &format!("/v1/tenants/{}/oidc", enc(&name)), Some(body))?;
            println!("tenant {name}: issuer {}", if remove { "removed" } else { "set" });
        }
    }
    Ok(())
}

fn user_command(cmd: UserCommand) -> Result<(), String> {
    match cmd {
        UserCommand::Create {
            api,
            tenant,
            name,
            json,
        } => {
            let v = call(
                &api,
                "POST",
                &format!("/v1/tenants/{}/users?name={}", enc(&tenant), enc(&name)),
            )?;
            if json {
                println!("{v}");
            } else {
                println!("user {} created ({})", name, v["arn"].as_str().unwrap_or(""));
            }
        }
        UserCommand::Delete { api, tenant, name } => {
            call(
                &api,
                "DELETE",
                &format!("/v1/tenants/{}/users/{}", enc(&tenant), enc(&name)),
            )?;
            println!("user {name} deleted, with its keys");
        }
        UserCommand::List { api, tenant, json } => {
            let v = call(&api, "GET", &format!("/v1/tenants/{}/users", enc(&tenant)))?;
            if json {
                print_json(&v);
            } else {
                for u in v["users"].as_array().into_iter().flatten() {
                    println!(
                        "{:<24} {:<22} {}{}",
                        u["user"].as_str().unwrap_or(""),
                        u["id"].as_str().unwrap_or(""),
                        if u["admin"].as_bool() == Some(true) {
                            "admin "
                        } else {
                            ""
                        },
                        u["policies"]
                    );
                }
            }
        }
        UserCommand::Policy {
            api,
            tenant,
            user,
            name,
            file,
            remove,
        } => {
            let path = format!(
                "/v1/tenants/{}/users/{}/policies/{}",
                enc(&tenant),
                enc(&user),
                enc(&name)
            );
            match (remove, file) {
                (true, _) => {
                    call(&api, "DELETE", &path)?;
                }
                (false, Some(f)) => {
                    call_with(&api, "PUT", &path, Some(read_file(&f)?))?;
                }
                (false, None) => return Err("give --file or --remove".into()),
            }
            println!("user {user}: policy {name} {}", if remove { "removed" } else { "set" });
        }
    }
    Ok(())
}

fn key_command(cmd: KeyCommand) -> Result<(), String> {
    match cmd {
        KeyCommand::Create {
            api,
            tenant,
            user,
            expires_in_secs,
            json,
        } => {
            let q = expires_in_secs
                .map(|s| format!("?expires_in_secs={s}"))
                .unwrap_or_default();
            let v = call(
                &api,
                "POST",
                &format!("/v1/tenants/{}/users/{}/keys{q}", enc(&tenant), enc(&user)),
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"access_key": v["access_key"], "secret_key": v["secret_key"]})
                );
            } else {
                println!("access key: {}", v["access_key"].as_str().unwrap_or(""));
                println!(
                    "secret key: {} (shown only now)",
                    v["secret_key"].as_str().unwrap_or("")
                );
            }
        }
        KeyCommand::Disable { api, tenant, key } => {
            call(
                &api,
                "POST",
                &format!("/v1/tenants/{}/keys/{}/disable", enc(&tenant), enc(&key)),
            )?;
            println!("key {key} disabled");
        }
        KeyCommand::Enable { api, tenant, key } => {
            call(
                &api,
                "POST",
                &format!("/v1/tenants/{}/keys/{}/enable", enc(&tenant), enc(&key)),
            )?;
            println!("key {key} enabled");
        }
        KeyCommand::Delete { api, tenant, key } => {
            call(
                &api,
                "DELETE",
                &format!("/v1/tenants/{}/keys/{}", enc(&tenant), enc(&key)),
            )?;
            println!("key {key} deleted");
        }
        KeyCommand::List {
            api,
            tenant,
            user,
            json,
        } => {
            let q = user.map(|u| format!("?user={}", enc(&u))).unwrap_or_default();
            let v = call(&api, "GET", &format!("/v1/tenants/{}/keys{q}", enc(&tenant)))?;
            if json {
                print_json(&v);
            } else {
                for k in v["keys"].as_array().into_iter().flatten() {
                    println!(
                        "{:<22} {:<24} {}",
                        k["access_key"].as_str().unwrap_or(""),
                        k["user"].as_str().unwrap_or(""),
                        if k["enabled"].as_bool() == Some(true) {
                            "enabled"
                        } else {
                            "DISABLED"
                        }
                    );
                }
            }
        }
    }
    Ok(())
}

fn role_command(cmd: RoleCommand) -> Result<(), String> {
    match cmd {
        RoleCommand::Put {
            api,
            tenant,
            name,
            policy_file,
            claim,
            max_session_secs,
        } => {
            let policy = String::from_utf8(read_file(&policy_file)?).map_err(|_| "the policy is not UTF-8")?;
            let mut claims = serde_json::Map::new();
            for c in claim {
                let (k, v) = c.split_once('=').ok_or("a claim is NAME=PATTERN")?;
                claims.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            let body = serde_json::json!({"policy": policy, "claims": claims, "max_session_secs": max_session_secs});
            let v = call_with(
                &api,
                "PUT",
                &format!("/v1/tenants/{}/roles/{}", enc(&tenant), enc(&name)),
                Some(body.to_string().into_bytes()),
            )?;
            println!("role {}", v["arn"].as_str().unwrap_or(""));
        }
        RoleCommand::Delete { api, tenant, name } => {
            call(
                &api,
                "DELETE",
                &format!("/v1/tenants/{}/roles/{}", enc(&tenant), enc(&name)),
            )?;
            println!("role {name} deleted");
        }
        RoleCommand::List { api, tenant } => {
            print_json(&call(&api, "GET", &format!("/v1/tenants/{}/roles", enc(&tenant)))?);
        }
    }
    Ok(())
}

/// Checks a certificate against the operator's key (given, or the admin API's).
fn verify_certificate(
    file: &std::path::Path,
    public_key: Option<String>,
    endpoint: String,
    token: Option<String>,
) -> Result<(), String> {
    use base64::Engine as _;
    let text = String::from_utf8(read_file(file)?).map_err(|_| "the certificate is not UTF-8")?;
    let key_b64 = match public_key {
        Some(k) => k,
        None => {
            let api = Api {
                endpoint,
                token: token.ok_or("give --public-key, or COFFRE_ADMIN_TOKEN to ask the admin API")?,
            };
            call(&api, "GET", "/v1/operator-key")?["public_key"]
                .as_str()
                .unwrap_or("")
                .to_string()
        }
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64.trim())
        .map_err(|_| "the operator's public key is not base64")?;
    let e =
        crate::certificate::Certificate::verify(&text, &key).map_err(|why| format!("certificate NOT valid: {why}"))?;
    println!(
        "certificate valid: tenant {} erased at {} (key {}, {} objects, {} bytes), signed by the operator",
        e.tenant, e.erased_at, e.kek_id, e.objects, e.bytes
    );
    Ok(())
}

pub fn run(cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::Tenant(c) => return tenant_command(c),
        AdminCommand::User(c) => return user_command(c),
        AdminCommand::Key(c) => return key_command(c),
        AdminCommand::Role(c) => return role_command(c),
        AdminCommand::VerifyCertificate {
            file,
            public_key,
            endpoint,
            token,
        } => return verify_certificate(&file, public_key, endpoint, token),
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
        AdminCommand::Ca(CaCommand::Init { out, if_missing }) => {
            if if_missing && out.join("ca.key").exists() {
                println!("cluster CA kept in {}", out.display());
                return Ok(());
            }
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
            if_missing,
        } => {
            let loc = coffre_cluster::Location {
                country: country.to_ascii_uppercase(),
                site,
                zone,
            };
            if if_missing && out.join("cert.pem").exists() {
                coffre_cluster::identity::check_issued(&ca, &id, &loc, role, &out)?;
                println!("identity of {role} {id} kept in {}", out.display());
                return Ok(());
            }
            let serial = coffre_cluster::identity::issue(&ca, &id, &loc, role, &out)?;
            println!(
                "identity of {role} {id} ({}/{}/{}) written to {} (serial {serial})",
                loc.country,
                loc.site,
                loc.zone,
                out.display()
            );
            // A gateway signs its audit log with a key the CA certifies.
            if role == coffre_cluster::Role::Gateway {
                coffre_cluster::audit_cert::issue_audit_key(&ca, &id, &loc, &out)?;
                println!(
                    "audit signing key of {id} written to {}/audit-key.pem (certificate audit.pem)",
                    out.display()
                );
            }
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
