//! The container a request names (id, name or id prefix), or Docker's 404 / 400.

use containerd_client::services::v1::Container;

use super::error::ApiError;
use crate::containers::context::LookupError;
use crate::containers::Ctx;

/// The container `q` names (id, name or id prefix), or Docker's 404.
pub async fn find(ctx: &Ctx, q: &str) -> Result<Container, ApiError> {
    ctx.find(q)
        .await
        .map_err(|e| match e.downcast_ref::<LookupError>() {
            Some(LookupError::NotFound(_)) => ApiError::no_such_container(q),
            Some(LookupError::Ambiguous { .. }) => ApiError::bad_request(format!("{e:#}")),
            None => ApiError::from(e),
        })
}
