//! Tenants, users, access keys and roles through the admin API.

use super::api::*;
use super::*;
use crate::api::*;

pub(super) fn print_tenant(v: &TenantInfo) {
    let limit = |x: Option<u64>| x.map_or("unlimited".to_string(), |n| n.to_string());
    println!(
        "tenant {}: {} bytes, {} objects (quota {} bytes, {} objects); buckets {:?}; users {:?}; key {}{}",
        v.tenant,
        v.usage.bytes,
        v.usage.objects,
        limit(v.quota_bytes),
        limit(v.quota_objects),
        v.buckets,
        v.users,
        v.kek_id,
        v.oidc_issuer
            .as_ref()
            .map(|i| format!("; issuer {i}"))
            .unwrap_or_default()
    );
}

/// One line of compact JSON.
fn print_line<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string(v).unwrap_or_default());
}

pub(super) fn tenant_command(cmd: TenantCommand) -> Result<(), String> {
    match cmd {
        TenantCommand::Create {
            api,
            name,
            quota_bytes,
            quota_objects,
            json,
        } => {
            let query = CreateTenantQuery {
                name: name.clone(),
                quota_bytes,
                quota_objects,
            };
            let v = ask::<TenantsCreate>(&api, (), query, ())?;
            if json {
                print_line(&v);
            } else {
                println!("tenant {name} created; its admin user's key (the secret is shown only now):");
                println!("  access key: {}", v.access_key);
                println!("  secret key: {}", v.secret_key);
            }
        }
        TenantCommand::List { api, json } => {
            let v = ask_at::<TenantsList>(&api, ())?;
            if json {
                print_json(&v);
            } else {
                v.tenants.iter().for_each(print_tenant);
            }
        }
        TenantCommand::Show { api, name, json } => {
            let v = ask_at::<TenantsGet>(&api, name)?;
            if json {
                print_json(&v);
            } else {
                print_tenant(&v);
            }
        }
        TenantCommand::Delete {
            api,
            name,
            erase,
            force,
            json,
        } => {
            let v = ask::<TenantsDelete>(&api, name.clone(), DeleteTenantQuery { erase, force }, ())?;
            match (&v.certificate, json) {
                (Some(c), _) => print_json(c),
                (None, true) => print_line(&v),
                (None, false) => println!("tenant {name} deleted"),
            }
        }
        TenantCommand::Quota {
            api,
            name,
            bytes,
            objects,
        } => {
            let quota = QuotaQuery {
                quota_bytes: bytes,
                quota_objects: objects,
            };
            ask::<TenantsQuotaPut>(&api, name.clone(), quota, ())?;
            println!("tenant {name}: quota set");
        }
        TenantCommand::Oidc {
            api,
            name,
            issuer,
            audience,
            jwks_file,
            jwks_url,
            remove,
        } => {
            let settings = match (remove, issuer, audience) {
                (true, _, _) => None,
                (false, Some(issuer), Some(audience)) => {
                    let jwks = match &jwks_file {
                        Some(f) => Some(String::from_utf8(read_file(f)?).map_err(|_| "the JWKS is not UTF-8")?),
                        None => None,
                    };
                    if jwks.is_none() && jwks_url.is_none() {
                        return Err("give --jwks-file or --jwks-url".into());
                    }
                    Some(OidcSettings {
                        issuer,
                        audience,
                        jwks: jwks.map(serde_json::Value::String),
                        jwks_url,
                    })
                }
                _ => return Err("give --issuer and --audience, or --remove".into()),
            };
            ask::<TenantsOidcPut>(&api, name.clone(), NoQuery {}, settings)?;
            println!("tenant {name}: issuer {}", if remove { "removed" } else { "set" });
        }
    }
    Ok(())
}

