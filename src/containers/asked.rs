//! What `create` was asked to run, as Docker's `Config` says it (Entrypoint and Cmd apart, the
//! user as given, the exposed ports), kept in the container's state dir for `inspect`: the OCI
//! spec has only the process's whole argv (with `--init`'s init in front) and numeric ids.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::request::ContainerRequest;
use crate::images::runnable::Image;

/// The file in the state dir.
pub const ASKED_FILE: &str = "config.json";

/// Docker's Config fields the spec cannot give back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Asked {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// As given (`-u`) or the image's `USER`: names stay names.
    pub user: String,
    pub exposed_ports: BTreeSet<String>,
    pub stop_signal: String,
    /// Docker's Config.Env: the image's with the request's over it (what the runtime adds,
    /// HOSTNAME, HOME, TERM, a default PATH, left out). None for containers made before.
    pub env: Option<Vec<String>>,
    /// The streams the creating client attached (Docker's AttachStdin/Stdout/Stderr).
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// Docker's HostConfig fields as asked (the spec holds them only as their effect).
    pub host: AskedHost,
}

/// The HostConfig part of [`Asked`], with Docker's names and value shapes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AskedHost {
    /// `-v` binds and named volumes as `SOURCE:TARGET[:MODE]` (anonymous ones are in
    /// Config.Volumes).
    pub binds: Option<Vec<String>>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub init: Option<bool>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub ipc_mode: String,
    pub pid_mode: String,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub cgroup_parent: String,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: Option<i64>,
    pub shm_size: i64,
    pub oom_score_adj: i32,
    pub cpu_shares: u64,
    pub cpu_period: u64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub memory_swappiness: Option<u64>,
    pub oom_kill_disable: bool,
    pub blkio_weight: u16,
    /// `[{"Path", "Weight"}]`.
    pub blkio_weight_device: Vec<serde_json::Value>,
    pub blkio_device_read_bps: Vec<super::limits::DeviceRate>,
    pub blkio_device_write_bps: Vec<super::limits::DeviceRate>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Vec<super::limits::DeviceRate>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Vec<super::limits::DeviceRate>,
    /// `[{"Name", "Soft", "Hard"}]` (`--ulimit`).
    pub ulimits: Option<Vec<serde_json::Value>>,
    /// Path to its mount options (`--tmpfs`); left out when none, as Docker does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<std::collections::BTreeMap<String, String>>,
    /// `--sysctl`; left out when none, as Docker does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<std::collections::BTreeMap<String, String>>,
    pub security_opt: Option<Vec<String>>,
    pub publish_all_ports: bool,
    pub cgroupns_mode: String,
}

impl AskedHost {
    fn of(h: &super::request::HostConfig) -> AskedHost {
        use super::values::VolumeSource;
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let binds: Vec<String> = h
            .binds
            .iter()
            .filter_map(|b| {
                let source = match &b.source {
                    VolumeSource::Host(p) => p.display().to_string(),
                    VolumeSource::Named(n) => n.clone(),
                    VolumeSource::Anonymous => return None,
                };
                Some(match b.mode.is_empty() {
                    true => format!("{source}:{}", b.target),
                    false => format!("{source}:{}:{}", b.target, b.mode),
                })
            })
            .collect();
        let hosts: Vec<String> = h.extra_hosts.iter().map(|e| e.to_string()).collect();
        let ulimits: Vec<serde_json::Value> = h
            .ulimits
            .iter()
            .map(|u| serde_json::json!({ "Name": u.name, "Hard": u.hard, "Soft": u.soft }))
            .collect();
        let tmpfs: std::collections::BTreeMap<String, String> = h
            .tmpfs
            .iter()
            .map(|t| (t.target.clone(), t.options.join(",")))
            .collect();
        let security: Vec<String> = h.security_opt.iter().map(|o| o.to_string()).collect();
        AskedHost {
            binds: some(&binds),
            cap_add: some(&h.cap_add),
            cap_drop: some(&h.cap_drop),
            privileged: h.privileged,
            readonly_rootfs: h.readonly_rootfs,
            init: h.init.then_some(true),
            dns: h.dns.clone(),
            dns_search: h.dns_search.clone(),
            dns_options: h.dns_options.clone(),
            extra_hosts: some(&hosts),
            group_add: some(&h.group_add),
            ipc_mode: h.ipc_mode.clone(),
            pid_mode: h.pid_mode.clone(),
            uts_mode: h.uts_mode.clone(),
            cgroup_parent: h.cgroup_parent.clone(),
            memory: h.memory.map(|m| m.0).unwrap_or(0),
            nano_cpus: h.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            pids_limit: h.pids_limit,
            shm_size: h.shm_size.map(|s| s.0).unwrap_or(64 << 20),
            oom_score_adj: h.oom_score_adj.unwrap_or(0),
            ulimits: (!ulimits.is_empty()).then_some(ulimits),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            sysctls: (!h.sysctls.is_empty()).then(|| h.sysctls.clone()),
            security_opt: some(&security),
            publish_all_ports: h.publish_all_ports,
            cgroupns_mode: h.cgroupns_mode.clone(),
            ..AskedHost::default()
        }
        .with_limits(&h.limits())
    }

