//! A service becomes a [`ContainerRequest`]: every Compose key the request can express is
//! mapped; a key burrow cannot honour is named in a warning (or refused when running without
//! it would be wrong), never dropped silently.

use std::str::FromStr;

use serde_json::Value;

use super::naming;
use super::service::{pairs, scalar, words, Service};
use crate::compose::normalize;
use crate::compose::project::Project;
use crate::compose::ComposeError;
use crate::containers::endpoints::Endpoint;
use crate::containers::health::HealthConfig;
use crate::containers::request::ContainerRequest;
use crate::containers::values::{
    ByteSize, ExtraHost, PortSpec, RestartPolicy, SecurityOpt, TmpfsSpec, Ulimit,
};
use crate::devices::DeviceRequest;

/// The service keys the engine maps onto a container request (or handles itself).
const HANDLED: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "tmpfs",
    "networks",
    "network_mode",
    "depends_on",
    "healthcheck",
    "restart",
    "deploy",
    "scale",
    "labels",
    "annotations",
    "user",
    "working_dir",
    "hostname",
    "domainname",
    "privileged",
    "read_only",
    "cap_add",
    "cap_drop",
    "security_opt",
    "sysctls",
    "ulimits",
    "shm_size",
    "init",
    "stop_signal",
    "stop_grace_period",
    "stdin_open",
    "tty",
    "extra_hosts",
    "dns",
    "dns_search",
    "dns_opt",
    "logging",
    "secrets",
    "configs",
    "profiles",
    "extends",
    "container_name",
    "mem_limit",
    "cpus",
    "pids_limit",
    "cpu_shares",
    "cpu_period",
    "cpu_quota",
    "cpuset",
    "mem_reservation",
    "memswap_limit",
    "mem_swappiness",
    "oom_kill_disable",
    "blkio_config",
    "group_add",
    "pid",
    "ipc",
    "oom_score_adj",
    "userns_mode",
    "mac_address",
    "pull_policy",
    "platform",
    "volumes_from",
    "devices",
    "device_cgroup_rules",
    "links",
    "cgroup",
    "uts",
    "cgroup_parent",
    "attach",
    "runtime",
    // Read by `compose watch` (develop.watch), not by the container.
    "develop",
];

/// Which container of a service to make.
#[derive(Debug, Clone)]
pub struct Instance {
    pub number: u32,
    pub oneoff: bool,
    /// The container's name (`PROJECT-SERVICE-N`, `container_name:`, or a run's).
    pub name: String,
}

/// The request for `inst` of `svc`, and the warnings about keys not honoured.
pub fn request(
    project: &Project,
    svc: &Service,
    inst: &Instance,
) -> Result<(ContainerRequest, Vec<String>), ComposeError> {
    let mut warnings = unhandled(svc);
    let bad = |key: &str, e: &dyn std::fmt::Display| {
        ComposeError::service(&svc.name, format!("{key}: {e}"))
    };
    let mut r = ContainerRequest::new(svc.image()?);
    r.name = Some(inst.name.clone());
    let c = &mut r.config;
    c.cmd = words(svc.get("command")).unwrap_or_default();
    c.entrypoint = words(svc.get("entrypoint"));
    c.env = pairs(svc.get("environment"))
        .into_iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k,
        })
        .collect();
    c.hostname = svc.str("hostname");
    c.domainname = svc.str("domainname");
    c.user = svc.str("user");
    c.working_dir = svc.str("working_dir");
    c.tty = svc.bool("tty");
    c.open_stdin = svc.bool("stdin_open");
    c.stop_signal = svc.str("stop_signal");
    if let Some(g) = svc.str("stop_grace_period") {
        let d = go_duration(&g).ok_or_else(|| bad("stop_grace_period", &g))?;
        c.stop_timeout = Some(d.as_secs());
    }
    for e in svc
        .get("expose")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let e = scalar(e);
        c.exposed_ports.push(if e.contains('/') {
            e
        } else {
            format!("{e}/tcp")
        });
    }
    c.labels = pairs(svc.get("labels"))
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    c.labels.extend(labels(project, svc, inst));
    if let Some(h) = svc.get("healthcheck") {
        c.healthcheck = Some(healthcheck(h).map_err(|e| bad("healthcheck", &e))?);
    }
    if let Some(c) = svc.str("cgroup") {
        r.host_config.cgroupns_mode = c;
    }
    if let Some(m) = svc.str("mac_address") {
        c.mac_address = Some(parse(svc, "mac_address", &mac_text(&m))?);
    }
    if let Some(p) = svc.str("pull_policy") {
        // Compose's if_not_present is Docker's missing; build's image is built before (here).
        let p = if p == "if_not_present" || p == "build" {
            "missing".into()
        } else {
            p
        };
        r.pull = parse(svc, "pull_policy", &p)?;
    }
    if let Some(p) = svc.str("platform") {
        let platform =
            crate::images::manifest::Platform::parse(&p).map_err(|e| bad("platform", &e))?;
        r.platform = Some(platform);
    }
    host_config(project, svc, &mut r, &mut warnings)?;
    r.host_config.device_requests = device_requests(svc)?;
    networks(project, svc, &mut r)?;
    r.validate(false).map_err(|e| bad("invalid", &e))?;
    Ok((r, warnings))
}

