//! The admin API as a published contract, through the real binary: the OpenAPI document it
//! serves is docs/admin-api.json, every call the document lists is routed, every `--json`
//! answer of the CLI the document names matches its schema, and refusals carry a stable code
//! with the status that fits (never a 500 for a client's mistake).

mod common;

use common::*;

fn error_code(status_body: &(u16, String)) -> (u16, String) {
    let v: serde_json::Value = serde_json::from_str(&status_body.1)
        .unwrap_or_else(|e| panic!("an error body is JSON ({e}): {}", status_body.1));
    (status_body.0, v["code"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_published_one_and_every_call_in_it_is_routed() {
    let s = Server::start();
    let (status, body) = s.admin_call("GET", "/v1/openapi.json", b"");
    assert_eq!(status, 200);
    let served: serde_json::Value = serde_json::from_str(&body).expect("the document is JSON");
    assert_eq!(
        &served,
        openapi(),
        "GET /v1/openapi.json differs from docs/admin-api.json"
    );
    assert_eq!(served["openapi"], "3.1.0");

    // Every documented call answers (with a refusal where the dummy arguments name nothing),
    // never "unknown endpoint", never "method not allowed", never a 500.
    let mut calls = 0;
    for (path, methods) in served["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let target = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "no-such-thing" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let (status, body) = s.admin_call(&method.to_uppercase(), &target, b"");
            assert!(
                status != 404 || !body.contains("UnknownEndpoint"),
                "{method} {path} is documented but not routed"
            );
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(status < 500 || status == 503, "{method} {path}: {status} {body}");
            calls += 1;
        }
    }
    assert!(calls >= 40, "the document lists {calls} calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_answer_of_the_cli_matches_its_schema() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("docs").send().await.unwrap();
    put(&c, "docs", "a.txt", data(300_000, 1)).await;
    s.tenant("acme", &["--quota-bytes", "1000000"]);
    s.admin_json(&["user", "create", "--tenant", "acme", "alice"]);
    s.admin(&["key", "create", "--tenant", "acme", "--user", "alice"]);
    // Each of these goes through common::check_against_openapi (admin_json), which fails on
    // any difference with the schema; here each must also be one the document names.
    let commands: &[&[&str]] = &[
        &["status"],
        &["placement", "docs", "a.txt"],
        &["audit", "residency", "docs"],
        &["audit", "verify"],
        &["audit", "search", "--limit", "5"],
        &["scrub", "status"],
        &["workers", "list"],
        &["tenant", "list"],
        &["tenant", "show", "acme"],
        &["user", "list", "--tenant", "acme"],
        &["key", "list", "--tenant", "acme"],
    ];
    for args in commands {
        assert!(
            cli_answer_schema(args).is_some(),
            "the document names no call for {args:?}"
        );
        s.admin_json(args);
    }
    // The check itself catches a difference: an answer missing a required field fails.
    let mut status = s.admin_json(&["status"]);
    status.as_object_mut().unwrap().remove("nodes_up");
    let caught = std::panic::catch_unwind(|| check_against_openapi(&["status"], &status));
    assert!(caught.is_err(), "an answer without nodes_up passed the schema check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_a_stable_code_and_the_status_that_fits() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("kept").send().await.unwrap();
    let cases: &[(&str, &str, &[u8], u16, &str)] = &[
        ("GET", "/v1/no-such-call", b"", 404, "UnknownEndpoint"),
        ("DELETE", "/v1/status", b"", 405, "MethodNotAllowed"),
        ("GET", "/v1/placement?bucket=kept", b"", 400, "InvalidRequest"),
        ("GET", "/v1/placement?bucket=kept&key=nothing", b"", 404, "NoSuchObject"),
        ("GET", "/v1/audit/residency?bucket=nope", b"", 404, "NoSuchBucket"),
        (
            "PUT",
            "/v1/buckets/kept/policy?countries=France",
            b"",
            422,
            "InvalidArgument",
        ),
        (
            "PUT",
            "/v1/buckets/kept/policy?scheme=banana",
            b"",
            422,
            "InvalidArgument",
        ),
        (
            "PUT",
            "/v1/buckets/kept/quota?quota_bytes=lots",
            b"",
            400,
            "InvalidRequest",
        ),
        ("GET", "/v1/tenants/nobody", b"", 404, "NoSuchEntity"),
        ("POST", "/v1/nodes/ghost/drain", b"", 404, "NoSuchNode"),
        ("PUT", "/v1/workers/ghost?rate=1", b"", 404, "NoSuchWorker"),
        ("PUT", "/v1/workers/gc?tranquility=5000", b"", 422, "InvalidArgument"),
        ("PUT", "/v1/workers/gc", b"", 400, "InvalidRequest"),
        ("GET", "/v1/meta", b"", 409, "NotReplicated"),
        (
            "POST",
            "/v1/nodes?address=https://127.0.0.1:1",
            b"",
            409,
            "NotAClusterGateway",
        ),
        (
            "PUT",
            "/v1/tenants/default/roles/r",
            b"{not json",
            400,
            "InvalidRequest",
        ),
        (
            "PUT",
            "/v1/tenants/default/roles/r",
            br#"{"claims": {}}"#,
            422,
            "InvalidArgument",
        ),
    ];
    for (method, target, body, status, code) in cases {
        let got = error_code(&s.admin_call(method, target, body));
        assert_eq!(got, (*status, code.to_string()), "{method} {target}");
    }
    // The tenant that owns a bucket cannot go without --erase: a conflict, said by the CLI.
    s.tenant("owner", &[]);
    let (ak, sk) = s.tenant("holder", &[]);
    client_with(&s.endpoint, &ak, &sk)
        .create_bucket()
        .bucket("held")
        .send()
        .await
        .unwrap();
    let (ok, _, err) = s.admin(&["tenant", "delete", "holder"]);
    assert!(!ok);
    assert!(err.contains("admin API: 409:") && err.contains("[Conflict]"), "{err}");
    // Without the token: 401 with its code.
    let admin = s.admin_endpoint.trim_start_matches("http://").to_string();
    let (status, _, body) = raw_request(&admin, "GET", "/v1/status", &[("host".into(), admin.clone())], b"");
    assert_eq!(error_code(&(status, body)), (401, "Unauthorized".to_string()));
}
