//! The master key in a PKCS#11 token: SoftHSM2 (Debian's `softhsm2`), a token initialised by
//! the test, the real server started with `--key-provider pkcs11`.

mod common;

use common::*;
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};
use std::process::Command;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "coffre-test";
const PIN: &str = "4821-user";

/// A SoftHSM2 token of its own (its configuration and token directory under `dir`).
fn softhsm_token(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--pin",
            PIN,
            "--so-pin",
            "9713-so",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util (scripts/test.sh installs Debian's softhsm2)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    conf
}

const PROVIDER_ARGS: [&str; 6] = [
    "--key-provider",
    "pkcs11",
    "--pkcs11-module",
    MODULE,
    "--pkcs11-token",
    TOKEN,
];

fn start(data: &Path, conf: &Path) -> Server {
    Server::start_with_env(
        data,
        "127.0.0.1:0",
        &PROVIDER_ARGS,
        &[("SOFTHSM2_CONF", conf.to_str().unwrap()), ("COFFRE_PKCS11_PIN", PIN)],
    )
}

/// The server started with these arguments and environment must not start: its stderr.
fn refused(data: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args(["server", "--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .args(args)
        .env("COFFRE_ROOT_ACCESS_KEY", ACCESS)
        .env("COFFRE_ROOT_SECRET_KEY", SECRET)
        .env_remove("COFFRE_MASTER_KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the server started: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_master_key_is_in_a_token_writes_restarts_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_token(dir.path());
    let (small, large) = (data(3_000, 1), data(3 << 20, 2));
    let data = dir.path().join("data");

    let mut s = start(&data, &conf);
    // No master key on disk: the store's own key, wrapped by the token, is all there is.
    assert!(!data.join("master.key").exists());
    let store_key = std::fs::metadata(data.join("store.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(store_key.permissions().mode() & 0o777, 0o600);
    let c = s.client();
    c.create_bucket().bucket("dossiers").send().await.unwrap();
    put(&c, "dossiers", "small", small.clone()).await;
    put(&c, "dossiers", "large", large.clone()).await;
    // A tenant: its key is wrapped by the token.
    let (ak, sk) = s.tenant("hopital", &[]);
    let t = client_with(&s.endpoint, &ak, &sk);
    t.create_bucket().bucket("hopital-scans").send().await.unwrap();
    put(&t, "hopital-scans", "scan", large.clone()).await;
    s.kill();

    // Restarted: the token unwraps the store key and the tenants' keys again.
    let mut s = start(&data, &conf);
    let c = s.client();
    assert_eq!(get_body(&c, "dossiers", "small").await, small);
    assert_eq!(get_body(&c, "dossiers", "large").await, large);
    let t = client_with(&s.endpoint, &ak, &sk);
    assert_eq!(get_body(&t, "hopital-scans", "scan").await, large);
    s.kill();

    // The master key stays in the token: sensitive, not extractable, its value refused.
    let session = token_session(&conf);
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(b"coffre-master-1".to_vec()),
        ])
        .unwrap();
    assert_eq!(keys.len(), 1);
    let info = session.get_attribute_info(keys[0], &[AttributeType::Value]).unwrap();
    assert!(matches!(info[0], AttributeInfo::Sensitive), "{info:?}");
    let flags = session
        .get_attributes(keys[0], &[AttributeType::Extractable, AttributeType::Sensitive])
        .unwrap();
    assert!(flags.contains(&Attribute::Extractable(false)), "{flags:?}");
    assert!(flags.contains(&Attribute::Sensitive(true)), "{flags:?}");
    assert!(
        session
            .get_attributes(keys[0], &[AttributeType::Value])
            .map_or(true, |v| v.is_empty()),
        "the token gave out the master key"
    );
    drop(session);

    // A store whose key is in a token does not open with the file provider (and makes no
    // master key of its own)…
    let err = refused(&data, &[], &[]);
    assert!(err.contains("security container"), "{err}");
    assert!(!data.join("master.key").exists());
    // …and a wrong PIN stops the server with an error that says so.
    let err = refused(
        &data,
        &PROVIDER_ARGS,
        &[
            ("SOFTHSM2_CONF", conf.to_str().unwrap()),
            ("COFFRE_PKCS11_PIN", "0000-wrong"),
        ],
    );
    assert!(err.contains("PIN is incorrect"), "{err}");
    // The PIN from a file works as from the variable.
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let mut args = PROVIDER_ARGS.to_vec();
    args.extend(["--pkcs11-pin-file", pin_file.to_str().unwrap()]);
    let s = Server::start_with_env(
        &data,
        "127.0.0.1:0",
        &args,
        &[("SOFTHSM2_CONF", conf.to_str().unwrap())],
    );
    assert_eq!(get_body(&s.client(), "dossiers", "small").await, small);
}

/// The token of `conf` opened by the test itself, logged in as the user.
fn token_session(conf: &Path) -> cryptoki::session::Session {
    std::env::set_var("SOFTHSM2_CONF", conf);
    let ctx = Pkcs11::new(MODULE).unwrap();
    let _ = ctx.initialize(CInitializeArgs::OsThreads);
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == TOKEN)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&AuthPin::new(PIN.into()))).unwrap();
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_rotates_in_the_token_while_writes_go_on_and_the_old_version_can_go() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_token(dir.path());
    let data_dir = dir.path().join("data");
    let s = start(&data_dir, &conf);

    // Tenants with data, and the default tenant's.
    let mut tenants = vec![("dflt".to_string(), ACCESS.to_string(), SECRET.to_string())];
    for i in 0..4 {
        let (ak, sk) = s.tenant(&format!("service-{i}"), &[]);
        tenants.push((format!("service-{i}-data"), ak, sk));
    }
    let clients: Vec<(String, aws_sdk_s3::Client)> = tenants
        .iter()
        .map(|(b, ak, sk)| (b.clone(), client_with(&s.endpoint, ak, sk)))
        .collect();
    for (bucket, c) in &clients {
        c.create_bucket().bucket(bucket).send().await.unwrap();
        put(c, bucket, "before", data(5_000, 1)).await;
    }

    // A load on every tenant while the rotation runs; what it wrote is the model.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for (w, (bucket, c)) in clients.iter().cloned().enumerate() {
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || i < 5 {
                let body = data(if i.is_multiple_of(4) { 300_000 } else { 2_000 }, (w as u8) ^ (i as u8));
                let key = format!("during-{i}");
                put(&c, &bucket, &key, body.clone()).await;
                written.push((key, body));
                i += 1;
            }
            (bucket, written)
        }));
    }
    let admin = {
        let (data_dir, endpoint) = (s.data.clone(), s.admin_endpoint.clone());
        tokio::task::spawn_blocking(move || {
            let token = std::fs::read_to_string(data_dir.join("admin.token")).unwrap();
            Command::new(env!("CARGO_BIN_EXE_coffre"))
                .args(["admin", "keys", "rotate-master", "--wait"])
                .env("COFFRE_ADMIN_ENDPOINT", endpoint)
                .env("COFFRE_ADMIN_TOKEN", token.trim())
                .output()
                .unwrap()
        })
    };
    let out = admin.await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rotation done"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut model = Vec::new();
    for w in writers {
        model.push(w.await.unwrap());
    }
    let status = s.admin_json(&["keys", "status"]);
    assert_eq!(status["provider"], "pkcs11");
    assert_eq!(status["current_version"], "coffre-master-2");
    assert_eq!(status["tenants"], status["tenants_current"], "{status}");
    assert!(status["tenants"].as_u64().unwrap() >= 5, "{status}");
    assert_eq!(status["store_key_current"], true);
    let check = |endpoint: String| {
        let (tenants, model) = (tenants.clone(), &model);
        async move {
            for ((bucket, written), (_, ak, sk)) in model.iter().zip(&tenants) {
                let c = client_with(&endpoint, ak, sk);
                assert_eq!(get_body(&c, bucket, "before").await, data(5_000, 1));
                for (key, body) in written {
                    assert_eq!(&get_body(&c, bucket, key).await, body, "{bucket}/{key}");
                }
            }
        }
    };
    check(s.endpoint.clone()).await;
    drop(s);

    // The old version destroyed in the token: the store still opens, every object reads.
    let session = token_session(&conf);
    let old = session
        .find_objects(&[Attribute::Label(b"coffre-master-1".to_vec())])
        .unwrap();
    assert_eq!(old.len(), 1);
    session.destroy_object(old[0]).unwrap();
    drop(session);
    let s = start(&data_dir, &conf);
    let status = s.admin_json(&["keys", "status"]);
    assert_eq!(status["current_version"], "coffre-master-2");
    check(s.endpoint.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_provider_rotates_offline_only() {
    let s = Server::start();
    let status = s.admin_json(&["keys", "status"]);
    assert_eq!(status["provider"], "file");
    assert_eq!(status["store_key_current"], true);
    let (ok, _, err) = s.admin(&["keys", "rotate-master"]);
    assert!(!ok);
    assert!(err.contains("coffre rotate-master-key"), "{err}");
}

/// Which of `needles` the readable memory of process `pid` holds (read through
/// /proc/PID/mem, chunk by chunk).
fn memory_holds(pid: u32, needles: &[&[u8]]) -> Vec<bool> {
    use std::io::{Read, Seek, SeekFrom};
    const CHUNK: u64 = 8 << 20;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let overlap = needles.iter().map(|n| n.len()).max().unwrap_or(1) - 1;
    let mut found = vec![false; needles.len()];
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (range, perms) = (f.next().unwrap(), f.next().unwrap());
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (start, end) = (u64::from_str_radix(a, 16).unwrap(), u64::from_str_radix(b, 16).unwrap());
        let mut at = start;
        while at < end {
            let len = CHUNK.min(end - at);
            let mut buf = vec![0u8; len as usize];
            if mem.seek(SeekFrom::Start(at)).is_err() || mem.read_exact(&mut buf).is_err() {
                break;
            }
            for (i, n) in needles.iter().enumerate() {
                found[i] |= buf.windows(n.len()).any(|w| w == *n);
            }
            if at + len >= end {
                break;
            }
            // The chunks overlap by a needle's length less one: nothing is missed at a seam.
            at += len - overlap as u64;
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_store_moves_into_the_token_and_its_old_master_key_is_nowhere_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_token(dir.path());
    let (small, large, big) = (data(2_000, 7), data(3 << 20, 8), data(5 << 20, 9));
    let data = dir.path().join("data");

    // A store made with the file provider: objects of the root tenant and of a tenant, one
    // under a KMS key, a multipart one.
    let mut s = Server::start_at(&data, "127.0.0.1:0");
    let c = s.client();
    c.create_bucket().bucket("archives").send().await.unwrap();
    put(&c, "archives", "small", small.clone()).await;
    put(&c, "archives", "large", large.clone()).await;
    let parts = multipart_put(&c, "archives", "multi", &[&big, &small]).await;
    let (ak, sk) = s.tenant("hopital", &[]);
    let t = client_with(&s.endpoint, &ak, &sk);
    t.create_bucket().bucket("hopital-scans").send().await.unwrap();
    put(&t, "hopital-scans", "scan", large.clone()).await;
    let (ok, _, err) = s.admin(&["kms-key", "create", "--tenant", "hopital", "dossiers"]);
    assert!(ok, "{err}");
    t.put_object()
        .bucket("hopital-scans")
        .key("kms")
        .body(small.clone().into())
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id("dossiers")
        .send()
        .await
        .unwrap();
    s.kill();
    let master_text = std::fs::read_to_string(data.join("master.key")).unwrap();
    let master = hex::decode(master_text.trim()).unwrap();
    assert_eq!(master.len(), 32);

    let migrate = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_coffre"))
            .args([
                "admin",
                "keys",
                "migrate",
                "--to",
                "pkcs11",
                "--data",
                data.to_str().unwrap(),
            ])
            .args(&PROVIDER_ARGS[2..])
            .args(extra)
            .env("SOFTHSM2_CONF", &conf)
            .env("COFFRE_PKCS11_PIN", PIN)
            .env_remove("COFFRE_MASTER_KEY")
            .output()
            .unwrap()
    };
    let out = migrate(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 tenant keys"));
    assert!(!data.join("master.key").exists(), "the master key file is destroyed");
    assert!(data.join("store.key").exists());
    let again = migrate(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already in a security container"));
    // The file provider can no longer open the store.
    let err = refused(&data, &[], &[]);
    assert!(err.contains("security container"), "{err}");

    // Started with the token: everything reads, the tenant's secret still signs.
    let mut s = start(&data, &conf);
    let c = s.client();
    assert_eq!(get_body(&c, "archives", "small").await, small);
    assert_eq!(get_body(&c, "archives", "large").await, large);
    assert_eq!(get_body(&c, "archives", "multi").await, parts);
    let t = client_with(&s.endpoint, &ak, &sk);
    assert_eq!(get_body(&t, "hopital-scans", "scan").await, large);
    assert_eq!(get_body(&t, "hopital-scans", "kms").await, small);
    put(&t, "hopital-scans", "after", small.clone()).await;
    assert_eq!(get_body(&t, "hopital-scans", "after").await, small);

    // No copy of the old master key in the gateway's memory, raw or as its file's text; the
    // scan does find what is there (the root access key, from the environment).
    let found = memory_holds(
        s.child.id(),
        &[&master, master_text.trim().as_bytes(), ACCESS.as_bytes()],
    );
    assert_eq!(
        found,
        vec![false, false, true],
        "old master key found in memory (raw, hex), sanity"
    );
    s.kill();
}
