//! IAM policy documents (identity policies and bucket policies): parsed and validated once,
//! with a message naming the fault (`MalformedPolicy`), then evaluated per request as AWS
//! does: a statement applies when its principal, action, resource and every condition
//! match; any applicable Deny wins over any Allow.

use crate::context::Context;
use crate::pattern::Pattern;
use crate::principal::{valid_principal, Naming, Principal};
use serde_json::Value;
use std::net::IpAddr;

/// Largest bucket policy (as AWS).
pub const MAX_BUCKET_POLICY: usize = 20 * 1024;
/// Largest identity policy document.
pub const MAX_IDENTITY_POLICY: usize = 10 * 1024;
/// Most statements in one document.
const MAX_STATEMENTS: usize = 100;
/// Most values one element (Action, Resource, a condition key…) may list.
const MAX_VALUES: usize = 200;

/// What a document is attached to, which decides what it must and must not hold.
#[derive(Clone, Debug)]
pub enum PolicyKind {
    /// Attached to a user or a role: no `Principal`.
    Identity,
    /// A bucket's policy: a `Principal` in every statement, resources of that bucket only.
    Bucket(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// The outcome of one document for one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// An Allow that names the caller (or everyone), or an identity policy's.
    pub allowed: bool,
    /// An Allow that names the caller's account only: the account's own policies must
    /// delegate it to the caller.
    pub account_allowed: bool,
    pub denied: bool,
}

impl Decision {
    pub fn merge(self, o: Decision) -> Decision {
        Decision {
            allowed: self.allowed || o.allowed,
            account_allowed: self.account_allowed || o.account_allowed,
            denied: self.denied || o.denied,
        }
    }
}

/// What a request asks, as policies see it.
pub struct Request<'a> {
    /// `s3:GetObject`, `iam:CreateUser`…
    pub action: &'a str,
    /// `arn:aws:s3:::bucket/key`, `arn:aws:iam::tenant:user/name`…
    pub resource: &'a str,
    pub principal: &'a Principal,
    pub context: &'a Context,
}

#[derive(Clone, Debug)]
pub struct Policy {
    statements: Vec<Statement>,
    /// The request context keys it reads (condition keys, policy variables), lower-case.
    reads: Vec<String>,
}

#[derive(Clone, Debug)]
struct Statement {
    effect: Effect,
    /// `None`: identity policy (the attached identity). `Some((entries, not))`.
    principals: Option<(Vec<String>, bool)>,
    actions: (Vec<Pattern>, bool),
    resources: (Vec<Pattern>, bool),
    conditions: Vec<Condition>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        use Op::*;
        Some(match name {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnLike" => ArnLike,
            "ArnNotEquals" => ArnNotEquals,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => return None,
        })
    }

    /// Negated operators hold when no value matches — and when the key is absent.
    fn negated(self) -> bool {
        use Op::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }
}

