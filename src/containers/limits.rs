//! A container's cgroup limits as Docker's flags and HostConfig name them (`--memory`, `--cpus`,
//! `--pids-limit`, `--cpu-shares`, `--cpuset-cpus`, `--memory-swap`, ...): their checks, the OCI
//! resources they make, and how an update merges into what a container has.

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpu, LinuxCpuBuilder, LinuxMemory, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder,
};
use serde::{Deserialize, Serialize};

/// Every cgroup limit a container can be given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory_bytes: Option<i64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    pub tuning: Tuning,
}

/// The limits beyond memory, CPUs and pids, under HostConfig's names (absent when unset).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Tuning {
    /// `--cpu-shares`: the relative CPU weight (1024 is the default share).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// `--cpu-period`: the CFS period in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<u64>,
    /// `--cpu-quota`: the CFS quota in microseconds per period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// `--cpuset-cpus`: the CPUs the container may run on (`0-3`, `0,2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`: the memory nodes it may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    /// `--memory-reservation`: the soft limit, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    /// `--memory-swap`: memory plus swap, in bytes (-1: unlimited swap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// `--memory-swappiness` (0 to 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<u64>,
    /// `--oom-kill-disable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kill_disable: Option<bool>,
    /// `--blkio-weight` (10 to 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_weight: Option<u16>,
    /// `--blkio-weight-device PATH:WEIGHT`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blkio_weight_device: Vec<DeviceRate>,
    /// `--device-read-bps PATH:RATE` (bytes a second).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blkio_device_read_bps: Vec<DeviceRate>,
    /// `--device-write-bps PATH:RATE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blkio_device_write_bps: Vec<DeviceRate>,
    /// `--device-read-iops PATH:RATE` (operations a second).
    #[serde(rename = "BlkioDeviceReadIOps", skip_serializing_if = "Vec::is_empty")]
    pub blkio_device_read_iops: Vec<DeviceRate>,
    /// `--device-write-iops PATH:RATE`.
    #[serde(rename = "BlkioDeviceWriteIOps", skip_serializing_if = "Vec::is_empty")]
    pub blkio_device_write_iops: Vec<DeviceRate>,
}

/// A block device and a weight or rate for it (Docker's WeightDevice and ThrottleDevice).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceRate {
    pub path: String,
    /// The weight (10 to 1000), or the rate: bytes or operations a second.
    #[serde(alias = "Weight")]
    pub rate: u64,
}

impl DeviceRate {
    /// `PATH:VALUE`, the value a size (`1mb`) when `bytes`, else a number; `flag` names it in
    /// the error.
    pub fn parse(flag: &'static str, s: &str, bytes: bool) -> Result<DeviceRate, LimitsError> {
        let bad = || LimitsError::DeviceRate {
            flag,
            value: s.to_string(),
        };
        let (path, v) = s.rsplit_once(':').ok_or_else(bad)?;
        if !path.starts_with("/dev/") {
            return Err(bad());
        }
        let rate = match bytes {
            true => v
                .parse::<super::values::ByteSize>()
                .ok()
                .and_then(|b| u64::try_from(b.0).ok()),
            false => v.parse::<u64>().ok(),
        }
        .ok_or_else(bad)?;
        Ok(DeviceRate {
            path: path.to_string(),
            rate,
        })
    }

    /// The device's major and minor numbers; an error unless `path` is a block device.
    fn numbers(&self, flag: &'static str) -> Result<(i64, i64), LimitsError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let bad = |why: String| LimitsError::NotBlockDevice {
            flag,
            path: self.path.clone(),
            why,
        };
        let m = std::fs::metadata(&self.path).map_err(|e| bad(e.to_string()))?;
        if !m.file_type().is_block_device() {
            return Err(bad("not a block device".into()));
        }
        let rdev = m.rdev();
        Ok((
            i64::from(nix::sys::stat::major(rdev) as u32),
            i64::from(nix::sys::stat::minor(rdev) as u32),
        ))
    }
}

