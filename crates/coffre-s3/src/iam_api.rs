//! The tenant's IAM and STS query APIs on the S3 listener (`POST /` with a form, SigV4
//! services `iam` and `sts`), so that `aws iam`, `aws sts` and Terraform manage a tenant's
//! users, keys and inline policies and obtain temporary credentials. Every call acts within
//! the caller's own tenant; the operator's plane (tenants, quotas) is the admin API only.

use crate::auth::{self, RequestParts};
use crate::body::BodyReader;
use crate::context::{Gateway, Origin, RequestFacts};
use crate::http::{full, Res};
use crate::xml::{escape, Xml};
use crate::S3Error;
use coffre_iam::principal::user_arn;
use coffre_iam::{Caller, IamError, Target};
use coffre_types::time::iso8601;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use hyper::body::Incoming;
use std::sync::Arc;

const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// Largest form taken (a policy document is at most 10 KiB, URL-encoded three times that).
const MAX_FORM: usize = 64 * 1024;

/// Whether a request to the service root is a query-API call rather than S3.
pub fn is_query_api(method: &Method, headers: &HeaderMap, raw_query: &str) -> bool {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    (method == Method::POST && form)
        || (method == Method::GET && raw_query.split('&').any(|p| p.starts_with("Action=")))
}

/// An error as the query APIs answer it.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

impl From<S3Error> for ApiError {
    fn from(e: S3Error) -> ApiError {
        // Unknown keys are InvalidClientTokenId to IAM clients.
        let code = match e.code {
            "InvalidAccessKeyId" => "InvalidClientTokenId",
            c => c,
        };
        err(e.status, code, e.message)
    }
}

impl From<IamError> for ApiError {
    fn from(e: IamError) -> ApiError {
        use IamError as E;
        match e {
            E::AccessDenied(m) => err(StatusCode::FORBIDDEN, "AccessDenied", m),
            E::InvalidAccessKeyId(m) => err(StatusCode::FORBIDDEN, "InvalidClientTokenId", m),
            E::InvalidToken(m) => err(StatusCode::FORBIDDEN, "InvalidClientTokenId", m),
            E::ExpiredToken(m) => err(StatusCode::BAD_REQUEST, "ExpiredTokenException", m),
            E::NoSuchEntity(m) => err(
                StatusCode::NOT_FOUND,
                "NoSuchEntity",
                format!("The {m} cannot be found."),
            ),
            E::EntityAlreadyExists(m) => err(
                StatusCode::CONFLICT,
                "EntityAlreadyExists",
                format!("The {m} already exists."),
            ),
            E::DeleteConflict(m) => err(StatusCode::CONFLICT, "DeleteConflict", m),
            E::MalformedPolicy(m) => err(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", m),
            E::InvalidInput(m) => err(StatusCode::BAD_REQUEST, "ValidationError", m),
            E::InvalidIdentityToken(m) => err(StatusCode::BAD_REQUEST, "InvalidIdentityToken", m),
            E::IdpCommunication(m) => err(StatusCode::BAD_REQUEST, "IDPCommunicationError", m),
            other @ (E::NoSuchBucket | E::Corrupt(_) | E::KeyUnavailable(_) | E::Meta(_)) => {
                S3Error::from(other).into()
            }
        }
    }
}

/// `a=1&b=x+y` as an HTML form encodes it (`+` is a space).
fn parse_form(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                String::from_utf8(crate::encoding::percent_decode(&s.replace('+', " ")))
                    .map_err(|_| err(StatusCode::BAD_REQUEST, "MalformedInput", "the form is not UTF-8"))
            };
            Ok((dec(k)?, dec(v)?))
        })
        .collect()
}

struct Call {
    params: Vec<(String, String)>,
    caller: Arc<Caller>,
    gw: Arc<Gateway>,
    headers: HeaderMap,
    origin: Origin,
    /// What the call acted on or issued (`UserName=…`, `AccessKeyId=…`), for its audit entry.
    named: std::sync::Mutex<Vec<String>>,
}

/// The parameters that name what a call acts on (never a secret, a token or a policy body).
const NAMING_PARAMS: &[&str] = &[
    "UserName",
    "RoleName",
    "PolicyName",
    "AccessKeyId",
    "RoleSessionName",
    "RoleArn",
];

