//! Web identity federation: `AssumeRoleWithWebIdentity` checks an ID token against the
//! issuer its tenant trusts (keys inline or fetched over HTTPS), then the role's claims, and
//! opens a session sealed into its token.

use crate::error::{IamError, IamResult};
use crate::jwt::{self, Jwks, TokenError};
use crate::pattern::Pattern;
use crate::principal::{role_arn, valid_tenant_name, valid_user_name};
use crate::service::{new_access_key, new_secret, Iam, JWKS_TTL};
use crate::sts::{self, Session};
use crate::Context;
use coffre_meta::OidcConfig;
use coffre_types::now_millis;
use std::sync::Arc;

impl Iam {
    /// `AssumeRoleWithWebIdentity`: checks the token against the role's tenant's issuer and
    /// the role's claims, and opens a session of `duration_secs` (default one hour).
    pub async fn assume_role_with_web_identity(
        &self,
        role: &str,
        token: &str,
        session_name: &str,
        duration_secs: Option<u32>,
    ) -> IamResult<(Session, String)> {
        let (tenant, role_name) = role
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.split_once(":role/"))
            .filter(|(t, r)| valid_tenant_name(t) && valid_user_name(r))
            .ok_or_else(|| {
                IamError::InvalidInput(format!("'{role}' is not a role ARN (arn:aws:iam::TENANT:role/NAME)"))
            })?;
        if !(2..=64).contains(&session_name.len()) || !valid_user_name(session_name) {
            return Err(IamError::InvalidInput(
                "RoleSessionName is 2 to 64 of A-Z a-z 0-9 + = , . @ _ -".into(),
            ));
        }
        let not_authorized =
            || IamError::AccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity".into());
        // The token is checked before the role is looked up, so that an unauthenticated
        // caller learns nothing of which roles exist: without a token of the tenant's
        // issuer, every role (and a tenant without an issuer, or none) answers alike.
        let no_issuer = || IamError::InvalidIdentityToken("No OpenID Connect issuer trusts this token".into());
        let oidc = self
            .meta
            .get_tenant(tenant)?
            .and_then(|t| t.oidc)
            .ok_or_else(no_issuer)?;
        let jwks = self.jwks_of(&oidc).await?;
        let now = (now_millis() / 1000) as i64;
        let claims = jwt::verify(token, &jwks, &oidc.issuer, &oidc.audience, now).map_err(|e| match e {
            TokenError::Expired => IamError::ExpiredToken("Token is expired".into()),
            TokenError::Invalid(m) => IamError::InvalidIdentityToken(m),
        })?;
        let entry = self.role_entry(tenant, role_name)?.ok_or_else(not_authorized)?;
        let ctx = Context::default();
        for (claim, pattern) in &entry.record.claims {
            let p = Pattern::parse(pattern, false).map_err(IamError::InvalidInput)?;
            if !claims.values(claim).iter().any(|v| p.matches(v, &ctx, false)) {
                return Err(not_authorized());
            }
        }
        let duration = duration_secs.unwrap_or(sts::DEFAULT_MAX_SESSION_SECS.min(entry.record.max_session_secs));
        if duration < sts::MIN_SESSION_SECS || duration > entry.record.max_session_secs {
            return Err(IamError::InvalidInput(format!(
                "DurationSeconds must be between {} and {} for this role",
                sts::MIN_SESSION_SECS,
                entry.record.max_session_secs
            )));
        }
        let session = Session {
            access_key: new_access_key("ASIA"),
            secret: new_secret(),
            tenant: tenant.into(),
            role: role_name.into(),
            role_id: entry.record.id.clone(),
            session: session_name.into(),
            subject: claims.subject().unwrap_or_default().to_string(),
            expires_ms: now_millis().saturating_add(duration as u64 * 1000),
        };
        let token = session.token(&self.keys);
        Ok((session, token))
    }

    /// The issuer's keys: inline, or fetched (and kept for a while).
    async fn jwks_of(&self, oidc: &OidcConfig) -> IamResult<Arc<Jwks>> {
        if let Some(doc) = &oidc.jwks {
            return Ok(Arc::new(Jwks::parse(doc).map_err(IamError::IdpCommunication)?));
        }
        let url = oidc
            .jwks_url
            .as_deref()
            .ok_or_else(|| IamError::IdpCommunication("the tenant's issuer has no keys configured".into()))?;
        let mut cache = self.jwks.lock().await;
        if let Some((at, k)) = cache.get(url) {
            if at.elapsed() < JWKS_TTL {
                return Ok(k.clone());
            }
        }
        let doc = crate::fetch::get(url).await.map_err(IamError::IdpCommunication)?;
        let k = Arc::new(Jwks::parse(&doc).map_err(IamError::IdpCommunication)?);
        if cache.len() >= 1000 {
            cache.clear();
        }
        cache.insert(url.to_string(), (std::time::Instant::now(), k.clone()));
        Ok(k)
    }

    /// The ARN of a role of a tenant.
    pub fn role_arn(tenant: &str, role: &str) -> String {
        role_arn(tenant, role)
    }
}
