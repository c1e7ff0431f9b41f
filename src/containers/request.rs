//! The typed container request: what `burrow run`/`create` flags, a Compose service, a Docker
//! API ContainerCreate body and a Dockerfile RUN step all become before `create` makes the
//! container. Field names follow Docker's ContainerCreate (Config / HostConfig /
//! NetworkingConfig) so those front ends map onto it one to one; values are the typed ones of
//! [`super::values`]. [`ContainerRequest::validate`] checks what needs no host access.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::health::{HealthConfig, HealthError};
use super::values::{
    ByteSize, ExtraHost, MountSpec, PortSpec, PullPolicy, RestartPolicy, SecurityOpt, TmpfsSpec,
    Ulimit, VolumeSpec,
};

/// A container to create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerRequest {
    /// The container's name; one is made from the image's when absent.
    pub name: Option<String>,
    pub config: Config,
    pub host_config: HostConfig,
    pub networking_config: NetworkingConfig,
    /// When to pull the image first.
    pub pull: PullPolicy,
    /// burrow's socket bypass (also asked by the label or annotation nerdctl/bypass4netns=true).
    pub bypass: bool,
    /// The image's platform to run (`--platform`; Docker's create `platform` parameter): picked
    /// from a multi-platform image, pulled for it if needed. None: this host's.
    pub platform: Option<crate::images::manifest::Platform>,
}

/// Docker's `Config`: what runs, and as whom.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    pub image: String,
    pub hostname: Option<String>,
    /// `user[:group]`, names or numbers.
    pub user: Option<String>,
    pub tty: bool,
    /// Keep stdin open (`-i`).
    pub open_stdin: bool,
    /// Docker's StdinOnce: the stdin closes when the client attached at the start ends its
    /// input (`docker run -i`; the Docker API's attach).
    pub stdin_once: bool,
    /// Docker's AttachStdin, AttachStdout, AttachStderr: the streams the creating client
    /// attaches (kept for inspect, where clients such as dockerpty read which to attach).
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// `KEY=VALUE`, or `KEY` to pass the caller's value.
    pub env: Vec<String>,
    /// Arguments after the image (replace the image's CMD).
    pub cmd: Vec<String>,
    /// Replaces the image's ENTRYPOINT (and drops its CMD); `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before killing.
    pub stop_timeout: Option<u64>,
    /// The NIS domain name (`--domainname`).
    pub domainname: Option<String>,
    /// Ports the container listens on, as "80/tcp" (`--expose`; `-P` publishes them too).
    pub exposed_ports: Vec<String>,
    /// `--mac-address`: the primary network interface's MAC.
    pub mac_address: Option<super::endpoints::MacAddress>,
    /// Docker's `Healthcheck` (over the image's, field by field); `None` inherits the image's.
    pub healthcheck: Option<HealthConfig>,
}

/// Docker's `HostConfig`: mounts, ports, privileges, limits, policies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `-v`.
    pub binds: Vec<VolumeSpec>,
    /// `--mount`.
    pub mounts: Vec<MountSpec>,
    /// `--tmpfs`.
    pub tmpfs: Vec<TmpfsSpec>,
    /// `--volumes-from`: other containers' volumes and binds, at the same paths.
    pub volumes_from: Vec<super::mounts::VolumesFrom>,
    /// `-p`.
    pub port_bindings: Vec<PortSpec>,
    /// `-P`: every port the image exposes, on free host ports.
    pub publish_all_ports: bool,
    /// bridge (default), none, host, or a network's name.
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    /// Remove the container when it exits (`run --rm`).
    pub auto_remove: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Vec<SecurityOpt>,
    pub dns: Vec<String>,
    /// `--dns-search` (`.` for none).
    pub dns_search: Vec<String>,
    /// `--dns-option` (resolv.conf `options`).
    pub dns_options: Vec<String>,
    pub extra_hosts: Vec<ExtraHost>,
    /// Supplementary groups, names (from the image's /etc/group) or numbers.
    pub group_add: Vec<String>,
    /// Namespaced kernel parameters (`--sysctl net.ipv4.ip_forward=1`).
    pub sysctls: BTreeMap<String, String>,
    pub oom_score_adj: Option<i32>,
    /// IPC namespace: "" or private (its own), host, or container:NAME.
    pub ipc_mode: String,
    /// PID namespace: "" (its own), host, or container:NAME.
    pub pid_mode: String,
    /// cgroup namespace: "" or private (its own), or host.
    pub cgroupns_mode: String,
    /// `--runtime`: "" or runc (io.containerd.runc.v2), crun, or another OCI runtime program
    /// (see [`super::runtime`]).
    pub runtime: String,
    /// `--link CONTAINER[:ALIAS]`: Docker's legacy links (see [`super::links`]).
    pub links: Vec<String>,
    /// `--cgroup-parent`: the cgroup (a slice under systemd) the container's is made under.
    pub cgroup_parent: String,
    /// UTS namespace: "" (its own) or host (the host's name, which the container cannot set).
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    /// An init as PID 1 (the host's docker-init, tini or catatonit).
    pub init: bool,
    /// User namespace: "" (the runtime's), host, or keep-id[:uid=U,gid=G] (see
    /// [`super::userns::UsernsMode`]).
    pub userns_mode: String,
    pub memory: Option<ByteSize>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    /// The other cgroup limits (`--cpu-shares`, `--cpuset-cpus`, `--memory-swap`, ...).
    #[serde(flatten)]
    pub tuning: super::limits::Tuning,
    pub ulimits: Vec<Ulimit>,
    pub shm_size: Option<ByteSize>,
    pub log_config: LogConfig,
    /// OCI annotations of the runtime spec.
    pub annotations: BTreeMap<String, String>,
    /// `--device HOST[:CONTAINER[:PERMS]]`: host device nodes.
    pub devices: Vec<crate::devices::DeviceMapping>,
    /// `--device-cgroup-rule`.
    pub device_cgroup_rules: Vec<crate::devices::DeviceCgroupRule>,
    /// `--gpus` and CDI `--device vendor.com/class=name` (driver "cdi").
    pub device_requests: Vec<crate::devices::DeviceRequest>,
}

