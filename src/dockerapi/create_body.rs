//! Docker's ContainerCreate body (`Config` fields at the top, `HostConfig`, `NetworkingConfig`)
//! mapped onto [`ContainerRequest`]: each field burrow implements is carried over with the
//! same checks as the CLI's flags; a field set to something burrow does not do through the API
//! is refused by name (never silently dropped).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use crate::containers::endpoints::Endpoint;
use crate::containers::request::{ContainerRequest, HostConfig};
use crate::containers::values::{ByteSize, MountSpec, PullPolicy};

/// A string or a list of strings (Docker accepts both for Cmd and Entrypoint).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StrOrList {
    One(String),
    Many(Vec<String>),
}

impl StrOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StrOrList::One(s) => vec![s],
            StrOrList::Many(v) => v,
        }
    }
}

/// The body's top level: Docker's `Config` with `HostConfig` and `NetworkingConfig` inside.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Body {
    pub image: String,
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// Which streams the client will attach (recorded for inspect; the attach request names
    /// its own).
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<StrOrList>,
    pub entrypoint: Option<StrOrList>,
    pub working_dir: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: String,
    pub stop_timeout: Option<u64>,
    pub exposed_ports: Option<HashMap<String, Value>>,
    pub mac_address: String,
    pub healthcheck: Option<Value>,
    pub volumes: Option<HashMap<String, Value>>,
    pub host_config: HostBody,
    pub networking_config: NetBody,
    /// Every other field: refused when set ([`refuse_rest`]).
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// Docker's `HostConfig` as far as burrow reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostBody {
    pub binds: Option<Vec<String>>,
    pub mounts: Option<Vec<MountBody>>,
    pub tmpfs: Option<HashMap<String, String>>,
    pub port_bindings: Option<HashMap<String, Option<Vec<PortBinding>>>>,
    pub publish_all_ports: bool,
    pub network_mode: String,
    pub restart_policy: Option<RestartBody>,
    pub auto_remove: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub oom_score_adj: i32,
    pub ipc_mode: String,
    pub pid_mode: String,
    pub cgroupns_mode: String,
    pub init: Option<bool>,
    pub userns_mode: String,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: Option<i64>,
    pub ulimits: Option<Vec<UlimitBody>>,
    pub shm_size: i64,
    pub log_config: Option<LogBody>,
    pub volumes_from: Option<Vec<String>>,
    pub devices: Option<Vec<Value>>,
    pub device_requests: Option<Vec<Value>>,
    pub device_cgroup_rules: Option<Vec<String>>,
    pub links: Option<Vec<String>>,
    pub runtime: String,
    /// CpuShares, CpusetCpus, MemorySwap and the other cgroup limits.
    #[serde(flatten)]
    pub tuning: TuningBody,
    pub storage_opt: Option<HashMap<String, String>>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub cgroup_parent: String,
    pub annotations: Option<BTreeMap<String, String>>,
    /// Every other field: refused when set ([`refuse_rest`]).
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

use crate::containers::limits::DeviceRate;

/// The cgroup limits of HostConfig and of UpdateConfig beyond Memory, NanoCpus and PidsLimit;
/// Go's zero values (and -1 for MemorySwappiness) leave a limit unset.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TuningBody {
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub blkio_weight: i64,
    pub blkio_weight_device: Option<Vec<DeviceRate>>,
    pub blkio_device_read_bps: Option<Vec<DeviceRate>>,
    pub blkio_device_write_bps: Option<Vec<DeviceRate>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<DeviceRate>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<DeviceRate>>,
}

