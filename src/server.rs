//! `coffre server`: opens the keys, the metadata and the shard stores (embedded, or a
//! cluster's nodes and metadata replicas), starts the audit log, the admin API, the S3
//! listener and the background work, and stops them on SIGTERM.

use crate::config::{NodeSection, ServerArgs, Settings, EMBEDDED_COUNTRY};
use crate::{shutdown_signal, tighten_permissions};
use coffre_cluster::{Identity, Location};
use coffre_data::LocalShardStore;
use coffre_engine::{ClusterNode, Engine};
use coffre_meta::{MetaStore, NodeRecord};
use coffre_s3::{Config, Gateway};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn run_server(args: ServerArgs) -> Result<(), String> {
    let Settings {
        data,
        listen,
        region,
        domain,
        scheme,
        tls,
        expiry,
        gc_grace,
        inline_max,
        scrub_period,
        scrub_rate,
        dead_after,
        serve_limits,
        body_limits,
        audit_on,
        audit_retention,
        audit_accept_truncation,
        audit_syslog,
        audit_syslog_ca,
        admin_listen,
        allow_sse_c_over_http,
        regions,
        topology: file,
        keys: key_settings,
    } = Settings::resolve(args)?;
    let scheme_word = if tls.is_some() { "https" } else { "http" };
    std::fs::create_dir_all(&data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    tighten_permissions(&data, 3);
    let keys = Arc::new(crate::keys::open_keyring(&data, &key_settings)?);
    let operator_key = Arc::new(
        coffre_engine::OperatorKey::load_or_create(&data.join("operator.key"), &keys).map_err(|e| {
            format!(
                "operator signing key {}: {e} (is this the master key the store was written with?)",
                data.join("operator.key").display()
            )
        })?,
    );
    let (access_key, secret_key, generated) = root_credentials(&data)?;
    let admin_token = admin_token(&data)?;
    let meta = Arc::new(MetaStore::open(&data.join("meta")).map_err(|e| format!("metadata: {e}"))?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    if file.meta.is_some() && file.cluster.is_none() {
        return Err("[meta] replicas are gateways of a cluster: a [cluster] section is needed".into());
    }
    rt.block_on(async move {
        let mut locals = Vec::new();
        let mut replica: Option<Arc<coffre_engine::replica::Replica>> = None;
        let (nodes, identity) = match &file.cluster {
            Some(c) => {
                let identity = Identity::load_with_ca(&c.identity, &c.ca)?
                    .with_revocations(coffre_cluster::Revocations::new(&c.revoked, c.revoked_file.clone()));
                if identity.role != coffre_cluster::Role::Gateway {
                    return Err(format!(
                        "{} holds a {} certificate: a gateway needs one issued with --role gateway",
                        identity.id, identity.role
                    ));
                }
                let identity = Arc::new(identity);
                if let Some(m) = &file.meta {
                    let config = coffre_engine::replication::ReplicationConfig {
                        listen: m.listen.clone(),
                        address: m
                            .address
                            .clone()
                            .unwrap_or_else(|| format!("https://{}", m.listen))
                            .trim_end_matches('/')
                            .to_string(),
                        replicas: m.replicas.clone(),
                    };
                    let r = coffre_engine::replication::start_replica(
                        meta.clone(),
                        identity.clone(),
                        &config,
                        data.join("meta-snapshots"),
                    )
                    .await?;
                    // Nothing below can be written before a quorum of replicas answers.
                    while let Err(e) = r.barrier().await {
                        tracing::warn!(error = %e, "waiting for a quorum of metadata replicas");
                    }
                    println!(
                        "Coffre metadata replica {} ({}) joined its replica set",
                        r.id(),
                        config.address
                    );
                    replica = Some(r);
                }
                (cluster_nodes(&identity, &file.nodes, &meta).await?, Some(identity))
            }
            None => {
                let dirs: Vec<(String, PathBuf)> = if file.stores.is_empty() {
                    (1..=scheme.total().max(6))
                        .map(|i| (format!("node-{i}"), data.join("nodes").join(format!("node-{i}"))))
                        .collect()
                } else {
                    file.stores.into_iter().map(|s| (s.id, s.path)).collect()
                };
                let mut nodes = Vec::new();
                for (id, dir) in &dirs {
                    let s = LocalShardStore::open(id.clone(), dir)
                        .map_err(|e| format!("shard store {}: {e}", dir.display()))?;
                    locals.push(s.clone());
                    let location = Location {
                        country: EMBEDDED_COUNTRY.into(),
                        site: "local".into(),
                        zone: id.clone(),
                    };
                    nodes.push(ClusterNode::new(Arc::new(s), location, String::new(), false));
                }
                (nodes, None)
            }
        };
        let gateway_location = identity.as_ref().map(|i| i.location.clone());
        let lifecycle_day = lifecycle_day()?;
        let engine_config = coffre_engine::EngineConfig {
            gc_grace: gc_grace.unwrap_or(coffre_types::limits::GC_GRACE),
            lifecycle_day,
            inline_max: inline_max.unwrap_or(coffre_types::limits::INLINE_DEFAULT),
            // The embedded stores are all located in FR (above); a cluster never inlines.
            metadata_country: identity.is_none().then(|| EMBEDDED_COUNTRY.to_string()),
            key_cache_ttl: key_settings.cache_ttl,
            region: region.clone(),
            ..Default::default()
        };
        let (engine, mut damaged) = Engine::new(meta.clone(), nodes, gateway_location, keys.clone(), engine_config);
        // Every request is acknowledged once its audit entry is durable: the log opens
        // (and its chain is checked) before anything is served.
        let audit = match audit_on {
            false => None,
            true => Some(
                engine.open_audit(coffre_engine::AuditOptions {
                    dir: data.join("audit"),
                    identity: file.cluster.as_ref().map(|c| c.identity.clone()),
                    gateway: identity.as_ref().map_or_else(|| "server".to_string(), |i| i.id.clone()),
                    retention: audit_retention,
                    accept_truncation: audit_accept_truncation,
                    syslog: audit_syslog
                        .as_deref()
                        .map(|url| (url.to_string(), audit_syslog_ca.clone())),
                })?,
            ),
        };
        // The root key is the `default` tenant's admin: created with the tenant on the first
        // start (a store of an earlier version gets it too: its buckets are the default
        // tenant's already), its secret updated if the operator changed it.
        let iam = coffre_iam::Iam::new(meta.clone(), keys.clone());
        ensure_root(&engine, &iam, &access_key, &secret_key).await?;
        let config = Config {
            region: region.clone(),
            domain,
            max_put: coffre_types::limits::MAX_PUT,
            regions,
            body_limits,
            allow_sse_c_over_http,
        };
        let gw = Gateway::new(engine.clone(), iam.clone(), config);
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("listening on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let admin_listener = tokio::net::TcpListener::bind(&admin_listen)
            .await
            .map_err(|e| format!("admin API on {admin_listen}: {e}"))?;
        let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;
        // Alone, this gateway knows every write in flight was its own and died with it;
        // one of several cannot tell (the leader expires old intents below).
        let orphans = match replica {
            None => engine.recover_intents().map_err(|e| e.to_string())?,
            Some(_) => 0,
        };
        if orphans > 0 {
            tracing::warn!(
                orphans,
                "writes interrupted by the last stop: their shards are queued for GC"
            );
        }
        let s3_counters = gw.clone();
        // Another gateway may admit, drain or remove nodes: follow the metadata.
        let node_sync = match (&replica, &identity) {
            (Some(_), Some(id)) => Some(id.clone()),
            _ => None,
        };
        let admin = Arc::new(coffre_admin::Admin {
            engine: engine.clone(),
            iam: iam.clone(),
            operator_key: operator_key.clone(),
            token: admin_token,
            identity,
            metrics: vec![
                Box::new(move || s3_counters.metrics_text()),
                Box::new({
                    let engine = engine.clone();
                    move || engine.lifecycle_counters().metrics_text()
                }),
                Box::new({
                    let engine = engine.clone();
                    move || engine.audit().map(|a| a.metrics_text()).unwrap_or_default()
                }),
                Box::new({
                    let engine = engine.clone();
                    move || engine.workers().metrics_text()
                }),
                Box::new({
                    let engine = engine.clone();
                    move || engine.scrub_metrics_text()
                }),
                Box::new(|| {
                    let mut text = String::new();
                    coffre_data::metrics::DATA.render(&mut text);
                    text
                }),
                Box::new({
                    let replica = replica.clone();
                    move || replica.as_ref().map(|r| r.metrics_text()).unwrap_or_default()
                }),
                Box::new(coffre_telemetry::metrics_text),
            ],
            replica: replica.clone(),
            calls: Default::default(),
        });
        tokio::spawn(coffre_admin::serve(admin_listener, admin, std::future::pending()));
        println!(
            "Coffre admin endpoint: http://{admin_addr}  (token: COFFRE_ADMIN_TOKEN or {})",
            data.join("admin.token").display()
        );
        // Background work, as named workers. What changes metadata the whole cluster shares
        // runs once per cluster: on the metadata leader (and on the next one when it changes).
        let leads: coffre_types::background::Leads = {
            let replica = replica.clone();
            Arc::new(move || replica.as_ref().is_none_or(|r| r.is_leader()))
        };
        let workers = engine.workers();
        // Another gateway may admit, drain or remove nodes: follow the metadata.
        let connect = node_sync.map(|identity| -> coffre_engine::workers::NodeConnector {
            Box::new(move |address: &str, rec: &NodeRecord| {
                ClusterNode::known(&identity, address, rec).map(|n| n.store)
            })
        });
        use coffre_engine::workers::*;
        workers.start(
            Box::new(HeartbeatWorker {
                engine: engine.clone(),
                connect,
            }),
            leads.clone(),
        );
        workers.start(Box::new(RepairWorker(engine.clone())), leads.clone());
        workers.start(Box::new(GcWorker(engine.clone())), leads.clone());
        workers.start(Box::new(EvacuateWorker::new(engine.clone(), dead_after)), leads.clone());
        workers.start(Box::new(RebalanceWorker(engine.clone())), leads.clone());
        workers.start(
            Box::new(ScrubWorker {
                engine: engine.clone(),
                period: scrub_period,
                default_rate_mib: scrub_rate,
            }),
            leads.clone(),
        );
        workers.start(
            Box::new(ExpiryWorker {
                engine: engine.clone(),
                max_age: expiry,
            }),
            leads.clone(),
        );
        workers.start(
            Box::new(LifecycleWorker {
                engine: engine.clone(),
                // Every 10 minutes; every quarter of a shortened test day, at least every second.
                every: (lifecycle_day / 4).clamp(Duration::from_secs(1), Duration::from_secs(600)),
            }),
            leads.clone(),
        );
        if !locals.is_empty() {
            // The embedded stores' own work, as a node does it (every process).
            let always: coffre_types::background::Leads = Arc::new(|| true);
            workers.start(Box::new(coffre_data::CompactionWorker(locals.clone())), always.clone());
            workers.start(Box::new(coffre_data::ScrubWorker::new(locals.clone())), always);
        }
        print_banner(
            &format!("{scheme_word}://{addr}"),
            &region,
            &access_key,
            &secret_key,
            generated,
            &data,
        );
        // Changes whose audit entries a stop cut off get them from their notes: at once, then
        // every few seconds (each gateway its own; a replica may learn of its notes late).
        if audit.is_some() {
            workers.start(Box::new(AuditNotesWorker(engine.clone())), leads.clone());
        }
        tokio::spawn(async move {
            while let Some(id) = damaged.recv().await {
                tracing::warn!(shard = %id, "shard needs healing");
            }
        });
        coffre_s3::serve(listener, tls, gw, serve_limits, shutdown_signal()).await;
        engine.workers().shutdown(Duration::from_secs(10)).await;
        if let Some(log) = audit {
            log.close().await;
        }
        Ok::<(), String>(())
    })
}

/// The root key of the `default` tenant, as given at start-up: created or its secret
/// updated, each change with its audit entry (a disabled root key stays disabled).
async fn ensure_root(
    engine: &Arc<Engine>,
    iam: &coffre_iam::Iam,
    access_key: &str,
    secret_key: &str,
) -> Result<(), String> {
    let id = format!("startup-root-{}", hex::encode(coffre_types::random_bytes::<6>()));
    let mut entry = coffre_engine::audit::Event::now("system:RootKey", "system");
    entry.request_id = id.clone();
    entry.tenant = coffre_engine::DEFAULT_TENANT.to_string();
    entry.access_key = Some(access_key.to_string());
    let scope = engine.audit_scope(&id);
    let ensure = async {
        coffre_engine::audit_notes::draft(&entry);
        iam.ensure_root(coffre_engine::DEFAULT_TENANT, access_key, secret_key)
            .await
    };
    let done = match &scope {
        Some(scope) => scope.run(ensure).await,
        None => ensure.await,
    }
    .map_err(|e| format!("root credentials: {e}"))?;
    entry.detail = Some(
        match done {
            coffre_iam::RootKey::Unchanged => return Ok(()),
            coffre_iam::RootKey::Disabled => {
                tracing::warn!(
                    access_key,
                    "the root access key is disabled (an operator disabled it): it stays so"
                );
                return Ok(());
            }
            coffre_iam::RootKey::Created => "root access key created",
            coffre_iam::RootKey::SecretChanged => "root access key's secret replaced by the one given at start-up",
        }
        .to_string(),
    );
    if let Some(scope) = scope {
        scope
            .append(vec![entry])
            .await
            .map_err(|e| format!("the audit log cannot record the root key: {e}"))?;
    }
    Ok(())
}

/// The length of a lifecycle day: 24 hours. `COFFRE_LIFECYCLE_DAY_SECONDS` shortens it, for
/// tests only (rules then expire objects within seconds).
fn lifecycle_day() -> Result<Duration, String> {
    match std::env::var("COFFRE_LIFECYCLE_DAY_SECONDS") {
        Err(_) => Ok(Duration::from_secs(86_400)),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(s) if s > 0 => {
                tracing::warn!(
                    seconds = s,
                    "COFFRE_LIFECYCLE_DAY_SECONDS set: lifecycle days are shortened (tests only)"
                );
                Ok(Duration::from_secs(s))
            }
            _ => Err(format!(
                "COFFRE_LIFECYCLE_DAY_SECONDS must be a positive number of seconds, not '{v}'"
            )),
        },
    }
}

/// The admin API's bearer token: COFFRE_ADMIN_TOKEN, else DATA/admin.token (generated, 0600).
/// A short token is refused: it would be guessable, and an empty one would open the API.
fn admin_token(data: &Path) -> Result<String, String> {
    let min = coffre_types::limits::MIN_ADMIN_TOKEN;
    let check = |t: String, from: &str| {
        if t.len() < min {
            Err(format!(
                "the admin token in {from} is {} bytes; at least {min} are needed (e.g. `openssl rand -hex 24`)",
                t.len()
            ))
        } else {
            Ok(t)
        }
    };
    if let Ok(t) = std::env::var("COFFRE_ADMIN_TOKEN") {
        return check(t, "COFFRE_ADMIN_TOKEN");
    }
    let path = data.join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return check(t.trim().to_string(), &path.display().to_string());
    }
    let token = hex::encode(coffre_types::random_bytes::<24>());
    coffre_types::create_private_file(&path, token.as_bytes())
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    Ok(token)
}

/// Connects to the configured nodes (learning id and location from their certificates),
/// remembering them in the metadata; a known node that does not answer starts as down.
async fn cluster_nodes(
    identity: &Identity,
    configured: &[NodeSection],
    meta: &MetaStore,
) -> Result<Vec<ClusterNode>, String> {
    let known: std::collections::HashMap<String, NodeRecord> =
        meta.nodes().map_err(|e| e.to_string())?.into_iter().collect();
    let mut addresses: Vec<String> = configured.iter().map(|n| n.address.clone()).collect();
    for a in known.keys() {
        if !addresses.contains(a) {
            addresses.push(a.clone());
        }
    }
    let mut nodes: Vec<ClusterNode> = Vec::new();
    for address in addresses {
        let draining = known.get(&address).is_some_and(|k| k.draining);
        let node = match ClusterNode::connect(identity, &address, draining).await {
            Ok(node) => {
                meta.put_node(&address, &node.record()).map_err(|e| e.to_string())?;
                node
            }
            Err(e) => match known.get(&address) {
                Some(k) => {
                    tracing::warn!(%address, error = %e, "node unreachable: starting with it down");
                    ClusterNode::known(identity, &address, k)?
                }
                None => {
                    return Err(format!(
                        "node {address}: {e} (a new node must be reachable to learn its identity)"
                    ))
                }
            },
        };
        if nodes.iter().any(|n| n.id() == node.id()) {
            return Err(format!("two nodes claim the id {}", node.id()));
        }
        tracing::info!(node = node.id(), address = %node.address, country = %node.location.country, site = %node.location.site, "cluster node");
        nodes.push(node);
    }
    Ok(nodes)
}

/// Root credentials: from the environment, else from `DATA/credentials` (generated on the
/// first start, mode 0600). Returns whether they were generated now.
fn root_credentials(data: &Path) -> Result<(String, String, bool), String> {
    if let (Ok(a), Ok(s)) = (
        std::env::var("COFFRE_ROOT_ACCESS_KEY"),
        std::env::var("COFFRE_ROOT_SECRET_KEY"),
    ) {
        let min = coffre_types::limits::MIN_ROOT_SECRET;
        if a.len() < 3 || a.len() > 128 || !a.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("COFFRE_ROOT_ACCESS_KEY must be 3 to 128 letters and digits".into());
        }
        if s.len() < min {
            return Err(format!(
                "COFFRE_ROOT_SECRET_KEY is {} characters; at least {min} are needed (e.g. `openssl rand -hex 20`)",
                s.len()
            ));
        }
        return Ok((a, s, false));
    }
    let path = data.join("credentials");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut lines = text.lines();
        if let (Some(a), Some(s)) = (lines.next(), lines.next()) {
            return Ok((a.trim().to_string(), s.trim().to_string(), false));
        }
        return Err(format!(
            "{} is malformed: expected the access key and the secret key on two lines",
            path.display()
        ));
    }
    let access = format!("CF{}", hex::encode_upper(coffre_types::random_bytes::<9>()));
    let secret = hex::encode(coffre_types::random_bytes::<20>());
    coffre_types::create_private_file(&path, format!("{access}\n{secret}\n").as_bytes())
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    Ok((access, secret, true))
}

fn print_banner(endpoint: &str, region: &str, access: &str, secret: &str, generated: bool, data: &Path) {
    println!("Coffre S3 endpoint: {endpoint}  (region {region})");
    println!("Access key: {access}");
    // Shown at a terminal only: a service's output ends up in journald or `docker logs`.
    use std::io::IsTerminal;
    if generated && std::io::stdout().is_terminal() {
        println!("Secret key: {secret}");
        println!(
            "(generated now and saved in {}; shown only this once)",
            data.join("credentials").display()
        );
    } else if generated {
        println!(
            "Secret key: generated now and saved in {} (mode 0600); not printed, the output is not a terminal",
            data.join("credentials").display()
        );
    } else {
        println!(
            "Secret key: from COFFRE_ROOT_SECRET_KEY or {}",
            data.join("credentials").display()
        );
    }
    println!();
    println!("Try it:");
    println!("  export AWS_ACCESS_KEY_ID={access} AWS_SECRET_ACCESS_KEY=<secret key> AWS_DEFAULT_REGION={region}");
    println!("  aws --endpoint-url {endpoint} s3 mb s3://my-bucket");
    println!("  aws --endpoint-url {endpoint} s3 cp ./file s3://my-bucket/");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
