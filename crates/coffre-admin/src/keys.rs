//! The keys, as an operator sees them: the provider and its master key version, an online
//! rotation of it, and the tenants' KMS keys (docs/keys.md).

use crate::api;
use crate::{Admin, ApiResult, Call};
use std::sync::Arc;

fn status(s: coffre_engine::KeyStatus) -> api::KeysStatus {
    api::KeysStatus {
        provider: s.provider,
        current_version: s.current_version,
        tenants: s.tenants,
        tenants_current: s.tenants_current,
        store_key_current: s.store_key_current,
        rotating: s.rotating,
        last_error: s.last_error,
    }
}

/// `GET /v1/keys`.
pub(crate) async fn get(admin: Arc<Admin>, _: Call<api::KeysGet>) -> ApiResult<api::KeysStatus> {
    Ok(status(admin.engine.key_status()?))
}

/// `POST /v1/keys/rotate-master`: answers at once, the rotation runs in the background.
pub(crate) async fn rotate_master(admin: Arc<Admin>, _: Call<api::KeysRotateMaster>) -> ApiResult<api::KeysStatus> {
    Ok(status(admin.engine.rotate_master_key_online()?))
}

fn kms_key(tenant: &str, k: coffre_engine::KmsKeyInfo) -> api::KmsKey {
    api::KmsKey {
        tenant: tenant.to_string(),
        key_id: k.key_id,
        arn: k.arn,
        name: k.name,
        state: k.state,
        created_ms: k.created_ms,
        versions: k.versions,
        deletion_ms: k.deletion_ms,
    }
}

/// `GET /v1/tenants/{t}/kms-keys`.
pub(crate) async fn list_kms_keys(admin: Arc<Admin>, call: Call<api::TenantsKmsKeysGet>) -> ApiResult<api::KmsKeyList> {
    let t = call.path;
    let keys = admin.engine.list_kms_keys(&t).await?;
    Ok(api::KmsKeyList {
        keys: keys.into_iter().map(|k| kms_key(&t, k)).collect(),
        tenant: t,
    })
}

/// `POST /v1/tenants/{t}/kms-keys?name=N`.
pub(crate) async fn create_kms_key(admin: Arc<Admin>, call: Call<api::TenantsKmsKeysCreate>) -> ApiResult<api::KmsKey> {
    let t = call.path;
    admin.iam.tenant_info(&t)?;
    let k = admin.engine.create_kms_key(&t, &call.query.name).await?;
    Ok(kms_key(&t, k))
}

/// `POST /v1/tenants/{t}/kms-keys/{k}/…`: enable, disable, rotate, schedule or cancel a deletion.
pub(crate) async fn change_kms_key(
    admin: Arc<Admin>,
    (t, k): (String, String),
    action: coffre_engine::KmsAction,
) -> ApiResult<api::KmsKey> {
    admin.iam.tenant_info(&t)?;
    let info = admin.engine.change_kms_key(&t, &k, action).await?;
    Ok(kms_key(&t, info))
}