#[derive(Clone, Debug)]
enum Expected {
    Text(Vec<Pattern>),
    Numbers(Vec<f64>),
    Dates(Vec<i64>),
    Bools(Vec<bool>),
    Networks(Vec<(IpAddr, u8)>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum SetOp {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Clone, Debug)]
struct Condition {
    op: Op,
    if_exists: bool,
    set: SetOp,
    /// Lower-case.
    key: String,
    expected: Expected,
}

type Parse<T> = Result<T, String>;

/// Strings of an element that may be one string or an array of them.
fn strings(v: &Value, what: &str) -> Parse<Vec<String>> {
    let list: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    if list.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if list.len() > MAX_VALUES {
        return Err(format!("{what} lists more than {MAX_VALUES} values"));
    }
    list.into_iter()
        .map(|x| match x {
            Value::String(s) => Ok(s.clone()),
            _ => Err(format!("{what} must be a string or an array of strings")),
        })
        .collect()
}

/// Condition values: strings, numbers or booleans, one or an array.
fn condition_values(v: &Value, what: &str) -> Parse<Vec<String>> {
    let list: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    if list.is_empty() || list.len() > MAX_VALUES {
        return Err(format!("{what}: between 1 and {MAX_VALUES} values"));
    }
    list.into_iter()
        .map(|x| match x {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(format!("{what}: values are strings, numbers or booleans")),
        })
        .collect()
}

/// An action: `*` or `service:Name` with wildcards, for a service this store answers.
fn action_pattern(a: &str, kind: &PolicyKind) -> Parse<Pattern> {
    if a == "*" {
        return Pattern::parse("*", false);
    }
    let (service, name) = a
        .split_once(':')
        .ok_or_else(|| format!("Policy has invalid action: '{a}'"))?;
    let services: &[&str] = match kind {
        PolicyKind::Bucket(_) => &["s3"],
        PolicyKind::Identity => &["s3", "iam", "sts"],
    };
    if !services.contains(&service.to_ascii_lowercase().as_str())
        || name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
    {
        return Err(format!("Policy has invalid action: '{a}'"));
    }
    Pattern::parse(a, false)
}

fn resource_pattern(r: &str, kind: &PolicyKind, variables: bool) -> Parse<Pattern> {
    if r == "*" {
        if let PolicyKind::Bucket(b) = kind {
            return Err(format!(
                "Policy has invalid resource: '*' (a bucket policy names resources of '{b}' only)"
            ));
        }
        return Pattern::parse(r, variables);
    }
    let p = Pattern::parse(r, variables).map_err(|e| format!("Policy has invalid resource: {e}"))?;
    match kind {
        PolicyKind::Bucket(bucket) => {
            let rest = r
                .strip_prefix("arn:aws:s3:::")
                .ok_or_else(|| format!("Policy has invalid resource: '{r}' is not an S3 ARN"))?;
            let bucket_part = rest.split('/').next().unwrap_or("");
            let bp = Pattern::parse(bucket_part, variables).map_err(|e| format!("Policy has invalid resource: {e}"))?;
            if !bp.matches(bucket, &Context::default(), false) {
                return Err(format!(
                    "Policy has invalid resource: '{r}' is not in bucket '{bucket}'"
                ));
            }
        }
        PolicyKind::Identity => {
            if !(r.starts_with("arn:aws:s3:::") || r.starts_with("arn:aws:iam::") || r.starts_with("arn:aws:sts::")) {
                return Err(format!("Policy has invalid resource: '{r}'"));
            }
        }
    }
    Ok(p)
}

fn principals(v: &Value) -> Parse<Vec<String>> {
    let entries = match v {
        Value::String(s) if s == "*" => vec!["*".to_string()],
        Value::Object(m) => {
            let mut out = Vec::new();
            for (k, v) in m {
                match k.as_str() {
                    "AWS" => out.extend(strings(v, "Principal.AWS")?),
                    other => {
                        return Err(format!(
                            "Invalid principal in policy: '{other}' principals are not supported (use \"AWS\")"
                        ))
                    }
                }
            }
            out
        }
        _ => return Err("Invalid principal in policy: use \"*\" or {\"AWS\": [...]}".into()),
    };
    if entries.is_empty() {
        return Err("Invalid principal in policy: no principal named".into());
    }
    for e in &entries {
        if !valid_principal(e) {
            return Err(format!("Invalid principal in policy: '{e}'"));
        }
    }
    Ok(entries)
}

/// Seconds or milliseconds since the epoch of an ISO 8601 date (`2026-01-31`,
/// `2026-01-31T12:00:00Z`, with fractions) or of a number of seconds.
fn parse_date(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs.saturating_mul(1000));
    }
    coffre_types::time::parse_iso8601(s)
}

fn parse_network(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.trim().parse::<u8>().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((ip, bits))
}

fn in_network(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    // An IPv4 address seen as IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits as u32) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits as u32) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn valid_condition_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let Some((service, name)) = k.split_once(':') else {
        return false;
    };
    matches!(service, "aws" | "s3" | "iam" | "sts")
        && !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_/.:".contains(c))
}

