//! A container's resource usage as `stats` shows it: CPU, memory, block I/O and pids from its
//! cgroups (v2, or the v1 controllers), network bytes from its /proc/PID/net/dev.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::record::{self, State};
use super::{labels, Ctx};

/// Why usage cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("stats needs the containers' cgroups, and these containers have none: {0}")]
    NoCgroups(String),
}

/// Refuses when the endpoint creates containers without cgroups (cgroup manager "none").
pub fn check_cgroups(ctx: &Ctx) -> Result<(), StatsError> {
    if ctx.ep.cgroup_manager != "none" {
        return Ok(());
    }
    let why = super::spec::cgroup_unavailable_reason(ctx.rootless())
        .unwrap_or_else(|| "the cgroup manager is \"none\" (see `burrow info`)".into());
    Err(StatsError::NoCgroups(why))
}

/// A container's raw counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, without the inactive page cache (as Docker counts it).
    pub mem: u64,
    /// The memory limit, at most the host's memory.
    pub limit: u64,
    /// Bytes received and sent on the interfaces other than loopback.
    pub rx: u64,
    pub tx: u64,
    /// Bytes read from and written to block devices.
    pub read: u64,
    pub write: u64,
    pub pids: u64,
}

/// The cgroup directories of a process, per v1 controller (or the v2 one under "").
struct Cgroups(HashMap<String, PathBuf>);

impl Cgroups {
    fn of(pid: u32) -> std::io::Result<Cgroups> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        let mut map = HashMap::new();
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
            for c in ctrls.split(',') {
                let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
                let base = if c.is_empty() && unified {
                    PathBuf::from("/sys/fs/cgroup")
                } else if c.is_empty() {
                    // The hybrid layout's empty v2 tree: the v1 controllers hold the numbers.
                    continue;
                } else if Path::new("/sys/fs/cgroup").join(c).is_dir() {
                    Path::new("/sys/fs/cgroup").join(c)
                } else if c == "cpuacct" && Path::new("/sys/fs/cgroup/cpu,cpuacct").is_dir() {
                    PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
                } else {
                    continue;
                };
                map.insert(c.to_string(), base.join(path.trim_start_matches('/')));
            }
        }
        Ok(Cgroups(map))
    }

    fn read(&self, ctrl: &str, file: &str) -> Option<String> {
        std::fs::read_to_string(self.0.get(ctrl)?.join(file)).ok()
    }

    fn num(&self, ctrl: &str, file: &str) -> Option<u64> {
        self.read(ctrl, file)?.trim().parse().ok()
    }

    fn keyed(&self, ctrl: &str, file: &str, key: &str) -> Option<u64> {
        self.read(ctrl, file)?.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == key).then(|| f.next()?.parse().ok())?
        })
    }

    fn sample(&self, pid: u32, host_mem: u64) -> Sample {
        let mut s = if self.0.contains_key("") {
            self.sample_v2(host_mem)
        } else {
            self.sample_v1(host_mem)
        };
        (s.rx, s.tx) = net_bytes(pid);
        s
    }

    fn sample_v2(&self, host_mem: u64) -> Sample {
        let mut s = Sample {
            cpu_ns: self.keyed("", "cpu.stat", "usage_usec").unwrap_or(0) * 1000,
            ..Sample::default()
        };
        let inactive = self.keyed("", "memory.stat", "inactive_file").unwrap_or(0);
        s.mem = self
            .num("", "memory.current")
            .unwrap_or(0)
            .saturating_sub(inactive);
        s.limit = self.num("", "memory.max").unwrap_or(host_mem).min(host_mem);
        s.pids = self.num("", "pids.current").unwrap_or(0);
        if let Some(io) = self.read("", "io.stat") {
            for l in io.lines() {
                for kv in l.split_whitespace() {
                    match kv.split_once('=') {
                        Some(("rbytes", v)) => s.read += v.parse().unwrap_or(0),
                        Some(("wbytes", v)) => s.write += v.parse().unwrap_or(0),
                        _ => {}
                    }
                }
            }
        }
        s
    }

    fn sample_v1(&self, host_mem: u64) -> Sample {
        let mut s = Sample {
            cpu_ns: self.num("cpuacct", "cpuacct.usage").unwrap_or(0),
            ..Sample::default()
        };
        let inactive = self
            .keyed("memory", "memory.stat", "total_inactive_file")
            .unwrap_or(0);
        s.mem = self
            .num("memory", "memory.usage_in_bytes")
            .unwrap_or(0)
            .saturating_sub(inactive);
        s.limit = self
            .num("memory", "memory.limit_in_bytes")
            .unwrap_or(host_mem)
            .min(host_mem);
        s.pids = self.num("pids", "pids.current").unwrap_or_else(|| {
            self.read("cpuacct", "cgroup.procs")
                .map(|t| t.lines().count() as u64)
                .unwrap_or(0)
        });
        if let Some(io) = self.read("blkio", "blkio.throttle.io_service_bytes") {
            for l in io.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if let [_, op, v] = f.as_slice() {
                    match *op {
                        "Read" => s.read += v.parse().unwrap_or(0),
                        "Write" => s.write += v.parse().unwrap_or(0),
                        _ => {}
                    }
                }
            }
        }
        s
    }
}

/// Bytes received and sent on the container's interfaces other than loopback.
fn net_bytes(pid: u32) -> (u64, u64) {
    match std::fs::read_to_string(format!("/proc/{pid}/net/dev")) {
        Ok(text) => net_dev_bytes(&text),
        Err(_) => (0, 0),
    }
}

