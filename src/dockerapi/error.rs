//! Docker's error responses: a status code and `{"message": "..."}`, and how library errors
//! map onto Docker's codes (404 no such object, 409 conflict, 400 bad request, 500 otherwise).

use crate::containers::logquery::LogQueryError;
use crate::containers::store::StoreError;
use crate::containers::volumes::VolumeError;
use crate::images::catalog::CatalogError;
use crate::images::pull::PullError;
use crate::images::registry::RegistryError;
use crate::images::runnable::ImageError;
use crate::network::NetworkError;

/// An API error: the HTTP status and Docker's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, message)
    }

    /// 501 for what burrow does not do through the API (yet).
    pub fn not_implemented(message: impl Into<String>) -> ApiError {
        ApiError::new(501, message)
    }

    /// Docker's "No such container: X" (404).
    pub fn no_such_container(q: &str) -> ApiError {
        ApiError::not_found(format!("No such container: {q}"))
    }

    /// Docker's "No such image: X" (404).
    pub fn no_such_image(q: &str) -> ApiError {
        ApiError::not_found(format!("No such image: {q}"))
    }

    /// Docker's 409 for a container name another container has.
    pub fn name_conflict(name: &str, id: &str) -> ApiError {
        ApiError::conflict(format!(
            "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". \
             You have to remove (or rename) that container to be able to reuse that name."
        ))
    }

    /// The body Docker sends.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "message": self.message })
    }
}

/// The status a library error answers with: the typed errors that mean "not found" or
/// "conflict" by their variant, the rest 500.
pub fn status_of(err: &anyhow::Error) -> u16 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ApiError>() {
            return e.status;
        }
        if let Some(e) = cause.downcast_ref::<ImageError>() {
            if matches!(e, ImageError::NotFound(_)) {
                return 404;
            }
        }
        if let Some(e) = cause.downcast_ref::<CatalogError>() {
            if matches!(e, CatalogError::NotFound(_)) {
                return 404;
            }
        }
        if cause.is::<crate::containers::ops::NoFreezer>() {
            return 409;
        }
        if let Some(e) = cause.downcast_ref::<VolumeError>() {
            return volume_status(e);
        }
        if let Some(e) = cause.downcast_ref::<NetworkError>() {
            return network_status(e);
        }
        if let Some(LogQueryError::NotReadable) = cause.downcast_ref::<LogQueryError>() {
            // Docker's answer for a log driver it cannot read back.
            return 501;
        }
        let registry = match cause.downcast_ref::<PullError>() {
            Some(PullError::Registry(e)) => Some(e),
            _ => cause.downcast_ref::<RegistryError>(),
        };
        if let Some(e) = registry {
            // Docker's answers to a pull the registry refuses.
            match e {
                RegistryError::NotFound { .. } | RegistryError::Denied { .. } => return 404,
                RegistryError::BadCredentials { .. } | RegistryError::AuthRequired { .. } => {
                    return 401
                }
                _ => {}
            }
        }
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            match e {
                StoreError::NameInUse { .. } => return 409,
                StoreError::BadName(_) => return 400,
                _ => {}
            }
        }
    }
    500
}

fn volume_status(e: &VolumeError) -> u16 {
    match e {
        VolumeError::NotFound(_) => 404,
        VolumeError::InUse { .. } | VolumeError::Exists(_) => 409,
        VolumeError::InvalidName(_)
        | VolumeError::BadFilter(_)
        | VolumeError::Options(_)
        | VolumeError::RootlessMount(..)
        | VolumeError::Device { .. } => 400,
        _ => 500,
    }
}

fn network_status(e: &NetworkError) -> u16 {
    match e {
        NetworkError::NotFound(_) => 404,
        NetworkError::Exists(_) => 409,
        // Docker: 403 for removing a network in use or a predefined one.
        NetworkError::InUse { .. } | NetworkError::Default(_) => 403,
        NetworkError::BadName(_)
        | NetworkError::Invalid(_)
        | NetworkError::Driver(_)
        | NetworkError::Filter(_) => 400,
        _ => 500,
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> ApiError {
        if let Some(e) = err.downcast_ref::<ApiError>() {
            return e.clone();
        }
        for cause in err.chain() {
            if let Some(StoreError::NameInUse { name, id }) = cause.downcast_ref::<StoreError>() {
                return ApiError::name_conflict(name, id);
            }
        }
        ApiError::new(status_of(&err), crate::errors::text(&err))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(err: serde_json::Error) -> ApiError {
        ApiError::bad_request(format!("invalid JSON: {err}"))
    }
}
