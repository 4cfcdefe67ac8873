use super::*;
use proptest::prelude::*;

fn user(tenant: &str, name: &str) -> Principal {
    Principal::User {
        tenant: tenant.into(),
        name: name.into(),
        id: format!("AIDA{name}"),
        admin: false,
    }
}

fn bucket_policy(doc: &str) -> Policy {
    Policy::parse(doc, &PolicyKind::Bucket("docs".into())).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

fn identity(doc: &str) -> Policy {
    Policy::parse(doc, &PolicyKind::Identity).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

fn decide(p: &Policy, who: &Principal, action: &str, resource: &str, ctx: &Context) -> Decision {
    p.evaluate(&Request {
        action,
        resource,
        principal: who,
        context: ctx,
    })
}

/// Whether the document allows the request, to the caller or to its account.
fn allowed(p: &Policy, who: &Principal, action: &str, resource: &str, ctx: &Context) -> bool {
    let d = decide(p, who, action, resource, ctx);
    (d.allowed || d.account_allowed) && !d.denied
}

#[test]
fn public_read_bucket_policy() {
    let p = bucket_policy(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*",
            "Action":["s3:GetObject"],"Resource":"arn:aws:s3:::docs/*"}]}"#,
    );
    let ctx = Context::default();
    assert!(allowed(
        &p,
        &Principal::Anonymous,
        "s3:GetObject",
        "arn:aws:s3:::docs/a.pdf",
        &ctx
    ));
    assert!(!allowed(
        &p,
        &Principal::Anonymous,
        "s3:PutObject",
        "arn:aws:s3:::docs/a.pdf",
        &ctx
    ));
    assert!(!allowed(
        &p,
        &Principal::Anonymous,
        "s3:ListBucket",
        "arn:aws:s3:::docs",
        &ctx
    ));
    assert!(p.is_public());
}

