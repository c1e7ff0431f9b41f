//! The container a request names (id, name or id prefix), or Docker's 404 / 400.

use containerd_client::services::v1::Container;

use super::error::ApiError;
use crate::containers::Ctx;

/// The container `q` names (id, name or id prefix), or Docker's 404.
pub async fn find(ctx: &Ctx, q: &str) -> Result<Container, ApiError> {
    ctx.find(q).await.map_err(|e| {
        let text = format!("{e:#}");
        if text.starts_with("no such container") {
            ApiError::no_such_container(q)
        } else if text.contains("matches") {
            ApiError::bad_request(text)
        } else {
            ApiError::from(e)
        }
    })
}