fn parse_condition_block(v: &Value, variables: bool) -> Parse<Vec<Condition>> {
    let Value::Object(ops) = v else {
        return Err("Condition must be an object of operators".into());
    };
    let mut out = Vec::new();
    for (op_name, keys) in ops {
        let (set, rest) = if let Some(r) = op_name.strip_prefix("ForAnyValue:") {
            (SetOp::ForAnyValue, r)
        } else if let Some(r) = op_name.strip_prefix("ForAllValues:") {
            (SetOp::ForAllValues, r)
        } else {
            (SetOp::Single, op_name.as_str())
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(b) if b != "Null" && !b.is_empty() => (b, true),
            _ => (rest, false),
        };
        let op = Op::parse(base).ok_or_else(|| format!("Invalid Condition type: '{op_name}'"))?;
        let Value::Object(keys) = keys else {
            return Err(format!("Condition '{op_name}' must map condition keys to values"));
        };
        if keys.is_empty() {
            return Err(format!("Condition '{op_name}' names no condition key"));
        }
        for (key, values) in keys {
            if !valid_condition_key(key) {
                return Err(format!("Policy has an invalid condition key: '{key}'"));
            }
            let what = format!("Condition {op_name} on {key}");
            let vals = condition_values(values, &what)?;
            use Op::*;
            let expected = match op {
                StringEquals | StringNotEquals | StringLike | StringNotLike | ArnLike | ArnNotLike | ArnEquals
                | ArnNotEquals => Expected::Text(
                    vals.iter()
                        .map(|s| match op {
                            StringEquals | StringNotEquals | ArnEquals | ArnNotEquals => Pattern::exact(s, variables),
                            _ => Pattern::parse(s, variables),
                        })
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("{what}: {e}"))?,
                ),
                StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                    Expected::Text(vals.iter().map(|s| Pattern::literal(s)).collect())
                }
                NumericEquals
                | NumericNotEquals
                | NumericLessThan
                | NumericLessThanEquals
                | NumericGreaterThan
                | NumericGreaterThanEquals => Expected::Numbers(
                    vals.iter()
                        .map(|s| s.trim().parse::<f64>().ok().filter(|f| f.is_finite()))
                        .collect::<Option<_>>()
                        .ok_or_else(|| format!("{what}: values must be numbers"))?,
                ),
                DateEquals
                | DateNotEquals
                | DateLessThan
                | DateLessThanEquals
                | DateGreaterThan
                | DateGreaterThanEquals => Expected::Dates(
                    vals.iter()
                        .map(|s| parse_date(s))
                        .collect::<Option<_>>()
                        .ok_or_else(|| format!("{what}: values must be ISO 8601 dates or epoch seconds"))?,
                ),
                Bool | Null => Expected::Bools(
                    vals.iter()
                        .map(|s| match s.to_ascii_lowercase().as_str() {
                            "true" => Some(true),
                            "false" => Some(false),
                            _ => None,
                        })
                        .collect::<Option<_>>()
                        .ok_or_else(|| format!("{what}: values must be true or false"))?,
                ),
                IpAddress | NotIpAddress => Expected::Networks(
                    vals.iter()
                        .map(|s| parse_network(s))
                        .collect::<Option<_>>()
                        .ok_or_else(|| format!("{what}: values must be IP addresses or CIDR blocks"))?,
                ),
            };
            out.push(Condition {
                op,
                if_exists,
                set,
                key: key.to_ascii_lowercase(),
                expected,
            });
        }
    }
    Ok(out)
}

impl Policy {
    /// Parses and validates a document. The error names the fault (`MalformedPolicy`).
    pub fn parse(doc: &str, kind: &PolicyKind) -> Result<Policy, String> {
        let max = match kind {
            PolicyKind::Bucket(_) => MAX_BUCKET_POLICY,
            PolicyKind::Identity => MAX_IDENTITY_POLICY,
        };
        if doc.len() > max {
            return Err(format!(
                "Policy exceeds the maximum allowed document size ({max} bytes)"
            ));
        }
        let v: Value = serde_json::from_str(doc).map_err(|e| format!("Policies must be valid JSON: {e}"))?;
        let Value::Object(top) = v else {
            return Err("Policies must be valid JSON and the first byte must be '{'".into());
        };
        let mut variables = false;
        let mut statement = None;
        for (k, v) in &top {
            match k.as_str() {
                "Version" => match v.as_str() {
                    Some("2012-10-17") => variables = true,
                    Some("2008-10-17") => {}
                    _ => return Err("The policy Version must be \"2012-10-17\" or \"2008-10-17\"".into()),
                },
                "Id" => {
                    if !v.is_string() {
                        return Err("Id must be a string".into());
                    }
                }
                "Statement" => statement = Some(v),
                other => return Err(format!("Unknown field {other}")),
            }
        }
        let statements: Vec<&Value> = match statement {
            None => return Err("Missing required field Statement".into()),
            Some(Value::Array(a)) => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            Some(_) => return Err("Statement must be an object or an array of objects".into()),
        };
        if statements.is_empty() {
            return Err("Missing required field Statement".into());
        }
        if statements.len() > MAX_STATEMENTS {
            return Err(format!("A policy holds at most {MAX_STATEMENTS} statements"));
        }
        let parsed: Vec<Statement> = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| parse_statement(s, kind, variables).map_err(|e| format!("Statement {}: {e}", i + 1)))
            .collect::<Result<_, _>>()?;
        let mut reads: Vec<String> = Vec::new();
        for st in &parsed {
            let patterns = st
                .resources
                .0
                .iter()
                .chain(st.conditions.iter().flat_map(|c| match &c.expected {
                    Expected::Text(ps) => ps.as_slice(),
                    _ => &[],
                }));
            reads.extend(patterns.flat_map(|p| p.variables().map(str::to_string)));
            reads.extend(st.conditions.iter().map(|c| c.key.clone()));
        }
        reads.sort();
        reads.dedup();
        Ok(Policy {
            statements: parsed,
            reads,
        })
    }

    /// Whether it reads this request context key (lower-case): the request context is built
    /// with those keys only. A key ending in `/` asks for a family (`s3:existingobjecttag/`).
    pub fn reads(&self, key: &str) -> bool {
        match key.ends_with('/') {
            true => self.reads.iter().any(|k| k.starts_with(key)),
            false => self.reads.iter().any(|k| k == key),
        }
    }

    /// What this document says of a request.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let mut d = Decision::default();
        for s in &self.statements {
            match (s.applies(req), s.effect) {
                (None, _) => {}
                (Some(_), Effect::Deny) => d.denied = true,
                (Some(Naming::Account), Effect::Allow) => d.account_allowed = true,
                (Some(_), Effect::Allow) => d.allowed = true,
            }
        }
        d
    }

    /// Whether some Allow statement names everyone (`*`) with no condition: what
    /// GetBucketPolicyStatus calls public.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.conditions.is_empty()
                && matches!(&s.principals, Some((p, false)) if p.iter().any(|e| e == "*"))
        })
    }
}

