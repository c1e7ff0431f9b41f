//! Docker's `info` document for a containerd: container and image counts, the drivers, and
//! this machine's facts (the Docker API's `/info`; `burrow info --format`'s Docker fields).

use serde_json::{json, Value};

use super::listing::{self, ListOptions};
use super::record::State;
use super::Ctx;
use crate::images::{catalog, manifest::Platform, store::Store};

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn mem_total() -> u64 {
    read_trim("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Docker's info document: counts, the machine, and how burrow reaches containerd.
pub async fn docker_info(ctx: &Ctx) -> anyhow::Result<Value> {
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
        "Runtimes": super::runtime::known().into_iter().map(|(n, p)| (n.to_string(), json!({ "path": p }))).collect::<serde_json::Map<_, _>>(),
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