impl Tuning {
    /// The per-device lists with the flags that give them.
    fn device_lists(&self) -> [(&'static str, &Vec<DeviceRate>); 5] {
        [
            ("blkio-weight-device", &self.blkio_weight_device),
            ("device-read-bps", &self.blkio_device_read_bps),
            ("device-write-bps", &self.blkio_device_write_bps),
            ("device-read-iops", &self.blkio_device_read_iops),
            ("device-write-iops", &self.blkio_device_write_iops),
        ]
    }
}

/// Limits that contradict each other or are out of range, as Docker refuses them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("conflicting options: --cpus and --cpu-period/--cpu-quota cannot both be set (--cpus N is a quota of N periods)")]
    CpusAndQuota,
    #[error("--cpu-period {0}: give a period between 1000 (1ms) and 1000000 (1s) microseconds")]
    CpuPeriod(u64),
    #[error("--cpu-quota {0}: give at least 1000 (1ms) microseconds, or -1 for none")]
    CpuQuota(i64),
    #[error("--memory-swap needs --memory: the swap limit is memory and swap together")]
    SwapWithoutMemory,
    #[error("--memory-swap {swap} is below --memory {memory}: it counts memory and swap together, so give at least the memory limit (or -1 for unlimited swap)")]
    SwapBelowMemory { swap: i64, memory: i64 },
    #[error("--memory-reservation {reservation} is above --memory {memory}: the soft limit must not exceed the hard one")]
    ReservationAboveMemory { reservation: i64, memory: i64 },
    #[error("--memory-swappiness {0}: give a value from 0 to 100")]
    Swappiness(u64),
    #[error("--blkio-weight {0}: give a weight from 10 to 1000")]
    BlkioWeight(u16),
    #[error("--{flag} {value:?}: give a list such as 0-3 or 0,2")]
    CpusetSyntax { flag: &'static str, value: String },
    #[error("--{flag} {value}: this host has only {available}")]
    CpusetUnavailable {
        flag: &'static str,
        value: String,
        available: String,
    },
    #[error("invalid --{flag} {value:?}: give DEVICE:VALUE, such as /dev/sda:10mb (or :1000 for a number or weight)")]
    DeviceRate { flag: &'static str, value: String },
    #[error("--{flag} {path}: {why} (give a block device such as /dev/sda)")]
    NotBlockDevice {
        flag: &'static str,
        path: String,
        why: String,
    },
    #[error("--blkio-weight-device {0}: give a weight from 10 to 1000")]
    DeviceWeight(String),
    #[error("building the OCI resources: {0}")]
    Oci(String),
}

impl From<oci_spec::OciSpecError> for LimitsError {
    fn from(e: oci_spec::OciSpecError) -> Self {
        LimitsError::Oci(e.to_string())
    }
}

impl Limits {
    /// Whether nothing is limited.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Refuses what Docker refuses before anything is made (`memory` is the container's
    /// memory limit where an update gives none).
    pub fn validate(&self, memory: Option<i64>) -> Result<(), LimitsError> {
        let t = &self.tuning;
        if self.cpus.is_some() && (t.cpu_period.is_some() || t.cpu_quota.is_some()) {
            return Err(LimitsError::CpusAndQuota);
        }
        if let Some(p) = t.cpu_period.filter(|p| !(1000..=1_000_000).contains(p)) {
            return Err(LimitsError::CpuPeriod(p));
        }
        if let Some(q) = t.cpu_quota.filter(|q| *q != -1 && *q < 1000) {
            return Err(LimitsError::CpuQuota(q));
        }
        let memory = self.memory_bytes.or(memory).filter(|m| *m > 0);
        if let Some(swap) = t.memory_swap.filter(|s| *s > 0) {
            match memory {
                None => return Err(LimitsError::SwapWithoutMemory),
                Some(m) if swap < m => {
                    return Err(LimitsError::SwapBelowMemory { swap, memory: m })
                }
                Some(_) => {}
            }
        }
        if let (Some(r), Some(m)) = (t.memory_reservation.filter(|r| *r > 0), memory) {
            if r > m {
                return Err(LimitsError::ReservationAboveMemory {
                    reservation: r,
                    memory: m,
                });
            }
        }
        if let Some(s) = t.memory_swappiness.filter(|s| *s > 100) {
            return Err(LimitsError::Swappiness(s));
        }
        if let Some(w) = t.blkio_weight.filter(|w| !(10..=1000).contains(w)) {
            return Err(LimitsError::BlkioWeight(w));
        }
        if let Some(d) = t
            .blkio_weight_device
            .iter()
            .find(|d| !(10..=1000).contains(&d.rate))
        {
            return Err(LimitsError::DeviceWeight(format!("{}:{}", d.path, d.rate)));
        }
        for (flag, v) in [
            ("cpuset-cpus", &t.cpuset_cpus),
            ("cpuset-mems", &t.cpuset_mems),
        ] {
            if let Some(v) = v {
                parse_list(v).ok_or_else(|| LimitsError::CpusetSyntax {
                    flag,
                    value: v.clone(),
                })?;
            }
        }
        Ok(())
    }

    /// Refuses CPUs and memory nodes this host does not have (runc's own error names neither),
    /// and device limits on what is not a block device.
    pub fn check_host(&self) -> Result<(), LimitsError> {
        let t = &self.tuning;
        for (flag, list) in t.device_lists() {
            for d in list {
                d.numbers(flag)?;
            }
        }
        for (flag, v, online) in [
            (
                "cpuset-cpus",
                &t.cpuset_cpus,
                "/sys/devices/system/cpu/online",
            ),
            (
                "cpuset-mems",
                &t.cpuset_mems,
                "/sys/devices/system/node/online",
            ),
        ] {
            let (Some(v), Ok(have)) = (v, std::fs::read_to_string(online)) else {
                continue;
            };
            let (Some(want), Some(ids)) = (parse_list(v), parse_list(have.trim())) else {
                continue;
            };
            if !want.iter().all(|w| ids.contains(w)) {
                return Err(LimitsError::CpusetUnavailable {
                    flag,
                    value: v.clone(),
                    available: have.trim().to_string(),
                });
            }
        }
        Ok(())
    }

    /// The flags set, for messages (`--memory, --cpu-shares`).
    pub fn flags(&self) -> String {
        let t = &self.tuning;
        [
            ("--memory", self.memory_bytes.is_some()),
            ("--cpus", self.cpus.is_some()),
            ("--pids-limit", self.pids.is_some()),
            ("--cpu-shares", t.cpu_shares.is_some()),
            ("--cpu-period", t.cpu_period.is_some()),
            ("--cpu-quota", t.cpu_quota.is_some()),
            ("--cpuset-cpus", t.cpuset_cpus.is_some()),
            ("--cpuset-mems", t.cpuset_mems.is_some()),
            ("--memory-reservation", t.memory_reservation.is_some()),
            ("--memory-swap", t.memory_swap.is_some()),
            ("--memory-swappiness", t.memory_swappiness.is_some()),
            ("--oom-kill-disable", t.oom_kill_disable.is_some()),
            ("--blkio-weight", t.blkio_weight.is_some()),
            ("--blkio-weight-device", !t.blkio_weight_device.is_empty()),
            ("--device-read-bps", !t.blkio_device_read_bps.is_empty()),
            ("--device-write-bps", !t.blkio_device_write_bps.is_empty()),
            ("--device-read-iops", !t.blkio_device_read_iops.is_empty()),
            ("--device-write-iops", !t.blkio_device_write_iops.is_empty()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(f, _)| *f)
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// Drops what this host's cgroups cannot take, as Docker does, and says what was dropped:
    /// the block I/O weight without the (v1) `blkio.weight` file or the (v2) `io.weight`.
    pub fn discard_unsupported(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        let weights =
            self.tuning.blkio_weight.is_some() || !self.tuning.blkio_weight_device.is_empty();
        if weights && !blkio_weight_supported() {
            self.tuning.blkio_weight = None;
            self.tuning.blkio_weight_device.clear();
            warnings.push(
                "this kernel does not support block I/O weight (no blkio.weight or io.weight in its cgroups): --blkio-weight and --blkio-weight-device discarded".to_string(),
            );
        }
        warnings
    }
}

fn blkio_weight_supported() -> bool {
    let root = std::path::Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return std::fs::read_to_string(root.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|x| x == "io"))
            && (root.join("init.scope/io.weight").exists()
                || root.join("io.weight").exists()
                || {
                    // The root has no io.weight of its own: look at a child that has.
                    std::fs::read_dir(root).is_ok_and(|mut d| {
                        d.any(|e| e.is_ok_and(|e| e.path().join("io.weight").exists()))
                    })
                });
    }
    root.join("blkio/blkio.weight").exists()
}

/// `0-3,5` → `[0, 1, 2, 3, 5]`; None when it is not such a list.
fn parse_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 65536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// The OCI resources of `l` (what a cgroup gets).
pub fn resources(l: &Limits) -> Result<LinuxResources, LimitsError> {
    let t = &l.tuning;
    let mut r = LinuxResourcesBuilder::default();
    let memory_set = l.memory_bytes.is_some()
        || t.memory_reservation.is_some()
        || t.memory_swap.is_some()
        || t.memory_swappiness.is_some()
        || t.oom_kill_disable.is_some();
    if memory_set {
        let mut m = LinuxMemoryBuilder::default();
        if let Some(bytes) = l.memory_bytes {
            m = m.limit(bytes);
        }
        if let Some(v) = t.memory_reservation {
            m = m.reservation(v);
        }
        if let Some(v) = t.memory_swap {
            m = m.swap(v);
        }
        if let Some(v) = t.memory_swappiness {
            m = m.swappiness(v);
        }
        if let Some(v) = t.oom_kill_disable {
            m = m.disable_oom_killer(v);
        }
        r = r.memory(m.build()?);
    }
    let cpu_set = l.cpus.is_some()
        || t.cpu_shares.is_some()
        || t.cpu_period.is_some()
        || t.cpu_quota.is_some()
        || t.cpuset_cpus.is_some()
        || t.cpuset_mems.is_some();
    if cpu_set {
        let mut c = LinuxCpuBuilder::default();
        if let Some(cpus) = l.cpus {
            let period: u64 = 100_000;
            c = c
                .period(period)
                .quota((cpus * period as f64).round() as i64);
        }
        if let Some(v) = t.cpu_period {
            c = c.period(v);
        }
        if let Some(v) = t.cpu_quota {
            c = c.quota(v);
        }
        if let Some(v) = t.cpu_shares {
            c = c.shares(v);
        }
        if let Some(v) = &t.cpuset_cpus {
            c = c.cpus(v.clone());
        }
        if let Some(v) = &t.cpuset_mems {
            c = c.mems(v.clone());
        }
        r = r.cpu(c.build()?);
    }
    if let Some(pids) = l.pids {
        r = r.pids(LinuxPidsBuilder::default().limit(pids).build()?);
    }
    let devices = t.device_lists().iter().any(|(_, l)| !l.is_empty());
    if t.blkio_weight.is_some() || devices {
        let mut b = LinuxBlockIoBuilder::default();
        if let Some(w) = t.blkio_weight {
            b = b.weight(w);
        }
        if !t.blkio_weight_device.is_empty() {
            let mut list = Vec::new();
            for d in &t.blkio_weight_device {
                let (major, minor) = d.numbers("blkio-weight-device")?;
                list.push(
                    LinuxWeightDeviceBuilder::default()
                        .major(major)
                        .minor(minor)
                        .weight(u16::try_from(d.rate).unwrap_or(u16::MAX))
                        .build()?,
                );
            }
            b = b.weight_device(list);
        }
        let throttle = |flag: &'static str, list: &[DeviceRate]| {
            list.iter()
                .map(|d| {
                    let (major, minor) = d.numbers(flag)?;
                    Ok(LinuxThrottleDeviceBuilder::default()
                        .major(major)
                        .minor(minor)
                        .rate(d.rate)
                        .build()?)
                })
                .collect::<Result<Vec<_>, LimitsError>>()
        };
        if !t.blkio_device_read_bps.is_empty() {
            b = b.throttle_read_bps_device(throttle("device-read-bps", &t.blkio_device_read_bps)?);
        }
        if !t.blkio_device_write_bps.is_empty() {
            b = b.throttle_write_bps_device(throttle(
                "device-write-bps",
                &t.blkio_device_write_bps,
            )?);
        }
        if !t.blkio_device_read_iops.is_empty() {
            b = b.throttle_read_iops_device(throttle(
                "device-read-iops",
                &t.blkio_device_read_iops,
            )?);
        }
        if !t.blkio_device_write_iops.is_empty() {
            b = b.throttle_write_iops_device(throttle(
                "device-write-iops",
                &t.blkio_device_write_iops,
            )?);
        }
        r = r.block_io(b.build()?);
    }
    Ok(r.build()?)
}

/// `base` with what `new` sets laid over it, field by field (an update of --cpu-shares keeps
/// the quota the container has).
pub fn merge(base: &LinuxResources, new: &LinuxResources) -> LinuxResources {
    let mut out = base.clone();
    if let Some(n) = new.memory() {
        let b = (*base.memory()).unwrap_or_default();
        out.set_memory(Some(merge_memory(&b, n)));
    }
    if let Some(n) = new.cpu() {
        let b = base.cpu().clone().unwrap_or_default();
        out.set_cpu(Some(merge_cpu(&b, n)));
    }
    if new.pids().is_some() {
        out.set_pids(*new.pids());
    }
    if let Some(n) = new.block_io() {
        let mut b = base.block_io().clone().unwrap_or_default();
        if n.weight().is_some() {
            b.set_weight(n.weight());
        }
        if n.weight_device().is_some() {
            b.set_weight_device(n.weight_device().clone());
        }
        if n.throttle_read_bps_device().is_some() {
            b.set_throttle_read_bps_device(n.throttle_read_bps_device().clone());
        }
        if n.throttle_write_bps_device().is_some() {
            b.set_throttle_write_bps_device(n.throttle_write_bps_device().clone());
        }
        if n.throttle_read_iops_device().is_some() {
            b.set_throttle_read_iops_device(n.throttle_read_iops_device().clone());
        }
        if n.throttle_write_iops_device().is_some() {
            b.set_throttle_write_iops_device(n.throttle_write_iops_device().clone());
        }
        out.set_block_io(Some(b));
    }
    out
}

fn merge_memory(b: &LinuxMemory, n: &LinuxMemory) -> LinuxMemory {
    let mut m = *b;
    if n.limit().is_some() {
        m.set_limit(n.limit());
    }
    if n.reservation().is_some() {
        m.set_reservation(n.reservation());
    }
    if n.swap().is_some() {
        m.set_swap(n.swap());
    }
    if n.swappiness().is_some() {
        m.set_swappiness(n.swappiness());
    }
    if n.disable_oom_killer().is_some() {
        m.set_disable_oom_killer(n.disable_oom_killer());
    }
    m
}

fn merge_cpu(b: &LinuxCpu, n: &LinuxCpu) -> LinuxCpu {
    let mut c = b.clone();
    if n.shares().is_some() {
        c.set_shares(n.shares());
    }
    if n.quota().is_some() {
        c.set_quota(n.quota());
    }
    if n.period().is_some() {
        c.set_period(n.period());
    }
    if n.cpus().is_some() {
        c.set_cpus(n.cpus().clone());
    }
    if n.mems().is_some() {
        c.set_mems(n.mems().clone());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning(f: impl FnOnce(&mut Tuning)) -> Limits {
        let mut l = Limits::default();
        f(&mut l.tuning);
        l
    }

    #[test]
    fn docker_refusals() {
        let mut l = tuning(|t| t.cpu_quota = Some(50_000));
        l.cpus = Some(1.0);
        assert_eq!(l.validate(None), Err(LimitsError::CpusAndQuota));
        assert!(tuning(|t| t.cpu_period = Some(999)).validate(None).is_err());
        assert!(tuning(|t| t.cpu_quota = Some(10)).validate(None).is_err());
        assert!(tuning(|t| t.cpu_quota = Some(-1)).validate(None).is_ok());
        assert_eq!(
            tuning(|t| t.memory_swap = Some(1 << 30)).validate(None),
            Err(LimitsError::SwapWithoutMemory)
        );
        // An update's swap is checked against the container's memory limit.
        assert!(tuning(|t| t.memory_swap = Some(1 << 30))
            .validate(Some(1 << 29))
            .is_ok());
        let mut l = tuning(|t| t.memory_swap = Some(1 << 20));
        l.memory_bytes = Some(1 << 30);
        assert!(matches!(
            l.validate(None),
            Err(LimitsError::SwapBelowMemory { .. })
        ));
        l.tuning.memory_swap = Some(-1);
        assert!(l.validate(None).is_ok());
        l.tuning.memory_reservation = Some(2 << 30);
        assert!(matches!(
            l.validate(None),
            Err(LimitsError::ReservationAboveMemory { .. })
        ));
        assert!(tuning(|t| t.memory_swappiness = Some(101))
            .validate(None)
            .is_err());
        assert!(tuning(|t| t.blkio_weight = Some(5)).validate(None).is_err());
        assert!(tuning(|t| t.cpuset_cpus = Some("0-x".into()))
            .validate(None)
            .is_err());
        assert!(tuning(|t| t.cpuset_cpus = Some("0-1,3".into()))
            .validate(None)
            .is_ok());
        assert_eq!(parse_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_list("3-1"), None);
        let l = tuning(|t| t.cpuset_cpus = Some("4096".into()));
        assert!(matches!(
            l.check_host(),
            Err(LimitsError::CpusetUnavailable { .. })
        ));
    }

    #[test]
    fn device_rates() {
        let d = DeviceRate::parse("device-read-bps", "/dev/sda:1mb", true).unwrap();
        assert_eq!((d.path.as_str(), d.rate), ("/dev/sda", 1 << 20));
        let d = DeviceRate::parse("device-read-iops", "/dev/sda:300", false).unwrap();
        assert_eq!(d.rate, 300);
        for bad in ["sda:1mb", "/dev/sda", "/dev/sda:fast"] {
            assert!(
                DeviceRate::parse("device-read-bps", bad, true).is_err(),
                "{bad}"
            );
        }
        // Not a block device: refused when checked against the host, and by resources().
        let mut l = Limits::default();
        l.tuning.blkio_device_read_bps = vec![DeviceRate {
            path: "/dev/null".into(),
            rate: 1,
        }];
        let e = l.check_host().unwrap_err();
        assert!(e.to_string().contains("not a block device"), "{e}");
        assert!(resources(&l).is_err());
        l.tuning.blkio_device_read_bps.clear();
        l.tuning.blkio_weight_device = vec![DeviceRate {
            path: "/dev/sda".into(),
            rate: 5,
        }];
        assert!(matches!(
            l.validate(None),
            Err(LimitsError::DeviceWeight(_))
        ));
    }

    #[test]
    fn resources_and_an_update_merged_field_by_field() {
        let mut l = tuning(|t| {
            t.cpu_shares = Some(512);
            t.cpuset_cpus = Some("0".into());
            t.memory_reservation = Some(32 << 20);
            t.memory_swappiness = Some(10);
            t.oom_kill_disable = Some(true);
            t.blkio_weight = Some(300);
        });
        l.cpus = Some(0.5);
        l.memory_bytes = Some(64 << 20);
        let r = resources(&l).unwrap();
        let cpu = r.cpu().clone().unwrap();
        assert_eq!(
            (
                cpu.shares(),
                cpu.quota(),
                cpu.period(),
                cpu.cpus().as_deref()
            ),
            (Some(512), Some(50_000), Some(100_000), Some("0"))
        );
        let mem = r.memory().unwrap();
        assert_eq!(
            (
                mem.limit(),
                mem.reservation(),
                mem.swappiness(),
                mem.disable_oom_killer()
            ),
            (Some(64 << 20), Some(32 << 20), Some(10), Some(true))
        );
        assert_eq!(r.block_io().clone().unwrap().weight(), Some(300));
        // An update of the shares alone keeps the quota and the memory settings.
        let update = resources(&tuning(|t| t.cpu_shares = Some(2048))).unwrap();
        let merged = merge(&r, &update);
        let cpu = merged.cpu().clone().unwrap();
        assert_eq!((cpu.shares(), cpu.quota()), (Some(2048), Some(50_000)));
        assert_eq!(merged.memory().unwrap().reservation(), Some(32 << 20));
        assert!(resources(&Limits::default()).unwrap().cpu().is_none());
    }
}
