//! Tenants, users, access keys and roles through the admin API.

use super::api::*;
use super::*;

pub(super) fn print_tenant(v: &serde_json::Value) {
    let limit = |x: &serde_json::Value| x.as_u64().map_or("unlimited".to_string(), |n| n.to_string());
    println!(
        "tenant {}: {} bytes, {} objects (quota {} bytes, {} objects); buckets {}; users {}; key {}{}",
        v["tenant"].as_str().unwrap_or(""),
        v["usage"]["bytes"],
        v["usage"]["objects"],
        limit(&v["quota_bytes"]),
        limit(&v["quota_objects"]),
        v["buckets"],
        v["users"],
        v["kek_id"].as_str().unwrap_or(""),
        v["oidc_issuer"]
            .as_str()
            .map(|i| format!("; issuer {i}"))
            .unwrap_or_default()
    );
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
            let q = quota_query(quota_bytes, quota_objects);
            let v = call(&api, "POST", &format!("/v1/tenants?name={}&{q}", enc(&name)))?;
            if json {
                println!("{v}");
            } else {
                println!("tenant {name} created; its admin user's key (the secret is shown only now):");
                println!("  access key: {}", v["access_key"].as_str().unwrap_or(""));
                println!("  secret key: {}", v["secret_key"].as_str().unwrap_or(""));
            }
        }
        TenantCommand::List { api, json } => {
            let v = call(&api, "GET", "/v1/tenants")?;
            if json {
                print_json(&v);
            } else {
                for t in v["tenants"].as_array().into_iter().flatten() {
                    print_tenant(t);
                }
            }
        }
        TenantCommand::Show { api, name, json } => {
            let v = call(&api, "GET", &format!("/v1/tenants/{}", enc(&name)))?;
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
            let v = call(
                &api,
                "DELETE",
                &format!("/v1/tenants/{}?erase={erase}&force={force}", enc(&name)),
            )?;
            match (&v["certificate"], json) {
                (c, _) if c.is_object() => print_json(c),
                (_, true) => println!("{v}"),
                _ => println!("tenant {name} deleted"),
            }
        }
        TenantCommand::Quota {
            api,
            name,
            bytes,
            objects,
        } => {
            call(
                &api,
                "PUT",
                &format!("/v1/tenants/{}/quota?{}", enc(&name), quota_query(bytes, objects)),
            )?;
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
            let body = if remove {
                Vec::new()
            } else {
                let jwks = match &jwks_file {
                    Some(f) => Some(String::from_utf8(read_file(f)?).map_err(|_| "the JWKS is not UTF-8")?),
                    None => None,
                };
                if jwks.is_none() && jwks_url.is_none() {
                    return Err("give --jwks-file or --jwks-url".into());
                }
                serde_json::to_vec(&serde_json::json!({
                    "issuer": issuer, "audience": audience, "jwks": jwks, "jwks_url": jwks_url
                }))
                .map_err(|e| e.to_string())?
            };
            call_with(&api, "PUT", &format!("/v1/tenants/{}/oidc", enc(&name)), Some(body))?;
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
            let v = call(
                &api,
                "POST",
                &format!("/v1/tenants/{}/users?name={}", enc(&tenant), enc(&name)),
            )?;
            if json {
                println!("{v}");
            } else {
                println!("user {} created ({})", name, v["arn"].as_str().unwrap_or(""));
            }
        }
        UserCommand::Delete { api, tenant, name } => {
            call(
                &api,
                "DELETE",
                &format!("/v1/tenants/{}/users/{}", enc(&tenant), enc(&name)),
            )?;
            println!("user {name} deleted, with its keys");
        }
        UserCommand::List { api, tenant, json } => {
            let v = call(&api, "GET", &format!("/v1/tenants/{}/users", enc(&tenant)))?;
            if json {
                print_json(&v);
            } else {
                for u in v["users"].as_array().into_iter().flatten() {
                    println!(
                        "{:<24} {:<22} {}{}",
                        u["user"].as_str().unwrap_or(""),
                        u["id"].as_str().unwrap_or(""),
                        if u["admin"].as_bool() == Some(true) {
                            "admin "
                        } else {
                            ""
                        },
                        u["policies"]
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
            let path = format!(
                "/v1/tenants/{}/users/{}/policies/{}",
                enc(&tenant),
                enc(&user),
                enc(&name)
            );
            match (remove, file) {
                (true, _) => {
                    call(&api, "DELETE", &path)?;
                }
                (false, Some(f)) => {
                    call_with(&api, "PUT", &path, Some(read_file(&f)?))?;
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
            let q = expires_in_secs
                .map(|s| format!("?expires_in_secs={s}"))
                .unwrap_or_default();
            let v = call(
                &api,
                "POST",
                &format!("/v1/tenants/{}/users/{}/keys{q}", enc(&tenant), enc(&user)),
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"access_key": v["access_key"], "secret_key": v["secret_key"]})
                );
            } else {
                println!("access key: {}", v["access_key"].as_str().unwrap_or(""));
                println!(
                    "secret key: {} (shown only now)",
                    v["secret_key"].as_str().unwrap_or("")
                );
            }
        }
        KeyCommand::Disable { api, tenant, key } => {
            call(
                &api,
                "POST",
                &format!("/v1/tenants/{}/keys/{}/disable", enc(&tenant), enc(&key)),
            )?;
            println!("key {key} disabled");
        }
        KeyCommand::Enable { api, tenant, key } => {
            call(
                &api,
                "POST",
                &format!("/v1/tenants/{}/keys/{}/enable", enc(&tenant), enc(&key)),
            )?;
            println!("key {key} enabled");
        }
        KeyCommand::Delete { api, tenant, key } => {
            call(
                &api,
                "DELETE",
                &format!("/v1/tenants/{}/keys/{}", enc(&tenant), enc(&key)),
            )?;
            println!("key {key} deleted");
        }
        KeyCommand::List {
            api,
            tenant,
            user,
            json,
        } => {
            let q = user.map(|u| format!("?user={}", enc(&u))).unwrap_or_default();
            let v = call(&api, "GET", &format!("/v1/tenants/{}/keys{q}", enc(&tenant)))?;
            if json {
                print_json(&v);
            } else {
                for k in v["keys"].as_array().into_iter().flatten() {
                    println!(
                        "{:<22} {:<24} {}",
                        k["access_key"].as_str().unwrap_or(""),
                        k["user"].as_str().unwrap_or(""),
                        if k["enabled"].as_bool() == Some(true) {
                            "enabled"
                        } else {
                            "DISABLED"
                        }
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
            let mut claims = serde_json::Map::new();
            for c in claim {
                let (k, v) = c.split_once('=').ok_or("a claim is NAME=PATTERN")?;
                claims.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            let body = serde_json::json!({"policy": policy, "claims": claims, "max_session_secs": max_session_secs});
            let v = call_with(
                &api,
                "PUT",
                &format!("/v1/tenants/{}/roles/{}", enc(&tenant), enc(&name)),
                Some(body.to_string().into_bytes()),
            )?;
            println!("role {}", v["arn"].as_str().unwrap_or(""));
        }
        RoleCommand::Delete { api, tenant, name } => {
            call(
                &api,
                "DELETE",
                &format!("/v1/tenants/{}/roles/{}", enc(&tenant), enc(&name)),
            )?;
            println!("role {name} deleted");
        }
        RoleCommand::List { api, tenant } => {
            print_json(&call(&api, "GET", &format!("/v1/tenants/{}/roles", enc(&tenant)))?);
        }
    }
    Ok(())
}