fn parse_statement(v: &Value, kind: &PolicyKind, variables: bool) -> Parse<Statement> {
    let Value::Object(m) = v else {
        return Err("a statement must be an object".into());
    };
    let mut effect = None;
    let (mut principal, mut not_principal) = (None, None);
    let (mut action, mut not_action) = (None, None);
    let (mut resource, mut not_resource) = (None, None);
    let mut conditions = Vec::new();
    for (k, v) in m {
        match k.as_str() {
            "Sid" => {
                if !v.is_string() {
                    return Err("Sid must be a string".into());
                }
            }
            "Effect" => {
                effect = Some(match v.as_str() {
                    Some("Allow") => Effect::Allow,
                    Some("Deny") => Effect::Deny,
                    _ => return Err("Effect must be \"Allow\" or \"Deny\"".into()),
                })
            }
            "Principal" => principal = Some(v),
            "NotPrincipal" => not_principal = Some(v),
            "Action" => action = Some(v),
            "NotAction" => not_action = Some(v),
            "Resource" => resource = Some(v),
            "NotResource" => not_resource = Some(v),
            "Condition" => conditions = parse_condition_block(v, variables)?,
            other => return Err(format!("Unknown field {other}")),
        }
    }
    let effect = effect.ok_or("Missing required field Effect")?;
    if effect == Effect::Allow && not_principal.is_some() {
        return Err("Invalid principal in policy: NotPrincipal is only supported with Effect Deny".into());
    }
    let principals = match (kind, principal, not_principal) {
        (PolicyKind::Identity, None, None) => None,
        (PolicyKind::Identity, _, _) => {
            return Err("Policy document should not specify a principal (it applies to who it is attached to)".into())
        }
        (PolicyKind::Bucket(_), Some(p), None) => Some((principals(p)?, false)),
        (PolicyKind::Bucket(_), None, Some(p)) => Some((principals(p)?, true)),
        (PolicyKind::Bucket(_), None, None) => return Err("Missing required field Principal".into()),
        (PolicyKind::Bucket(_), Some(_), Some(_)) => {
            return Err("A statement holds Principal or NotPrincipal, not both".into())
        }
    };
    let actions = match (action, not_action) {
        (Some(a), None) => (a, false),
        (None, Some(a)) => (a, true),
        _ => return Err("A statement must contain either Action or NotAction".into()),
    };
    let actions = (
        strings(actions.0, "Action")?
            .iter()
            .map(|a| action_pattern(a, kind))
            .collect::<Result<_, _>>()?,
        actions.1,
    );
    let resources = match (resource, not_resource) {
        (Some(r), None) => (r, false),
        (None, Some(r)) => (r, true),
        _ => return Err("A statement must contain either Resource or NotResource".into()),
    };
    let resources = (
        strings(resources.0, "Resource")?
            .iter()
            .map(|r| resource_pattern(r, kind, variables))
            .collect::<Result<_, _>>()?,
        resources.1,
    );
    Ok(Statement {
        effect,
        principals,
        actions,
        resources,
        conditions,
    })
}

