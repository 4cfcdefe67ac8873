//! The engine stays below the protocols: its manifest names no HTTP, XML or protocol crate.
//! (The HTTP/2 transport to storage nodes lives in `coffre-cluster`, behind `ShardStore`.)

#[test]
fn the_engine_knows_no_protocol() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let deps: Vec<&str> = manifest
        .lines()
        .skip_while(|l| l.trim() != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split(['.', '=', ' ']).next())
        .filter(|n| !n.is_empty())
        .collect();
    assert!(
        deps.contains(&"coffre-meta"),
        "dependencies not found in the manifest: {deps:?}"
    );
    for forbidden in [
        "hyper",
        "hyper-util",
        "http",
        "http-body-util",
        "quick-xml",
        "axum",
        "coffre-s3",
        "coffre-admin",
    ] {
        assert!(
            !deps.contains(&forbidden),
            "coffre-engine must not depend on {forbidden}"
        );
    }
}
