//! The master key in a KMIP server: PyKMIP's server (from PyPI, scripts/test.sh installs it)
//! with certificates this test makes, the real server started with `--key-provider kmip`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kmip {
    child: Child,
    port: u16,
    conf: PathBuf,
    log: PathBuf,
}

impl Kmip {
    /// Starts PyKMIP's server on `port` with its database and configuration in `dir`.
    fn start(dir: &Path, port: u16) -> Kmip {
        let conf = dir.join("server.conf");
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        std::fs::write(
            &conf,
            format!(
                "[server]\nhostname=127.0.0.1\nport={port}\ncertificate_path={d}/server.pem\nkey_path={d}/server.key\n\
                 ca_path={d}/ca.pem\nauth_suite=TLS1.2\npolicy_path={d}/policies\nenable_tls_client_auth=True\n\
                 logging_level=INFO\ndatabase_path={d}/pykmip.db\n",
                d = dir.display()
            ),
        )
        .unwrap();
        Kmip::run(conf, dir.join("server.log"), port)
    }

    fn run(conf: PathBuf, log: PathBuf, port: u16) -> Kmip {
        use std::os::unix::process::CommandExt;
        // A process group of its own: the server forks a process per client session, and
        // every one of them is ended with it.
        let child = Command::new("python3")
            .process_group(0)
            .args(["-m", "kmip.services.server.server", "-f"])
            .arg(&conf)
            .arg("-l")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with PyKMIP (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "PyKMIP's server did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Kmip { child, port, conf, log }
    }

    fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.stop();
        *self = Kmip::run(self.conf.clone(), self.log.clone(), self.port);
    }
}

impl Drop for Kmip {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA, the KMIP server's certificate (127.0.0.1) and Coffre's client certificate, as PEM
/// files in `dir`.
fn certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(vec![]).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "kmip test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    for (name, cn, usage) in [
        ("server", "127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth),
        ("client", "coffre", ExtendedKeyUsagePurpose::ClientAuth),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

fn start(data: &Path, certs: &Path, port: u16, cache_secs: &str) -> Server {
    let endpoint = format!("127.0.0.1:{port}");
    let file = |n: &str| certs.join(n).to_str().unwrap().to_string();
    let (cert, key, ca) = (file("client.pem"), file("client.key"), file("ca.pem"));
    Server::start_with(
        data,
        "127.0.0.1:0",
        &[
            "--key-provider",
            "kmip",
            "--kmip-endpoint",
            &endpoint,
            "--kmip-cert",
            &cert,
            "--kmip-key",
            &key,
            "--kmip-ca",
            &ca,
            "--key-cache-seconds",
            cache_secs,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_master_key_is_in_a_kmip_server_survives_restarts_and_its_absence() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("kmip");
    std::fs::create_dir_all(&certs).unwrap();
    certificates(&certs);
    let port = free_port();
    let mut kmip = Kmip::start(&certs, port);
    let data_dir = dir.path().join("data");
    let body = data(400_000, 3);

    let mut s = start(&data_dir, &certs, port, "300");
    assert!(!data_dir.join("master.key").exists());
    assert!(data_dir.join("store.key").exists());
    let (ak, sk) = s.tenant("archives", &[]);
    let t = client_with(&s.endpoint, &ak, &sk);
    t.create_bucket().bucket("archives-2026").send().await.unwrap();
    put(&t, "archives-2026", "acte", body.clone()).await;
    let status = s.admin_json(&["keys", "status"]);
    assert_eq!(status["provider"], "kmip");
    assert_eq!(status["current_version"], "coffre-master-1");
    s.kill();

    // Restarted with a short cache: the KMIP server unwraps the keys again.
    let s = start(&data_dir, &certs, port, "1");
    let t = client_with(&s.endpoint, &ak, &sk);
    assert_eq!(get_body(&t, "archives-2026", "acte").await, body);

    // The KMIP server away: what needs a key not in memory fails with 503, not a fallback.
    kmip.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = t
        .get_object()
        .bucket("archives-2026")
        .key("acte")
        .send()
        .await
        .expect_err("read without the key provider");
    let raw = err.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 503, "{err:?}");
    assert_eq!(err.into_service_error().meta().code(), Some("ServiceUnavailable"));
    let (ok, _, e) = s.admin(&["tenant", "create", "greffe"]);
    assert!(!ok, "a tenant made without the key provider");
    assert!(e.contains("unavailable"), "{e}");
    // …and the refusal is in the audit log.
    let found = s.admin_json(&["audit", "search", "--tenant", "archives", "--op", "GetObject"]);
    let refused: Vec<_> = found["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == 503)
        .collect();
    // (The SDK retries a 503: each attempt is its own entry.)
    assert!(!refused.is_empty(), "{found}");
    assert!(refused.iter().all(|e| e["error"] == "ServiceUnavailable"), "{found}");

    // Back: served again without a restart of Coffre.
    kmip.restart();
    assert_eq!(get_body(&t, "archives-2026", "acte").await, body);
    s.admin_json(&["tenant", "create", "greffe"]);

    // Rotation online works against KMIP as against a token.
    let (ok, out, e) = s.admin(&["keys", "rotate-master", "--wait"]);
    assert!(ok, "{e}");
    assert!(out.contains("rotation done"), "{out}");
    let status = s.admin_json(&["keys", "status"]);
    assert_eq!(status["current_version"], "coffre-master-2");
    assert_eq!(status["tenants"], status["tenants_current"]);
    assert_eq!(get_body(&t, "archives-2026", "acte").await, body);
}
