//! What the CLI does without a server: the cluster CA, node and gateway identities, and
//! checking an erasure certificate.

use super::api::*;
use super::*;

/// Checks a certificate against the operator's key (given, or the admin API's).
pub(super) fn verify_certificate(
    file: &std::path::Path,
    public_key: Option<String>,
    endpoint: String,
    token: Option<String>,
) -> Result<(), String> {
    use base64::Engine as _;
    let text = String::from_utf8(read_file(file)?).map_err(|_| "the certificate is not UTF-8")?;
    let key_b64 = match public_key {
        Some(k) => k,
        None => {
            let api = Api {
                endpoint,
                token: token.ok_or("give --public-key, or COFFRE_ADMIN_TOKEN to ask the admin API")?,
            };
            ask_at::<crate::api::OperatorKeyGet>(&api, ())?.public_key
        }
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64.trim())
        .map_err(|_| "the operator's public key is not base64")?;
    let e =
        crate::certificate::Certificate::verify(&text, &key).map_err(|why| format!("certificate NOT valid: {why}"))?;
    println!(
        "certificate valid: tenant {} erased at {} (key {}, {} objects, {} bytes), signed by the operator",
        e.tenant, e.erased_at, e.kek_id, e.objects, e.bytes
    );
    Ok(())
}

/// The commands that need no server: the cluster CA, identities, checking a certificate.
pub(super) fn run(cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::VerifyCertificate {
            file,
            public_key,
            endpoint,
            token,
        } => return verify_certificate(&file, public_key, endpoint, token),
        AdminCommand::Ca(CaCommand::Init { out, if_missing }) => {
            if if_missing && out.join("ca.key").exists() {
                println!("cluster CA kept in {}", out.display());
                return Ok(());
            }
            coffre_cluster::identity::init_ca(&out)?;
            println!(
                "cluster CA created in {} (keep ca.key offline and secret)",
                out.display()
            );
        }
        AdminCommand::NodeIdentity {
            ca,
            id,
            country,
            site,
            zone,
            role,
            out,
            if_missing,
        } => {
            let loc = coffre_cluster::Location {
                country: country.to_ascii_uppercase(),
                site,
                zone,
            };
            if if_missing && out.join("cert.pem").exists() {
                coffre_cluster::identity::check_issued(&ca, &id, &loc, role, &out)?;
                println!("identity of {role} {id} kept in {}", out.display());
                return Ok(());
            }
            let serial = coffre_cluster::identity::issue(&ca, &id, &loc, role, &out)?;
            println!(
                "identity of {role} {id} ({}/{}/{}) written to {} (serial {serial})",
                loc.country,
                loc.site,
                loc.zone,
                out.display()
            );
            // A gateway signs its audit log with a key the CA certifies.
            if role == coffre_cluster::Role::Gateway {
                coffre_cluster::audit_cert::issue_audit_key(&ca, &id, &loc, &out)?;
                println!(
                    "audit signing key of {id} written to {}/audit-key.pem (certificate audit.pem)",
                    out.display()
                );
            }
        }
        _ => unreachable!("dispatched by cli::run"),
    }
    Ok(())
}