pub(super) fn user_command(cmd: UserCommand) -> Result<(), String> {
    match cmd {
        UserCommand::Create {
            api,
            tenant,
            name,
            json,
        } => {
            let v = ask::<TenantsUsersCreate>(&api, tenant, NameQuery { name: name.clone() }, ())?;
            if json {
                print_line(&v);
            } else {
                println!("user {} created ({})", name, v.arn);
            }
        }
        UserCommand::Delete { api, tenant, name } => {
            ask_at::<TenantsUsersDelete>(&api, (tenant, name.clone()))?;
            println!("user {name} deleted, with its keys");
        }
        UserCommand::List { api, tenant, json } => {
            let v = ask_at::<TenantsUsersGet>(&api, tenant)?;
            if json {
                print_json(&v);
            } else {
                for u in &v.users {
                    println!(
                        "{:<24} {:<22} {}{:?}",
                        u.user,
                        u.id,
                        if u.admin { "admin " } else { "" },
                        u.policies
                    );
                }
            }
        }
        UserCommand::Policy {
            api,
            tenant,
            user,
            name,
            file,
            remove,
        } => {
            let path = (tenant, user.clone(), name.clone());
            match (remove, file) {
                (true, _) => {
                    ask_at::<TenantsUsersPoliciesDelete>(&api, path)?;
                }
                (false, Some(f)) => {
                    let document: serde_json::Value = serde_json::from_slice(&read_file(&f)?)
                        .map_err(|e| format!("{}: not a JSON policy document: {e}", f.display()))?;
                    ask::<TenantsUsersPoliciesPut>(&api, path, NoQuery {}, PolicyDocument(document))?;
                }
                (false, None) => return Err("give --file or --remove".into()),
            }
            println!("user {user}: policy {name} {}", if remove { "removed" } else { "set" });
        }
    }
    Ok(())
}

pub(super) fn key_command(cmd: KeyCommand) -> Result<(), String> {
    match cmd {
        KeyCommand::Create {
            api,
            tenant,
            user,
            expires_in_secs,
            json,
        } => {
            let v = ask::<TenantsUsersKeysCreate>(&api, (tenant, user), CreateKeyQuery { expires_in_secs }, ())?;
            if json {
                print_line(&serde_json::json!({"access_key": v.access_key, "secret_key": v.secret_key}));
            } else {
                println!("access key: {}", v.access_key);
                println!("secret key: {} (shown only now)", v.secret_key);
            }
        }
        KeyCommand::Disable { api, tenant, key } => {
            ask_at::<KeyDisable>(&api, (tenant, key.clone()))?;
            println!("key {key} disabled");
        }
        KeyCommand::Enable { api, tenant, key } => {
            ask_at::<KeyEnable>(&api, (tenant, key.clone()))?;
            println!("key {key} enabled");
        }
        KeyCommand::Delete { api, tenant, key } => {
            ask_at::<TenantsKeysDelete>(&api, (tenant, key.clone()))?;
            println!("key {key} deleted");
        }
        KeyCommand::List {
            api,
            tenant,
            user,
            json,
        } => {
            let v = ask::<TenantsKeysGet>(&api, tenant, KeyListQuery { user }, ())?;
            if json {
                print_json(&v);
            } else {
                for k in &v.keys {
                    println!(
                        "{:<22} {:<24} {}",
                        k.access_key,
                        k.user,
                        if k.enabled { "enabled" } else { "DISABLED" }
                    );
                }
            }
        }
    }
    Ok(())
}

pub(super) fn role_command(cmd: RoleCommand) -> Result<(), String> {
    match cmd {
        RoleCommand::Put {
            api,
            tenant,
            name,
            policy_file,
            claim,
            max_session_secs,
        } => {
            let policy = String::from_utf8(read_file(&policy_file)?).map_err(|_| "the policy is not UTF-8")?;
            let mut claims = std::collections::BTreeMap::new();
            for c in claim {
                let (k, v) = c.split_once('=').ok_or("a claim is NAME=PATTERN")?;
                claims.insert(k.to_string(), v.to_string());
            }
            let settings = RoleSettings {
                policy: serde_json::Value::String(policy),
                claims,
                max_session_secs,
            };
            let v = ask::<TenantsRolesPut>(&api, (tenant, name), NoQuery {}, settings)?;
            println!("role {}", v.arn);
        }
        RoleCommand::Delete { api, tenant, name } => {
            ask_at::<TenantsRolesDelete>(&api, (tenant, name.clone()))?;
            println!("role {name} deleted");
        }
        RoleCommand::List { api, tenant } => {
            print_json(&ask_at::<TenantsRolesGet>(&api, tenant)?);
        }
    }
    Ok(())
}
