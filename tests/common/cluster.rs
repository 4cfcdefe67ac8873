//! A cluster on 127.0.0.1 for tests: `coffre node` processes with identities from a test CA,
//! and `coffre admin` run against a gateway.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn coffre(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coffre")).args(args).output().unwrap()
}

pub fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Node {
    pub id: String,
    pub country: &'static str,
    pub data: PathBuf,
    pub identity: PathBuf,
    pub addr: String,
    pub child: Option<Child>,
}

impl Node {
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// Starts the node with more `coffre node` arguments.
    pub fn start_with(&mut self, extra: &[&str]) {
        let listen = if self.addr.is_empty() {
            "127.0.0.1:0".to_string()
        } else {
            self.addr.clone()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_coffre"))
            .args([
                "node",
                "--data",
                self.data.to_str().unwrap(),
                "--listen",
                &listen,
                "--identity",
                self.identity.to_str().unwrap(),
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            // Revocations, if the test writes some (re-read on every change).
            .env("COFFRE_REVOKED", self.data.with_extension("revoked"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        self.addr = line.trim().rsplit("https://").next().unwrap().to_string();
        std::thread::spawn(move || {
            let mut s = String::new();
            while out.read_line(&mut s).map(|n| n > 0).unwrap_or(false) {}
        });
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn issue_identity(root: &Path, ca: &Path, id: &str, cc: &str, site: &str) -> PathBuf {
    issue_with_serial(root, ca, id, cc, site).0
}

/// As `issue_identity`, also returning the certificate's serial (what revocations name).
pub fn issue_with_serial(root: &Path, ca: &Path, id: &str, cc: &str, site: &str) -> (PathBuf, String) {
    let out = root.join(format!("id-{id}"));
    let (ca, out_s) = (ca.to_str().unwrap(), out.to_str().unwrap());
    let role = if id.starts_with("gw") { "gateway" } else { "node" };
    let args = [
        "admin",
        "node-identity",
        "--ca",
        ca,
        "--id",
        id,
        "--country",
        cc,
        "--site",
        site,
        "--zone",
        "z1",
        "--role",
        role,
    ];
    let printed = ok(coffre(&[&args[..], &["--out", out_s]].concat()));
    let serial = printed
        .rsplit("(serial ")
        .next()
        .and_then(|s| s.split(')').next())
        .unwrap_or_default()
        .to_string();
    (out, serial)
}

/// `coffre admin <command…> --endpoint … --token … <args…>`.
pub fn admin_cmd(endpoint: &str, token: &str, command: &[&str], args: &[&str]) -> String {
    let mut cmd = vec!["admin"];
    cmd.extend_from_slice(command);
    cmd.extend_from_slice(&["--endpoint", endpoint, "--token", token.trim()]);
    cmd.extend_from_slice(args);
    ok(coffre(&cmd))
}

pub fn new_node(root: &Path, ca: &Path, id: &str, cc: &'static str, site: &str) -> Node {
    let identity = issue_identity(root, ca, id, cc, site);
    let mut n = Node {
        id: id.into(),
        country: cc,
        data: root.join(format!("data-{id}")),
        identity,
        addr: String::new(),
        child: None,
    };
    n.start();
    n
}

/// A test CA, storage nodes `fr-1..=n` in France spread over `sites` sites (`site{i % sites}`),
/// and a gateway `gw-1` using them, started with `gw_args` besides its configuration: (the CA's
/// directory, the nodes, the gateway).
pub fn fr_cluster(root: &Path, n: usize, sites: usize, gw_args: &[&str]) -> (PathBuf, Vec<Node>, super::Server) {
    let ca = root.join("ca");
    ok(coffre(&["admin", "ca", "init", "--out", ca.to_str().unwrap()]));
    let nodes: Vec<Node> = (1..=n)
        .map(|i| new_node(root, &ca, &format!("fr-{i}"), "FR", &format!("site{}", i % sites)))
        .collect();
    let gw_id = issue_identity(root, &ca, "gw-1", "FR", "site0");
    let cfg = gateway_config(root, &ca, &gw_id, &nodes, "");
    let mut args = vec!["--config", cfg.to_str().unwrap()];
    args.extend_from_slice(gw_args);
    let gw = super::Server::start_with(&root.join("gw"), "127.0.0.1:0", &args);
    (ca, nodes, gw)
}

/// A gateway's configuration file naming `nodes` (and `regions`, TOML, appended).
pub fn gateway_config(root: &Path, ca: &Path, identity: &Path, nodes: &[Node], regions: &str) -> PathBuf {
    let mut toml = format!(
        "[cluster]\nca = \"{}\"\nidentity = \"{}\"\n",
        ca.display(),
        identity.display()
    );
    for n in nodes {
        toml.push_str(&format!("[[nodes]]\naddress = \"https://{}\"\n", n.addr));
    }
    toml.push_str(regions);
    let cfg = root.join("gateway.toml");
    std::fs::write(&cfg, &toml).unwrap();
    cfg
}