/// Docker's `LogConfig`: the driver and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub driver: String,
    /// `KEY=VALUE` options (max-size, max-file).
    pub options: Vec<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            driver: "json-file".into(),
            options: Vec::new(),
        }
    }
}

/// Docker's `NetworkingConfig`: the networks a container joins besides (or settings of) the
/// primary one `HostConfig.NetworkMode` names; see [`super::endpoints::net_mode`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    /// `--ip`: a fixed address within the primary network's subnet.
    pub ipv4_address: Option<Ipv4Addr>,
    /// Every network joined, in order (Docker's `EndpointsConfig`; `--network` given twice or
    /// in its long form, `--network-alias`).
    pub endpoints: Vec<super::endpoints::Endpoint>,
}

/// A request that cannot be created, found before anything is made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("no image given")]
    NoImage,
    #[error("conflicting options: --restart {0} and --rm")]
    RestartWithRm(RestartPolicy),
    #[error("--cpus {0}: give a positive number of CPUs")]
    Cpus(String),
    #[error("--stop-signal {0:?}: give a signal name or number")]
    StopSignal(String),
    #[error("invalid --{flag} {value:?}: use {allowed}")]
    Mode {
        flag: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("invalid --sysctl {0:?}: give NAME=VALUE")]
    Sysctl(String),
    #[error("--cgroup-parent {0}")]
    CgroupParent(String),
    #[error("{0}")]
    Link(String),
    #[error(transparent)]
    Runtime(#[from] super::runtime::RuntimeError),
    #[error("conflicting options: --uts=host with --hostname, --domainname or a kernel.hostname/kernel.domainname sysctl (the container has the host's names, and setting them would change the host's)")]
    HostnameWithUtsHost,
    #[error(transparent)]
    Health(#[from] HealthError),
    #[error(transparent)]
    Userns(#[from] super::userns::UsernsError),
    #[error(transparent)]
    Limits(#[from] super::limits::LimitsError),
}

impl HostConfig {
    /// The cgroup limits asked for.
    pub fn limits(&self) -> super::limits::Limits {
        super::limits::Limits {
            memory_bytes: self.memory.map(|m| m.0),
            cpus: self.cpus,
            pids: self.pids_limit,
            tuning: self.tuning.clone(),
        }
    }
}

impl ContainerRequest {
    /// A request for `image` with Docker's defaults (bridge network, json-file logs).
    pub fn new(image: impl Into<String>) -> ContainerRequest {
        let mut r = ContainerRequest::default();
        r.config.image = image.into();
        r.host_config.network_mode = crate::network::DEFAULT_NETWORK.into();
        r
    }

    /// Checks what can be checked without the host; `auto_remove` is whether the container is
    /// removed when it exits (`run --rm`).
    pub fn validate(&self, auto_remove: bool) -> Result<(), RequestError> {
        if self.config.image.is_empty() {
            return Err(RequestError::NoImage);
        }
        if auto_remove && self.host_config.restart_policy != RestartPolicy::No {
            return Err(RequestError::RestartWithRm(self.host_config.restart_policy));
        }
        if let Some(c) = self.host_config.cpus {
            if !(c.is_finite() && c > 0.0) {
                return Err(RequestError::Cpus(c.to_string()));
            }
        }
        self.host_config.limits().validate(None)?;
        if let Some(s) = &self.config.stop_signal {
            if s.is_empty() || s.chars().any(char::is_whitespace) {
                return Err(RequestError::StopSignal(s.clone()));
            }
        }
        if let Some(h) = &self.config.healthcheck {
            h.validate()?;
        }
        let hc = &self.host_config;
        let mode = |flag, value: &str, ok: bool, allowed| {
            if ok {
                Ok(())
            } else {
                Err(RequestError::Mode {
                    flag,
                    value: value.to_string(),
                    allowed,
                })
            }
        };
        let shared = |m: &str| m.strip_prefix("container:").is_some_and(|c| !c.is_empty());
        let ipc = hc.ipc_mode.as_str();
        mode(
            "ipc",
            ipc,
            matches!(ipc, "" | "private" | "shareable" | "host") || shared(ipc),
            "private, shareable, host or container:NAME",
        )?;
        let pid = hc.pid_mode.as_str();
        mode(
            "pid",
            pid,
            matches!(pid, "" | "host") || shared(pid),
            "host or container:NAME",
        )?;
        let cg = hc.cgroupns_mode.as_str();
        mode(
            "cgroupns",
            cg,
            matches!(cg, "" | "private" | "host"),
            "private or host",
        )?;
        for l in &hc.links {
            l.parse::<super::links::Link>()
                .map_err(|e| RequestError::Link(e.to_string()))?;
        }
        let own_net = matches!(hc.network_mode.as_str(), "host" | "none")
            || hc.network_mode.starts_with("container:");
        if !hc.links.is_empty() && own_net {
            return Err(RequestError::Link(format!(
                "conflicting options: --link and --network {} (links need a network both containers are on)",
                hc.network_mode
            )));
        }
        let uts = hc.uts_mode.as_str();
        mode("uts", uts, matches!(uts, "" | "host"), "host")?;
        let uts_sysctl = hc
            .sysctls
            .keys()
            .any(|k| k == "kernel.hostname" || k == "kernel.domainname");
        if uts == "host"
            && (self.config.hostname.is_some() || self.config.domainname.is_some() || uts_sysctl)
        {
            return Err(RequestError::HostnameWithUtsHost);
        }
        if let Some(k) = hc
            .sysctls
            .keys()
            .find(|k| k.is_empty() || k.contains(char::is_whitespace))
        {
            return Err(RequestError::Sysctl(k.clone()));
        }
        hc.userns_mode.parse::<super::userns::UsernsMode>()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_request_has_dockers_defaults() {
        let r = ContainerRequest::new("busybox");
        assert_eq!(r.host_config.network_mode, "bridge");
        assert_eq!(r.host_config.log_config.driver, "json-file");
        assert_eq!(r.pull, PullPolicy::Missing);
        assert!(r.validate(false).is_ok());
    }

    #[test]
    fn validation_refuses_what_cannot_work() {
        assert_eq!(
            ContainerRequest::default().validate(false),
            Err(RequestError::NoImage)
        );
        let mut r = ContainerRequest::new("busybox");
        r.host_config.restart_policy = RestartPolicy::Always;
        assert!(r.validate(false).is_ok());
        let e = r.validate(true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conflicting options: --restart always and --rm"
        );
        let mut r = ContainerRequest::new("busybox");
        r.host_config.cpus = Some(-1.0);
        assert!(matches!(r.validate(false), Err(RequestError::Cpus(_))));
        let mut r = ContainerRequest::new("busybox");
        r.config.stop_signal = Some(String::new());
        assert!(matches!(
            r.validate(false),
            Err(RequestError::StopSignal(_))
        ));
        for (ipc, pid, cg, ok) in [
            ("host", "host", "host", true),
            ("container:db", "container:db", "private", true),
            ("shared", "", "", false),
            ("", "private", "", false),
            ("", "container:", "", false),
            ("", "", "none", false),
        ] {
            let mut r = ContainerRequest::new("busybox");
            r.host_config.ipc_mode = ipc.into();
            r.host_config.pid_mode = pid.into();
            r.host_config.cgroupns_mode = cg.into();
            let res = r.validate(false);
            assert_eq!(res.is_ok(), ok, "{ipc} {pid} {cg}: {res:?}");
            if let Err(e) = res {
                assert!(e.to_string().starts_with("invalid --"), "{e}");
            }
        }
    }

    #[test]
    fn requests_read_as_docker_names_them() {
        let mut r = ContainerRequest::new("busybox");
        r.host_config.memory = Some("64m".parse().unwrap());
        r.host_config.port_bindings = vec!["8080:80".parse().unwrap()];
        r.host_config.restart_policy = "on-failure:2".parse().unwrap();
        r.host_config.devices = vec!["/dev/zero:/dev/z".parse().unwrap()];
        r.host_config.device_cgroup_rules = vec!["c 1:3 r".parse().unwrap()];
        r.host_config.device_requests = vec!["all".parse().unwrap()];
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["HostConfig"]["Devices"][0]["PathInContainer"],
            "/dev/z"
        );
        assert_eq!(json["HostConfig"]["DeviceCgroupRules"][0], "c 1:3 r");
        assert_eq!(json["HostConfig"]["DeviceRequests"][0]["Count"], -1);
        assert_eq!(json["Config"]["Image"], "busybox");
        assert_eq!(json["HostConfig"]["Memory"], "67108864");
        assert_eq!(json["HostConfig"]["PortBindings"][0], "8080:80");
        assert_eq!(json["HostConfig"]["RestartPolicy"], "on-failure:2");
        assert_eq!(json["HostConfig"]["LogConfig"]["Type"], "json-file");
        let back: ContainerRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        // Absent fields take their defaults.
        let min: ContainerRequest = serde_json::from_str(r#"{"Config": {"Image": "x"}}"#).unwrap();
        assert_eq!(min.config.image, "x");
    }
}
