//! The metrics through the real binary: a load with known counts (PUTs, GETs, refusals by one
//! tenant, admin calls) is what the counters say, exactly; the latency histograms hold every
//! request, none slower than its client saw it; and the JSON logs give one line per request
//! with its id, tenant, operation, status, bytes and duration, and no object key.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// The value of the sample `name{labels}` (labels as rendered), if the scrape has it.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

fn count(body: &str, series: &str) -> u64 {
    sample(body, series).unwrap_or_else(|| panic!("no {series} in the scrape")) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_with_known_counts_is_what_the_counters_say() {
    let s = Server::start();
    let (ak, sk) = s.tenant("counted", &[]);
    let c = client_with(&s.endpoint, &ak, &sk);
    c.create_bucket().bucket("counted-bucket").send().await.unwrap();
    let body = data(1000, 7);
    let (puts, gets, misses) = (1000usize, 500usize, 20usize);
    // Each request's time as its client saw it, to hold the server's histogram against.
    let mut put_times = Vec::new();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (c, body) = (c.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for i in (w..puts).step_by(8) {
                let started = Instant::now();
                c.put_object()
                    .bucket("counted-bucket")
                    .key(format!("k{i}"))
                    .body(body.clone().into())
                    .send()
                    .await
                    .unwrap();
                times.push(started.elapsed());
            }
            times
        }));
    }
    for t in tasks {
        put_times.extend(t.await.unwrap());
    }
    for i in 0..gets {
        let got = c
            .get_object()
            .bucket("counted-bucket")
            .key(format!("k{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().len(), body.len());
    }
    for i in 0..misses {
        let e = c
            .get_object()
            .bucket("counted-bucket")
            .key(format!("missing-{i}"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.into_service_error().meta().code(), Some("NoSuchKey"));
    }
    for _ in 0..3 {
        s.admin_json(&["status"]);
    }
    // A client's own text never becomes a label value: an unknown IAM action is counted as one.
    for i in 0..3 {
        let (status, _) = query_api(&s, "iam", (&ak, &sk), &format!("Action=Invented{i}"));
        assert!(status >= 400);
    }
    let m = s.metrics();
    assert!(!m.contains("Invented"), "a client's action name became a label");
    assert_eq!(
        count(
            &m,
            &format!(
                "coffre_s3_requests_total{{operation=\"UnknownIamAction\",status=\"4xx\",{}}}",
                "tenant=\"counted\""
            )
        ),
        3
    );
    let t = "tenant=\"counted\"";
    assert_eq!(
        count(
            &m,
            &format!("coffre_s3_requests_total{{operation=\"PutObject\",status=\"2xx\",{t}}}")
        ),
        puts as u64
    );
    assert_eq!(
        count(
            &m,
            &format!("coffre_s3_requests_total{{operation=\"GetObject\",status=\"2xx\",{t}}}")
        ),
        gets as u64
    );
    assert_eq!(
        count(
            &m,
            &format!("coffre_s3_requests_total{{operation=\"GetObject\",status=\"4xx\",{t}}}")
        ),
        misses as u64
    );
    assert_eq!(
        count(
            &m,
            &format!("coffre_s3_requests_total{{operation=\"CreateBucket\",status=\"2xx\",{t}}}")
        ),
        1
    );
    assert_eq!(
        count(&m, "coffre_s3_errors_total{operation=\"GetObject\",code=\"NoSuchKey\"}"),
        misses as u64
    );
    assert_eq!(
        count(
            &m,
            &format!("coffre_s3_received_bytes_total{{operation=\"PutObject\",{t}}}")
        ),
        (puts * body.len()) as u64
    );
    assert_eq!(
        count(
            &m,
            &format!("coffre_s3_sent_bytes_total{{operation=\"GetObject\",{t}}}")
        ),
        (gets * body.len()) as u64
    );
    assert_eq!(
        count(
            &m,
            "coffre_admin_requests_total{operation=\"StatusGet\",status=\"2xx\"}"
        ),
        3
    );

    // The histogram holds every PUT, and at every bound at least as many as the client saw
    // under it: the server's time of a request is within the client's.
    let h = "coffre_s3_request_duration_seconds";
    let labels = "operation=\"PutObject\",status=\"2xx\"";
    assert_eq!(count(&m, &format!("{h}_count{{{labels}}}")), puts as u64);
    assert_eq!(count(&m, &format!("{h}_bucket{{{labels},le=\"+Inf\"}}")), puts as u64);
    let mut bounds = 0;
    for line in m
        .lines()
        .filter(|l| l.starts_with(&format!("{h}_bucket{{{labels},le=\"")))
    {
        let le = line.split("le=\"").nth(1).and_then(|r| r.split('"').next()).unwrap();
        let Some(bound) = le.parse::<f64>().ok().filter(|b| b.is_finite()) else {
            continue;
        };
        let server: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let client = put_times
            .iter()
            .filter(|d| **d <= Duration::from_secs_f64(bound))
            .count() as u64;
        assert!(
            server >= client,
            "le={le}: the server counts {server}, its clients saw {client}"
        );
        bounds += 1;
    }
    assert!(bounds >= 10, "{bounds} bounds");
    let sum = sample(&m, &format!("{h}_sum{{{labels}}}")).unwrap();
    let client_sum: f64 = put_times.iter().map(Duration::as_secs_f64).sum();
    assert!(sum > 0.0 && sum <= client_sum, "server {sum} s, clients {client_sum} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_and_no_object_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let file = std::fs::File::create(&log).unwrap();
    let data_dir = dir.path().join("data");
    let mut s = Server::start_logging_to(
        &data_dir,
        "127.0.0.1:0",
        &["--log-format", "json"],
        &[("RUST_LOG", "warn,coffre::access=info")],
        file.into(),
    );
    let c = s.client();
    c.create_bucket().bucket("logged").send().await.unwrap();
    put(&c, "logged", "a-very-private-key-name", data(5000, 3)).await;
    let e = c
        .get_object()
        .bucket("logged")
        .key("nothing-here")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.into_service_error().meta().code(), Some("NoSuchKey"));
    s.kill();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let access: Vec<&serde_json::Value> = lines.iter().filter(|l| l["target"] == "coffre::access").collect();
    let put_line = access
        .iter()
        .find(|l| l["operation"] == "PutObject")
        .unwrap_or_else(|| panic!("no PutObject line in {text}"));
    assert_eq!(put_line["status"], 200);
    assert_eq!(put_line["tenant"], "default");
    assert_eq!(put_line["bucket"], "logged");
    assert_eq!(put_line["bytes_in"], 5000);
    assert!(put_line["duration_ms"].as_f64().is_some());
    assert_eq!(put_line["request_id"].as_str().map(str::len), Some(24));
    let miss = access.iter().find(|l| l["operation"] == "GetObject").unwrap();
    assert_eq!(
        (miss["status"].as_u64(), miss["error"].as_str()),
        (Some(404), Some("NoSuchKey"))
    );
    // One line per request (CreateBucket, PutObject, GetObject), and no key anywhere.
    assert_eq!(access.len(), 3, "{text}");
    assert!(
        !text.contains("a-very-private-key-name") && !text.contains("nothing-here"),
        "{text}"
    );
}

/// Every sample of `name` (any labels): (labels, value).
fn samples<'a>(body: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            (labels.is_empty() || labels.starts_with('{')).then(|| (labels, value.parse().unwrap_or(f64::NAN)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_describes_the_data_path_the_nodes_the_tenants_and_the_process() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("seen").send().await.unwrap();
    let (small, large) = (data(2_000, 1), data(3 << 20, 2));
    put(&c, "seen", "small", small.clone()).await;
    put(&c, "seen", "large", large.clone()).await;
    assert_eq!(get_body(&c, "seen", "large").await, large);
    let m = s.metrics();

    // Prometheus' own linter accepts the whole scrape (format, names, help, types).
    let mut lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/test.sh installs Debian's prometheus)");
    use std::io::Write;
    lint.stdin.take().unwrap().write_all(m.as_bytes()).unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The data path: one part inlined, one stored as shards on the six stores, read back.
    assert_eq!(count(&m, "coffre_parts_written_total{kind=\"inline\"}"), 1);
    assert_eq!(count(&m, "coffre_parts_written_total{kind=\"sharded\"}"), 1);
    let writes: Vec<_> = samples(&m, "coffre_shard_writes_total");
    assert_eq!(
        writes
            .iter()
            .filter(|(l, v)| l.contains("result=\"ok\"") && *v >= 1.0)
            .count(),
        6,
        "{writes:?}"
    );
    let reads: f64 = samples(&m, "coffre_shard_reads_total")
        .iter()
        .filter(|(l, _)| l.contains("result=\"ok\""))
        .map(|(_, v)| v)
        .sum();
    assert!(reads >= 4.0, "{reads} shard reads");
    assert!(count(&m, "coffre_erasure_encode_seconds_count") >= 1);
    assert_eq!(samples(&m, "coffre_shard_write_seconds_count").len(), 6);
    // The nodes, where they are, what they hold.
    assert_eq!(samples(&m, "coffre_store_info").len(), 6);
    assert_eq!(
        samples(&m, "coffre_store_up").iter().filter(|(_, v)| *v == 1.0).count(),
        6
    );
    assert!(!samples(&m, "coffre_site_used_bytes").is_empty());
    // The tenant's usage, from its counters.
    assert_eq!(
        count(&m, "coffre_tenant_used_bytes{tenant=\"default\"}"),
        (small.len() + large.len()) as u64
    );
    assert_eq!(count(&m, "coffre_tenant_objects{tenant=\"default\"}"), 2);
    // The process.
    assert!(count(&m, "process_resident_memory_bytes") > 1 << 20);
    assert!(count(&m, "process_open_fds") > 10);
    assert!(count(&m, "coffre_tokio_alive_tasks") > 0);
    assert!(count(&m, "coffre_s3_open_connections") >= 1);
    // The audit's group commits hold every entry written.
    let entries = count(&m, "coffre_audit_entries_total");
    let batches = samples(&m, "coffre_audit_group_commit_events_sum");
    assert_eq!(batches.len(), 1);
    assert!(batches[0].1 as u64 <= entries && entries > 0);
}
