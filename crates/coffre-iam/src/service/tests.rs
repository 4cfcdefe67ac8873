//! The decision matrix of `Iam::authorize`, on a real metadata store (RocksDB in a temporary
//! directory) and keyring, without the engine: a tenant's admin and users, identity and bucket
//! policies, explicit denies, grants to a tenant and to a caller, another tenant, anonymous
//! callers, role sessions, and conditions.

use super::*;
use coffre_meta::{BucketRecord, Quota};

/// A store with tenants `alpha` and `beta` (admins' keys returned), and `alpha`'s bucket
/// `docs`.
struct World {
    _dir: tempfile::TempDir,
    meta: Arc<MetaStore>,
    keys: Arc<Keyring>,
    iam: Arc<Iam>,
    alpha: (String, String),
    beta: (String, String),
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(MetaStore::open(&dir.path().join("meta")).unwrap());
    let keys = Arc::new(Keyring::new(coffre_crypto::MasterKey::from_bytes([3; 32]), vec![]));
    let iam = Iam::new(meta.clone(), keys.clone());
    let alpha = iam.create_tenant("alpha", Quota::default()).await.unwrap();
    let beta = iam.create_tenant("beta", Quota::default()).await.unwrap();
    let record = BucketRecord {
        created_ms: 0,
        region: "fr-par".into(),
        countries: vec!["FR".into()],
        failure_domain: "node".into(),
        scheme: coffre_types::Scheme::DEFAULT,
        tenant: "alpha".into(),
    };
    meta.create_bucket("docs", &record).unwrap();
    World {
        _dir: dir,
        meta,
        keys,
        iam,
        alpha,
        beta,
    }
}

/// The request facts a test gives: context keys and values.
struct Facts(Vec<(&'static str, &'static str)>);

impl ContextSource for Facts {
    fn context(&self, wants: &dyn Fn(&str) -> bool) -> Context {
        let mut c = Context::default();
        for (k, v) in &self.0 {
            if wants(&k.to_ascii_lowercase()) {
                c.set(k, *v);
            }
        }
        c
    }
}

impl World {
    fn caller(&self, (key, _): &(String, String)) -> Arc<Caller> {
        self.iam.resolve(key, None).unwrap().1
    }

    /// A user of `tenant` with `policy` (if any), as a caller.
    async fn user(&self, tenant: &str, name: &str, policy: Option<&str>) -> Arc<Caller> {
        self.iam.create_user(tenant, name).await.unwrap();
        if let Some(p) = policy {
            self.iam.put_user_policy(tenant, name, "p", Some(p)).await.unwrap();
        }
        let key = self.iam.create_key(tenant, name, None).await.unwrap();
        self.caller(&key)
    }

    fn bucket_policy(&self, doc: &str) {
        self.meta
            .put_bucket_config("docs", BucketConfigKind::Policy, Some(&doc.to_string()))
            .unwrap();
    }

    fn may(&self, caller: &Caller, action: &str, target: Target<'_>) -> bool {
        self.may_with(caller, action, target, &[])
    }

    fn may_with(
        &self,
        caller: &Caller,
        action: &str,
        target: Target<'_>,
        facts: &[(&'static str, &'static str)],
    ) -> bool {
        self.iam
            .authorize(caller, action, target, &Facts(facts.to_vec()))
            .is_ok()
    }
}

const OBJECT: Target<'static> = Target::Object("docs", "rapport.pdf");
const BUCKET: Target<'static> = Target::Bucket("docs");

#[tokio::test]
async fn a_tenants_admin_owns_its_buckets_and_nobody_else_does_without_a_grant() {
    let w = world().await;
    let (alpha, beta) = (w.caller(&w.alpha), w.caller(&w.beta));
    assert!(w.may(&alpha, "s3:GetObject", OBJECT));
    assert!(w.may(&alpha, "s3:DeleteBucket", BUCKET));
    assert!(!w.may(&beta, "s3:GetObject", OBJECT));
    assert!(!w.may(&Caller::anonymous(), "s3:GetObject", OBJECT));
    // A bucket that does not exist is that, to anyone.
    let e = w
        .iam
        .authorize(&beta, "s3:GetObject", Target::Object("nowhere", "k"), &Facts(vec![]))
        .unwrap_err();
    assert!(matches!(e, IamError::NoSuchBucket), "{e:?}");
}

#[tokio::test]
async fn a_user_gets_what_its_own_policies_allow_and_an_explicit_deny_wins() {
    let w = world().await;
    let none = w.user("alpha", "stagiaire", None).await;
    assert!(!w.may(&none, "s3:GetObject", OBJECT), "no policy, nothing");
    let reader = w
        .user(
            "alpha",
            "lecteur",
            Some(r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*"}]}"#),
        )
        .await;
    assert!(w.may(&reader, "s3:GetObject", OBJECT));
    assert!(!w.may(&reader, "s3:PutObject", OBJECT));
    // A bucket policy naming the user grants it too; a Deny in either refuses.
    w.bucket_policy(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::alpha:user/lecteur"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::docs/*"},
        {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::alpha:user/lecteur"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/secret/*"}]}"#,
    );
    assert!(w.may(&reader, "s3:PutObject", OBJECT));
    assert!(!w.may(&reader, "s3:GetObject", Target::Object("docs", "secret/plan")));
    let denied_self = w
        .user(
            "alpha",
            "prudent",
            Some(r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#),
        )
        .await;
    assert!(w.may(&denied_self, "s3:GetObject", OBJECT));
    assert!(!w.may(&denied_self, "s3:DeleteObject", OBJECT));
}