/// Keys present that the engine does not map.
fn unhandled(svc: &Service) -> Vec<String> {
    let Some(m) = svc.v.as_object() else {
        return Vec::new();
    };
    m.keys()
        .filter(|k| !HANDLED.contains(&k.as_str()) && !k.starts_with("x-"))
        .map(|k| {
            format!(
                "service {}: key {k:?} is not supported by burrow compose and has no effect",
                svc.name
            )
        })
        .collect()
}

/// The com.docker.compose.* labels of a container.
fn labels(project: &Project, svc: &Service, inst: &Instance) -> Vec<(String, String)> {
    let files: Vec<String> = project
        .config_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let image = svc.image().unwrap_or_default();
    [
        (naming::PROJECT, project.name.clone()),
        (naming::SERVICE, svc.name.clone()),
        (naming::NUMBER, inst.number.to_string()),
        (
            naming::ONEOFF,
            if inst.oneoff { "True" } else { "False" }.to_string(),
        ),
        (naming::CONFIG_HASH, svc.config_hash()),
        (
            naming::WORKING_DIR,
            project.working_dir.display().to_string(),
        ),
        (naming::CONFIG_FILES, files.join(",")),
        (naming::VERSION, naming::COMPOSE_VERSION.to_string()),
        (
            naming::DEPENDS_ON,
            super::service::depends_on_label(&svc.dependencies()),
        ),
        (naming::IMAGE, image),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn go_duration(s: &str) -> Option<std::time::Duration> {
    crate::containers::values::parse_go_duration_std(s)
}

/// A Compose healthcheck as Docker's (durations in nanoseconds).
fn healthcheck(h: &Value) -> Result<HealthConfig, String> {
    if h.get("disable").and_then(Value::as_bool) == Some(true) {
        return Ok(HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        });
    }
    let test = match h.get("test") {
        Some(Value::String(s)) => vec!["CMD-SHELL".into(), s.clone()],
        Some(Value::Array(a)) => a.iter().map(scalar).collect(),
        _ => Vec::new(),
    };
    let ns = |key: &str| -> Result<i64, String> {
        match h.get(key).map(scalar) {
            None => Ok(0),
            Some(s) => go_duration(&s)
                .map(|d| d.as_nanos() as i64)
                .ok_or_else(|| format!("{key}: invalid duration {s:?}")),
        }
    };
    Ok(HealthConfig {
        test,
        interval: ns("interval")?,
        timeout: ns("timeout")?,
        start_period: ns("start_period")?,
        start_interval: ns("start_interval")?,
        retries: h.get("retries").and_then(Value::as_i64).unwrap_or(0),
    })
}

/// Compose's sizes ("64m", "64mb", "1gb", bytes).
/// `extra_hosts:` (a service's or its build's): a list of `NAME:IP` / `NAME=IP` or a mapping.
pub(super) fn extra_hosts(v: Option<&Value>) -> Result<Vec<ExtraHost>, String> {
    pairs(v)
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Some(ip) => format!("{k}={ip}"),
                None => k,
            };
            ExtraHost::from_str(&text).map_err(|e| format!("{text}: {e}"))
        })
        .collect()
}

/// `ulimits:` (a service's or its build's): `NAME: N` or `NAME: {soft: N, hard: M}`.
pub(super) fn ulimits(v: Option<&Value>) -> Result<Vec<Ulimit>, String> {
    let Some(m) = v.and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    m.iter()
        .map(|(name, l)| {
            let text = match l {
                Value::Object(o) => format!(
                    "{name}={}:{}",
                    o.get("soft").map(scalar).unwrap_or_default(),
                    o.get("hard").map(scalar).unwrap_or_default()
                ),
                v => format!("{name}={}", scalar(v)),
            };
            Ulimit::from_str(&text).map_err(|e| format!("{text}: {e}"))
        })
        .collect()
}

pub(super) fn byte_size(v: &Value) -> Result<ByteSize, String> {
    let s = scalar(v).to_lowercase();
    let s = s
        .strip_suffix('b')
        .filter(|t| t.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(&s);
    ByteSize::from_str(s).map_err(|e| e.to_string())
}

pub(super) fn parse<T: FromStr>(svc: &Service, key: &str, s: &str) -> Result<T, ComposeError>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e: T::Err| ComposeError::service(&svc.name, format!("{key} {s:?}: {e}")))
}

