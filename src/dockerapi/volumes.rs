//! The volume endpoints: list, create, inspect and remove, through the library's volumes.

use std::collections::HashMap;

use hyper::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::call::{unimplemented, Call};
use super::error::ApiError;
use super::http::{self, Body};
use crate::containers::volumes::{self, InUse, VolumeError, Volumes};
use crate::containers::Ctx;

/// Docker's VolumeCreate body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    driver_opts: Option<HashMap<String, String>>,
    labels: Option<HashMap<String, String>>,
}

pub async fn route(ctx: &Ctx, call: &Call, segs: &[&str]) -> Result<Response<Body>, ApiError> {
    let vols = Volumes::of(ctx);
    match (call.method.as_str(), segs) {
        ("GET", [] | [""]) => {
            let filters = call.query.parsed_filters::<volumes::ListFilter>()?;
            let list = serde_json::to_value(volumes::list_matching(ctx, &filters).await?)?;
            Ok(http::json(200, &json!({ "Volumes": list, "Warnings": [] })))
        }
        ("POST", ["create"]) => create(ctx, &vols, call).await,
        ("POST", ["prune"]) => super::space::prune_volumes(ctx, &call.query).await,
        ("GET", [name]) => Ok(http::json(200, &get(&vols, name)?)),
        ("DELETE", [name]) => {
            let used = InUse::of(ctx).await?;
            match volumes::remove(ctx, name, &used).await {
                Ok(()) => Ok(http::empty(204)),
                Err(VolumeError::NotFound(_)) if call.query.flag("force", false)? => {
                    Ok(http::empty(204))
                }
                Err(e) => Err(volume_error(e)),
            }
        }
        _ => Err(unimplemented(call)),
    }
}

fn volume_error(e: VolumeError) -> ApiError {
    match e {
        VolumeError::NotFound(n) => ApiError::not_found(format!("get {n}: no such volume")),
        e @ (VolumeError::Options(_)
        | VolumeError::RootlessMount(..)
        | VolumeError::Device { .. }
        | VolumeError::InvalidName(_)) => ApiError::bad_request(e.to_string()),
        e => anyhow::Error::from(e).into(),
    }
}

fn get(vols: &Volumes, name: &str) -> Result<Value, ApiError> {
    let v = vols.get(name).map_err(volume_error)?;
    Ok(serde_json::to_value(v)?)
}

/// `POST /volumes/create`: 201 with the volume (an existing one of that name, as Docker).
async fn create(ctx: &Ctx, vols: &Volumes, call: &Call) -> Result<Response<Body>, ApiError> {
    let body: CreateBody = call.json()?;
    if !matches!(body.driver.as_str(), "" | "local") {
        return Err(ApiError::not_implemented(format!(
            "burrow has only the local volume driver, not {:?}",
            body.driver
        )));
    }
    let name = (!body.name.is_empty()).then_some(body.name);
    let options = body.driver_opts.unwrap_or_default();
    let made = match volumes::create(ctx, name, body.labels.unwrap_or_default(), options).await {
        Ok(n) => n,
        Err(VolumeError::Exists(n)) => n,
        Err(e) => return Err(volume_error(e)),
    };
    Ok(http::json(201, &get(vols, &made)?))
}
