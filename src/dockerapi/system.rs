//! /_ping, /version and /info.

use hyper::{Method, Response};
use serde_json::{json, Value};

use super::error::ApiError;
use super::http::{self, Body};
use super::{API_VERSION, MIN_API_VERSION};
use crate::containers::listing::{self, ListOptions};
use crate::containers::record::State;
use crate::containers::Ctx;
use crate::images::{catalog, manifest::Platform, store::Store};

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

fn mem_total() -> u64 {
    read_trim("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// `GET /info`: counts, the machine, and how burrow reaches containerd.
pub async fn info(ctx: &Ctx) -> Result<Value, ApiError> {
    let all = listing::list(
        ctx,
        &ListOptions {
            all: true,
            ..ListOptions::default()
        },
    )
    .await?;
    let count = |f: fn(&State) -> bool| all.iter().filter(|s| f(&s.state)).count();
    let running = count(|s| matches!(s, State::Running { .. }));
    let paused = count(|s| matches!(s, State::Paused { .. }));
    let store = Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep);
    let images = catalog::all(&store, &Platform::host())
        .await
        .map(|i| catalog::names_by_id(&i).len())
        .unwrap_or(0);
    let mut security = vec!["name=seccomp,profile=builtin".to_string()];
    if ctx.rootless() {
        security.push("name=rootless".into());
    }
    let cgroup_v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    Ok(json!({
        "ID": "",
        "Containers": all.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": all.len() - running - paused,
        "Images": images,
        "Driver": ctx.ep.snapshotter,
        "DriverStatus": [],
        "DockerRootDir": ctx.ep.data_root,
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "none"],
            "Log": ["json-file", "local", "journald", "none"],
        },
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "IPv4Forwarding": true,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": crate::images::time::rfc3339_nano(std::time::SystemTime::now()),
        "LoggingDriver": "json-file",
        "CgroupDriver": ctx.ep.cgroup_manager,
        "CgroupVersion": if cgroup_v2 { "2" } else { "1" },
        "KernelVersion": read_trim("/proc/sys/kernel/osrelease"),
        "OperatingSystem": os_name(),
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total(),
        "Name": read_trim("/proc/sys/kernel/hostname"),
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": { "runc": { "path": "runc" } },
        "DefaultRuntime": "runc",
        "Swarm": { "LocalNodeState": "inactive" },
        "LiveRestoreEnabled": false,
        "Isolation": "",
        "SecurityOptions": security,
        "Warnings": [],
    }))
}

fn os_name() -> String {
    read_trim("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}
