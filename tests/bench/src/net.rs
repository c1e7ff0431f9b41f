//! Network figures: host → namespace port forwarding, namespace → host, connection rate, and the
//! launchers' memory under that load. Each variant is a launcher command line run as the test user.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use burrow_testsupport::TestMachine;
use serde_json::Value;

use crate::model::{Figure, Row, Side};
use crate::proc::{self, Guard};
use crate::Settings;

/// How a variant puts a server behind a published port: the command line up to the server argv.
#[derive(Clone)]
pub struct Forwarder {
    pub name: &'static str,
    pub side: Side,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// A RootlessKit-compatible launcher: binary, --net value, --port-driver value.
    Launcher {
        bin: Result<PathBuf, String>,
        net: &'static str,
        port_driver: &'static str,
    },
    /// pasta with -t HOST:NS.
    Pasta,
    /// The server runs on the host itself (the limit).
    Native,
}

impl Forwarder {
    fn availability(&self) -> Result<(), String> {
        match &self.kind {
            Kind::Launcher { bin: Err(e), .. } => Err(e.clone()),
            Kind::Pasta if proc::find_binary("pasta").is_none() => {
                Err("pasta is not installed (Debian package passt)".into())
            }
            _ => Ok(()),
        }
    }
}

/// Every host → namespace variant of this run, ours first.
pub fn forwarders() -> Vec<Forwarder> {
    let ours = proc::find_binary("burrow-rootlesskit")
        .ok_or_else(|| "burrow-rootlesskit is not built (cargo build --release)".to_string());
    let rk = proc::find_binary("rootlesskit")
        .ok_or_else(|| "rootlesskit is not installed (Debian package rootlesskit)".to_string());
    // --net=builtin variants only when this build has the embedded stack (else they would be
    // started, fail at once and cost a timeout each).
    let ours_builtin = ours.clone().and_then(|b| {
        let probe = std::process::Command::new(&b)
            .args(["--net=builtin", "true"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if probe.status.success() {
            Ok(b)
        } else {
            Err(format!(
                "--net=builtin is not available in this build ({})",
                String::from_utf8_lossy(&probe.stderr).trim()
            ))
        }
    });
    vec![
        Forwarder {
            name: "burrow-rootlesskit builtin (net=slirp4netns)",
            side: Side::Ours,
            kind: Kind::Launcher {
                bin: ours.clone(),
                net: "slirp4netns",
                port_driver: "builtin",
            },
        },
        Forwarder {
            name: "burrow-rootlesskit builtin (net=builtin)",
            side: Side::Ours,
            kind: Kind::Launcher {
                bin: ours_builtin.clone(),
                net: "builtin",
                port_driver: "builtin",
            },
        },
        Forwarder {
            name: "burrow-rootlesskit slirp4netns (net=slirp4netns)",
            side: Side::Ours,
            kind: Kind::Launcher {
                bin: ours.clone(),
                net: "slirp4netns",
                port_driver: "slirp4netns",
            },
        },
        Forwarder {
            name: "burrow-rootlesskit slirp (net=builtin)",
            side: Side::Ours,
            kind: Kind::Launcher {
                bin: ours_builtin,
                net: "builtin",
                port_driver: "slirp",
            },
        },
        Forwarder {
            name: "RootlessKit builtin",
            side: Side::Peer,
            kind: Kind::Launcher {
                bin: rk.clone(),
                net: "slirp4netns",
                port_driver: "builtin",
            },
        },
        Forwarder {
            name: "RootlessKit slirp4netns",
            side: Side::Peer,
            kind: Kind::Launcher {
                bin: rk,
                net: "slirp4netns",
                port_driver: "slirp4netns",
            },
        },
        Forwarder {
            name: "pasta",
            side: Side::Peer,
            kind: Kind::Pasta,
        },
        Forwarder {
            name: "native loopback",
            side: Side::Limit,
            kind: Kind::Native,
        },
    ]
}

/// A running forwarder with `server` behind host port `port`.
struct Running {
    guard: Guard,
    port: u16,
}

fn start(
    m: &TestMachine,
    f: &Forwarder,
    server: &[&str],
    child_port: u16,
    n: usize,
) -> Result<Running> {
    let port = proc::free_port()?;
    let state = PathBuf::from(&m.xdg_runtime_dir).join(format!("burrow-bench-{}-{n}", port));
    let state_s = state.to_string_lossy().to_string();
    let publish = format!("127.0.0.1:{port}:{child_port}/tcp");
    let mut argv: Vec<String> = Vec::new();
    match &f.kind {
        Kind::Launcher {
            bin,
            net,
            port_driver,
        } => {
            let bin = bin.as_ref().map_err(|e| anyhow!("{e}"))?;
            argv.extend([
                bin.to_string_lossy().to_string(),
                format!("--net={net}"),
                "--mtu=65520".into(),
                format!("--port-driver={port_driver}"),
                format!("--publish={publish}"),
                format!("--state-dir={state_s}"),
            ]);
        }
        Kind::Pasta => {
            argv.extend([
                "pasta".into(),
                "-f".into(),
                "--config-net".into(),
                "-t".into(),
            ]);
            argv.push(format!("{port}:{child_port}"));
            argv.push("--".into());
        }
        Kind::Native => {}
    }
    let server_argv = server;
    let mut server: Vec<String> = server.iter().map(|s| s.to_string()).collect();
    if matches!(f.kind, Kind::Native) {
        // The server listens on the host port directly.
        for a in server.iter_mut() {
            *a = a.replace(&child_port.to_string(), &port.to_string());
        }
    }
    argv.extend(server);
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut guard = proc::spawn_user(m, f.name, &refs)?;
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    if let Some(st) = guard.child.try_wait()? {
        bail!(
            "{} exited at once ({st}); see its log in the temp dir's burrow-bench-logs",
            f.name
        );
    }
    if let Kind::Launcher { .. } = f.kind {
        proc::wait_file(&state.join("child_pid"), started, Duration::from_secs(20))?;
    }
    // A bare TCP probe would upset iperf3's server (it takes it for a client's control
    // connection); iperf3 clients retry instead.
    if server_argv.first() != Some(&"iperf3") {
        proc::wait_tcp(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(20),
        )?;
    }
    Ok(Running { guard, port })
}

fn iperf_client(args: &[&str], timeout: Duration) -> Result<Value> {
    let mut last = None;
    for _ in 0..20 {
        let mut argv = vec!["iperf3"];
        argv.extend_from_slice(args);
        match proc::run_host(&argv, timeout) {
            Ok(out) => return serde_json::from_str(&out).context("iperf3 -J output"),
            Err(e) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("iperf3 did not run")))
}

pub fn gbits(v: &Value, path: &[&str]) -> Result<f64> {
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        bail!("iperf3: {e}");
    }
    let mut cur = v;
    for p in path {
        cur = cur
            .get(p)
            .ok_or_else(|| anyhow!("iperf3 JSON has no {}", path.join(".")))?;
    }
    Ok(cur
        .as_f64()
        .ok_or_else(|| anyhow!("iperf3 {} is not a number", path.join(".")))?
        / 1e9)
}

/// Samples the peak resident memory of a launcher's process tree, minus the workload's processes.
struct MemSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MemSampler {
    fn start(root: u32, workload: &'static [&'static str]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let mut pids = proc::descendants(root);
                pids.push(root);
                let total: u64 = pids
                    .into_iter()
                    .filter(|pid| !workload.contains(&proc::comm(*pid).as_str()))
                    .map(proc::rss_kib)
                    .sum();
                p.fetch_max(total, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        MemSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

/// Host → namespace TCP and UDP through each forwarder, plus the launchers' memory under TCP load.
pub fn port_forwarding(m: &TestMachine, s: &Settings) -> Vec<Figure> {
    let fwd = forwarders();
    let secs = s.iperf_secs.to_string();
    let conditions = format!(
        "iperf3 client on the host loopback → published port → iperf3 -s in the namespace; {}s per \
         sample, MTU 65520; launchers run as the unprivileged test user",
        s.iperf_secs
    );
    let mut tcp = figure(
        "port-tcp",
        "Host → namespace TCP through a published port",
        "Gbit/s",
        true,
        &conditions,
    );
    let mut udp = figure(
        "port-udp",
        "Host → namespace UDP through a published port",
        "Gbit/s received",
        true,
        &format!(
            "{conditions}; UDP sent at a fixed 2 Gbit/s, 1400-byte datagrams; loss in the note; \
             pasta's UDP to the host's own address (Debian 12's pasta forwards no UDP from the \
             loopback)"
        ),
    );
    let mut mem = figure(
        "memory",
        "Launcher + network helper resident memory under TCP load",
        "MiB (peak RSS)",
        false,
        "peak summed VmRSS of the launcher's process tree (launcher, its child, network helper), \
         iperf3 itself excluded, during the TCP forwarding run",
    );
    for f in &fwd {
        for fig in [&mut tcp, &mut udp] {
            fig.rows.push(Row::new(f.name, f.side));
        }
        if f.side != Side::Limit {
            mem.rows.push(Row::new(f.name, f.side));
        }
    }
    let mut udp_loss: Vec<Vec<f64>> = vec![Vec::new(); fwd.len()];
    for rep in 0..s.reps {
        for (i, f) in fwd.iter().enumerate() {
            if let Err(e) = f.availability() {
                for fig in [&mut tcp, &mut udp, &mut mem] {
                    if fig.rows.iter().any(|r| r.name == f.name) {
                        fig.row_mut(f.name).not_measured = Some(e.clone());
                    }
                }
                continue;
            }
            // TCP (and memory).
            let res = (|| -> Result<(f64, f64)> {
                let r = start(m, f, &["iperf3", "-s", "-p", "5201"], 5201, rep)?;
                let sampler = MemSampler::start(r.guard.pid(), &["iperf3"]);
                let v = iperf_client(
                    &[
                        "-c",
                        "127.0.0.1",
                        "-p",
                        &r.port.to_string(),
                        "-t",
                        &secs,
                        "-J",
                    ],
                    Duration::from_secs(s.iperf_secs + 30),
                )?;
                let peak = sampler.finish();
                Ok((
                    gbits(&v, &["end", "sum_received", "bits_per_second"])?,
                    peak,
                ))
            })();
            match res {
                Ok((g, peak)) => {
                    tcp.row_mut(f.name).samples.push(g);
                    if f.side != Side::Limit {
                        mem.row_mut(f.name).samples.push(peak);
                    }
                }
                Err(e) => {
                    note_failure(&mut tcp, f.name, &e);
                    if f.side != Side::Limit {
                        note_failure(&mut mem, f.name, &e);
                    }
                }
            }
            // UDP at a fixed rate.
            let res = (|| -> Result<(f64, f64)> {
                let r = start_udp(m, f, rep)?;
                // Debian 12's pasta (2023-03) forwards nothing from the host's loopback to a
                // UDP port (its spliced path); through the host's own address it does.
                let to = match f.kind {
                    Kind::Pasta => host_address()?,
                    _ => "127.0.0.1".to_string(),
                };
                let v = iperf_client(
                    &[
                        "-c",
                        &to,
                        "-p",
                        &r.port.to_string(),
                        "-u",
                        "-b",
                        "2G",
                        "-l",
                        "1400",
                        "-t",
                        &secs,
                        "-J",
                    ],
                    Duration::from_secs(s.iperf_secs + 30),
                )?;
                let loss = v["end"]["sum"]["lost_percent"].as_f64().unwrap_or(f64::NAN);
                let sent = gbits(&v, &["end", "sum", "bits_per_second"])?;
                Ok((sent * (1.0 - loss / 100.0), loss))
            })();
            match res {
                Ok((g, loss)) => {
                    udp.row_mut(f.name).samples.push(g);
                    udp_loss[i].push(loss);
                }
                Err(e) => note_failure(&mut udp, f.name, &e),
            }
        }
    }
    for (i, f) in fwd.iter().enumerate() {
        if let Some(l) = crate::model::median(&udp_loss[i]) {
            udp.row_mut(f.name).note = Some(format!("median loss {l:.1}%"));
        }
    }
    vec![tcp, udp, mem]
}

/// The host's first global IPv4 address (where pasta's published UDP ports answer).
fn host_address() -> Result<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(String::from)
        .ok_or_else(|| anyhow!("the host has no global IPv4 address"))
}

/// UDP needs both a TCP control port and the UDP data port published at the same number.
fn start_udp(m: &TestMachine, f: &Forwarder, n: usize) -> Result<Running> {
    let port = proc::free_port()?;
    let state = PathBuf::from(&m.xdg_runtime_dir).join(format!("burrow-bench-u{port}-{n}"));
    let mut argv: Vec<String> = Vec::new();
    match &f.kind {
        Kind::Launcher {
            bin,
            net,
            port_driver,
        } => {
            let bin = bin.as_ref().map_err(|e| anyhow!("{e}"))?;
            argv.extend([
                bin.to_string_lossy().to_string(),
                format!("--net={net}"),
                "--mtu=65520".into(),
                format!("--port-driver={port_driver}"),
                format!("--publish=127.0.0.1:{port}:5201/tcp"),
                format!("--publish=127.0.0.1:{port}:5201/udp"),
                format!("--state-dir={}", state.display()),
                "iperf3".into(),
                "-s".into(),
                "-p".into(),
                "5201".into(),
            ]);
        }
        Kind::Pasta => {
            argv.extend(["pasta", "-f", "--config-net", "-t"].map(String::from));
            argv.push(format!("{port}:5201"));
            argv.push("-u".into());
            argv.push(format!("{port}:5201"));
            argv.extend(["--", "iperf3", "-s", "-p", "5201"].map(String::from));
        }
        Kind::Native => {
            argv.extend(["iperf3", "-s", "-p"].map(String::from));
            argv.push(port.to_string());
        }
    }
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let guard = proc::spawn_user(m, f.name, &refs)?;
    if let Kind::Launcher { .. } = f.kind {
        proc::wait_file(
            &state.join("child_pid"),
            Instant::now(),
            Duration::from_secs(20),
        )?;
    }
    // No TCP probe: it would upset iperf3's server. Give pasta a moment to set up.
    std::thread::sleep(Duration::from_millis(500));
    Ok(Running { guard, port })
}

/// How a namespace → host variant reaches the host's loopback.
enum NsToHost {
    /// burrow-rootlesskit or RootlessKit with this --net, via the gateway 10.0.2.2.
    Launcher(Option<PathBuf>, &'static str),
    /// pasta's tap path: the namespace's default gateway is mapped to the host.
    PastaTap,
    /// pasta -T: the namespace's own loopback port spliced to the host's in the kernel.
    PastaSplice,
    /// The client on the host itself.
    Native,
}

/// The host's default gateway, which pasta's namespace reaches the host through.
fn default_gateway() -> Result<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "route", "show", "default"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "via")
        .nth(1)
        .map(String::from)
        .ok_or_else(|| anyhow!("the host has no IPv4 default route, which pasta needs"))
}

/// Namespace → host TCP: iperf3 -s on the host loopback, the client in the namespace via 10.0.2.2.
pub fn ns_to_host(m: &TestMachine, s: &Settings) -> Figure {
    let conditions = format!(
        "iperf3 -s on the host loopback; iperf3 -c 10.0.2.2 (the gateway, mapped to the host \
         loopback) inside the launcher's namespace; pasta: iperf3 -c to its gateway (the host's \
         default gateway, mapped to the host), and with -T to the namespace's own loopback \
         (spliced to the host's by the kernel, no userspace copy); {}s per sample, MTU 65520",
        s.iperf_secs
    );
    let mut fig = figure(
        "ns-to-host",
        "Namespace → host TCP",
        "Gbit/s",
        true,
        &conditions,
    );
    let ours = proc::find_binary("burrow-rootlesskit");
    let rk = proc::find_binary("rootlesskit");
    let variants: Vec<(&str, Side, NsToHost)> = vec![
        (
            "burrow builtin stack",
            Side::Ours,
            NsToHost::Launcher(ours.clone(), "builtin"),
        ),
        (
            "burrow-rootlesskit + slirp4netns",
            Side::Ours,
            NsToHost::Launcher(ours, "slirp4netns"),
        ),
        (
            "RootlessKit + slirp4netns",
            Side::Peer,
            NsToHost::Launcher(rk, "slirp4netns"),
        ),
        ("pasta (gateway)", Side::Peer, NsToHost::PastaTap),
        (
            "pasta -T (loopback splice)",
            Side::Peer,
            NsToHost::PastaSplice,
        ),
        ("native loopback", Side::Limit, NsToHost::Native),
    ];
    for (name, side, _) in &variants {
        fig.rows.push(Row::new(name, *side));
    }
    let secs = s.iperf_secs.to_string();
    for _ in 0..s.reps {
        for (name, _, way) in &variants {
            let res = (|| -> Result<f64> {
                let port = proc::free_port()?;
                let _server = proc::spawn_user(
                    m,
                    "iperf3 -s",
                    &["iperf3", "-s", "-B", "127.0.0.1", "-p", &port.to_string()],
                )?;
                proc::wait_tcp(
                    SocketAddr::from(([127, 0, 0, 1], port)),
                    Duration::from_secs(10),
                )?;
                let p = port.to_string();
                let client = |to: &str| -> Vec<String> {
                    ["iperf3", "-c", to, "-p", &p, "-t", &secs, "-J"]
                        .map(String::from)
                        .to_vec()
                };
                let argv: Vec<String> = match way {
                    NsToHost::Native => client("127.0.0.1"),
                    NsToHost::Launcher(None, _) => bail!("launcher binary not found"),
                    NsToHost::Launcher(Some(bin), net) => {
                        let mut argv = vec![
                            bin.to_string_lossy().to_string(),
                            format!("--net={net}"),
                            "--mtu=65520".into(),
                        ];
                        argv.extend(client("10.0.2.2"));
                        argv
                    }
                    NsToHost::PastaTap | NsToHost::PastaSplice => {
                        if proc::find_binary("pasta").is_none() {
                            bail!("pasta is not installed (Debian package passt)");
                        }
                        let mut argv: Vec<String> =
                            ["pasta", "-f", "--config-net"].map(String::from).to_vec();
                        let to = if let NsToHost::PastaSplice = way {
                            argv.extend(["-T".into(), p.clone()]);
                            "127.0.0.1".to_string()
                        } else {
                            default_gateway()?
                        };
                        argv.push("--".into());
                        argv.extend(client(&to));
                        argv
                    }
                };
                let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
                let out = proc::run_user(m, &refs, Duration::from_secs(s.iperf_secs + 40))?;
                gbits(
                    &serde_json::from_str(&out)?,
                    &["end", "sum_received", "bits_per_second"],
                )
            })();
            match res {
                Ok(g) => fig.row_mut(name).samples.push(g),
                Err(e) => note_failure(&mut fig, name, &e),
            }
        }
    }
    fig
}

/// Many short HTTP/1.0 requests through a published port to busybox httpd in the namespace.
pub fn connection_rate(m: &TestMachine, s: &Settings) -> Vec<Figure> {
    let www = std::env::temp_dir().join("burrow-bench-www");
    let _ = std::fs::create_dir_all(&www);
    let _ = std::fs::write(www.join("index.html"), "burrow bench\n");
    let www_s = www.to_string_lossy().to_string();
    let conditions = format!(
        "{} HTTP/1.0 GET requests, {} client threads, each a new TCP connection, to busybox httpd in \
         the namespace through a published port",
        s.requests, s.client_threads
    );
    let mut rps = figure(
        "conn-rate",
        "Connection rate through a published port",
        "requests/s",
        true,
        &conditions,
    );
    let mut p99 = figure(
        "conn-p99",
        "Request latency through a published port (p99)",
        "ms",
        false,
        &conditions,
    );
    let fwd: Vec<Forwarder> = forwarders()
        .into_iter()
        .filter(|f| {
            f.name.contains("builtin") || matches!(f.kind, Kind::Pasta) || f.side == Side::Limit
        })
        .collect();
    for f in &fwd {
        rps.rows.push(Row::new(f.name, f.side));
        p99.rows.push(Row::new(f.name, f.side));
    }
    for rep in 0..s.reps {
        for f in &fwd {
            if let Err(e) = f.availability() {
                rps.row_mut(f.name).not_measured = Some(e.clone());
                p99.row_mut(f.name).not_measured = Some(e);
                continue;
            }
            let res = (|| -> Result<(f64, f64)> {
                let r = start(
                    m,
                    f,
                    &["busybox", "httpd", "-f", "-p", "8000", "-h", &www_s],
                    8000,
                    rep,
                )?;
                http_load(r.port, s.requests, s.client_threads)
            })();
            match res {
                Ok((rate, lat)) => {
                    rps.row_mut(f.name).samples.push(rate);
                    p99.row_mut(f.name).samples.push(lat);
                }
                Err(e) => {
                    note_failure(&mut rps, f.name, &e);
                    note_failure(&mut p99, f.name, &e);
                }
            }
        }
    }
    vec![rps, p99]
}

/// Returns (requests per second, p99 latency in ms); fails if any request fails.
/// One HTTP/1.0 GET of the bench page.
fn http_get(addr: SocketAddr) -> Result<()> {
    let mut c = TcpStream::connect(addr)?;
    c.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut buf = Vec::new();
    c.read_to_end(&mut buf)?;
    if !buf.starts_with(b"HTTP/1.") || !buf.windows(12).any(|w| w == b"burrow bench") {
        bail!("unexpected HTTP answer ({} bytes)", buf.len());
    }
    Ok(())
}

fn http_load(port: u16, requests: usize, threads: usize) -> Result<(f64, f64)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // A forwarder may accept on the host before the server in the namespace listens (pasta
    // does, and resets the connection): the first answered request starts the clock.
    let ready = Instant::now();
    while let Err(e) = http_get(addr) {
        if ready.elapsed() > Duration::from_secs(20) {
            return Err(e.context("the server never answered through the port"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let per = requests / threads;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || -> Result<Vec<f64>> {
                let mut lat = Vec::with_capacity(per);
                for _ in 0..per {
                    let t = Instant::now();
                    http_get(addr)?;
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| anyhow!("client thread panicked"))??);
    }
    let secs = start.elapsed().as_secs_f64();
    let p99 = crate::model::percentile(&all, 99.0).unwrap_or(f64::NAN);
    Ok((all.len() as f64 / secs, p99))
}

/// Launcher start-to-ready: spawn until child_pid exists, with slirp4netns and a builtin port.
pub fn start_to_ready(m: &TestMachine, s: &Settings) -> Figure {
    let mut fig = figure(
        "launcher-start",
        "Launcher start-to-ready",
        "ms",
        false,
        "time from spawning the launcher (net=slirp4netns, port-driver=builtin, one -p, copy-up \
         /etc and /run) until it writes child_pid",
    );
    let variants = [
        (
            "burrow-rootlesskit",
            Side::Ours,
            proc::find_binary("burrow-rootlesskit"),
        ),
        ("RootlessKit", Side::Peer, proc::find_binary("rootlesskit")),
    ];
    for (n, side, _) in &variants {
        fig.rows.push(Row::new(n, *side));
    }
    for rep in 0..s.reps * 2 {
        for (name, _, bin) in &variants {
            let res = (|| -> Result<f64> {
                let bin = bin
                    .as_ref()
                    .ok_or_else(|| anyhow!("{name} binary not found"))?;
                let port = proc::free_port()?;
                let state =
                    PathBuf::from(&m.xdg_runtime_dir).join(format!("burrow-bench-s{port}-{rep}"));
                let t = Instant::now();
                let _g = proc::spawn_user(
                    m,
                    name,
                    &[
                        &bin.to_string_lossy(),
                        "--net=slirp4netns",
                        "--port-driver=builtin",
                        &format!("--publish=127.0.0.1:{port}:80/tcp"),
                        "--copy-up=/etc",
                        "--copy-up=/run",
                        &format!("--state-dir={}", state.display()),
                        "sleep",
                        "60",
                    ],
                )?;
                let d = proc::wait_file(&state.join("child_pid"), t, Duration::from_secs(20))?;
                Ok(d.as_secs_f64() * 1000.0)
            })();
            match res {
                Ok(v) => fig.row_mut(name).samples.push(v),
                Err(e) => note_failure(&mut fig, name, &e),
            }
        }
    }
    fig
}

pub fn figure(id: &str, title: &str, unit: &str, higher: bool, conditions: &str) -> Figure {
    Figure {
        id: id.into(),
        title: title.into(),
        unit: unit.into(),
        higher_is_better: higher,
        conditions: conditions.into(),
        rows: Vec::new(),
    }
}

/// Records why a sample failed; the row stays unmeasured unless another repetition succeeds.
pub fn note_failure(fig: &mut Figure, name: &str, e: &anyhow::Error) {
    let msg: String = format!("{e:#}").chars().take(160).collect();
    eprintln!("burrow-bench: {}: {name}: {msg}", fig.id);
    // Kept even when other runs of the row succeed: the page then says some runs failed.
    fig.row_mut(name).not_measured.get_or_insert(msg);
}

/// The default network path's goals ([netperf]), as lines for the summary: each a ratio of two
/// rows of one figure measured in the same run.
pub fn goals(figures: &[Figure]) -> Vec<String> {
    let builtin = "burrow-rootlesskit builtin (net=builtin)";
    let checks: [(&str, &str, &str, &str, f64, bool); 6] = [
        (
            "bypass-c2h",
            "burrow run (no bypass)",
            "native (host to host)",
            "container → host without bypass / native",
            0.5,
            true,
        ),
        (
            "ns-to-host",
            "burrow builtin stack",
            "native loopback",
            "builtin stack / native",
            0.75,
            true,
        ),
        (
            "port-udp",
            builtin,
            "native loopback",
            "builtin port driver / native, received",
            0.8,
            true,
        ),
        (
            "port-tcp",
            builtin,
            "pasta",
            "builtin port driver / pasta",
            1.0,
            true,
        ),
        (
            "conn-rate",
            builtin,
            "native loopback",
            "builtin port driver / native",
            0.8,
            true,
        ),
        (
            "memory",
            builtin,
            "RootlessKit builtin",
            "launcher + stack / RootlessKit",
            1.0,
            false,
        ),
    ];
    let mut out = Vec::new();
    for (id, ours, other, what, goal, higher) in checks {
        let Some(f) = figures.iter().find(|f| f.id == id) else {
            continue;
        };
        if let (Some(a), Some(b)) = (f.median_of(ours), f.median_of(other)) {
            let (cmp, met) = if higher {
                (">=", a / b >= goal)
            } else {
                ("<", a / b < goal)
            };
            let mut line = format!(
                "{id}: {what} = {:.2}x (goal {cmp} {goal}x{})",
                a / b,
                if met { ", met" } else { ", not met" }
            );
            if id == "port-udp" {
                if let Some(n) = f
                    .rows
                    .iter()
                    .find(|r| r.name == ours)
                    .and_then(|r| r.note.as_deref())
                {
                    line.push_str(&format!("; {n} (goal under 5%)"));
                }
            }
            // The cheapest relay there is, the kernel's splice, measured in the same run: what
            // the native figure's ratio can be read against.
            let splice = "pasta -T (loopback splice)";
            if let (true, Some(p)) = (id == "ns-to-host", f.median_of(splice)) {
                line.push_str(&format!(
                    "; {splice} / native = {:.2}x, builtin stack / {splice} = {:.2}x",
                    p / b,
                    a / p
                ));
            }
            out.push(line);
        }
    }
    out
}