impl Statement {
    /// Whether the statement applies to the request, and how it names the caller (an
    /// identity policy's statements name their holder directly).
    fn applies(&self, req: &Request<'_>) -> Option<Naming> {
        let naming = match &self.principals {
            None => Naming::Directly,
            Some((entries, false)) => entries
                .iter()
                .map(|e| req.principal.naming_by(e))
                .max()
                .unwrap_or(Naming::Not),
            Some((entries, true)) => match entries.iter().any(|e| req.principal.is_named_by(e)) {
                true => Naming::Not,
                false => Naming::Directly,
            },
        };
        if naming == Naming::Not {
            return None;
        }
        let ctx = req.context;
        let (actions, not) = &self.actions;
        if actions.iter().any(|a| a.matches(req.action, ctx, true)) == *not {
            return None;
        }
        let (resources, not) = &self.resources;
        if resources.iter().any(|r| r.matches(req.resource, ctx, false)) == *not {
            return None;
        }
        self.conditions.iter().all(|c| c.holds(ctx)).then_some(naming)
    }
}

impl Condition {
    fn holds(&self, ctx: &Context) -> bool {
        let given = ctx.get(&self.key);
        if self.op == Op::Null {
            let Expected::Bools(b) = &self.expected else {
                return false;
            };
            return b.iter().any(|want_absent| given.is_none() == *want_absent);
        }
        let Some(given) = given.filter(|g| !g.is_empty()) else {
            return match self.set {
                SetOp::ForAllValues => true,
                _ => self.if_exists || self.op.negated(),
            };
        };
        let positive = |v: &str| self.matches_any(v, ctx);
        match (self.set, self.op.negated()) {
            (SetOp::Single, false) | (SetOp::ForAnyValue, false) => given.iter().any(|v| positive(v)),
            (SetOp::Single, true) => !given.iter().any(|v| positive(v)),
            (SetOp::ForAnyValue, true) => given.iter().any(|v| !positive(v)),
            (SetOp::ForAllValues, false) => given.iter().all(|v| positive(v)),
            (SetOp::ForAllValues, true) => given.iter().all(|v| !positive(v)),
        }
    }

    /// Whether one request value matches one of the expected values, for the operator
    /// without its negation (`StringNotEquals` asks `StringEquals`).
    fn matches_any(&self, v: &str, ctx: &Context) -> bool {
        use Op::*;
        match &self.expected {
            Expected::Text(ps) => {
                let ci = matches!(self.op, StringEqualsIgnoreCase | StringNotEqualsIgnoreCase);
                ps.iter().any(|p| p.matches(v, ctx, ci))
            }
            Expected::Numbers(ns) => {
                let Ok(x) = v.trim().parse::<f64>() else { return false };
                ns.iter().any(|n| match self.op {
                    NumericEquals | NumericNotEquals => x == *n,
                    NumericLessThan => x < *n,
                    NumericLessThanEquals => x <= *n,
                    NumericGreaterThan => x > *n,
                    NumericGreaterThanEquals => x >= *n,
                    _ => false,
                })
            }
            Expected::Dates(ds) => {
                let Some(x) = parse_date(v) else { return false };
                ds.iter().any(|d| match self.op {
                    DateEquals | DateNotEquals => x == *d,
                    DateLessThan => x < *d,
                    DateLessThanEquals => x <= *d,
                    DateGreaterThan => x > *d,
                    DateGreaterThanEquals => x >= *d,
                    _ => false,
                })
            }
            Expected::Bools(bs) => {
                let x = v.eq_ignore_ascii_case("true");
                bs.contains(&x)
            }
            Expected::Networks(ns) => {
                let Ok(ip) = v.parse::<IpAddr>() else { return false };
                ns.iter().any(|n| in_network(ip, *n))
            }
        }
    }
}

/// The bucket policy a bucket's canned ACL amounts to, as S3 grants it to everyone
/// (`AllUsers`): READ on a bucket lists it; WRITE creates and deletes its objects.
pub fn canned_acl_policy(bucket: &str, canned: &str) -> Option<String> {
    let read = serde_json::json!({"Sid": "CannedAclRead", "Effect": "Allow", "Principal": "*",
        "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
        "Resource": format!("arn:aws:s3:::{bucket}")});
    let write = serde_json::json!({"Sid": "CannedAclWrite", "Effect": "Allow", "Principal": "*",
        "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        "Resource": format!("arn:aws:s3:::{bucket}/*")});
    let statements = match canned {
        "public-read" => vec![read],
        "public-read-write" => vec![read, write],
        _ => return None,
    };
    Some(serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

#[cfg(test)]
mod tests;