fn host_config(
    project: &Project,
    svc: &Service,
    r: &mut ContainerRequest,
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
    let bad = |key: &str, e: &dyn std::fmt::Display| {
        ComposeError::service(&svc.name, format!("{key}: {e}"))
    };
    let hc = &mut r.host_config;
    for p in svc
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        hc.port_bindings
            .push(parse::<PortSpec>(svc, "ports", &port_text(p))?);
    }
    super::mounts::volumes(project, svc, hc)?;
    for t in words(svc.get("tmpfs")).unwrap_or_default() {
        hc.tmpfs.push(parse::<TmpfsSpec>(svc, "tmpfs", &t)?);
    }
    super::mounts::secrets(project, svc, hc, "secrets", warnings)?;
    super::mounts::secrets(project, svc, hc, "configs", warnings)?;
    if let Some(p) = svc.str("restart") {
        let p = match svc.str(normalize::RESTART_RETRIES) {
            Some(n) => format!("{p}:{n}"),
            None => p,
        };
        hc.restart_policy = parse::<RestartPolicy>(svc, "restart", &p)?;
    }
    hc.privileged = svc.bool("privileged");
    hc.readonly_rootfs = svc.bool("read_only");
    hc.init = svc.bool("init");
    hc.cap_add = words(svc.get("cap_add")).unwrap_or_default();
    hc.cap_drop = words(svc.get("cap_drop")).unwrap_or_default();
    for s in words(svc.get("security_opt")).unwrap_or_default() {
        hc.security_opt
            .push(parse::<SecurityOpt>(svc, "security_opt", &s)?);
    }
    hc.dns = words(svc.get("dns")).unwrap_or_default();
    hc.dns_search = words(svc.get("dns_search")).unwrap_or_default();
    hc.dns_options = words(svc.get("dns_opt")).unwrap_or_default();
    hc.group_add = words(svc.get("group_add")).unwrap_or_default();
    hc.extra_hosts = extra_hosts(svc.get("extra_hosts")).map_err(|e| bad("extra_hosts", &e))?;
    for host in words(svc.get(normalize::HOST_GATEWAY_HOSTS)).unwrap_or_default() {
        let text = format!("{host}=host-gateway");
        hc.extra_hosts
            .push(parse::<ExtraHost>(svc, "extra_hosts", &text)?);
    }
    for (k, v) in pairs(svc.get("sysctls")) {
        hc.sysctls.insert(k, v.unwrap_or_default());
    }
    for (k, v) in pairs(svc.get("annotations")) {
        hc.annotations.insert(k, v.unwrap_or_default());
    }
    hc.ulimits = ulimits(svc.get("ulimits")).map_err(|e| bad("ulimits", &e))?;
    if let Some(s) = svc.get("shm_size") {
        hc.shm_size = Some(byte_size(s).map_err(|e| bad("shm_size", &e))?);
    }
    if let Some(m) = svc.get("mem_limit") {
        hc.memory = Some(byte_size(m).map_err(|e| bad("mem_limit", &e))?);
    }
    if let Some(c) = svc.get("cpus") {
        hc.cpus = Some(scalar(c).parse().map_err(|e| bad("cpus", &e))?);
    }
    if let Some(p) = svc.get("pids_limit").and_then(Value::as_i64) {
        hc.pids_limit = Some(p);
    }
    if let Some(o) = svc.get("oom_score_adj").and_then(Value::as_i64) {
        hc.oom_score_adj = Some(o as i32);
    }
    tuning(svc, &mut hc.tuning)?;
    if let Some(u) = svc.get("uts") {
        hc.uts_mode = scalar(u);
    }
    if let Some(p) = svc.get("cgroup_parent") {
        hc.cgroup_parent = scalar(p);
    }
    if let Some(r) = svc.get("runtime") {
        hc.runtime = scalar(r);
    }
    for f in words(svc.get("volumes_from")).unwrap_or_default() {
        // SERVICE[:MODE] (its first container) or container:NAME[:MODE].
        let text = match f.strip_prefix("container:") {
            Some(rest) => rest.to_string(),
            None => {
                let (name, mode) = f
                    .split_once(':')
                    .map_or((f.as_str(), None), |(n, m)| (n, Some(m)));
                let c = naming::container_name(&project.name, name, 1);
                mode.map_or(c.clone(), |m| format!("{c}:{m}"))
            }
        };
        hc.volumes_from.push(parse(svc, "volumes_from", &text)?);
    }
    let devices = words(svc.get("devices")).unwrap_or_default();
    let (mappings, cdi) =
        crate::devices::parse_device_flags(&devices).map_err(|e| bad("devices", &e))?;
    hc.devices = mappings;
    hc.device_requests.extend(cdi);
    for r in words(svc.get("device_cgroup_rules")).unwrap_or_default() {
        hc.device_cgroup_rules
            .push(parse(svc, "device_cgroup_rules", &r)?);
    }
    hc.pid_mode = joined_mode(project, svc.str("pid"));
    hc.ipc_mode = joined_mode(project, svc.str("ipc"));
    hc.userns_mode = svc.str("userns_mode").unwrap_or_default();
    deploy(svc, hc, warnings)?;
    if let Some(l) = svc.get("logging") {
        if let Some(d) = l.get("driver") {
            hc.log_config.driver = scalar(d);
        }
        hc.log_config.options = pairs(l.get("options"))
            .into_iter()
            .map(|(k, v)| format!("{k}={}", v.unwrap_or_default()))
            .collect();
    }
    Ok(())
}

