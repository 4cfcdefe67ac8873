//! CORS: a bucket's rules (Put/Get/DeleteBucketCors), the preflight `OPTIONS`, and the
//! `Access-Control-*` headers that actual responses (errors included) carry.
//!
//! A rule matches a request when one of its origins matches the `Origin` header (one `*`
//! wildcard, case-sensitive), its methods hold the method asked for, and — for a preflight —
//! every header of `Access-Control-Request-Headers` matches one of its headers (wildcards,
//! case-insensitive). The first matching rule answers, as in S3.

use crate::context::Ctx;
use crate::http::{empty, set, status, xml_response, Res};
use crate::xml::Xml;
use crate::S3Error;
use coffre_engine::{BucketConfigKind, CorsConfig, CorsRule, Engine};
use http::{HeaderMap, Response, StatusCode};
use hyper::body::Incoming;

/// S3 allows 100 rules and a 64 KB document.
const MAX_RULES: usize = 100;
const MAX_DOCUMENT: usize = 64 * 1024;
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

/// `pattern` with at most one `*` against `s`.
fn wildcard(pattern: &str, s: &str, fold_case: bool) -> bool {
    let eq = |a: &str, b: &str| if fold_case { a.eq_ignore_ascii_case(b) } else { a == b };
    match pattern.split_once('*') {
        None => eq(pattern, s),
        Some((pre, post)) => {
            s.len() >= pre.len() + post.len()
                && s.is_char_boundary(pre.len())
                && s.is_char_boundary(s.len() - post.len())
                && eq(&s[..pre.len()], pre)
                && eq(&s[s.len() - post.len()..], post)
        }
    }
}

/// The first rule that allows `origin` to use `method` with `headers`.
pub fn find_rule<'a>(cfg: &'a CorsConfig, origin: &str, method: &str, headers: &[String]) -> Option<&'a CorsRule> {
    cfg.rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| wildcard(o, origin, false))
            && r.allowed_methods.iter().any(|m| m == method)
            && headers
                .iter()
                .all(|h| r.allowed_headers.iter().any(|a| wildcard(a, h, true)))
    })
}

fn text(n: &crate::xml::Node, name: &str) -> Vec<String> {
    n.all(name).map(|c| c.text.trim().to_string()).collect()
}

/// Parses and validates a CORSConfiguration document.
pub fn parse(raw: &[u8]) -> Result<CorsConfig, S3Error> {
    let doc = crate::xml::parse(raw, 4096)?;
    if doc.name != "CORSConfiguration" {
        return Err(S3Error::malformed_xml("expected CORSConfiguration"));
    }
    let mut rules = Vec::new();
    for r in doc.all("CORSRule") {
        let rule = CorsRule {
            id: r.child("ID").map(|i| i.text.trim().to_string()),
            allowed_origins: text(r, "AllowedOrigin"),
            allowed_methods: text(r, "AllowedMethod"),
            allowed_headers: text(r, "AllowedHeader"),
            expose_headers: text(r, "ExposeHeader"),
            max_age_secs: match r.child("MaxAgeSeconds") {
                None => None,
                Some(m) => Some(
                    m.text
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| S3Error::malformed_xml("MaxAgeSeconds must be a non-negative integer"))?,
                ),
            },
        };
        if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
            return Err(S3Error::malformed_xml(
                "A CORSRule needs at least one AllowedOrigin and one AllowedMethod",
            ));
        }
        if rule.id.as_ref().is_some_and(|i| i.chars().count() > 255) {
            return Err(S3Error::invalid_argument("A CORSRule ID is at most 255 characters"));
        }
        if let Some(m) = rule.allowed_methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(S3Error::invalid_request(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            )));
        }
        for (what, list) in [
            ("AllowedOrigin", &rule.allowed_origins),
            ("AllowedHeader", &rule.allowed_headers),
        ] {
            if let Some(o) = list.iter().find(|o| o.matches('*').count() > 1) {
                return Err(S3Error::invalid_request(format!(
                    "{what} \"{o}\" can not have more than one wildcard."
                )));
            }
        }
        rules.push(rule);
    }
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(S3Error::malformed_xml("A CORSConfiguration holds 1 to 100 CORSRules"));
    }
    Ok(CorsConfig { rules })
}