#[test]
fn actions_match_case_insensitively_with_wildcards_and_not_action() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::docs/*"},
            {"Effect":"Allow","NotAction":["s3:Delete*","s3:Put*"],"Resource":"arn:aws:s3:::logs/*"}]}"#,
    );
    let u = user("t", "u");
    let ctx = Context::default();
    assert!(allowed(&p, &u, "s3:getobject", "arn:aws:s3:::docs/x", &ctx));
    assert!(allowed(&p, &u, "s3:GetObjectTagging", "arn:aws:s3:::docs/x", &ctx));
    assert!(!allowed(&p, &u, "s3:PutObject", "arn:aws:s3:::docs/x", &ctx));
    assert!(allowed(&p, &u, "s3:GetObject", "arn:aws:s3:::logs/x", &ctx));
    assert!(!allowed(&p, &u, "s3:DeleteObject", "arn:aws:s3:::logs/x", &ctx));
    assert!(!p.is_public());
}

/// A grant to an account is not a grant to the account's users: only naming them (or
/// everyone) is; the account's own policies delegate the rest.
#[test]
fn an_account_grant_is_told_apart_from_a_grant_to_the_caller() {
    let p = bucket_policy(
        r#"{"Statement":[
            {"Effect":"Allow","Principal":{"AWS":"t"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*"},
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::t:user/named"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::docs/*"},
            {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::docs"}]}"#,
    );
    let ctx = Context::default();
    let (named, other) = (user("t", "named"), user("t", "other"));
    let d = decide(&p, &other, "s3:GetObject", "arn:aws:s3:::docs/k", &ctx);
    assert_eq!((d.allowed, d.account_allowed), (false, true));
    let d = decide(&p, &other, "s3:PutObject", "arn:aws:s3:::docs/k", &ctx);
    assert_eq!(
        (d.allowed, d.account_allowed),
        (false, false),
        "another user is not named"
    );
    let d = decide(&p, &named, "s3:PutObject", "arn:aws:s3:::docs/k", &ctx);
    assert!(d.allowed, "named directly");
    let d = decide(&p, &other, "s3:ListBucket", "arn:aws:s3:::docs", &ctx);
    assert!(d.allowed, "everyone is named directly");
    let d = decide(
        &identity(r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#),
        &other,
        "s3:GetObject",
        "arn:aws:s3:::docs/k",
        &ctx,
    );
    assert!(d.allowed, "an identity policy names its holder");
}

#[test]
fn explicit_deny_wins() {
    let p = bucket_policy(
        r#"{"Statement":[
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::t:root"},"Action":"s3:*","Resource":["arn:aws:s3:::docs","arn:aws:s3:::docs/*"]},
            {"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::t:user/intern"]},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::docs/*"}]}"#,
    );
    let ctx = Context::default();
    let intern = user("t", "intern");
    assert!(allowed(&p, &intern, "s3:GetObject", "arn:aws:s3:::docs/k", &ctx));
    let d = decide(&p, &intern, "s3:DeleteObject", "arn:aws:s3:::docs/k", &ctx);
    assert!(d.account_allowed && d.denied);
    assert!(allowed(
        &p,
        &user("t", "boss"),
        "s3:DeleteObject",
        "arn:aws:s3:::docs/k",
        &ctx
    ));
    assert!(!allowed(
        &p,
        &user("other", "boss"),
        "s3:GetObject",
        "arn:aws:s3:::docs/k",
        &ctx
    ));
}

#[test]
fn not_principal_and_not_resource() {
    let p = bucket_policy(
        r#"{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::t:user/admin"},
            "Action":"s3:*","NotResource":"arn:aws:s3:::docs/public/*"}]}"#,
    );
    let ctx = Context::default();
    assert!(decide(&p, &user("t", "x"), "s3:GetObject", "arn:aws:s3:::docs/private/a", &ctx).denied);
    assert!(!decide(&p, &user("t", "x"), "s3:GetObject", "arn:aws:s3:::docs/public/a", &ctx).denied);
    assert!(
        !decide(
            &p,
            &user("t", "admin"),
            "s3:GetObject",
            "arn:aws:s3:::docs/private/a",
            &ctx
        )
        .denied
    );
}

#[test]
fn conditions_on_source_ip_transport_prefix_and_time() {
    let p = bucket_policy(
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*",
         "Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},"Bool":{"aws:SecureTransport":"true"}}},
        {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::docs",
         "Condition":{"StringLike":{"s3:prefix":["public/*",""]},"NumericLessThanEquals":{"s3:max-keys":"100"}}},
        {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::docs/*",
         "Condition":{"DateGreaterThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}]}"#,
    );
    let anon = Principal::Anonymous;
    let mut ctx = Context::default();
    ctx.set("aws:SourceIp", "10.1.2.3");
    ctx.set("aws:SecureTransport", "true");
    ctx.set("aws:CurrentTime", "2026-12-02T10:00:00Z");
    assert!(allowed(&p, &anon, "s3:GetObject", "arn:aws:s3:::docs/a", &ctx));
    ctx.set("aws:SourceIp", "::ffff:10.9.9.9");
    assert!(
        allowed(&p, &anon, "s3:GetObject", "arn:aws:s3:::docs/a", &ctx),
        "IPv4 seen as IPv6"
    );
    ctx.set("aws:SourceIp", "2001:db8:1::5");
    assert!(allowed(&p, &anon, "s3:GetObject", "arn:aws:s3:::docs/a", &ctx));
    ctx.set("aws:SourceIp", "192.168.1.1");
    assert!(!allowed(&p, &anon, "s3:GetObject", "arn:aws:s3:::docs/a", &ctx));
    ctx.set("aws:SourceIp", "10.1.2.3");
    ctx.set("aws:SecureTransport", "false");
    assert!(!allowed(&p, &anon, "s3:GetObject", "arn:aws:s3:::docs/a", &ctx));
    // Listing: only under public/, at most 100 keys a page.
    ctx.set("s3:prefix", "public/2026/");
    ctx.set("s3:max-keys", "50");
    assert!(allowed(&p, &anon, "s3:ListBucket", "arn:aws:s3:::docs", &ctx));
    ctx.set("s3:max-keys", "1000");
    assert!(!allowed(&p, &anon, "s3:ListBucket", "arn:aws:s3:::docs", &ctx));
    ctx.set("s3:max-keys", "10");
    ctx.set("s3:prefix", "private/");
    assert!(!allowed(&p, &anon, "s3:ListBucket", "arn:aws:s3:::docs", &ctx));
    // Time: after 2030 everything is denied.
    ctx.set("aws:SecureTransport", "true");
    ctx.set("aws:CurrentTime", "2031-01-01T00:00:00Z");
    assert!(!allowed(&p, &anon, "s3:GetObject", "arn:aws:s3:::docs/a", &ctx));
}

#[test]
fn missing_keys_negated_operators_if_exists_and_null() {
    let p = bucket_policy(
        r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::docs/*",
            "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"AES256"}}}]}"#,
    );
    let who = user("t", "u");
    let mut ctx = Context::default();
    // Absent header: a negated operator holds, so the write is denied (AWS's "require encryption").
    assert!(decide(&p, &who, "s3:PutObject", "arn:aws:s3:::docs/a", &ctx).denied);
    ctx.set("s3:x-amz-server-side-encryption", "AES256");
    assert!(!decide(&p, &who, "s3:PutObject", "arn:aws:s3:::docs/a", &ctx).denied);

    let q = identity(
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*",
            "Condition":{"StringEqualsIfExists":{"s3:delimiter":"/"},"Null":{"s3:prefix":"false"}}}]}"#,
    );
    let mut ctx = Context::default();
    assert!(
        !allowed(&q, &who, "s3:ListBucket", "arn:aws:s3:::b", &ctx),
        "s3:prefix absent"
    );
    ctx.set("s3:prefix", "x/");
    assert!(
        allowed(&q, &who, "s3:ListBucket", "arn:aws:s3:::b", &ctx),
        "delimiter absent: IfExists"
    );
    ctx.set("s3:delimiter", "|");
    assert!(!allowed(&q, &who, "s3:ListBucket", "arn:aws:s3:::b", &ctx));
}

#[test]
fn variables_in_resources_and_conditions() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"},
            {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::home",
             "Condition":{"StringLike":{"s3:prefix":"${aws:username}/*"}}}]}"#,
    );
    let alice = user("t", "alice");
    let mut ctx = Context::default();
    ctx.set("aws:username", "alice");
    assert!(allowed(&p, &alice, "s3:PutObject", "arn:aws:s3:::home/alice/x", &ctx));
    assert!(!allowed(&p, &alice, "s3:PutObject", "arn:aws:s3:::home/bob/x", &ctx));
    ctx.set("s3:prefix", "alice/docs/");
    assert!(allowed(&p, &alice, "s3:ListBucket", "arn:aws:s3:::home", &ctx));
    ctx.set("s3:prefix", "bob/");
    assert!(!allowed(&p, &alice, "s3:ListBucket", "arn:aws:s3:::home", &ctx));
}

#[test]
fn set_operators() {
    let p = identity(
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}}]}"#,
    );
    let who = user("t", "u");
    let mut ctx = Context::default();
    assert!(allowed(&p, &who, "s3:GetObject", "arn:aws:s3:::b/k", &ctx), "empty set");
    ctx.add("aws:TagKeys", "a");
    ctx.add("aws:TagKeys", "b");
    assert!(allowed(&p, &who, "s3:GetObject", "arn:aws:s3:::b/k", &ctx));
    ctx.add("aws:TagKeys", "c");
    assert!(!allowed(&p, &who, "s3:GetObject", "arn:aws:s3:::b/k", &ctx));
}

#[test]
fn malformed_documents_are_refused_with_the_fault_named() {
    let bucket = PolicyKind::Bucket("docs".into());
    let cases: &[(&str, &PolicyKind, &str)] = &[
        ("not json", &bucket, "valid JSON"),
        ("[]", &bucket, "first byte"),
        (
            r#"{"Version":"2012-10-17"}"#,
            &bucket,
            "Missing required field Statement",
        ),
        (r#"{"Version":"2020-01-01","Statement":[]}"#, &bucket, "Version"),
        (r#"{"Statement":[],"Foo":1}"#, &bucket, "Unknown field Foo"),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*"}]}"#,
            &bucket,
            "Missing required field Principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Permit","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*"}]}"#,
            &bucket,
            "Effect",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ec2:RunInstances","Resource":"arn:aws:s3:::docs/*"}]}"#,
            &bucket,
            "invalid action",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
            &bucket,
            "not in bucket 'docs'",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*"}]}"#,
            &bucket,
            "Invalid principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::t:group/g"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*"}]}"#,
            &bucket,
            "Invalid principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*","Condition":{"StringSimilar":{"s3:prefix":"a"}}}]}"#,
            &bucket,
            "Invalid Condition type",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}]}"#,
            &bucket,
            "CIDR",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*","Condition":{"StringEquals":{"ec2:Region":"x"}}}]}"#,
            &bucket,
            "invalid condition key",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}]}"#,
            &bucket,
            "ISO 8601",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}"#,
            &bucket,
            "invalid resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*"}]}"#,
            &PolicyKind::Identity,
            "should not specify a principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject"}]}"#,
            &PolicyKind::Identity,
            "Resource or NotResource",
        ),
    ];
    for (doc, kind, fault) in cases {
        let e = Policy::parse(doc, kind).expect_err(doc);
        assert!(e.contains(fault), "{doc}: expected '{fault}' in '{e}'");
    }
    let big = format!(
        r#"{{"Statement":[{{"Sid":"{}","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*"}}]}}"#,
        "x".repeat(MAX_BUCKET_POLICY)
    );
    assert!(Policy::parse(&big, &bucket)
        .unwrap_err()
        .contains("maximum allowed document size"));
}

/// Any JSON value: refused or accepted, never a panic; accepted documents evaluate.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        (-5i64..100).prop_map(|n| serde_json::json!(n)),
        prop_oneof![
            Just("Allow".to_string()),
            Just("Deny".to_string()),
            Just("*".to_string()),
            Just("s3:GetObject".to_string()),
            Just("s3:*".to_string()),
            Just("arn:aws:s3:::docs/*".to_string()),
            Just("arn:aws:iam::t:root".to_string()),
            Just("2012-10-17".to_string()),
            Just("10.0.0.0/8".to_string()),
            "[ -~]{0,12}",
        ]
        .prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("Version".to_string()),
                        Just("Statement".to_string()),
                        Just("Effect".to_string()),
                        Just("Principal".to_string()),
                        Just("AWS".to_string()),
                        Just("Action".to_string()),
                        Just("NotAction".to_string()),
                        Just("Resource".to_string()),
                        Just("Condition".to_string()),
                        Just("StringLike".to_string()),
                        Just("IpAddress".to_string()),
                        Just("aws:SourceIp".to_string()),
                        Just("s3:prefix".to_string()),
                        "[A-Za-z:]{1,10}",
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_document_is_parsed_or_refused_never_a_panic(v in json(), text in "\\PC{0,64}") {
        for kind in [PolicyKind::Identity, PolicyKind::Bucket("docs".into())] {
            let _ = Policy::parse(&text, &kind);
            if let Ok(p) = Policy::parse(&v.to_string(), &kind) {
                let mut ctx = Context::default();
                ctx.set("aws:SourceIp", "10.0.0.1");
                ctx.set("s3:prefix", "a");
                let _ = decide(&p, &user("t", "u"), "s3:GetObject", "arn:aws:s3:::docs/k", &ctx);
                let _ = decide(&p, &Principal::Anonymous, "s3:ListBucket", "arn:aws:s3:::docs", &ctx);
            }
        }
    }
}

#[test]
fn tag_condition_keys() {
    let p = bucket_policy(
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"AWS":"visiteurs"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*",
         "Condition":{"StringEquals":{"s3:ExistingObjectTag/diffusion":"publique"}}}]}"#,
    );
    assert!(p.reads("s3:existingobjecttag/") && p.reads("s3:existingobjecttag/diffusion"));
    assert!(!p.reads("s3:requestobjecttag/"));
    let mut ctx = Context::default();
    let who = user("visiteurs", "admin");
    assert!(!allowed(&p, &who, "s3:GetObject", "arn:aws:s3:::docs/a", &ctx));
    ctx.set("s3:ExistingObjectTag/diffusion", "publique");
    assert!(allowed(&p, &who, "s3:GetObject", "arn:aws:s3:::docs/a", &ctx));
}