/// deploy.resources.limits (cgroup limits; create refuses them where cgroups are not
/// delegated) and reservations (not enforced: a warning).
fn deploy(
    svc: &Service,
    hc: &mut crate::containers::request::HostConfig,
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
    let Some(d) = svc.get("deploy") else {
        return Ok(());
    };
    let bad = |key: &str, e: &dyn std::fmt::Display| {
        ComposeError::service(&svc.name, format!("{key}: {e}"))
    };
    if let Some(l) = d.get("resources").and_then(|r| r.get("limits")) {
        if let Some(m) = l.get("memory") {
            hc.memory = Some(byte_size(m).map_err(|e| bad("deploy.resources.limits.memory", &e))?);
        }
        if let Some(c) = l.get("cpus") {
            let c: f64 = scalar(c)
                .parse()
                .map_err(|e| bad("deploy.resources.limits.cpus", &e))?;
            hc.cpus = Some(c);
        }
        if let Some(p) = l.get("pids").and_then(Value::as_i64) {
            hc.pids_limit = Some(p);
        }
    }
    if let Some(o) = d.as_object() {
        for k in o.keys() {
            let replicated = d.get("mode").is_none_or(|m| m == "replicated");
            if k == "mode" && !replicated {
                return Err(ComposeError::service(
                    &svc.name,
                    "deploy.mode: only replicated services are supported (a single engine has no global mode)",
                ));
            }
            if !matches!(
                k.as_str(),
                "replicas" | "resources" | "mode" | "restart_policy"
            ) {
                warnings.push(format!(
                    "service {}: deploy.{k} is a Swarm setting burrow compose does not apply",
                    svc.name
                ));
            }
        }
        if let Some(p) = d.get("restart_policy") {
            hc.restart_policy = restart_policy(svc, p, warnings)?;
        }
        if d.get("resources")
            .and_then(|r| r.get("reservations"))
            .and_then(Value::as_object)
            .is_some_and(|r| r.keys().any(|k| k != "devices" && k != "memory"))
        {
            warnings.push(format!(
                "service {}: deploy.resources.reservations other than memory and devices are not enforced by burrow compose",
                svc.name
            ));
        }
    }
    Ok(())
}

/// The cgroup keys beyond mem_limit, cpus and pids_limit, as Docker Compose maps them:
/// `cpu_shares`, `cpu_period`, `cpu_quota`, `cpuset`, `mem_reservation` (or
/// `deploy.resources.reservations.memory`), `memswap_limit`, `mem_swappiness`,
/// `oom_kill_disable`, `blkio_config` (weight, weight_device, device_read/write_bps/iops).
fn tuning(svc: &Service, t: &mut crate::containers::limits::Tuning) -> Result<(), ComposeError> {
    let bad = |key: &str, e: &dyn std::fmt::Display| {
        ComposeError::service(&svc.name, format!("{key}: {e}"))
    };
    let number = |key: &str| -> Result<Option<i64>, ComposeError> {
        svc.get(key)
            .map(|v| scalar(v).parse::<i64>().map_err(|e| bad(key, &e)))
            .transpose()
    };
    let unsigned = |key: &str| -> Result<Option<u64>, ComposeError> {
        number(key)?
            .map(|v| u64::try_from(v).map_err(|e| bad(key, &e)))
            .transpose()
    };
    let bytes = |key: &str, v: Option<&Value>| -> Result<Option<i64>, ComposeError> {
        v.map(|v| match scalar(v).as_str() {
            "-1" => Ok(-1),
            _ => byte_size(v).map(|b| b.0).map_err(|e| bad(key, &e)),
        })
        .transpose()
    };
    t.cpu_shares = unsigned("cpu_shares")?;
    t.cpu_period = unsigned("cpu_period")?;
    t.cpu_quota = number("cpu_quota")?;
    t.cpuset_cpus = svc.get("cpuset").map(scalar);
    t.memory_reservation = bytes("mem_reservation", svc.get("mem_reservation"))?.or(bytes(
        "deploy.resources.reservations.memory",
        svc.get("deploy")
            .and_then(|d| d.pointer("/resources/reservations/memory")),
    )?);
    t.memory_swap = bytes("memswap_limit", svc.get("memswap_limit"))?;
    t.memory_swappiness = number("mem_swappiness")?
        .filter(|s| *s != -1)
        .map(|s| u64::try_from(s).map_err(|e| bad("mem_swappiness", &e)))
        .transpose()?;
    t.oom_kill_disable = svc
        .get("oom_kill_disable")
        .and_then(Value::as_bool)
        .filter(|d| *d);
    if let Some(b) = svc.get("blkio_config").and_then(Value::as_object) {
        t.blkio_weight = b
            .get("weight")
            .map(|w| {
                scalar(w)
                    .parse::<u16>()
                    .map_err(|e| bad("blkio_config.weight", &e))
            })
            .transpose()?;
        for (k, v) in b.iter().filter(|(k, _)| *k != "weight") {
            let (list, field, bytes, flag) = match k.as_str() {
                "weight_device" => (
                    &mut t.blkio_weight_device,
                    "weight",
                    false,
                    "blkio-weight-device",
                ),
                "device_read_bps" => (
                    &mut t.blkio_device_read_bps,
                    "rate",
                    true,
                    "device-read-bps",
                ),
                "device_write_bps" => (
                    &mut t.blkio_device_write_bps,
                    "rate",
                    true,
                    "device-write-bps",
                ),
                "device_read_iops" => (
                    &mut t.blkio_device_read_iops,
                    "rate",
                    false,
                    "device-read-iops",
                ),
                "device_write_iops" => (
                    &mut t.blkio_device_write_iops,
                    "rate",
                    false,
                    "device-write-iops",
                ),
                _ => return Err(bad(&format!("blkio_config.{k}"), &"not a blkio_config key")),
            };
            let key = format!("blkio_config.{k}");
            for e in v.as_array().into_iter().flatten() {
                let path = e.get("path").map(scalar).unwrap_or_default();
                let value = e.get(field).map(scalar).unwrap_or_default();
                let d = crate::containers::limits::DeviceRate::parse(
                    flag,
                    &format!("{path}:{value}"),
                    bytes,
                )
                .map_err(|e| bad(&key, &e))?;
                list.push(d);
            }
        }
    }
    Ok(())
}

