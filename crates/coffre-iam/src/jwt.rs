//! OpenID Connect ID tokens (JWS compact form) checked against an issuer's keys (JWKS):
//! RS256 and ES256 signatures, issuer, audience, expiry and not-before.

use base64::Engine as _;
use serde_json::{Map, Value};

/// Longest token taken (AWS: 20,000 characters).
pub const MAX_TOKEN: usize = 20_000;
/// Largest JWKS document taken.
pub const MAX_JWKS: usize = 64 * 1024;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: i64 = 60;

#[derive(Debug, PartialEq)]
pub enum TokenError {
    /// Malformed, wrongly signed, or not for us (issuer, audience): `InvalidIdentityToken`.
    Invalid(String),
    /// Past its `exp`: `ExpiredTokenException`.
    Expired,
}

#[derive(Clone, Debug)]
enum KeyMaterial {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed P-256 point: 0x04 ∥ x ∥ y.
    P256(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Jwk {
    kid: Option<String>,
    key: KeyMaterial,
}

/// An issuer's public keys.
#[derive(Clone, Debug)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

impl Jwks {
    /// Parses a JWKS document; keys of other types (or for encryption) are skipped.
    pub fn parse(doc: &str) -> Result<Jwks, String> {
        if doc.len() > MAX_JWKS {
            return Err(format!("the JWKS document is over {MAX_JWKS} bytes"));
        }
        let v: Value = serde_json::from_str(doc).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
        let list = v
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("a JWKS is {\"keys\": [...]}")?;
        let mut keys = Vec::new();
        for k in list {
            let s = |n: &str| k.get(n).and_then(Value::as_str);
            if s("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let key = match (s("kty"), s("crv")) {
                (Some("RSA"), _) => match (s("n").and_then(b64url), s("e").and_then(b64url)) {
                    (Some(n), Some(e)) => KeyMaterial::Rsa { n, e },
                    _ => return Err("an RSA key needs n and e (base64url)".into()),
                },
                (Some("EC"), Some("P-256")) => match (s("x").and_then(b64url), s("y").and_then(b64url)) {
                    (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => {
                        KeyMaterial::P256([&[4u8][..], &x, &y].concat())
                    }
                    _ => return Err("a P-256 key needs x and y of 32 bytes (base64url)".into()),
                },
                _ => continue,
            };
            keys.push(Jwk {
                kid: s("kid").map(str::to_string),
                key,
            });
        }
        if keys.is_empty() {
            return Err("the JWKS holds no RSA or P-256 signing key".into());
        }
        Ok(Jwks { keys })
    }
}

/// A verified token's claims.
#[derive(Clone, Debug)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// A claim as strings: a string, a number or a boolean gives one, an array each of its
    /// scalar items.
    pub fn values(&self, name: &str) -> Vec<String> {
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match self.0.get(name) {
            Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
            Some(v) => scalar(v).into_iter().collect(),
            None => vec![],
        }
    }

    pub fn subject(&self) -> Option<&str> {
        self.0.get("sub").and_then(Value::as_str)
    }

    fn number(&self, name: &str) -> Option<i64> {
        self.0
            .get(name)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    }
}

/// Verifies a token: signature by one of `jwks`'s keys (by `kid` when the token names one),
/// `iss == issuer`, `aud` holding `audience`, not expired, already valid. `now`: Unix seconds.
pub fn verify(token: &str, jwks: &Jwks, issuer: &str, audience: &str, now: i64) -> Result<Claims, TokenError> {
    let invalid = |m: &str| TokenError::Invalid(m.to_string());
    if token.len() > MAX_TOKEN {
        return Err(invalid("the token is too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("the token is not a signed JWT (header.payload.signature)"));
    };
    let header: Value = b64url(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid("the token's header is not base64url JSON"))?;
    let sig = b64url(sig).ok_or_else(|| invalid("the token's signature is not base64url"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let kid = header.get("kid").and_then(Value::as_str);
    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    let candidates = jwks
        .keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid);
    let mut good = false;
    for k in candidates {
        good = match (alg, &k.key) {
            ("RS256", KeyMaterial::Rsa { n, e }) => ring::signature::RsaPublicKeyComponents { n, e }
                .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, signed, &sig)
                .is_ok(),
            ("ES256", KeyMaterial::P256(point)) => {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(signed, &sig)
                    .is_ok()
            }
            _ => false,
        };
        if good {
            break;
        }
    }
    if !matches!(alg, "RS256" | "ES256") {
        return Err(TokenError::Invalid(format!(
            "the token is signed with '{alg}'; RS256 and ES256 are accepted"
        )));
    }
    if !good {
        return Err(invalid("the token's signature does not verify with the issuer's keys"));
    }
    let claims = match b64url(p).and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
        Some(Value::Object(m)) => Claims(m),
        _ => return Err(invalid("the token's payload is not base64url JSON")),
    };
    if claims.0.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(invalid("the token was issued by another issuer"));
    }
    if !claims.values("aud").iter().any(|a| a == audience) {
        return Err(invalid("the token is meant for another audience"));
    }
    match claims.number("exp") {
        None => return Err(invalid("the token has no expiry (exp)")),
        Some(exp) if exp.saturating_add(LEEWAY_SECS) < now => return Err(TokenError::Expired),
        _ => {}
    }
    if claims
        .number("nbf")
        .is_some_and(|nbf| nbf.saturating_sub(LEEWAY_SECS) > now)
    {
        return Err(invalid("the token is not valid yet (nbf)"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    struct Issuer {
        pair: EcdsaKeyPair,
        rng: ring::rand::SystemRandom,
    }

    impl Issuer {
        fn new() -> Issuer {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            Issuer {
                pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap(),
                rng,
            }
        }

        fn jwks(&self) -> Jwks {
            let p = self.pair.public_key().as_ref();
            Jwks::parse(
                &serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
                    "x": b64(&p[1..33]), "y": b64(&p[33..65])}]})
                .to_string(),
            )
            .unwrap()
        }

        fn token(&self, claims: Value) -> String {
            let h = b64(br#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#);
            let p = b64(claims.to_string().as_bytes());
            let sig = self.pair.sign(&self.rng, format!("{h}.{p}").as_bytes()).unwrap();
            format!("{h}.{p}.{}", b64(sig.as_ref()))
        }
    }

    #[test]
    fn es256_tokens() {
        let iss = Issuer::new();
        let jwks = iss.jwks();
        let claims = |exp: i64, aud: Value| serde_json::json!({"iss": "https://idp", "aud": aud, "sub": "jean", "exp": exp, "groups": ["a", "b"]});
        let ok = iss.token(claims(2000, "coffre".into()));
        let c = verify(&ok, &jwks, "https://idp", "coffre", 1000).unwrap();
        assert_eq!(c.subject(), Some("jean"));
        assert_eq!(c.values("groups"), vec!["a", "b"]);
        let multi = iss.token(claims(2000, serde_json::json!(["x", "coffre"])));
        assert!(verify(&multi, &jwks, "https://idp", "coffre", 1000).is_ok());
        assert_eq!(
            verify(&ok, &jwks, "https://idp", "coffre", 3000).unwrap_err(),
            TokenError::Expired
        );
        assert!(
            matches!(verify(&ok, &jwks, "https://other", "coffre", 1000), Err(TokenError::Invalid(m)) if m.contains("issuer"))
        );
        assert!(
            matches!(verify(&ok, &jwks, "https://idp", "else", 1000), Err(TokenError::Invalid(m)) if m.contains("audience"))
        );
        // Tampered payload: the signature no longer verifies.
        let mut parts: Vec<String> = ok.split('.').map(str::to_string).collect();
        parts[1] = b64(claims(9999, "coffre".into()).to_string().as_bytes());
        assert!(
            matches!(verify(&parts.join("."), &jwks, "https://idp", "coffre", 1000), Err(TokenError::Invalid(m)) if m.contains("signature"))
        );
        // Another issuer's key.
        assert!(verify(&ok, &Issuer::new().jwks(), "https://idp", "coffre", 1000).is_err());
        // alg none is refused.
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), parts[1]);
        assert!(verify(&none, &jwks, "https://idp", "coffre", 1000).is_err());
    }

    proptest::proptest! {
        #[test]
        fn garbage_is_refused_never_a_panic(t in "[A-Za-z0-9_.=-]{0,200}", doc in "\\PC{0,100}") {
            let jwks = Issuer::new().jwks();
            proptest::prop_assert!(verify(&t, &jwks, "i", "a", 0).is_err());
            let _ = Jwks::parse(&doc);
        }
    }
}
