use super::*;

fn routed(method: &str, path: &str, query: &str, headers: &[(&str, &str)]) -> Result<Routed, S3Error> {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    route(&Method::from_bytes(method.as_bytes()).unwrap(), &h, path, query, None)
}

fn name(method: &str, path: &str, query: &str, headers: &[(&str, &str)]) -> String {
    match routed(method, path, query, headers) {
        Ok(r) => r.op.name().to_string(),
        Err(e) => e.code.to_string(),
    }
}

const COPY: &[(&str, &str)] = &[("x-amz-copy-source", "/a/b")];

/// A request (method, path, query, headers) and the operation it is.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// One request per operation (and the near misses), as clients send them.
#[test]
fn every_operation_is_reached_by_its_request() {
    let cases: &[Case] = &[
        ("GET", "/", "", &[], "ListBuckets"),
        ("PUT", "/", "", &[], "MethodNotAllowed"),
        ("PUT", "/b", "", &[], "CreateBucket"),
        ("HEAD", "/b", "", &[], "HeadBucket"),
        ("DELETE", "/b", "", &[], "DeleteBucket"),
        ("GET", "/b", "location", &[], "GetBucketLocation"),
        ("GET", "/b", "versioning", &[], "GetBucketVersioning"),
        ("PUT", "/b", "versioning", &[], "PutBucketVersioning"),
        ("GET", "/b", "versions&prefix=a", &[], "ListObjectVersions"),
        ("PUT", "/b", "lifecycle", &[], "PutBucketLifecycleConfiguration"),
        ("GET", "/b", "lifecycle", &[], "GetBucketLifecycleConfiguration"),
        ("DELETE", "/b", "lifecycle", &[], "DeleteBucketLifecycle"),
        ("GET", "/b", "object-lock", &[], "GetObjectLockConfiguration"),
        ("PUT", "/b", "object-lock", &[], "PutObjectLockConfiguration"),
        ("GET", "/b/k", "retention", &[], "GetObjectRetention"),
        ("PUT", "/b/k", "retention", &[], "PutObjectRetention"),
        ("GET", "/b/k", "legal-hold", &[], "GetObjectLegalHold"),
        ("PUT", "/b/k", "legal-hold", &[], "PutObjectLegalHold"),
        ("PUT", "/b", "cors", &[], "PutBucketCors"),
        ("GET", "/b", "cors", &[], "GetBucketCors"),
        ("DELETE", "/b", "cors", &[], "DeleteBucketCors"),
        ("PUT", "/b", "encryption", &[], "PutBucketEncryption"),
        ("GET", "/b", "encryption", &[], "GetBucketEncryption"),
        ("DELETE", "/b", "encryption", &[], "DeleteBucketEncryption"),
        ("PUT", "/b", "ownershipControls", &[], "PutBucketOwnershipControls"),
        ("GET", "/b", "ownershipControls", &[], "GetBucketOwnershipControls"),
        (
            "DELETE",
            "/b",
            "ownershipControls",
            &[],
            "DeleteBucketOwnershipControls",
        ),
        ("GET", "/b/k", "attributes", &[], "GetObjectAttributes"),
        ("PUT", "/b", "policy", &[], "PutBucketPolicy"),
        ("GET", "/b", "policy", &[], "GetBucketPolicy"),
        ("DELETE", "/b", "policy", &[], "DeleteBucketPolicy"),
        ("GET", "/b", "policyStatus", &[], "GetBucketPolicyStatus"),
        ("GET", "/b", "acl", &[], "GetBucketAcl"),
        ("PUT", "/b", "acl", &[], "PutBucketAcl"),
        ("GET", "/b/k", "acl", &[], "GetObjectAcl"),
        ("PUT", "/b/k", "acl", &[], "PutObjectAcl"),
        ("GET", "/b", "tagging", &[], "NotImplemented"),
        ("PUT", "/b", "tagging", &[], "NotImplemented"),
        ("GET", "/b", "uploads", &[], "ListMultipartUploads"),
        ("GET", "/b", "list-type=2&prefix=x", &[], "ListObjectsV2"),
        ("GET", "/b", "prefix=x", &[], "ListObjects"),
        ("GET", "/b", "", &[], "ListObjects"),
        ("POST", "/b", "delete", &[], "DeleteObjects"),
        ("POST", "/b", "", &[], "NotImplemented"),
        ("PUT", "/b/k", "tagging", &[], "PutObjectTagging"),
        ("GET", "/b/k", "tagging", &[], "GetObjectTagging"),
        ("DELETE", "/b/k", "tagging", &[], "DeleteObjectTagging"),
        ("POST", "/b/k", "uploads", &[], "CreateMultipartUpload"),
        ("POST", "/b/k", "uploadId=u", &[], "CompleteMultipartUpload"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", COPY, "UploadPartCopy"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", &[], "UploadPart"),
        ("DELETE", "/b/k", "uploadId=u", &[], "AbortMultipartUpload"),
        ("GET", "/b/k", "uploadId=u", &[], "ListParts"),
        ("PUT", "/b/k", "", COPY, "CopyObject"),
        ("PUT", "/b/k", "", &[], "PutObject"),
        ("GET", "/b/k", "", &[], "GetObject"),
        ("GET", "/b/k", "versionId=1&response-content-type=a", &[], "GetObject"),
        ("HEAD", "/b/k", "partNumber=1", &[], "HeadObject"),
        ("DELETE", "/b/k", "versionId=1", &[], "DeleteObject"),
        ("PATCH", "/b/k", "", &[], "NotImplemented"),
        ("GET", "//k", "", &[], "InvalidBucketName"),
        ("GET", "/b/k", "website", &[], "NotImplemented"),
        ("GET", "/b/k", "cors", &[], "NotImplemented"),
    ];
    let mut reached = std::collections::BTreeSet::new();
    for (method, path, query, headers, want) in cases {
        assert_eq!(name(method, path, query, headers), *want, "{method} {path}?{query}");
        reached.insert(*want);
    }
    // Every declared operation is reachable (none is shadowed by one declared before it).
    for op in Op::ALL {
        assert!(reached.contains(op.name()), "{} is reached by no request", op.name());
    }
}