#[tokio::test]
async fn a_grant_to_a_tenant_is_delegated_by_its_own_policies() {
    let w = world().await;
    w.bucket_policy(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["alpha","beta"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*"}]}"#,
    );
    // Another tenant: its admin takes the grant, its users only if their policies say so.
    assert!(w.may(&w.caller(&w.beta), "s3:GetObject", OBJECT));
    let beta_plain = w.user("beta", "plain", None).await;
    assert!(!w.may(&beta_plain, "s3:GetObject", OBJECT));
    let beta_reader = w
        .user(
            "beta",
            "reader",
            Some(r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#),
        )
        .await;
    assert!(w.may(&beta_reader, "s3:GetObject", OBJECT));
    assert!(
        !w.may(&beta_reader, "s3:PutObject", OBJECT),
        "its own policy is not the bucket's"
    );
    // The owner's tenant: a grant to the tenant is not a grant to each of its users.
    let alpha_plain = w.user("alpha", "plain", None).await;
    assert!(!w.may(&alpha_plain, "s3:GetObject", OBJECT));
}

#[tokio::test]
async fn anonymous_callers_get_only_what_everyone_is_granted() {
    let w = world().await;
    w.bucket_policy(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/public/*"}]}"#,
    );
    let anonymous = Caller::anonymous();
    assert!(w.may(&anonymous, "s3:GetObject", Target::Object("docs", "public/a")));
    assert!(!w.may(&anonymous, "s3:GetObject", Target::Object("docs", "private/a")));
    assert!(!w.may(&anonymous, "s3:ListBucket", BUCKET));
}

#[tokio::test]
async fn only_the_owner_manages_the_bucket_policy_and_cannot_lock_itself_out() {
    let w = world().await;
    w.bucket_policy(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetBucketPolicy","s3:PutBucketPolicy"],"Resource":"arn:aws:s3:::docs"},
        {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::docs","arn:aws:s3:::docs/*"]}]}"#,
    );
    let alpha = w.caller(&w.alpha);
    assert!(
        !w.may(&alpha, "s3:GetObject", OBJECT),
        "the Deny binds the owner's admin too"
    );
    assert!(w.may(&alpha, "s3:PutBucketPolicy", BUCKET), "but not out of its policy");
    assert!(!w.may(&w.caller(&w.beta), "s3:GetBucketPolicy", BUCKET));
    assert!(!w.may(&Caller::anonymous(), "s3:GetBucketPolicy", BUCKET));
}

#[tokio::test]
async fn conditions_decide_with_the_request_facts() {
    let w = world().await;
    w.bucket_policy(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"beta"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*",
            "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}},
        {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::docs/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
    );
    let beta = w.caller(&w.beta);
    let from = |ip: &'static str, tls: &'static str| vec![("aws:SourceIp", ip), ("aws:SecureTransport", tls)];
    assert!(w.may_with(&beta, "s3:GetObject", OBJECT, &from("10.1.2.3", "true")));
    assert!(!w.may_with(&beta, "s3:GetObject", OBJECT, &from("192.0.2.1", "true")));
    assert!(!w.may_with(&beta, "s3:GetObject", OBJECT, &from("10.1.2.3", "false")));
    assert!(!w.may_with(&w.caller(&w.alpha), "s3:GetObject", OBJECT, &from("10.1.2.3", "false")));
}

#[tokio::test]
async fn a_session_has_its_roles_policy_and_dies_with_the_role() {
    let w = world().await;
    let role = w
        .iam
        .put_role(
            "alpha",
            "lecteurs",
            r#"{"Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::docs","arn:aws:s3:::docs/*"]}]}"#,
            vec![],
            None,
        )
        .await
        .unwrap();
    let session = Session {
        access_key: "ASIATEST".into(),
        secret: "session-secret".into(),
        tenant: "alpha".into(),
        role: "lecteurs".into(),
        role_id: role.id.clone(),
        session: "jean".into(),
        subject: "jean.dupont".into(),
        expires_ms: now_millis() + 600_000,
    };
    let token = session.token(&w.keys);
    let (secret, caller) = w.iam.resolve("ASIATEST", Some(&token)).unwrap();
    assert_eq!(secret, "session-secret");
    assert!(w.may(&caller, "s3:GetObject", OBJECT));
    assert!(!w.may(&caller, "s3:PutObject", OBJECT));
    // Another key with this token, or the role gone (even if made again under its name).
    assert!(w.iam.resolve("ASIAOTHER", Some(&token)).is_err());
    w.iam.delete_role("alpha", "lecteurs").await.unwrap();
    assert!(w.iam.resolve("ASIATEST", Some(&token)).is_err());
    w.iam
        .put_role(
            "alpha",
            "lecteurs",
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            vec![],
            None,
        )
        .await
        .unwrap();
    assert!(w.iam.resolve("ASIATEST", Some(&token)).is_err());
}

#[tokio::test]
async fn keys_and_their_caches_follow_every_change() {
    let w = world().await;
    let (key, secret) = w.iam.create_key("alpha", "admin", None).await.unwrap();
    assert_eq!(w.iam.resolve(&key, None).unwrap().0, secret);
    w.iam.set_key_enabled("alpha", &key, false).await.unwrap();
    assert!(matches!(
        w.iam.resolve(&key, None),
        Err(IamError::InvalidAccessKeyId(_))
    ));
    w.iam.set_key_enabled("alpha", &key, true).await.unwrap();
    assert!(w.iam.resolve(&key, None).is_ok());
    w.iam.delete_key("alpha", &key).await.unwrap();
    assert!(w.iam.resolve(&key, None).is_err());
    // A secret is stored sealed, never in clear.
    let rec = w.meta.get_access_key(&w.alpha.0).unwrap().unwrap();
    assert!(!rec.secret.windows(w.alpha.1.len()).any(|x| x == w.alpha.1.as_bytes()));
}