    /// These limits over what is recorded (those `l` sets; `update` changes only those).
    pub fn with_limits(mut self, l: &super::limits::Limits) -> AskedHost {
        let t = &l.tuning;
        if let Some(m) = l.memory_bytes {
            self.memory = m;
        }
        if let Some(c) = l.cpus {
            self.nano_cpus = (c * 1e9) as i64;
        }
        if l.pids.is_some() {
            self.pids_limit = l.pids;
        }
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = &t.$field {
                    self.$field = v.clone();
                }
            };
        }
        set!(cpu_shares);
        set!(cpu_period);
        set!(cpu_quota);
        set!(cpuset_cpus);
        set!(cpuset_mems);
        set!(memory_reservation);
        set!(memory_swap);
        set!(oom_kill_disable);
        set!(blkio_weight);
        if t.memory_swappiness.is_some() {
            self.memory_swappiness = t.memory_swappiness;
        }
        if !t.blkio_weight_device.is_empty() {
            self.blkio_weight_device = t
                .blkio_weight_device
                .iter()
                .map(|d| serde_json::json!({ "Path": d.path, "Weight": d.rate }))
                .collect();
        }
        for (mine, given) in [
            (&mut self.blkio_device_read_bps, &t.blkio_device_read_bps),
            (&mut self.blkio_device_write_bps, &t.blkio_device_write_bps),
            (&mut self.blkio_device_read_iops, &t.blkio_device_read_iops),
            (
                &mut self.blkio_device_write_iops,
                &t.blkio_device_write_iops,
            ),
        ] {
            if !given.is_empty() {
                *mine = given.clone();
            }
        }
        self
    }
}

impl Asked {
    /// What `req` asks of `image` (Docker's entrypoint and cmd rules, see
    /// [`super::spec::entrypoint_and_cmd`]).
    pub fn of(req: &ContainerRequest, image: &Image) -> Asked {
        let c = &req.config;
        let (entrypoint, cmd) =
            super::spec::entrypoint_and_cmd(&image.defaults, c.entrypoint.as_ref(), &c.cmd);
        Asked {
            entrypoint,
            cmd,
            user: c
                .user
                .clone()
                .unwrap_or_else(|| image.defaults.user.clone()),
            // The image's, --expose's and (as the docker CLI adds them) the published ones.
            exposed_ports: image
                .exposed_ports
                .iter()
                .chain(&c.exposed_ports)
                .cloned()
                .chain(
                    req.host_config
                        .port_bindings
                        .iter()
                        .flat_map(|p| p.container_ports()),
                )
                .collect(),
            stop_signal: c.stop_signal.clone().unwrap_or_default(),
            env: Some(super::spec::config_env(&image.defaults.env, &c.env)),
            attach_stdin: c.attach_stdin,
            attach_stdout: c.attach_stdout,
            attach_stderr: c.attach_stderr,
            host: AskedHost::of(&req.host_config),
        }
    }

    /// Records `l` over the limits in the state dir `dir` (after `update`); nothing for a
    /// container made before the record existed.
    pub fn update_limits(dir: &Path, l: &super::limits::Limits) -> std::io::Result<()> {
        let Some(mut a) = Asked::read(dir) else {
            return Ok(());
        };
        a.host = a.host.with_limits(l);
        let text = serde_json::to_string_pretty(&a).map_err(std::io::Error::other)?;
        let tmp = dir.join(format!("{ASKED_FILE}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, dir.join(ASKED_FILE))
    }

    /// The record in the state dir `dir`; None for containers made before it existed.
    pub fn read(dir: &Path) -> Option<Asked> {
        let bytes = std::fs::read(dir.join(ASKED_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_docker_names_it() {
        let a = Asked {
            entrypoint: vec!["sh".into()],
            cmd: vec!["-c".into(), "sleep 1".into()],
            user: "nobody".into(),
            exposed_ports: ["80/tcp".to_string()].into(),
            stop_signal: "SIGUSR1".into(),
            attach_stdout: true,
            ..Asked::default()
        };
        let a = Asked {
            host: AskedHost {
                binds: Some(vec!["/srv:/data:ro".into()]),
                privileged: true,
                ..AskedHost::default()
            },
            ..a
        };
        let text = serde_json::to_string(&a).unwrap();
        assert!(
            text.contains("\"Entrypoint\":[\"sh\"]")
                && text.contains("\"ExposedPorts\"")
                && text.contains("\"AttachStdout\":true"),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ASKED_FILE), text).unwrap();
        assert_eq!(Asked::read(dir.path()), Some(a));
        assert_eq!(Asked::read(Path::new("/nonexistent")), None);
    }
}