/// The receive and transmit byte totals of a /proc/net/dev table, loopback left out.
fn net_dev_bytes(text: &str) -> (u64, u64) {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            if name.trim() == "lo" {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Some((*f.first()?, *f.get(8)?))
        })
        .fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
}

/// The host's memory (MemTotal), the limit of containers without one.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(u64::MAX)
}

/// The host's CPU time since boot in nanoseconds (the `cpu` line of /proc/stat: Docker's
/// `system_cpu_usage`, the base its clients compute CPU percentages against).
pub fn host_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .map(|rest| {
            rest.split_whitespace()
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|h| u64::try_from(h).ok())
        .filter(|&h| h > 0)
        .unwrap_or(100);
    ticks.saturating_mul(1_000_000_000 / hz)
}

/// The CPUs online (Docker's `online_cpus`).
pub fn online_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// A container whose usage is read: stopped ones (no pid) read as zeros.
pub struct Target {
    pub id: String,
    pub name: String,
    pid: Option<u32>,
    cgroups: Option<Cgroups>,
}

impl Target {
    /// The container's counters now (zeros when it is stopped).
    pub fn sample_now(&self) -> Sample {
        self.sample(host_memory())
    }

    /// A target that reads as zeros (for tests of what is made of samples).
    #[cfg(test)]
    pub fn for_test(id: &str, name: &str, running: bool) -> Target {
        Target {
            id: id.into(),
            name: name.into(),
            pid: running.then_some(1),
            cgroups: None,
        }
    }

    /// Whether the container was running when it was looked up.
    pub fn running(&self) -> bool {
        self.pid.is_some()
    }

    fn sample(&self, host_mem: u64) -> Sample {
        match (&self.cgroups, self.pid) {
            (Some(cg), Some(pid)) => cg.sample(pid, host_mem),
            _ => Sample::default(),
        }
    }
}

/// The containers `queries` name (ids, names or prefixes), or without any, every running
/// container (every container with `all`).
pub async fn targets(ctx: &Ctx, queries: &[String], all: bool) -> anyhow::Result<Vec<Target>> {
    let wanted: Vec<String> = if queries.is_empty() {
        ctx.client
            .list(vec![])
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect()
    } else {
        let mut v = Vec::new();
        for q in queries {
            v.push(ctx.find(q).await?.id);
        }
        v
    };
    let mut targets = Vec::new();
    for id in wanted {
        let c = ctx.client.get(&id).await?;
        let name = c.labels.get(labels::NAME).cloned().unwrap_or_default();
        let pid = match record::state(ctx, &id).await? {
            State::Running { pid } | State::Paused { pid } => Some(pid),
            _ => None,
        };
        if pid.is_none() && !all && queries.is_empty() {
            continue;
        }
        let cgroups = pid.and_then(|p| Cgroups::of(p).ok());
        targets.push(Target {
            id,
            name,
            pid,
            cgroups,
        });
    }
    Ok(targets)
}

/// One container's usage over the time since the previous sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// CPU time used per wall-clock time, in percent (100 per busy core).
    pub cpu_percent: f64,
    /// Memory in use per limit, in percent.
    pub mem_percent: f64,
    /// The counters now.
    pub now: Sample,
}

impl Usage {
    /// From two samples `elapsed_ns` apart.
    pub fn between(before: &Sample, now: Sample, elapsed_ns: f64) -> Usage {
        let cpu_percent = now.cpu_ns.saturating_sub(before.cpu_ns) as f64 / elapsed_ns * 100.0;
        let mem_percent = if now.limit > 0 {
            now.mem as f64 / now.limit as f64 * 100.0
        } else {
            0.0
        };
        Usage {
            cpu_percent,
            mem_percent,
            now,
        }
    }
}

/// Samples a set of containers again and again, each time giving the usage since the last.
pub struct Sampler {
    targets: Vec<Target>,
    prev: Vec<(Instant, Sample)>,
    host_mem: u64,
}

impl Sampler {
    /// Takes the first sample of each target.
    pub fn new(targets: Vec<Target>) -> Sampler {
        let host_mem = host_memory();
        let prev = targets
            .iter()
            .map(|t| (Instant::now(), t.sample(host_mem)))
            .collect();
        Sampler {
            targets,
            prev,
            host_mem,
        }
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Each target's usage since the previous call (or [`Sampler::new`]), in the targets' order.
    pub fn sample(&mut self) -> Vec<Usage> {
        let mut out = Vec::with_capacity(self.targets.len());
        for (t, p) in self.targets.iter().zip(self.prev.iter_mut()) {
            let now = Instant::now();
            let s = t.sample(self.host_mem);
            let dt = now.duration_since(p.0).as_nanos().max(1) as f64;
            out.push(Usage::between(&p.1, s, dt));
            *p = (now, s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_leaves_loopback_out() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
             eth0:    2000      10    0    0    0     0          0         0      300       3    0    0    0     0       0          0\n  \
             eth1:      50       1    0    0    0     0          0         0        7       1    0    0    0     0       0          0\n";
        assert_eq!(net_dev_bytes(text), (2050, 307));
    }

    #[test]
    fn usage_is_per_elapsed_time_and_limit() {
        let before = Sample {
            cpu_ns: 1_000,
            ..Sample::default()
        };
        let now = Sample {
            cpu_ns: 501_000,
            mem: 256,
            limit: 1024,
            ..Sample::default()
        };
        let u = Usage::between(&before, now, 1_000_000.0);
        assert_eq!(u.cpu_percent, 50.0);
        assert_eq!(u.mem_percent, 25.0);
        let none = Usage::between(&Sample::default(), Sample::default(), 1.0);
        assert_eq!((none.cpu_percent, none.mem_percent), (0.0, 0.0));
    }
}