#[test]
fn the_table_is_consistent() {
    let mut names = std::collections::BTreeSet::new();
    for op in Op::ALL {
        let spec = op.spec();
        assert!(names.insert(spec.name), "{} declared twice", spec.name);
        for action in spec.action.iter().chain(&spec.version_action) {
            assert!(action.starts_with("s3:"), "{}: {action}", spec.name);
        }
        assert!(
            spec.action.is_some() || spec.name == "DeleteObjects",
            "{} has no action",
            spec.name
        );
        for (header, action) in spec.header_actions {
            assert!(
                header.starts_with("x-amz-") && action.starts_with("s3:"),
                "{}",
                spec.name
            );
        }
        // The S3 API names an operation by what it acts on.
        let on_object = spec.name.contains("Object") && !spec.name.contains("Objects")
            || [
                "UploadPart",
                "UploadPartCopy",
                "CreateMultipartUpload",
                "CompleteMultipartUpload",
                "AbortMultipartUpload",
                "ListParts",
            ]
            .contains(&spec.name);
        let excepted = [
            "PutObjectLockConfiguration",
            "GetObjectLockConfiguration",
            "ListObjectVersions",
        ];
        if !excepted.contains(&spec.name) {
            assert_eq!(spec.resource == router::Resource::Object, on_object, "{}", spec.name);
        }
    }
}

#[test]
fn versions_and_headers_call_for_their_own_actions() {
    let r = routed("GET", "/b/k", "versionId=x", &[]).unwrap();
    assert_eq!(r.op.action(true), Some("s3:GetObjectVersion"));
    assert_eq!(r.op.action(false), Some("s3:GetObject"));
    assert!(matches!(r.op.target(&r.bucket, &r.key), Target::Object("b", "k")));
    let r = routed("GET", "/b/k", "retention&versionId=x", &[]).unwrap();
    assert_eq!(r.op.action(true), Some("s3:GetObjectRetention"));
    let headers = [
        ("x-amz-tagging", "a=b"),
        ("x-amz-object-lock-mode", "COMPLIANCE"),
        ("x-amz-object-lock-retain-until-date", "2099-01-01T00:00:00Z"),
        ("x-amz-object-lock-legal-hold", "ON"),
    ];
    for op in ["PutObject", "CopyObject", "CreateMultipartUpload"] {
        let (method, query, extra): (&str, &str, &[(&str, &str)]) = match op {
            "PutObject" => ("PUT", "", &[]),
            "CopyObject" => ("PUT", "", COPY),
            _ => ("POST", "uploads", &[]),
        };
        let all: Vec<(&str, &str)> = headers.iter().chain(extra).copied().collect();
        let r = routed(method, "/b/k", query, &all).unwrap();
        assert_eq!(r.op.name(), op);
        let mut h = HeaderMap::new();
        for (k, v) in &all {
            h.insert(*k, v.parse().unwrap());
        }
        let wanted: std::collections::BTreeSet<&str> = r.op.header_actions(&h).collect();
        assert_eq!(
            wanted,
            ["s3:PutObjectTagging", "s3:PutObjectRetention", "s3:PutObjectLegalHold"].into(),
            "{op}"
        );
    }
    // A lock-enabled bucket needs the lock configuration's action; `false` does not.
    let mut h = HeaderMap::new();
    h.insert("x-amz-bucket-object-lock-enabled", "true".parse().unwrap());
    let r = route(&Method::PUT, &h, "/b", "", None).unwrap();
    assert!(matches!(r.op.target(&r.bucket, &r.key), Target::NewBucket("b")));
    assert!(r
        .op
        .header_actions(&h)
        .any(|a| a == "s3:PutBucketObjectLockConfiguration"));
    h.insert("x-amz-bucket-object-lock-enabled", "false".parse().unwrap());
    assert_eq!(r.op.header_actions(&h).count(), 0);
}

proptest::proptest! {
    /// Any method, path, query and host: an operation or an S3 error, never a panic.
    #[test]
    fn routing_never_panics(method in "GET|PUT|POST|DELETE|HEAD|PATCH|[A-Z]{1,7}",
                            path in "/[ -~]{0,60}|/%[0-9A-Fa-f]{0,2}[ -~]{0,10}",
                            query in "[ -~]{0,80}",
                            host in "[a-z0-9.:-]{0,30}",
                            domain in proptest::option::of("[a-z.]{1,12}")) {
        let Ok(m) = Method::from_bytes(method.as_bytes()) else { return Ok(()) };
        let mut h = HeaderMap::new();
        if let Ok(v) = host.parse() {
            h.insert("host", v);
        }
        if let Ok(r) = route(&m, &h, &path, &query, domain.as_deref()) {
            // What it matched fits what it names.
            let spec = r.op.spec();
            proptest::prop_assert_eq!(spec.method, m.as_str());
            proptest::prop_assert_eq!(spec.resource == router::Resource::Object, !r.key.is_empty());
        }
    }
}

#[test]
fn long_keys_are_refused() {
    let long = format!("/b/{}", "k".repeat(1025));
    assert_eq!(name("GET", &long, "", &[]), "KeyTooLongError");
}
