//! Process plumbing for the benchmarks: spawning as the test user, waiting for readiness,
//! stopping whole process trees, and reading resident memory.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use burrow_testsupport::TestMachine;

/// A spawned process (as the test user) that is killed with its descendants when dropped.
pub struct Guard {
    pub child: Child,
}

impl Guard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        kill_tree(self.child.id());
        let _ = self.child.wait();
    }
}

/// Spawns `argv` as the test user; its output goes to a log under the temp dir, named after it.
pub fn spawn_user(machine: &TestMachine, name: &str, argv: &[&str]) -> Result<Guard> {
    let dir = std::env::temp_dir().join("burrow-bench-logs");
    std::fs::create_dir_all(&dir)?;
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let log = std::fs::File::create(dir.join(format!("{slug}.log")))?;
    let mut cmd = machine.user_command(argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Its own process group, so stopping it also reaches what it started.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = burrow_testsupport::spawn_retrying(&mut cmd)
        .with_context(|| format!("starting {name}: {}", argv.join(" ")))?;
    Ok(Guard { child })
}

/// Runs `argv` as the test user to completion and returns its stdout; fails on non-zero exit.
pub fn run_user(machine: &TestMachine, argv: &[&str], timeout: Duration) -> Result<String> {
    let mut cmd = machine.user_command(argv[0]);
    cmd.args(&argv[1..]);
    run_cmd(cmd, &argv.join(" "), timeout)
}

/// Runs a host command (as the bench's own user) to completion and returns its stdout.
pub fn run_host(argv: &[&str], timeout: Duration) -> Result<String> {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]);
    run_cmd(cmd, &argv.join(" "), timeout)
}

fn run_cmd(mut cmd: Command, what: &str, timeout: Duration) -> Result<String> {
    let out_file = tempfile_path("out");
    let err_file = tempfile_path("err");
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file)?)
        .stderr(std::fs::File::create(&err_file)?);
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            kill_tree(child.id());
            let _ = child.wait();
            bail!("{what}: no result within {}s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read_to_string(&out_file).unwrap_or_default();
    let err = std::fs::read_to_string(&err_file).unwrap_or_default();
    let _ = std::fs::remove_file(&out_file);
    let _ = std::fs::remove_file(&err_file);
    if !status.success() {
        bail!("{what}: {status}: {}", err.trim());
    }
    Ok(out)
}

fn tempfile_path(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("burrow-bench-{}-{n}.{tag}", std::process::id()))
}

/// Waits until `path` exists (e.g. a launcher's child_pid); returns the time it took.
pub fn wait_file(path: &Path, since: Instant, timeout: Duration) -> Result<Duration> {
    loop {
        if path.exists() {
            return Ok(since.elapsed());
        }
        if since.elapsed() > timeout {
            bail!(
                "{} did not appear within {}s",
                path.display(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until a TCP connect to `addr` succeeds and the peer does not reset at once.
pub fn wait_tcp(addr: SocketAddr, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("nothing answered on {addr} within {}s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free TCP port on the loopback (racy by nature, fine for a benchmark).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// All descendants of `pid` (children first found through /proc/*/stat's ppid field).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                // The ppid is the second field after the parenthesised command name.
                if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                    if let Some(ppid) = rest.split_whitespace().nth(1) {
                        if let Ok(ppid) = ppid.parse::<u32>() {
                            parent_of.push((p, ppid));
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (c, pp) in &parent_of {
            if *pp == p && !out.contains(c) {
                out.push(*c);
                frontier.push(*c);
            }
        }
    }
    out
}

/// SIGKILLs a process, its process group and all of its descendants.
pub fn kill_tree(pid: u32) {
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
    let mut all = descendants(pid);
    all.push(pid);
    for p in all {
        let _ = Command::new("kill")
            .args(["-9", &p.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// Resident set size of one process in KiB (VmRSS), 0 when it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The command name of a process (/proc/PID/comm).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Finds a binary next to the bench's own executable (same cargo target dir) or on PATH.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Whether an ELF executable asks for a dynamic loader (has a PT_INTERP program header):
/// `Some(true)` dynamically linked, `Some(false)` static, `None` when it cannot be read.
pub fn is_dynamic(path: &Path) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    let data = std::fs::read(path).ok()?;
    // 64-bit little-endian ELF only: the machines the benchmark runs on.
    if data.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    let mut found = false;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let p_type = u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?);
        found |= p_type == PT_INTERP;
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_dynamic_reads_the_program_headers() {
        // The test binary itself is dynamically linked (cargo test builds without crt-static).
        let exe = std::env::current_exe().unwrap();
        assert_eq!(is_dynamic(&exe), Some(true));
        let dir = std::env::temp_dir().join(format!("burrow-bench-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_elf = dir.join("script");
        std::fs::write(&not_elf, "#!/bin/sh\n").unwrap();
        assert_eq!(is_dynamic(&not_elf), None);
        // A static ELF: the same header with its PT_INTERP entries turned into PT_NULL.
        let mut data = std::fs::read(&exe).unwrap();
        let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().unwrap()) as usize;
        let phentsize = u16::from_le_bytes(data[0x36..0x38].try_into().unwrap()) as usize;
        let phnum = u16::from_le_bytes(data[0x38..0x3a].try_into().unwrap()) as usize;
        for i in 0..phnum {
            let at = phoff + i * phentsize;
            if data[at..at + 4] == 3u32.to_le_bytes() {
                data[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
            }
        }
        let stat = dir.join("static");
        std::fs::write(&stat, data).unwrap();
        let got = is_dynamic(&stat);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, Some(false));
    }
}