/// `gpus:` (`all`, or entries) and `deploy.resources.reservations.devices` as Docker's device
/// requests, as Docker Compose maps them (a `gpus:` entry without capabilities asks for `gpu`).
fn device_requests(svc: &Service) -> Result<Vec<DeviceRequest>, ComposeError> {
    let mut out = Vec::new();
    let mut entries: Vec<(&str, &Value)> = Vec::new();
    match svc.get(normalize::GPUS) {
        Some(Value::String(s)) if s == "all" => out.push(
            DeviceRequest::compose("", None, None, vec!["gpu".into()])
                .map_err(|e| ComposeError::service(&svc.name, format!("gpus: {e}")))?,
        ),
        Some(Value::Array(items)) => entries.extend(items.iter().map(|i| ("gpus", i))),
        Some(other) => {
            return Err(ComposeError::service(
                &svc.name,
                format!("gpus: {other}: give all, or a list of device requests"),
            ))
        }
        None => {}
    }
    let reserved = svc
        .get("deploy")
        .and_then(|d| d.pointer("/resources/reservations/devices"))
        .and_then(Value::as_array);
    let key = "deploy.resources.reservations.devices";
    entries.extend(reserved.into_iter().flatten().map(|i| (key, i)));
    for (key, e) in entries {
        let bad = |m: String| ComposeError::service(&svc.name, format!("{key}: {m}"));
        if e.get("options")
            .and_then(Value::as_object)
            .is_some_and(|o| !o.is_empty())
        {
            return Err(bad("driver options are not supported".into()));
        }
        let count = match e.get("count") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "all" => Some(-1),
            Some(c) => Some(
                scalar(c)
                    .parse::<i64>()
                    .map_err(|_| bad(format!("count {c}: give all or a number")))?,
            ),
        };
        let mut caps = words(e.get("capabilities")).unwrap_or_default();
        let driver = e.get("driver").map(scalar).unwrap_or_default();
        if key == "gpus" && caps.is_empty() && driver != "cdi" {
            caps.push("gpu".into());
        }
        let ids = words(e.get("device_ids"));
        out.push(DeviceRequest::compose(&driver, count, ids, caps).map_err(bad)?);
    }
    Ok(out)
}

/// `deploy.restart_policy` as the container's restart policy (over `restart`, as Docker
/// Compose applies it): condition `none`, `on-failure` (with `max_attempts`) or `any` (the
/// default, Docker's `always`); `delay` and `window` have no counterpart and are warned about.
fn restart_policy(
    svc: &Service,
    p: &Value,
    warnings: &mut Vec<String>,
) -> Result<RestartPolicy, ComposeError> {
    let attempts = p.get("max_attempts").and_then(Value::as_u64).unwrap_or(0) as u32;
    let condition = p
        .get("condition")
        .map(scalar)
        .unwrap_or_else(|| "any".into());
    for k in ["delay", "window"] {
        if p.get(k).is_some() {
            warnings.push(format!(
                "service {}: deploy.restart_policy.{k} is not applied (restarts follow Docker's own back-off)",
                svc.name
            ));
        }
    }
    match condition.as_str() {
        "none" | "no" => Ok(RestartPolicy::No),
        "any" | "always" => Ok(RestartPolicy::Always),
        "on-failure" => Ok(RestartPolicy::OnFailure(attempts)),
        "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
        other => Err(ComposeError::service(
            &svc.name,
            format!("deploy.restart_policy.condition {other:?}: use none, on-failure or any"),
        )),
    }
}

