//! The keys, as an operator sees them: the provider and its master key version, and an
//! online rotation of it (docs/keys.md).

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