pub fn render(cfg: &CorsConfig) -> String {
    let mut x = Xml::new("CORSConfiguration");
    for r in &cfg.rules {
        x.open("CORSRule");
        if let Some(id) = &r.id {
            x.elem("ID", id);
        }
        for (name, list) in [
            ("AllowedHeader", &r.allowed_headers),
            ("AllowedMethod", &r.allowed_methods),
            ("AllowedOrigin", &r.allowed_origins),
            ("ExposeHeader", &r.expose_headers),
        ] {
            for v in list {
                x.elem(name, v);
            }
        }
        if let Some(m) = r.max_age_secs {
            x.elem("MaxAgeSeconds", &m.to_string());
        }
        x.close("CORSRule");
    }
    x.finish("CORSConfiguration")
}

pub async fn put(ctx: &Ctx, bucket: &str, body: Incoming) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let raw = crate::document::read_document(ctx, body, MAX_DOCUMENT).await?;
    let cfg = parse(&raw)?;
    ctx.engine()
        .put_bucket_config(bucket, BucketConfigKind::Cors, Some(cfg))
        .await?;
    Ok(Response::new(empty()))
}

pub async fn get(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let cfg: CorsConfig = ctx
        .engine()
        .bucket_config(bucket, BucketConfigKind::Cors)?
        .ok_or_else(|| S3Error::no_such_cors("The CORS configuration does not exist"))?;
    Ok(xml_response(StatusCode::OK, render(&cfg)))
}

pub async fn delete(ctx: &Ctx, bucket: &str) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    ctx.engine()
        .put_bucket_config::<CorsConfig>(bucket, BucketConfigKind::Cors, None)
        .await?;
    Ok(status(StatusCode::NO_CONTENT))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// `Access-Control-Request-Headers` as a list of lower-case names.
