//! Who makes a request, and how policies name them.
//!
//! A tenant is an account: its id in ARNs is its name (`arn:aws:iam::hopital:user/backup`),
//! as Ceph RGW does with tenants.

/// The caller of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Principal {
    /// No signature: only what a bucket policy grants to `*` is allowed.
    Anonymous,
    /// A user of a tenant, by one of its access keys.
    User {
        tenant: String,
        name: String,
        /// `AIDA…`: `aws:userid`.
        id: String,
        /// The tenant's admin user: full rights on the tenant's buckets and users.
        admin: bool,
    },
    /// A temporary session of a role (from `AssumeRoleWithWebIdentity`).
    Session {
        tenant: String,
        role: String,
        /// `AROA…`.
        role_id: String,
        session: String,
    },
}

impl Principal {
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Principal::Anonymous => None,
            Principal::User { tenant, .. } | Principal::Session { tenant, .. } => Some(tenant),
        }
    }

    pub fn is_tenant_admin(&self) -> bool {
        matches!(self, Principal::User { admin: true, .. })
    }

    /// The ARN policies name this caller by (`aws:PrincipalArn`).
    pub fn arn(&self) -> String {
        match self {
            Principal::Anonymous => "*".into(),
            Principal::User { tenant, name, .. } => user_arn(tenant, name),
            Principal::Session {
                tenant, role, session, ..
            } => format!("arn:aws:sts::{tenant}:assumed-role/{role}/{session}"),
        }
    }

    /// `aws:username` (users only, as in AWS).
    pub fn username(&self) -> Option<&str> {
        match self {
            Principal::User { name, .. } => Some(name),
            _ => None,
        }
    }

    /// `aws:userid`: the user's id, or `role id:session` for a session.
    pub fn userid(&self) -> Option<String> {
        match self {
            Principal::Anonymous => None,
            Principal::User { id, .. } => Some(id.clone()),
            Principal::Session { role_id, session, .. } => Some(format!("{role_id}:{session}")),
        }
    }

    /// `aws:PrincipalType`.
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Anonymous => "Anonymous",
            Principal::User { .. } => "User",
            Principal::Session { .. } => "AssumedRole",
        }
    }

    /// Whether one entry of a policy's `Principal` (validated by `valid_principal`) names
    /// this caller.
    pub fn is_named_by(&self, entry: &str) -> bool {
        self.naming_by(entry) != Naming::Not
    }

    /// How one entry of a policy's `Principal` names this caller: `*` names everyone
    /// (anonymous included) directly; an account (`T` or `arn:aws:iam::T:root`) names every
    /// authenticated caller of tenant `T` as a member of the account; a user ARN its user, a
    /// role ARN every session of the role, directly.
    pub fn naming_by(&self, entry: &str) -> Naming {
        if entry == "*" {
            return Naming::Directly;
        }
        let Some(tenant) = self.tenant() else {
            return Naming::Not;
        };
        if entry == tenant || entry == format!("arn:aws:iam::{tenant}:root") {
            return Naming::Account;
        }
        let direct = match self {
            Principal::User { .. } => entry == self.arn(),
            Principal::Session { role, .. } => {
                entry == format!("arn:aws:iam::{tenant}:role/{role}") || entry == self.arn()
            }
            Principal::Anonymous => false,
        };
        match direct {
            true => Naming::Directly,
            false => Naming::Not,
        }
    }
}

/// How a policy's principal names a caller. A grant to an account is a grant to the account,
/// which its own identity policies then delegate (as AWS evaluates a resource policy naming
/// an account); a grant naming the caller (or everyone) is the caller's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Naming {
    Not,
    Account,
    Directly,
}

pub fn user_arn(tenant: &str, name: &str) -> String {
    format!("arn:aws:iam::{tenant}:user/{name}")
}

pub fn role_arn(tenant: &str, name: &str) -> String {
    format!("arn:aws:iam::{tenant}:role/{name}")
}