impl Call {
    fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"),
            )
        })
    }

    fn tenant(&self) -> Result<&str, ApiError> {
        self.caller
            .principal
            .tenant()
            .ok_or_else(|| err(StatusCode::FORBIDDEN, "AccessDenied", "sign your request"))
    }

    /// The user an action names, else the caller itself (a user calling for its own keys).
    fn user(&self) -> Result<String, ApiError> {
        match (self.get("UserName"), self.caller.principal.username()) {
            (Some(u), _) if !u.is_empty() => Ok(u.to_string()),
            (_, Some(me)) => {
                self.name("UserName", me);
                Ok(me.to_string())
            }
            _ => Err(err(StatusCode::BAD_REQUEST, "ValidationError", "UserName is required")),
        }
    }

    /// Records something the call acted on or issued, for its audit entry.
    fn name(&self, what: &str, value: &str) {
        let entry = format!("{what}={value}");
        let mut named = self.named.lock().unwrap_or_else(|p| p.into_inner());
        if !named.contains(&entry) {
            named.push(entry);
        }
    }

    /// Authorizes `iam:<action>` on a user of the caller's tenant.
    fn allow(&self, action: &str, user: &str) -> Result<(), ApiError> {
        let tenant = self.tenant()?;
        let facts = RequestFacts {
            caller: &self.caller,
            headers: &self.headers,
            query: &[],
            origin: self.origin,
            auth_type: "REST-HEADER",
            object: None,
        };
        self.gw.iam.authorize(
            &self.caller,
            &format!("iam:{action}"),
            Target::Iam(&user_arn(tenant, user)),
            &facts,
        )?;
        Ok(())
    }
}

fn user_xml(x: &mut Xml, tenant: &str, name: &str, rec: &coffre_engine::UserRecord) {
    x.elem("Path", "/")
        .elem("UserName", name)
        .elem("UserId", &rec.id)
        .elem("Arn", &user_arn(tenant, name))
        .elem("CreateDate", &iso8601(rec.created_ms));
}

/// `<ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>…`.
fn answer(ns: &str, action: &str, request_id: &str, result: Option<&str>) -> Res {
    let mut body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{ns}\">");
    if let Some(r) = result {
        body.push_str(&format!("<{action}Result>{r}</{action}Result>"));
    }
    body.push_str(&format!(
        "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    ));
    let mut res = Response::new(full(body));
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/xml"));
    res
}

fn error_answer(ns: &str, e: &ApiError, request_id: &str) -> Res {
    let kind = if e.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{ns}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        e.code,
        escape(&e.message)
    );
    let mut res = Response::new(full(body));
    *res.status_mut() = e.status;
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/xml"));
    res.extensions_mut().insert(crate::audit::ErrorCode(e.code));
    res
}

/// A fragment of result XML (no root, no declaration).
fn fragment() -> Xml {
    Xml(String::new())
}

/// Answers one query-API call; errors are answered in the API's own format.
pub async fn handle(
    gw: Arc<Gateway>,
    parts: http::request::Parts,
    body: Incoming,
    origin: Origin,
    trail: &mut crate::audit::Trail,
) -> Result<Res, S3Error> {
    let request_id = format!("{:032x}", u128::from_be_bytes(coffre_types::random_bytes()));
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    // The form is read whole (it is small) and hashed: these clients sign its SHA-256
    // without sending it in a header.
    let mut plain = HeaderMap::new();
    if let Some(l) = parts.headers.get("content-length") {
        plain.insert("content-length", l.clone());
    }
    let (reader, _) = BodyReader::new(body, &plain, None, MAX_FORM as u64, gw.config.body_limits)?;
    let raw = reader.read_all(MAX_FORM).await?;
    let text = std::str::from_utf8(&raw).map_err(|_| S3Error::invalid_argument("the form is not UTF-8"))?;
    let mut params = match parse_form(&raw_query).and_then(|mut q| {
        q.extend(parse_form(text)?);
        Ok(q)
    }) {
        Ok(p) => p,
        Err(e) => return Ok(error_answer(IAM_NS, &e, &request_id)),
    };
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    // The audit's and the metrics' name: a known action's, never the client's text as such
    // (the metrics' label values stay a bounded set).
    trail.op = match ACTIONS.iter().find(|a| **a == action) {
        Some(a) => (*a).into(),
        None if action.is_empty() => "IamQuery".into(),
        None => "UnknownIamAction".into(),
    };
    let sts = matches!(action.as_str(), "AssumeRoleWithWebIdentity" | "GetCallerIdentity");
    let ns = if sts { STS_NS } else { IAM_NS };
    // AssumeRoleWithWebIdentity is not signed: the web identity token is the credential.
    let caller = if action == "AssumeRoleWithWebIdentity" {
        Caller::anonymous()
    } else {
        let body_sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, &raw));
        let verified = auth::verify_for(
            &RequestParts {
                method: parts.method.as_str(),
                raw_path: parts.uri.path(),
                raw_query: &raw_query,
                headers: &parts.headers,
            },
            gw.iam.as_ref(),
            &gw.config.region,
            if sts { "sts" } else { "iam" },
            Some(&body_sha256),
        );
        match verified {
            Ok(Some((v, c))) => {
                trail.caller(&c, Some(&v.access_key));
                c
            }
            Ok(None) => {
                let e = err(
                    StatusCode::FORBIDDEN,
                    "MissingAuthenticationToken",
                    "Request is missing Authentication Token",
                );
                return Ok(error_answer(ns, &e, &request_id));
            }
            Err(e) => return Ok(error_answer(ns, &e.into(), &request_id)),
        }
    };
    params.retain(|(k, _)| k != "Version");
    let call = Call {
        params,
        caller,
        gw,
        headers: parts.headers,
        origin,
        named: Default::default(),
    };
    for p in NAMING_PARAMS {
        if let Some(v) = call.get(p).filter(|v| !v.is_empty() && v.len() <= 256) {
            call.name(p, v);
        }
    }
    let named = |call: &Call| {
        let named = call.named.lock().unwrap_or_else(|p| p.into_inner());
        (!named.is_empty()).then(|| named.join(" "))
    };
    trail.detail = named(&call);
    crate::audit::draft(&call.gw.engine, trail, &origin);
    let result = run(&call, &action).await;
    trail.detail = named(&call);
    // A web identity's call is filed under the tenant of the role it asks for.
    if trail.tenant.is_empty() {
        if let Some(t) = call
            .get("RoleArn")
            .and_then(|a| a.split(':').nth(4))
            .filter(|t| !t.is_empty())
        {
            trail.tenant = t.to_string();
        }
    }
    Ok(match result {
        Ok(result) => answer(ns, &action, &request_id, result.as_deref()),
        Err(e) => error_answer(ns, &e, &request_id),
    })
}

