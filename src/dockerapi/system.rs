//! /_ping, /version and /info.

use hyper::{Method, Response};
use serde_json::{json, Value};

use super::error::ApiError;
use super::http::{self, Body};
use super::{API_VERSION, MIN_API_VERSION};
use crate::containers::Ctx;

/// `GET|HEAD /_ping`: "OK" (no body for HEAD), with the API version in the headers.
pub fn ping(m: &Method) -> Response<Body> {
    let mut r = if m == Method::HEAD {
        http::empty(200)
    } else {
        Response::new(http::full("OK"))
    };
    let h = r.headers_mut();
    h.insert(
        "Content-Type",
        "text/plain; charset=utf-8".parse().expect("static"),
    );
    h.insert(
        "Cache-Control",
        "no-cache, no-store, must-revalidate"
            .parse()
            .expect("static"),
    );
    h.insert("Pragma", "no-cache".parse().expect("static"));
    r
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Go's name of this machine's architecture.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// `GET /version`.
pub fn version(ctx: &Ctx) -> Result<Value, ApiError> {
    let v = env!("CARGO_PKG_VERSION");
    let kernel = read_trim("/proc/sys/kernel/osrelease");
    Ok(json!({
        "Platform": { "Name": "burrow" },
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": go_arch(),
                "KernelVersion": kernel,
                "Rootless": ctx.rootless().to_string(),
            },
        }],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    }))
}

/// `GET /info`: counts, the machine, and how burrow reaches containerd.
pub async fn info(ctx: &Ctx) -> Result<Value, ApiError> {
    Ok(crate::containers::sysinfo::docker_info(ctx).await?)
}