/// Tenant names: lower-case letters, digits and `-`, 1 to 63 of them, starting with a letter
/// or digit (they appear in ARNs and in the metadata's keys).
pub fn valid_tenant_name(n: &str) -> bool {
    (1..=63).contains(&n.len())
        && n.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && n.as_bytes()[0] != b'-'
}

/// IAM user and role names: `[A-Za-z0-9+=,.@_-]`, 1 to 64 of them.
pub fn valid_user_name(n: &str) -> bool {
    (1..=64).contains(&n.len()) && n.bytes().all(|c| c.is_ascii_alphanumeric() || b"+=,.@_-".contains(&c))
}

/// Whether `entry` is something a policy's `Principal` may name: `*`, an account, or an ARN
/// of a user, role or role session of this store.
pub fn valid_principal(entry: &str) -> bool {
    if entry == "*" || valid_tenant_name(entry) {
        return true;
    }
    if let Some(rest) = entry.strip_prefix("arn:aws:iam::") {
        let Some((tenant, what)) = rest.split_once(':') else {
            return false;
        };
        return valid_tenant_name(tenant)
            && (what == "root"
                || what.strip_prefix("user/").is_some_and(valid_user_name)
                || what.strip_prefix("role/").is_some_and(valid_user_name));
    }
    if let Some(rest) = entry.strip_prefix("arn:aws:sts::") {
        let Some((tenant, what)) = rest.split_once(':') else {
            return false;
        };
        let Some(session) = what.strip_prefix("assumed-role/") else {
            return false;
        };
        return valid_tenant_name(tenant)
            && session
                .split_once('/')
                .is_some_and(|(r, s)| valid_user_name(r) && !s.is_empty() && s.len() <= 64);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(tenant: &str, name: &str) -> Principal {
        Principal::User {
            tenant: tenant.into(),
            name: name.into(),
            id: "AIDA1".into(),
            admin: false,
        }
    }

    #[test]
    fn who_a_policy_names() {
        let alice = user("hopital", "alice");
        assert!(alice.is_named_by("*"));
        assert!(alice.is_named_by("hopital"));
        assert!(alice.is_named_by("arn:aws:iam::hopital:root"));
        assert!(alice.is_named_by("arn:aws:iam::hopital:user/alice"));
        assert!(!alice.is_named_by("arn:aws:iam::hopital:user/bob"));
        assert!(!alice.is_named_by("arn:aws:iam::mairie:user/alice"));
        assert!(!alice.is_named_by("mairie"));
        assert!(Principal::Anonymous.is_named_by("*"));
        assert!(!Principal::Anonymous.is_named_by("hopital"));
        let s = Principal::Session {
            tenant: "hopital".into(),
            role: "readers".into(),
            role_id: "AROA1".into(),
            session: "jean".into(),
        };
        assert!(s.is_named_by("arn:aws:iam::hopital:role/readers"));
        assert!(s.is_named_by("arn:aws:sts::hopital:assumed-role/readers/jean"));
        assert!(!s.is_named_by("arn:aws:iam::hopital:role/writers"));
        assert_eq!(s.userid().as_deref(), Some("AROA1:jean"));
    }

    #[test]
    fn names() {
        assert!(valid_tenant_name("hopital-2") && !valid_tenant_name("-x") && !valid_tenant_name("Hop"));
        assert!(!valid_tenant_name("") && !valid_tenant_name(&"a".repeat(64)));
        assert!(valid_user_name("jean.dupont@chu") && !valid_user_name("a b") && !valid_user_name(""));
        for ok in [
            "*",
            "hopital",
            "arn:aws:iam::hopital:root",
            "arn:aws:iam::hopital:user/alice",
            "arn:aws:iam::hopital:role/readers",
            "arn:aws:sts::hopital:assumed-role/readers/s1",
        ] {
            assert!(valid_principal(ok), "{ok}");
        }
        for bad in [
            "",
            "arn:aws:iam::hopital:group/g",
            "arn:aws:iam::Hop:root",
            "arn:aws:sts::h:assumed-role/r",
            "arn:aws:s3:::bucket",
        ] {
            assert!(!valid_principal(bad), "{bad}");
        }
    }
}
