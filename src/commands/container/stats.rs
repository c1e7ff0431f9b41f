//! `burrow stats`: CPU, memory, network, block I/O and pids of containers, read from their cgroups.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use super::{labels, short_id, Ctx, State};
use burrow::connection::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (stopped ones with zeros); default: running ones.
    #[arg(short, long)]
    pub all: bool,
    /// Print one sample and exit instead of refreshing every second.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output: table (default), json, or a `{{.Field}}` template (Container, ID, Name, CPUPerc,
    /// MemUsage, MemPerc, NetIO, BlockIO, PIDs).
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (names or ids); default: every running container.
    pub containers: Vec<String>,
}

/// One row, with Docker's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    container: String,
    #[serde(rename = "ID")]
    id: String,
    name: String,
    #[serde(rename = "CPUPerc")]
    cpu_perc: String,
    mem_usage: String,
    mem_perc: String,
    #[serde(rename = "NetIO")]
    net_io: String,
    #[serde(rename = "BlockIO")]
    block_io: String,
    #[serde(rename = "PIDs")]
    pids: String,
}

/// A container's raw counters at one instant.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    cpu_ns: u64,
    mem: u64,
    limit: u64,
    rx: u64,
    tx: u64,
    read: u64,
    write: u64,
    pids: u64,
}

/// The cgroup directories of a process, per v1 controller (or the v2 one under "").
struct Cgroups(HashMap<String, PathBuf>);

impl Cgroups {
    fn of(pid: u32) -> anyhow::Result<Cgroups> {
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
        let v2 = self.0.contains_key("");
        let mut s = Sample::default();
        if v2 {
            s.cpu_ns = self.keyed("", "cpu.stat", "usage_usec").unwrap_or(0) * 1000;
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
        } else {
            s.cpu_ns = self.num("cpuacct", "cpuacct.usage").unwrap_or(0);
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
        }
        let (rx, tx) = net_bytes(pid);
        s.rx = rx;
        s.tx = tx;
        s
    }
}

/// Bytes received and sent on the container's interfaces other than loopback.
fn net_bytes(pid: u32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
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

/// Docker's units: 1.5MiB for memory, 2.1MB for I/O.
fn binary(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
}

/// Docker's decimal units for I/O (the images table's formatter).
fn decimal(b: u64) -> String {
    burrow::images::catalog::human_size(i64::try_from(b).unwrap_or(i64::MAX))
}

struct Target {
    id: String,
    name: String,
    pid: Option<u32>,
    cgroups: Option<Cgroups>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        if ctx.ep.cgroup_manager == "none" {
            let why = burrow::containers::spec::cgroup_unavailable_reason(ctx.rootless())
                .unwrap_or_else(|| "the cgroup manager is \"none\" (see `burrow info`)".into());
            bail!("stats needs the containers' cgroups, and these containers have none: {why}");
        }
        let mut targets = Vec::new();
        let wanted: Vec<String> = if args.containers.is_empty() {
            ctx.client
                .list(vec![])
                .await?
                .into_iter()
                .map(|c| c.id)
                .collect()
        } else {
            let mut v = Vec::new();
            for q in &args.containers {
                v.push(ctx.find(q).await?.id);
            }
            v
        };
        for id in wanted {
            let c = ctx.client.get(&id).await?;
            let name = c.labels.get(labels::NAME).cloned().unwrap_or_default();
            let pid = match super::state(&ctx, &id).await? {
                State::Running { pid } | State::Paused { pid } => Some(pid),
                _ => None,
            };
            if pid.is_none() && !args.all && args.containers.is_empty() {
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
        let host_mem = host_memory();
        let sample = |t: &Target| match (&t.cgroups, t.pid) {
            (Some(cg), Some(pid)) => cg.sample(pid, host_mem),
            _ => Sample::default(),
        };
        let mut prev: Vec<(Instant, Sample)> = targets
            .iter()
            .map(|t| (Instant::now(), sample(t)))
            .collect();
        let mut first = true;
        loop {
            tokio::time::sleep(Duration::from_millis(if first { 500 } else { 1000 })).await;
            first = false;
            let mut rows = Vec::new();
            for (t, p) in targets.iter().zip(prev.iter_mut()) {
                let now = Instant::now();
                let s = sample(t);
                let dt = now.duration_since(p.0).as_nanos().max(1) as f64;
                let cpu = s.cpu_ns.saturating_sub(p.1.cpu_ns) as f64 / dt * 100.0;
                *p = (now, s);
                let mem_perc = if s.limit > 0 {
                    s.mem as f64 / s.limit as f64 * 100.0
                } else {
                    0.0
                };
                let id = if args.no_trunc {
                    t.id.clone()
                } else {
                    short_id(&t.id).to_string()
                };
                rows.push(Row {
                    container: id.clone(),
                    id,
                    name: t.name.clone(),
                    cpu_perc: format!("{cpu:.2}%"),
                    mem_usage: format!("{} / {}", binary(s.mem), binary(s.limit)),
                    mem_perc: format!("{mem_perc:.2}%"),
                    net_io: format!("{} / {}", decimal(s.rx), decimal(s.tx)),
                    block_io: format!("{} / {}", decimal(s.read), decimal(s.write)),
                    pids: s.pids.to_string(),
                });
            }
            let mut out = std::io::stdout().lock();
            if !args.no_stream {
                // Docker clears the screen between refreshes.
                write!(out, "\x1b[2J\x1b[H")?;
            }
            print_rows(&mut out, &rows, args.format.as_deref())?;
            out.flush()?;
            if args.no_stream {
                return Ok(ExitCode::SUCCESS);
            }
        }
    })
}

fn print_rows(out: &mut impl Write, rows: &[Row], format: Option<&str>) -> anyhow::Result<()> {
    match format {
        Some("json") | Some("{{json .}}") => {
            for r in rows {
                writeln!(out, "{}", serde_json::to_string(r)?)?;
            }
        }
        Some(t) if t != "table" && !t.is_empty() => {
            for r in rows {
                let v = serde_json::to_value(r)?;
                let mut line = t.replace("\\t", "\t");
                if let Some(obj) = v.as_object() {
                    for (k, val) in obj {
                        let s = val.as_str().unwrap_or_default();
                        line = line.replace(&format!("{{{{.{k}}}}}"), s);
                    }
                }
                writeln!(out, "{line}")?;
            }
        }
        _ => {
            let mut table = vec![[
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "NET I/O",
                "BLOCK I/O",
                "PIDS",
            ]
            .map(String::from)
            .to_vec()];
            for r in rows {
                table.push(vec![
                    r.id.clone(),
                    r.name.clone(),
                    r.cpu_perc.clone(),
                    r.mem_usage.clone(),
                    r.mem_perc.clone(),
                    r.net_io.clone(),
                    r.block_io.clone(),
                    r.pids.clone(),
                ]);
            }
            for line in crate::commands::images::table_lines(&table) {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_as_docker_prints_them() {
        assert_eq!(binary(512), "512B");
        assert_eq!(binary(1536 * 1024), "1.5MiB");
        assert_eq!(decimal(2_100_000), "2.1MB");
        assert_eq!(decimal(999), "999B");
    }
}