fn requested_headers(h: &HeaderMap) -> Vec<String> {
    header(h, "access-control-request-headers")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Sets the headers a matching rule grants.
fn grant(r: &mut Res, rule: &CorsRule, origin: &str, preflight_headers: Option<&[String]>) {
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    set(r, "access-control-allow-origin", if any { "*" } else { origin });
    if !any {
        set(r, "access-control-allow-credentials", "true");
    }
    set(r, "access-control-allow-methods", &rule.allowed_methods.join(", "));
    if !rule.expose_headers.is_empty() {
        set(r, "access-control-expose-headers", &rule.expose_headers.join(", "));
    }
    if let Some(m) = rule.max_age_secs {
        set(r, "access-control-max-age", &m.to_string());
    }
    if let Some(h) = preflight_headers.filter(|h| !h.is_empty()) {
        set(r, "access-control-allow-headers", &h.join(", "));
    }
}

const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// The bucket's rules; an unreadable or missing bucket has none.
fn rules_of(engine: &Engine, bucket: &str) -> Option<CorsConfig> {
    if bucket.is_empty() {
        return None;
    }
    engine.bucket_config(bucket, BucketConfigKind::Cors).ok().flatten()
}

/// Adds CORS headers to the response of an actual (non-preflight) request on `bucket`: the
/// method matched is `Access-Control-Request-Method` if the request names one, else its own.
pub fn decorate(engine: &Engine, bucket: &str, method: &str, headers: &HeaderMap, res: &mut Res) {
    let Some(origin) = header(headers, "origin") else {
        return;
    };
    let Some(cfg) = rules_of(engine, bucket) else { return };
    set(res, "vary", VARY);
    let method = header(headers, "access-control-request-method").unwrap_or(method);
    if let Some(rule) = find_rule(&cfg, origin, method, &[]) {
        grant(res, rule, origin, None);
    }
}

/// Answers a preflight `OPTIONS` (never authenticated: browsers send no credentials).
pub fn preflight(engine: &Engine, bucket: &str, headers: &HeaderMap) -> Result<Res, S3Error> {
    let origin = header(headers, "origin")
        .ok_or_else(|| S3Error::bad_request("Insufficient information. Origin request header needed."))?;
    let method = header(headers, "access-control-request-method")
        .ok_or_else(|| S3Error::bad_request("Invalid Access-Control-Request-Method: null"))?;
    if bucket.is_empty() {
        return Err(S3Error::bad_request("A CORS preflight names a bucket"));
    }
    engine.bucket(bucket)?;
    let forbidden = || {
        S3Error::access_forbidden(
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        )
    };
    let cfg = rules_of(engine, bucket).ok_or_else(forbidden)?;
    let asked = requested_headers(headers);
    let rule = find_rule(&cfg, origin, method, &asked).ok_or_else(forbidden)?;
    let mut r = Response::new(empty());
    set(&mut r, "vary", VARY);
    grant(&mut r, rule, origin, Some(&asked));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        CorsRule {
            allowed_origins: v(origins),
            allowed_methods: v(methods),
            allowed_headers: v(headers),
            ..CorsRule::default()
        }
    }

    #[test]
    fn origins_match_with_one_wildcard() {
        assert!(wildcard("*suffix", "foo.suffix", false));
        assert!(!wildcard("*suffix", "foo.suffix.get", false));
        assert!(wildcard("start*end", "startend", false));
        assert!(wildcard("start*end", "start12end", false));
        assert!(!wildcard("start*end", "0start12end", false));
        assert!(!wildcard("start*end", "starend", false));
        assert!(wildcard("prefix*", "prefix.suffix", false));
        assert!(!wildcard("prefix*", "bla.prefix", false));
        assert!(wildcard("*", "", false));
        assert!(!wildcard("https://a.example", "https://A.example", false));
        assert!(wildcard("X-Amz-*", "x-amz-meta-a", true));
        // Overlapping prefix and suffix need the characters twice.
        assert!(!wildcard("ab*ba", "aba", false));
    }

    #[test]
    fn first_matching_rule_answers() {
        let cfg = CorsConfig {
            rules: vec![
                rule(&["*.put"], &["PUT"], &[]),
                rule(&["*"], &["GET", "PUT"], &["content-type", "x-amz-*"]),
            ],
        };
        let h = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(std::ptr::eq(
            find_rule(&cfg, "a.put", "PUT", &[]).unwrap(),
            &cfg.rules[0]
        ));
        assert!(std::ptr::eq(
            find_rule(&cfg, "a.put", "PUT", &h(&["content-type"])).unwrap(),
            &cfg.rules[1]
        ));
        assert!(find_rule(&cfg, "x", "GET", &h(&["x-amz-meta-a", "content-type"])).is_some());
        assert!(find_rule(&cfg, "x", "GET", &h(&["authorization"])).is_none());
        assert!(find_rule(&cfg, "x", "DELETE", &[]).is_none());
    }

    #[test]
    fn documents_are_validated_and_round_trip() {
        let doc = br#"<CORSConfiguration><CORSRule><ID>r1</ID><AllowedOrigin>https://app.example</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule></CORSConfiguration>"#;
        let cfg = parse(doc).unwrap();
        assert_eq!(cfg.rules[0].max_age_secs, Some(3000));
        assert_eq!(parse(render(&cfg).as_bytes()).unwrap(), cfg);
        let bad_method = br#"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>"#;
        assert_eq!(parse(bad_method).unwrap_err().code, "InvalidRequest");
        let two_stars = br#"<CORSConfiguration><CORSRule><AllowedOrigin>*.a.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"#;
        assert_eq!(parse(two_stars).unwrap_err().code, "InvalidRequest");
        let no_origin =
            br#"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"#;
        assert_eq!(parse(no_origin).unwrap_err().code, "MalformedXML");
        assert_eq!(parse(b"<CORSConfiguration/>").unwrap_err().code, "MalformedXML");
    }

    proptest::proptest! {
        /// Any pattern and string: no panic (multi-byte characters at the cut included), and a
        /// pattern without `*` matches only itself.
        #[test]
        fn wildcard_never_panics(p in "[a-zé*.]{0,8}", s in "[a-zé.]{0,12}") {
            let m = wildcard(&p, &s, true);
            if !p.contains('*') {
                proptest::prop_assert_eq!(m, p.eq_ignore_ascii_case(&s));
            }
        }
    }
}