/// The actions `run` answers.
const ACTIONS: &[&str] = &[
    "GetCallerIdentity",
    "AssumeRoleWithWebIdentity",
    "CreateUser",
    "GetUser",
    "DeleteUser",
    "ListUsers",
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "ListAccessKeys",
    "PutUserPolicy",
    "DeleteUserPolicy",
    "GetUserPolicy",
    "ListUserPolicies",
    "ListAttachedUserPolicies",
    "ListGroupsForUser",
    "ListUserTags",
];

/// One action; the result element's content, if it has one.
async fn run(call: &Call, action: &str) -> Result<Option<String>, ApiError> {
    let iam = call.gw.iam.clone();
    let mut x = fragment();
    match action {
        "GetCallerIdentity" => {
            let p = &call.caller.principal;
            x.elem("Arn", &p.arn())
                .elem("UserId", &p.userid().unwrap_or_default())
                .elem("Account", call.tenant()?);
        }
        "AssumeRoleWithWebIdentity" => {
            let duration = match call.get("DurationSeconds") {
                Some(d) => Some(
                    d.parse::<u32>()
                        .map_err(|_| err(StatusCode::BAD_REQUEST, "ValidationError", "DurationSeconds is a number"))?,
                ),
                None => None,
            };
            let (s, token) = iam
                .assume_role_with_web_identity(
                    call.require("RoleArn")?,
                    call.require("WebIdentityToken")?,
                    call.require("RoleSessionName")?,
                    duration,
                )
                .await?;
            call.name("SessionAccessKeyId", &s.access_key);
            x.open("Credentials")
                .elem("AccessKeyId", &s.access_key)
                .elem("SecretAccessKey", &s.secret)
                .elem("SessionToken", &token)
                .elem("Expiration", &iso8601(s.expires_ms))
                .close("Credentials");
            x.elem("SubjectFromWebIdentityToken", &s.subject);
            x.open("AssumedRoleUser")
                .elem("AssumedRoleId", &format!("{}:{}", s.role_id, s.session))
                .elem(
                    "Arn",
                    &format!("arn:aws:sts::{}:assumed-role/{}/{}", s.tenant, s.role, s.session),
                )
                .close("AssumedRoleUser");
        }
        "CreateUser" => {
            let name = call.require("UserName")?;
            call.allow(action, name)?;
            let tenant = call.tenant()?;
            let rec = iam.create_user(tenant, name).await?;
            x.open("User");
            user_xml(&mut x, tenant, name, &rec);
            x.close("User");
        }
        "GetUser" => {
            let name = call.user()?;
            call.allow(action, &name)?;
            let tenant = call.tenant()?;
            let rec = iam.user(tenant, &name)?;
            x.open("User");
            user_xml(&mut x, tenant, &name, &rec);
            x.close("User");
        }
        "DeleteUser" => {
            let name = call.require("UserName")?;
            call.allow(action, name)?;
            iam.delete_user(call.tenant()?, name, false).await?;
            return Ok(None);
        }
        "ListUsers" => {
            call.allow(action, "*")?;
            let tenant = call.tenant()?;
            x.open("Users");
            for (name, rec) in iam.users(tenant)? {
                x.open("member");
                user_xml(&mut x, tenant, &name, &rec);
                x.close("member");
            }
            x.close("Users").elem("IsTruncated", "false");
        }
        "CreateAccessKey" => {
            let user = call.user()?;
            call.allow(action, &user)?;
            let tenant = call.tenant()?;
            iam.user(tenant, &user)?;
            let (id, secret) = iam.create_key(tenant, &user, None).await?;
            call.name("AccessKeyId", &id);
            x.open("AccessKey")
                .elem("UserName", &user)
                .elem("AccessKeyId", &id)
                .elem("Status", "Active")
                .elem("SecretAccessKey", &secret)
                .elem("CreateDate", &iso8601(coffre_types::now_millis()))
                .close("AccessKey");
        }
        "UpdateAccessKey" | "DeleteAccessKey" => {
            let user = call.user()?;
            call.allow(action, &user)?;
            let tenant = call.tenant()?;
            let id = call.require("AccessKeyId")?;
            if !iam.keys(tenant, Some(&user))?.iter().any(|k| k.access_key == id) {
                return Err(IamError::NoSuchEntity(format!("access key {id} of user {user}")).into());
            }
            if action == "DeleteAccessKey" {
                iam.delete_key(tenant, id).await?;
            } else {
                let enabled = match call.require("Status")? {
                    "Active" => true,
                    "Inactive" => false,
                    _ => return Err(err(StatusCode::BAD_REQUEST, "ValidationError", "Status is Active or Inactive")),
                };
                iam.set_key_enabled(tenant, id, enabled).await?;
            }
            return Ok(None);
        }
        "ListAccessKeys" => {
            let user = call.user()?;
            call.allow(action, &user)?;
            x.open("AccessKeyMetadata");
            for k in iam.keys(call.tenant()?, Some(&user))? {
                x.open("member")
                    .elem("UserName", &k.user)
                    .elem("AccessKeyId", &k.access_key)
                    .elem("Status", if k.enabled { "Active" } else { "Inactive" })
                    .elem("CreateDate", &iso8601(k.created_ms))
                    .close("member");
            }
            x.close("AccessKeyMetadata").elem("IsTruncated", "false");
        }
        "PutUserPolicy" => {
            let user = call.require("UserName")?;
            call.allow(action, user)?;
            iam.put_user_policy(
                call.tenant()?,
                user,
                call.require("PolicyName")?,
                Some(call.require("PolicyDocument")?),
            )
            .await?;
            return Ok(None);
        }
        "DeleteUserPolicy" => {
            let user = call.require("UserName")?;
            call.allow(action, user)?;
            iam.put_user_policy(call.tenant()?, user, call.require("PolicyName")?, None)
                .await?;
            return Ok(None);
        }
        "GetUserPolicy" => {
            let user = call.require("UserName")?;
            call.allow(action, user)?;
            let name = call.require("PolicyName")?;
            let rec = iam.user(call.tenant()?, user)?;
            let (_, doc) = rec
                .policies
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| IamError::NoSuchEntity(format!("policy {name} of user {user}")))?;
            // As IAM: the document URL-encoded.
            x.elem("UserName", user)
                .elem("PolicyName", name)
                .elem("PolicyDocument", &crate::encoding::uri_encode(doc.as_bytes(), false));
        }
        "ListUserPolicies" => {
            let user = call.require("UserName")?;
            call.allow(action, user)?;
            x.open("PolicyNames");
            for (name, _) in iam.user(call.tenant()?, user)?.policies {
                x.elem("member", &name);
            }
            x.close("PolicyNames").elem("IsTruncated", "false");
        }
        // What Terraform's provider reads of a user: nothing of these exists here.
        "ListAttachedUserPolicies" | "ListGroupsForUser" | "ListUserTags" => {
            let user = call.require("UserName")?;
            call.allow(action, user)?;
            iam.user(call.tenant()?, user)?;
            let list = match action {
                "ListAttachedUserPolicies" => "AttachedPolicies",
                "ListGroupsForUser" => "Groups",
                _ => "Tags",
            };
            x.open(list).close(list).elem("IsTruncated", "false");
        }
        "" => return Err(err(StatusCode::BAD_REQUEST, "MissingAction", "The request needs an Action")),
        other => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!("The action {other} is not valid for this endpoint (Coffre serves a tenant's users, access keys, inline user policies and STS)"),
            ))
        }
    }
    Ok(Some(x.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_as_space() {
        let p = parse_form("Action=PutUserPolicy&PolicyDocument=%7B%22a%22%3A+1%7D").unwrap();
        assert_eq!(p[1].1, "{\"a\": 1}");
        assert!(parse_form("a=%FF").is_err());
    }
}