/// A MAC address as the file wrote it: the Compose model prints its bytes without leading
/// zeros (`2:42:ac:...`), so each part is padded back to two digits.
fn mac_text(m: &str) -> String {
    m.split(':')
        .map(|p| format!("{p:0>2}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A `pid`, `ipc` or `network_mode` value for the engine: `service:NAME` is the container
/// of that service (its first), as Docker Compose maps it.
fn joined_mode(project: &Project, mode: Option<String>) -> String {
    let mode = mode.unwrap_or_default();
    match mode.strip_prefix("service:") {
        Some(other) => format!(
            "container:{}",
            naming::container_name(&project.name, other, 1)
        ),
        None => mode,
    }
}

/// A port, short or long form, in `-p` syntax (an IPv6 host address in brackets).
fn port_text(p: &Value) -> String {
    let Value::Object(o) = p else {
        // The model writes the short form's IPv6 host address bare (`::1:6001:6001`).
        let s = scalar(p);
        if s.starts_with('[') || s.matches(':').count() <= 2 {
            return s;
        }
        let mut parts = s.rsplitn(3, ':');
        let (target, published, ip) = (parts.next(), parts.next(), parts.next());
        return format!(
            "[{}]:{}:{}",
            ip.unwrap_or_default(),
            published.unwrap_or_default(),
            target.unwrap_or_default()
        );
    };
    let mut s = String::new();
    if let Some(ip) = o.get("host_ip") {
        let ip = scalar(ip);
        match ip.contains(':') && !ip.starts_with('[') {
            true => s.push_str(&format!("[{ip}]:")),
            false => s.push_str(&format!("{ip}:")),
        }
    }
    if let Some(pub_) = o.get("published") {
        s.push_str(&format!("{}:", scalar(pub_)));
    } else if !s.is_empty() {
        s.push(':');
    }
    s.push_str(&o.get("target").map(scalar).unwrap_or_default());
    if let Some(proto) = o.get("protocol") {
        s.push_str(&format!("/{}", scalar(proto)));
    }
    s
}

/// The name a top-level network or volume key has on the engine: its `name:`, itself when
/// external, else `PROJECT_KEY`.
pub fn resource_name(project: &Project, top: &Value, key: &str) -> String {
    match top.get(key) {
        Some(d) if d.get("name").is_some_and(|n| !n.is_null()) => scalar(&d["name"]),
        Some(d) if is_external(d) => key.to_string(),
        _ => naming::scoped(&project.name, key),
    }
}

/// Whether a top-level network or volume is external (made outside the project).
pub fn is_external(d: &Value) -> bool {
    match d.get("external") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Object(_)) => true,
        _ => false,
    }
}

/// The model's top-level `networks`/`volumes`/`secrets`/`configs` as JSON.
pub fn top(project: &Project, key: &str) -> Value {
    let c = &project.compose;
    let v = match key {
        "networks" => serde_json::to_value(&c.networks),
        "volumes" => serde_json::to_value(&c.volumes),
        "secrets" => serde_json::to_value(&c.secrets),
        _ => serde_json::to_value(&c.configs),
    };
    v.unwrap_or(Value::Null)
}

/// The service's networks: `network_mode`, or each network it joins with the service name
/// (and its `aliases:`) as DNS aliases and its `ipv4_address:`; none given: the default one.
/// The aliases other services give `name` with `links: [NAME:ALIAS]`. Docker resolves a link's
/// alias only in the linking container; burrow makes it an alias of the linked service's
/// containers on their networks, so every container there resolves it.
fn link_aliases(project: &Project, name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for other in project.compose.services.keys() {
        let Ok(o) = Service::of(project, other.as_str()) else {
            continue;
        };
        for link in words(o.get("links")).unwrap_or_default() {
            if let Some((target, alias)) = link.split_once(':') {
                if target == name && alias != name && !out.iter().any(|a| a == alias) {
                    out.push(alias.to_string());
                }
            }
        }
    }
    out
}

fn networks(
    project: &Project,
    svc: &Service,
    r: &mut ContainerRequest,
) -> Result<(), ComposeError> {
    if let Some(mode) = svc.str("network_mode") {
        r.host_config.network_mode = joined_mode(project, Some(mode));
        return Ok(());
    }
    let top = top(project, "networks");
    let linked_as = link_aliases(project, &svc.name);
    let joined: Vec<(String, Value)> = match svc.get("networks") {
        Some(Value::Array(a)) => a.iter().map(|n| (scalar(n), Value::Null)).collect(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => vec![("default".to_string(), Value::Null)],
    };
    for (i, (key, cfg)) in joined.iter().enumerate() {
        let network = resource_name(project, &top, key);
        let mut aliases = vec![svc.name.clone()];
        aliases.extend(words(cfg.get("aliases")).unwrap_or_default());
        aliases.extend(linked_as.iter().cloned());
        let ipv4_address = match cfg.get("ipv4_address").map(scalar) {
            Some(ip) => Some(ip.parse().map_err(|e| {
                ComposeError::service(
                    &svc.name,
                    format!("networks.{key}.ipv4_address {ip:?}: {e}"),
                )
            })?),
            None => None,
        };
        let mac_address = match cfg.get("mac_address").map(scalar) {
            Some(m) => Some(parse(
                svc,
                &format!("networks.{key}.mac_address"),
                &mac_text(&m),
            )?),
            None => None,
        };
        for k in ["ipv6_address", "link_local_ips", "driver_opts"] {
            let set = match cfg.get(k) {
                None | Some(Value::Null) => false,
                Some(Value::Array(a)) => !a.is_empty(),
                Some(Value::Object(o)) => !o.is_empty(),
                Some(_) => true,
            };
            if set {
                return Err(ComposeError::service(
                    &svc.name,
                    format!("networks.{key}.{k}: burrow's networks do not support it; remove it from the file"),
                ));
            }
        }
        if i == 0 {
            r.host_config.network_mode = network.clone();
        }
        r.networking_config.endpoints.push(Endpoint {
            network,
            aliases,
            ipv4_address,
            mac_address,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_long_form_becomes_dash_p() {
        assert_eq!(port_text(&json!("8080:80")), "8080:80");
        assert_eq!(
            port_text(
                &json!({"target": 80, "published": 8081, "protocol": "udp", "host_ip": "127.0.0.1"})
            ),
            "127.0.0.1:8081:80/udp"
        );
        assert_eq!(port_text(&json!({"target": 80})), "80");
    }

    #[test]
    fn sizes_and_health_convert() {
        assert_eq!(byte_size(&json!("64mb")).unwrap().0, 64 << 20);
        assert_eq!(byte_size(&json!("1g")).unwrap().0, 1 << 30);
        let h =
            healthcheck(&json!({"test": "test -f /x", "interval": "1s", "retries": 3})).unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "test -f /x"]);
        assert_eq!((h.interval, h.retries), (1_000_000_000, 3));
        let off = healthcheck(&json!({"disable": true})).unwrap();
        assert!(off.is_disabled());
    }

    fn project(yaml: &str) -> Project {
        crate::compose::project::for_tests(yaml)
    }

    #[test]
    fn what_the_model_cannot_hold_still_reaches_the_request() {
        let p = project(
            r#"
services:
  a:
    image: busybox
    restart: on-failure:3
    extra_hosts: ["host.docker.internal:host-gateway", "db:10.0.0.5"]
    ports: ["[::1]:6001:6001", {target: 80, published: 8080, host_ip: "::1"}]
    pid: service:b
    ipc: service:b
  b:
    image: busybox
    restart: always
    deploy:
      restart_policy: {condition: on-failure, max_attempts: 2, delay: 5s}
"#,
        );
        let inst = |n: &str| Instance {
            number: 1,
            oneoff: false,
            name: n.into(),
        };
        let (r, _) = request(&p, &Service::of(&p, "a").unwrap(), &inst("a")).unwrap();
        let hc = &r.host_config;
        assert_eq!(hc.restart_policy, RestartPolicy::OnFailure(3));
        let hosts: Vec<String> = hc.extra_hosts.iter().map(|h| h.to_string()).collect();
        assert!(
            hosts
                .iter()
                .any(|h| h.contains("host.docker.internal") && h.contains("host-gateway")),
            "{hosts:?}"
        );
        assert!(hosts.iter().any(|h| h.contains("10.0.0.5")), "{hosts:?}");
        assert_eq!(hc.port_bindings.len(), 2);
        let ports: Vec<String> = hc.port_bindings.iter().map(|b| b.to_string()).collect();
        assert_eq!(ports, ["[::1]:6001:6001", "[::1]:8080:80"]);
        assert_eq!(hc.pid_mode, "container:app-b-1");
        assert_eq!(hc.ipc_mode, "container:app-b-1");
        // deploy.restart_policy wins over restart, as Docker Compose applies it.
        let (r, warnings) = request(&p, &Service::of(&p, "b").unwrap(), &inst("b")).unwrap();
        assert_eq!(r.host_config.restart_policy, RestartPolicy::OnFailure(2));
        assert!(
            warnings.iter().any(|w| w.contains("restart_policy.delay")),
            "{warnings:?}"
        );
    }

    #[test]
    fn volumes_from_and_devices_reach_the_request_and_order_the_services() {
        let p = project(
            r#"
services:
  data:
    image: busybox
    volumes: ["/shared"]
  app:
    image: busybox
    volumes_from: ["data:ro", "container:other"]
    devices: ["/dev/null:/dev/mynull:r"]
    network_mode: service:data
"#,
        );
        let svc = Service::of(&p, "app").unwrap();
        let inst = Instance {
            number: 1,
            oneoff: false,
            name: "app-app-1".into(),
        };
        let (r, warnings) = request(&p, &svc, &inst).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let from: Vec<&str> = r
            .host_config
            .volumes_from
            .iter()
            .map(|f| f.text.as_str())
            .collect();
        assert_eq!(from, ["app-data-1:ro", "other"]);
        assert_eq!(r.host_config.devices.len(), 1);
        // data comes first: app joins its container and takes its volumes.
        let deps: Vec<String> = svc.dependencies().into_iter().map(|d| d.service).collect();
        assert_eq!(deps, ["data"]);
        assert_eq!(p.services_for(&[]).unwrap(), ["data", "app"]);
    }

    #[test]
    fn links_order_the_services_and_alias_the_linked_one() {
        let p = project(
            r#"
services:
  web:
    image: busybox
    links: ["db:database", "cache"]
    cgroup: host
  db:
    image: busybox
  cache:
    image: busybox
"#,
        );
        let inst = |name: &str| Instance {
            number: 1,
            oneoff: false,
            name: format!("app-{name}-1"),
        };
        let db = Service::of(&p, "db").unwrap();
        let (r, warnings) = request(&p, &db, &inst("db")).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(r.networking_config.endpoints[0].aliases, ["db", "database"]);
        let web = Service::of(&p, "web").unwrap();
        let (r, warnings) = request(&p, &web, &inst("web")).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(r.host_config.cgroupns_mode, "host");
        assert_eq!(p.services_for(&[]).unwrap(), ["db", "cache", "web"]);
    }

    #[test]
    fn gpus_and_reserved_devices_become_device_requests() {
        let p = project(
            r#"
services:
  all:
    image: busybox
    gpus: all
  some:
    image: busybox
    gpus:
      - count: 2
      - driver: cdi
        device_ids: [vendor.com/dev=a]
  reserved:
    image: busybox
    deploy:
      resources:
        reservations:
          devices:
            - driver: nvidia
              capabilities: [gpu, compute]
              device_ids: ["1"]
  wrong:
    image: busybox
    deploy:
      resources:
        reservations:
          devices:
            - capabilities: [tpu]
"#,
        );
        let reqs = |name: &str| {
            let svc = Service::of(&p, name).unwrap();
            let inst = Instance {
                number: 1,
                oneoff: false,
                name: format!("app-{name}-1"),
            };
            request(&p, &svc, &inst).map(|(r, w)| (r.host_config.device_requests, w))
        };
        let (all, _) = reqs("all").unwrap();
        assert_eq!((all.len(), all[0].count), (1, -1));
        let (some, _) = reqs("some").unwrap();
        assert_eq!(some[0].count, 2);
        assert_eq!(some[0].capabilities, Some(vec![vec!["gpu".to_string()]]));
        assert!(!some[1].is_gpu());
        let (reserved, warnings) = reqs("reserved").unwrap();
        assert_eq!(reserved[0].device_ids, Some(vec!["1".to_string()]));
        assert_eq!(reserved[0].driver_capabilities(), ["compute"]);
        assert!(warnings.is_empty(), "{warnings:?}");
        let err = reqs("wrong").unwrap_err().to_string();
        assert!(
            err.contains("deploy.resources.reservations.devices: capabilities"),
            "{err}"
        );
    }

    #[test]
    fn per_network_settings_are_applied_or_refused() {
        let p = project(
            r#"
services:
  a:
    image: busybox
    networks:
      back: {mac_address: "02:42:ac:11:00:02"}
    secrets:
      - {source: token, uid: "1000", mode: 256}
  b:
    image: busybox
    networks:
      back: {ipv6_address: "fd00::5"}
networks:
  back: {}
secrets:
  token: {file: ./token.txt}
"#,
        );
        let inst = |n: &str| Instance {
            number: 1,
            oneoff: false,
            name: n.into(),
        };
        let (r, warnings) = request(&p, &Service::of(&p, "a").unwrap(), &inst("a")).unwrap();
        assert!(r.networking_config.endpoints[0].mac_address.is_some());
        assert!(
            warnings.iter().any(|w| w.contains("uid, mode not applied")),
            "{warnings:?}"
        );
        let e = request(&p, &Service::of(&p, "b").unwrap(), &inst("b")).unwrap_err();
        assert!(e.to_string().contains("networks.back.ipv6_address"), "{e}");
    }

    #[test]
    fn a_service_becomes_a_request_named_and_labelled_as_compose_does() {
        let p = project(
            r#"
services:
  web:
    image: busybox
    command: httpd -f "-p 80"
    environment: {A: "1"}
    ports: ["127.0.0.1:8080:80"]
    volumes: ["data:/data", "./site:/www:ro", "/anon"]
    networks:
      back: {aliases: [w], ipv4_address: 10.5.0.5}
    secrets: [token]
    restart: always
    stop_grace_period: 3s
    sysctls: [net.ipv4.ip_forward=1]
    depends_on: [db]
    cpu_shares: 512
    cpu_rt_runtime: 400ms
    blkio_config:
      weight: 300
      device_read_bps: [{path: /dev/sda, rate: 10mb}]
      device_write_iops: [{path: /dev/sda, rate: 100}]
  db:
    image: busybox
networks:
  back: {}
volumes:
  data: {name: shared-data}
secrets:
  token: {file: ./token.txt}
"#,
        );
        let svc = Service::of(&p, "web").unwrap();
        let inst = Instance {
            number: 1,
            oneoff: false,
            name: "app-web-1".into(),
        };
        // A key the model knows and the engine does not map is named in a warning (keys
        // the model does not know are the loader's to report).
        let (r, warnings) = request(&p, &svc, &inst).unwrap();
        assert!(
            warnings.iter().any(|w| w.contains("cpu_rt_runtime")),
            "{warnings:?}"
        );
        let t = &r.host_config.tuning;
        assert_eq!(t.cpu_shares, Some(512));
        assert_eq!(t.blkio_weight, Some(300));
        assert_eq!(t.blkio_device_read_bps[0].rate, 10 << 20);
        assert_eq!(t.blkio_device_write_iops[0].rate, 100);
        assert_eq!(r.config.cmd, ["httpd", "-f", "-p 80"]);
        assert_eq!(r.config.env, ["A=1"]);
        assert_eq!(r.config.stop_timeout, Some(3));
        assert_eq!(r.config.labels[naming::PROJECT], "app");
        assert_eq!(r.config.labels[naming::ONEOFF], "False");
        assert_eq!(
            r.config.labels[naming::DEPENDS_ON],
            "db:service_started:false"
        );
        assert_eq!(r.host_config.network_mode, "app_back");
        let e = &r.networking_config.endpoints[0];
        assert_eq!(e.aliases, ["web", "w"]);
        assert_eq!(e.ipv4_address, Some("10.5.0.5".parse().unwrap()));
        let binds: Vec<String> = r
            .host_config
            .binds
            .iter()
            .map(|b| format!("{:?}:{}:{}", b.source, b.target, b.read_only))
            .collect();
        assert_eq!(
            binds,
            [
                "Named(\"shared-data\"):/data:false",
                "Host(\"/srv/app/site\"):/www:true",
                "Anonymous:/anon:false",
                "Host(\"/srv/app/token.txt\"):/run/secrets/token:true",
            ]
        );
        assert_eq!(r.host_config.restart_policy, RestartPolicy::Always);
        assert_eq!(r.host_config.sysctls["net.ipv4.ip_forward"], "1");
        assert_eq!(
            r.host_config.port_bindings[0].to_string(),
            "127.0.0.1:8080:80"
        );
    }

    #[test]
    fn a_build_only_service_runs_the_project_service_image() {
        let p = project("services:\n  app:\n    build: .\n    pull_policy: build\n");
        let svc = Service::of(&p, "app").unwrap();
        let inst = Instance {
            number: 1,
            oneoff: false,
            name: "x".into(),
        };
        let (r, warnings) = request(&p, &svc, &inst).unwrap();
        let want = format!("{}-app", p.name);
        assert_eq!(r.config.image, want);
        assert_eq!(r.config.labels[naming::IMAGE], want);
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