impl TuningBody {
    /// The limits set, as the container library takes them.
    pub fn tuning(self) -> Result<crate::containers::limits::Tuning, ApiError> {
        let unsigned =
            |name: &str, v: i64| u64::try_from(v).map_err(|e| bad(name, &v.to_string(), e));
        Ok(crate::containers::limits::Tuning {
            cpu_shares: (self.cpu_shares != 0)
                .then(|| unsigned("CpuShares", self.cpu_shares))
                .transpose()?,
            cpu_period: (self.cpu_period != 0)
                .then(|| unsigned("CpuPeriod", self.cpu_period))
                .transpose()?,
            cpu_quota: (self.cpu_quota != 0).then_some(self.cpu_quota),
            cpuset_cpus: none_or(self.cpuset_cpus),
            cpuset_mems: none_or(self.cpuset_mems),
            memory_reservation: (self.memory_reservation > 0).then_some(self.memory_reservation),
            memory_swap: (self.memory_swap != 0).then_some(self.memory_swap),
            memory_swappiness: self
                .memory_swappiness
                .filter(|s| *s != -1)
                .map(|s| unsigned("MemorySwappiness", s))
                .transpose()?,
            oom_kill_disable: self.oom_kill_disable.filter(|d| *d),
            blkio_weight: (self.blkio_weight != 0)
                .then(|| {
                    u16::try_from(self.blkio_weight)
                        .map_err(|e| bad("BlkioWeight", &self.blkio_weight.to_string(), e))
                })
                .transpose()?,
            blkio_weight_device: self.blkio_weight_device.unwrap_or_default(),
            blkio_device_read_bps: self.blkio_device_read_bps.unwrap_or_default(),
            blkio_device_write_bps: self.blkio_device_write_bps.unwrap_or_default(),
            blkio_device_read_iops: self.blkio_device_read_iops.unwrap_or_default(),
            blkio_device_write_iops: self.blkio_device_write_iops.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountBody {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub bind_options: Option<BTreeMap<String, Value>>,
    pub volume_options: Option<BTreeMap<String, Value>>,
    pub tmpfs_options: Option<BTreeMap<String, Value>>,
    /// Every other field: refused when set ([`refuse_rest`]).
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartBody {
    pub name: String,
    pub maximum_retry_count: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UlimitBody {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogBody {
    #[serde(rename = "Type")]
    pub driver: String,
    pub config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetBody {
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointBody>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndpointBody {
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    pub ipam: Option<IpamBody>,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// Every other field: refused when set ([`refuse_rest`]).
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IpamBody {
    #[serde(rename = "IPv4Address")]
    pub ipv4: String,
    /// Every other field (IPv6Address, LinkLocalIPs): refused when set.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

fn bad(field: &str, value: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid {field} {value:?}: {why}"))
}

/// Parses each string of `field` as the CLI's flag value type.
fn each<T: std::str::FromStr>(field: &str, v: Option<Vec<String>>) -> Result<Vec<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    v.unwrap_or_default()
        .iter()
        .map(|s| s.parse().map_err(|e| bad(field, s, e)))
        .collect()
}

fn refuse(field: &str) -> ApiError {
    ApiError::not_implemented(format!(
        "burrow's Docker API does not implement {field} yet (use the burrow CLI for it)"
    ))
}

/// Fields a client may send that burrow has nothing to do with: output fields (read back from
/// an inspect), and ConsoleSize (the first size of a terminal; the resize that follows sets it).
const TOLERATED: &[&str] = &[
    "ConsoleSize",
    "Isolation",
    "ArgsEscaped",
    "OnBuild",
    "Shell",
    "Image",
    "ContainerIDFile",
    "NetworkingConfig",
];

/// Whether a field's value asks for something: not null, false, 0, -1 (Docker's "unset" for
/// MemorySwappiness and the like), "" or an empty list or map.
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => !matches!(n.as_i64(), Some(0 | -1)),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Refuses (501, by name) the first field of `rest` that is set: a field burrow does not know
/// is never dropped silently.
fn refuse_rest(prefix: &str, rest: &BTreeMap<String, Value>) -> Result<(), ApiError> {
    match rest
        .iter()
        .find(|(k, v)| !TOLERATED.contains(&k.as_str()) && is_set(v))
    {
        Some((k, _)) => Err(refuse(&format!("{prefix}{k}"))),
        None => Ok(()),
    }
}

fn none_or(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The request a ContainerCreate body asks for; `name` is the `name` query parameter.
pub fn request(mut body: Body, name: Option<&str>) -> Result<ContainerRequest, ApiError> {
    let mut r = ContainerRequest::new(body.image.clone());
    // Docker's daemon never pulls on create: the client pulls after a 404 and tries again.
    r.pull = PullPolicy::Never;
    r.name = name
        .filter(|n| !n.is_empty())
        .map(|n| n.trim_start_matches('/').to_string());
    refuse_rest("", &body.rest)?;
    let host_body = std::mem::take(&mut body.host_config);
    let net_body = std::mem::take(&mut body.networking_config);
    let volumes = body.volumes.take().unwrap_or_default();
    config(&mut r, body)?;
    host(&mut r, host_body)?;
    anonymous_volumes(&mut r, volumes.into_keys())?;
    networking(&mut r, net_body)?;
    Ok(r)
}

/// `Config.Volumes`: an anonymous volume (as `-v /path`) on each path no bind, mount or tmpfs
/// covers (Compose lists its named volumes' paths there too).
fn anonymous_volumes(
    r: &mut ContainerRequest,
    paths: impl Iterator<Item = String>,
) -> Result<(), ApiError> {
    let hc = &mut r.host_config;
    let mut paths: Vec<String> = paths.collect();
    paths.sort();
    for path in paths {
        let target = path.trim_end_matches('/');
        let covered = hc
            .binds
            .iter()
            .any(|b| b.target.trim_end_matches('/') == target)
            || hc
                .tmpfs
                .iter()
                .any(|t| t.target.trim_end_matches('/') == target)
            || hc.mounts.iter().any(|m| match m {
                MountSpec::Volume(v) => v.target.trim_end_matches('/') == target,
                MountSpec::Tmpfs(t) => t.target.trim_end_matches('/') == target,
            });
        if !covered {
            hc.binds
                .push(path.parse().map_err(|e| bad("Volumes", &path, e))?);
        }
    }
    Ok(())
}

/// The body's `Config` fields.
fn config(r: &mut ContainerRequest, b: Body) -> Result<(), ApiError> {
    let c = &mut r.config;
    c.tty = b.tty;
    c.open_stdin = b.open_stdin;
    c.stdin_once = b.stdin_once;
    c.attach_stdin = b.attach_stdin;
    c.attach_stdout = b.attach_stdout;
    c.attach_stderr = b.attach_stderr;
    c.hostname = none_or(b.hostname);
    c.domainname = none_or(b.domainname);
    c.user = none_or(b.user);
    c.env = b.env.unwrap_or_default();
    c.cmd = b.cmd.map(StrOrList::into_vec).unwrap_or_default();
    c.entrypoint = b.entrypoint.map(StrOrList::into_vec);
    c.working_dir = none_or(b.working_dir);
    c.labels = b.labels.unwrap_or_default();
    c.stop_signal = none_or(b.stop_signal);
    c.stop_timeout = b.stop_timeout;
    let mut exposed: Vec<String> = b.exposed_ports.unwrap_or_default().into_keys().collect();
    exposed.sort();
    c.exposed_ports = exposed;
    if !b.mac_address.is_empty() {
        c.mac_address = Some(
            b.mac_address
                .parse()
                .map_err(|e| bad("MacAddress", &b.mac_address, e))?,
        );
    }
    if let Some(h) = b.healthcheck.filter(|h| !h.is_null()) {
        c.healthcheck = Some(serde_json::from_value(h)?);
    }
    Ok(())
}

/// `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}` as `-p` values.
fn port_specs(
    bindings: HashMap<String, Option<Vec<PortBinding>>>,
) -> Result<Vec<crate::containers::values::PortSpec>, ApiError> {
    let mut out = Vec::new();
    let mut keys: Vec<_> = bindings.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (port, binds) in keys {
        let binds = binds.unwrap_or_default();
        let binds = if binds.is_empty() {
            vec![PortBinding::default()]
        } else {
            binds
        };
        for b in binds {
            let ip = match b.host_ip.as_str() {
                "" => String::new(),
                ip if ip.contains(':') => format!("[{ip}]:"),
                ip => format!("{ip}:"),
            };
            let spec = format!("{ip}{}:{port}", b.host_port);
            out.push(spec.parse().map_err(|e| bad("PortBindings", &spec, e))?);
        }
    }
    Ok(out)
}

fn host(r: &mut ContainerRequest, mut h: HostBody) -> Result<(), ApiError> {
    refuse_unsupported(&h)?;
    refuse_rest("HostConfig.", &h.rest)?;
    let hc = &mut r.host_config;
    sources_and_devices(hc, &mut h)?;
    hc.auto_remove = h.auto_remove;
    hc.binds = each("Binds", h.binds)?;
    hc.mounts = h
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let s = mount_text(&m)?;
            s.parse().map_err(|e| bad("Mounts", &s, e))
        })
        .collect::<Result<_, _>>()?;
    for (k, v) in h.annotations.unwrap_or_default() {
        hc.annotations.insert(k, v);
    }
    let tmpfs: Vec<String> = h
        .tmpfs
        .unwrap_or_default()
        .into_iter()
        .map(|(p, o)| if o.is_empty() { p } else { format!("{p}:{o}") })
        .collect();
    hc.tmpfs = each("Tmpfs", Some(tmpfs))?;
    hc.port_bindings = port_specs(h.port_bindings.unwrap_or_default())?;
    hc.publish_all_ports = h.publish_all_ports;
    if let Some(p) = h.restart_policy {
        let text = match (p.name.as_str(), p.maximum_retry_count) {
            ("on-failure", n) if n > 0 => format!("on-failure:{n}"),
            (name, _) => name.to_string(),
        };
        hc.restart_policy = text.parse().map_err(|e| bad("RestartPolicy", &text, e))?;
    }
    hc.network_mode = match h.network_mode.as_str() {
        // Docker's "default" is its bridge; burrow's is burrow.toml's (or a Slurm job's host).
        "" | "default" => crate::config::default_network(),
        m => m.to_string(),
    };
    hc.cap_add = h.cap_add.unwrap_or_default();
    hc.cap_drop = h.cap_drop.unwrap_or_default();
    hc.privileged = h.privileged;
    hc.readonly_rootfs = h.readonly_rootfs;
    hc.security_opt = each("SecurityOpt", h.security_opt)?;
    hc.dns = h.dns.unwrap_or_default();
    hc.dns_search = h.dns_search.unwrap_or_default();
    hc.dns_options = h.dns_options.unwrap_or_default();
    hc.extra_hosts = each("ExtraHosts", h.extra_hosts)?;
    hc.group_add = h.group_add.unwrap_or_default();
    hc.sysctls = h.sysctls.unwrap_or_default();
    hc.oom_score_adj = (h.oom_score_adj != 0).then_some(h.oom_score_adj);
    hc.ipc_mode = h.ipc_mode;
    hc.pid_mode = h.pid_mode;
    hc.cgroupns_mode = h.cgroupns_mode;
    hc.uts_mode = std::mem::take(&mut h.uts_mode);
    hc.cgroup_parent = std::mem::take(&mut h.cgroup_parent);
    // Docker's API form is CONTAINER:ALIAS, as the CLI's.
    hc.links = h.links.take().unwrap_or_default();
    hc.runtime = std::mem::take(&mut h.runtime);
    hc.init = h.init.unwrap_or(false);
    hc.userns_mode = h.userns_mode;
    hc.memory = (h.memory > 0).then_some(ByteSize(h.memory));
    hc.cpus = (h.nano_cpus > 0).then(|| h.nano_cpus as f64 / 1e9);
    hc.pids_limit = h.pids_limit.filter(|&p| p != 0);
    hc.tuning = std::mem::take(&mut h.tuning).tuning()?;
    let ulimits: Vec<String> = h
        .ulimits
        .unwrap_or_default()
        .into_iter()
        .map(|u| format!("{}={}:{}", u.name, u.soft, u.hard))
        .collect();
    hc.ulimits = each("Ulimits", Some(ulimits))?;
    hc.shm_size = (h.shm_size > 0).then_some(ByteSize(h.shm_size));
    // An empty Type is the default driver, with the options given (`docker run --log-opt`
    // without --log-driver sends that).
    if let Some(l) = h.log_config {
        if !l.driver.is_empty() {
            hc.log_config.driver = l.driver;
        }
        hc.log_config.options = l
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
    }
    Ok(())
}

/// A Mounts entry as `--mount`'s text: BindOptions.Propagation, VolumeOptions.NoCopy,
/// TmpfsOptions.SizeBytes and Mode; other options are refused by name.
fn mount_text(m: &MountBody) -> Result<String, ApiError> {
    refuse_rest("HostConfig.Mounts.", &m.rest)?;
    let mut s = match m.source.is_empty() {
        true => format!("type={},target={}", m.kind, m.target),
        false => format!("type={},source={},target={}", m.kind, m.source, m.target),
    };
    if m.read_only {
        s.push_str(",readonly");
    }
    // The local driver (the only one) is what every volume gets anyway; its Options are the
    // volume-opts a new volume is made with.
    let mut volume_options = m.volume_options.clone();
    if let Some(o) = volume_options.as_mut() {
        let local = o
            .get("DriverConfig")
            .is_none_or(|d| matches!(d["Name"].as_str(), None | Some("" | "local")));
        if local {
            if let Some(d) = o.remove("DriverConfig") {
                for (k, v) in d["Options"].as_object().into_iter().flatten() {
                    s.push_str(&format!(
                        ",volume-opt={k}={}",
                        v.as_str().unwrap_or_default()
                    ));
                }
            }
        }
    }
    let mut opts = |what: &str, o: &Option<BTreeMap<String, Value>>, known: &[(&str, &str)]| {
        for (k, v) in o.iter().flatten() {
            match known.iter().find(|(name, _)| name == k) {
                Some((_, flag)) if is_set(v) => {
                    let text = match v {
                        Value::String(t) => t.clone(),
                        Value::Bool(true) => String::new(),
                        Value::Number(n) if k == "Mode" => {
                            format!("{:o}", n.as_u64().unwrap_or(0))
                        }
                        other => other.to_string(),
                    };
                    match text.is_empty() {
                        true => s.push_str(&format!(",{flag}")),
                        false => s.push_str(&format!(",{flag}={text}")),
                    }
                }
                Some(_) => {}
                None if is_set(v) => {
                    return Err(refuse(&format!("HostConfig.Mounts.{what}.{k}")));
                }
                None => {}
            }
        }
        Ok(())
    };
    opts(
        "BindOptions",
        &m.bind_options,
        &[
            ("Propagation", "bind-propagation"),
            ("NonRecursive", "bind-nonrecursive"),
        ],
    )?;
    opts(
        "VolumeOptions",
        &volume_options,
        &[("NoCopy", "volume-nocopy"), ("Subpath", "volume-subpath")],
    )?;
    opts(
        "TmpfsOptions",
        &m.tmpfs_options,
        &[("SizeBytes", "tmpfs-size"), ("Mode", "tmpfs-mode")],
    )?;
    Ok(s)
}

/// HostConfig fields set to something burrow's API does not do yet.
fn refuse_unsupported(h: &HostBody) -> Result<(), ApiError> {
    if h.storage_opt.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(refuse("HostConfig.StorageOpt"));
    }
    Ok(())
}

/// `VolumesFrom`, `Devices`, `DeviceCgroupRules` and `DeviceRequests` as `run --volumes-from`,
/// `--device`, `--device-cgroup-rule` and `--gpus` (or CDI names, Driver "cdi") set them.
fn sources_and_devices(hc: &mut HostConfig, h: &mut HostBody) -> Result<(), ApiError> {
    hc.volumes_from = each("VolumesFrom", h.volumes_from.take())?;
    for v in h.devices.take().unwrap_or_default() {
        let text = v.to_string();
        let mut m: crate::devices::DeviceMapping =
            serde_json::from_value(v).map_err(|e| bad("Devices", &text, e))?;
        if m.path_on_host.is_empty() {
            return Err(bad("Devices", &text, "PathOnHost is empty"));
        }
        if m.path_in_container.is_empty() {
            m.path_in_container = m.path_on_host.clone();
        }
        if m.cgroup_permissions.is_empty() {
            m.cgroup_permissions = crate::devices::host::DEFAULT_PERMISSIONS.to_string();
        }
        // Checked as the CLI's flag is (permissions from r, w, m).
        let flag = format!(
            "{}:{}:{}",
            m.path_on_host, m.path_in_container, m.cgroup_permissions
        );
        hc.devices
            .push(flag.parse().map_err(|e| bad("Devices", &text, e))?);
    }
    hc.device_cgroup_rules = each("DeviceCgroupRules", h.device_cgroup_rules.take())?;
    for v in h.device_requests.take().unwrap_or_default() {
        let text = v.to_string();
        let r: crate::devices::DeviceRequest =
            serde_json::from_value(v).map_err(|e| bad("DeviceRequests", &text, e))?;
        if !matches!(r.driver.as_str(), "" | "nvidia" | "cdi") {
            return Err(bad(
                "DeviceRequests",
                &text,
                format!(
                    "burrow knows the device drivers nvidia (GPUs through the nvidia.com/gpu CDI spec) and cdi, not {:?}",
                    r.driver
                ),
            ));
        }
        hc.device_requests.push(r);
    }
    Ok(())
}

fn networking(r: &mut ContainerRequest, n: NetBody) -> Result<(), ApiError> {
    let primary = r.host_config.network_mode.clone();
    let mut endpoints = vec![Endpoint {
        network: primary.clone(),
        ..Endpoint::default()
    }];
    for (net, e) in n.endpoints_config.unwrap_or_default() {
        let e = e.unwrap_or_default();
        refuse_rest("NetworkingConfig.EndpointsConfig.", &e.rest)?;
        if let Some(i) = &e.ipam {
            refuse_rest("NetworkingConfig.EndpointsConfig.IPAMConfig.", &i.rest)?;
        }
        let ip = match e.ipam.map(|i| i.ipv4).filter(|i| !i.is_empty()) {
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|err| bad("IPv4Address", &ip, err))?,
            ),
            None => None,
        };
        let mac = match none_or(e.mac_address) {
            Some(m) => Some(m.parse().map_err(|err| bad("MacAddress", &m, err))?),
            None => None,
        };
        let is_primary =
            net == primary || (net == "default" && primary == crate::config::default_network());
        let ep = if is_primary {
            &mut endpoints[0]
        } else {
            endpoints.push(Endpoint {
                network: net,
                ..Endpoint::default()
            });
            endpoints.last_mut().expect("just pushed")
        };
        ep.aliases.extend(e.aliases.unwrap_or_default());
        ep.ipv4_address = ip;
        ep.mac_address = mac;
    }
    r.networking_config.endpoints = endpoints;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<ContainerRequest, ApiError> {
        request(serde_json::from_str(json).unwrap(), Some("web"))
    }

    #[test]
    fn a_docker_cli_body_maps_onto_the_request() {
        let r = req(r#"{"Image":"demo","Cmd":["sh","-c","echo hi"],"Env":["A=1"],
            "Labels":{"k":"v"},"ExposedPorts":{"80/tcp":{}},
            "HostConfig":{"Binds":["/tmp:/data:ro"],"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},
              "NetworkMode":"default","RestartPolicy":{"Name":"no"},"Memory":67108864,"NanoCpus":1500000000,
              "Tmpfs":{"/run":"size=1m"},"Ulimits":[{"Name":"nofile","Soft":10,"Hard":20}],
              "LogConfig":{"Type":"json-file","Config":{"max-size":"1m"}},"CapAdd":["NET_ADMIN"]},
            "NetworkingConfig":{"EndpointsConfig":{"default":{"Aliases":["w"]}}}}"#)
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.pull, PullPolicy::Never);
        assert_eq!(r.config.cmd, ["sh", "-c", "echo hi"]);
        assert_eq!(r.config.exposed_ports, ["80/tcp"]);
        assert_eq!(r.host_config.binds[0].target, "/data");
        assert!(r.host_config.binds[0].read_only);
        assert_eq!(r.host_config.port_bindings[0].to_string(), "8080:80/tcp");
        assert_eq!(r.host_config.network_mode, crate::network::DEFAULT_NETWORK);
        assert_eq!(r.host_config.memory, Some(ByteSize(67_108_864)));
        assert_eq!(r.host_config.cpus, Some(1.5));
        assert_eq!(r.host_config.tmpfs.len(), 1);
        assert_eq!(r.host_config.ulimits.len(), 1);
        assert_eq!(r.host_config.log_config.options, ["max-size=1m"]);
        let logs = req(
            r#"{"Image":"x","HostConfig":{"LogConfig":{"Type":"","Config":{"max-file":"2"}}}}"#,
        )
        .unwrap();
        assert_eq!(logs.host_config.log_config.options, ["max-file=2"]);
        assert_eq!(r.networking_config.endpoints[0].aliases, ["w"]);
        assert!(r.validate(false).is_ok());
    }

    #[test]
    fn what_burrow_does_not_do_is_refused_by_name() {
        let r = req(
            r#"{"Image":"x","HostConfig":{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2}}}"#,
        )
        .unwrap();
        assert_eq!(r.host_config.restart_policy.to_string(), "on-failure:2");
        let e = req(r#"{"Image":"x","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#)
            .unwrap_err();
        assert_eq!(e.status, 400, "{e}");
        let r = req(
            r#"{"Image":"x","HostConfig":{"CpuShares":512,"CpusetCpus":"0","MemorySwappiness":-1,"OomKillDisable":true,"MemoryReservation":1048576}}"#,
        )
        .unwrap();
        let t = &r.host_config.tuning;
        assert_eq!(
            (
                t.cpu_shares,
                t.cpuset_cpus.as_deref(),
                t.memory_swappiness,
                t.oom_kill_disable,
                t.memory_reservation
            ),
            (Some(512), Some("0"), None, Some(true), Some(1 << 20))
        );
        // Fields burrow does not know are refused by name when set, and pass when unset (as
        // clients send them: null, "", 0, false, -1).
        for (body, field) in [
            (
                r#"{"Image":"x","HostConfig":{"CpuRealtimePeriod":1000}}"#,
                "HostConfig.CpuRealtimePeriod",
            ),
            (
                r#"{"Image":"x","HostConfig":{"CpuRealtimeRuntime":1000}}"#,
                "HostConfig.CpuRealtimeRuntime",
            ),
            (r#"{"Image":"x","NetworkDisabled":true}"#, "NetworkDisabled"),
            (
                r#"{"Image":"x","HostConfig":{"Mounts":[{"Type":"bind","Source":"/a","Target":"/d","BindOptions":{"CreateMountpoint":true}}]}}"#,
                "BindOptions.CreateMountpoint",
            ),
            (
                r#"{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"n":{"IPAMConfig":{"IPv6Address":"fd00::5"}}}}}"#,
                "IPv6Address",
            ),
        ] {
            let e = req(body).unwrap_err();
            assert_eq!(e.status, 501, "{body}: {e}");
            assert!(e.message.contains(field), "{body}: {e}");
        }
        req(r#"{"Image":"x","Shell":null,"NetworkDisabled":false,"HostConfig":{"CgroupParent":"","MemorySwappiness":-1,
            "OomKillDisable":null,"ConsoleSize":[24,80],"KernelMemory":0,"BlkioDeviceReadBps":null,
            "Mounts":[{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576,"Mode":448}},
                      {"Type":"volume","Source":"v","Target":"/v","VolumeOptions":{"NoCopy":true,"DriverConfig":{"Name":"local"}}}]},
            "NetworkingConfig":{"EndpointsConfig":{"n":{"IPAddress":"","Links":null,"IPAMConfig":{"IPv6Address":""}}}}}"#)
        .unwrap();
        let it = req(
            r#"{"Image":"x","Tty":true,"OpenStdin":true,"StdinOnce":true,"AttachStdin":true,"HostConfig":{"AutoRemove":true}}"#,
        )
        .unwrap();
        assert!(it.config.tty && it.config.open_stdin && it.config.stdin_once);
        assert!(it.host_config.auto_remove);
        let e = req(r#"{"Image":"x","HostConfig":{"Binds":["nocolon"]}}"#).unwrap_err();
        assert_eq!(e.status, 400, "{e}");
        let one = req(r#"{"Image":"x","Cmd":"true","Entrypoint":null}"#).unwrap();
        assert_eq!(one.config.cmd, ["true"]);
        assert_eq!(one.config.entrypoint, None);
    }

    #[test]
    fn volumes_from_and_devices_map_as_the_cli_flags() {
        let r = req(r#"{"Image":"x","HostConfig":{"VolumesFrom":["data:ro","other"],
            "Devices":[{"PathOnHost":"/dev/zero","PathInContainer":"/dev/z","CgroupPermissions":"r"},
                       {"PathOnHost":"/dev/null","PathInContainer":"","CgroupPermissions":""}],
            "DeviceCgroupRules":["c 1:3 rw"],
            "DeviceRequests":[{"Driver":"","Count":-1,"DeviceIDs":null,"Capabilities":[["gpu"]],"Options":{}},
                              {"Driver":"cdi","DeviceIDs":["vendor.com/dev=one"]}]}}"#)
        .unwrap();
        let h = &r.host_config;
        assert_eq!(h.volumes_from.len(), 2);
        assert!(h.volumes_from[0].read_only && !h.volumes_from[1].read_only);
        assert_eq!(
            (
                h.devices[0].path_in_container.as_str(),
                h.devices[0].cgroup_permissions.as_str()
            ),
            ("/dev/z", "r")
        );
        assert_eq!(
            (
                h.devices[1].path_in_container.as_str(),
                h.devices[1].cgroup_permissions.as_str()
            ),
            ("/dev/null", "rwm")
        );
        assert_eq!(h.device_cgroup_rules[0].to_string(), "c 1:3 rw");
        assert_eq!(h.device_requests.len(), 2);
        assert!(h.device_requests[0].is_gpu() && h.device_requests[0].count == -1);
        assert!(!h.device_requests[1].is_gpu());
        for (body, what) in [
            (
                r#"{"Image":"x","HostConfig":{"Devices":[{"PathOnHost":"/dev/zero","CgroupPermissions":"x"}]}}"#,
                "Devices",
            ),
            (
                r#"{"Image":"x","HostConfig":{"DeviceCgroupRules":["q 1:3 rw"]}}"#,
                "DeviceCgroupRules",
            ),
            (
                r#"{"Image":"x","HostConfig":{"DeviceRequests":[{"Driver":"amd","Count":1}]}}"#,
                "device drivers",
            ),
            (
                r#"{"Image":"x","HostConfig":{"VolumesFrom":["c:rx"]}}"#,
                "VolumesFrom",
            ),
        ] {
            let e = req(body).unwrap_err();
            assert_eq!(e.status, 400, "{body}: {e}");
            assert!(e.message.contains(what), "{body}: {e}");
        }
        let e = req(r#"{"Image":"x","HostConfig":{"StorageOpt":{"size":"1G"}}}"#).unwrap_err();
        assert_eq!(e.status, 501, "{e}");
    }

    #[test]
    fn config_volumes_are_anonymous_where_nothing_else_mounts() {
        // Compose lists a named volume's path in Config.Volumes as well as in Binds.
        let r = req(r#"{"Image":"x","Volumes":{"/data":{},"/cache/":{},"/t":{}},
                "HostConfig":{"Binds":["bc_data:/data:rw"],"Tmpfs":{"/t":""}}}"#)
        .unwrap();
        let binds: Vec<String> = r
            .host_config
            .binds
            .iter()
            .map(|b| format!("{:?}:{}", b.source, b.target))
            .collect();
        assert_eq!(binds, [r#"Named("bc_data"):/data"#, "Anonymous:/cache/"]);
    }
}
