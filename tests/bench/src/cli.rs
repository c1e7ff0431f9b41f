//! CLI figures: `run --rm IMAGE true`, `ps`/`images` latency, and image pull time, burrow
//! against rootless podman and containerd's own `ctr`, all as the test user.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use burrow_testsupport::TestMachine;

use crate::model::{Figure, Row, Side};
use crate::net::{figure, note_failure};
use crate::proc;
use crate::Settings;

pub(crate) const T: Duration = Duration::from_secs(120);

/// Builds a variant's command line (or says why it cannot run).
pub(crate) type ArgvFn = Box<dyn Fn() -> Result<Vec<String>>>;
/// A variant of a CLI figure: name, side and how to build its command line.
pub(crate) type Variant<'a> = (&'a str, Side, ArgvFn);

/// Times one command run as the test user, in milliseconds; fails on a non-zero exit.
pub(crate) fn timed(m: &TestMachine, argv: &[&str]) -> Result<f64> {
    let t = Instant::now();
    proc::run_user(m, argv, T)?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

pub(crate) fn burrow_bin() -> Result<String> {
    proc::find_binary("burrow")
        .map(|p| p.to_string_lossy().to_string())
        .ok_or_else(|| anyhow!("burrow is not built (bash scripts/build-release.sh)"))
}

/// How the measured burrow binary is linked, for the conditions of the latency figures (ctr is
/// a static Go binary; scripts/build-release.sh links burrow statically too).
fn burrow_linkage() -> String {
    let bin = burrow_bin().ok();
    match bin
        .as_deref()
        .map(|b| proc::is_dynamic(std::path::Path::new(b)))
    {
        Some(Some(false)) => "burrow statically linked (scripts/build-release.sh)".into(),
        Some(Some(true)) => {
            "burrow dynamically linked (plain cargo build; scripts/build-release.sh links it \
             statically)"
                .into()
        }
        _ => "burrow's linkage unknown".into(),
    }
}

/// `podman run` as it works rootless here: on cgroup v1 (nothing delegated) crun refuses the
/// hybrid hierarchy, so podman gets runc with the cgroupfs manager, which skips cgroups it
/// cannot create, as burrow's containers run without cgroups there.
fn podman_run() -> Vec<String> {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        vec!["podman".into(), "run".into()]
    } else {
        [
            "podman",
            "--cgroup-manager=cgroupfs",
            "run",
            "--runtime=runc",
        ]
        .map(String::from)
        .to_vec()
    }
}

/// Makes sure the test user's rootless containerd runs with the socket-bypass service
/// (`burrow setup install --bypass`, idempotent); returns true when this call installed it, so
/// the caller uninstalls it afterwards.
pub fn ensure_rootless_containerd(m: &TestMachine) -> Result<bool> {
    let burrow = burrow_bin()?;
    let was_running = proc::run_user(m, &[&burrow, "setup", "status"], T).is_ok();
    proc::run_user(m, &[&burrow, "setup", "install", "--bypass"], T)?;
    Ok(!was_running)
}

/// An address of this host outside loopback and the container networks (10/8).
fn host_address() -> Option<String> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|a| !a.is_loopback() && a.octets()[0] != 10)
        .map(|a| a.to_string())
}

/// Container ↔ host TCP with socket bypass, without it, and natively (iperf3 from the tools image).
pub fn bypass(m: &TestMachine, s: &Settings) -> Vec<Figure> {
    let secs = s.iperf_secs.to_string();
    let host = host_address();
    let mut c2h = figure(
        "bypass-c2h",
        "Container → host TCP, socket bypass",
        "Gbit/s",
        true,
        &format!(
            "rootless container (tools image) runs iperf3 -c HOST_IP; iperf3 -s on the host; {}s \
             per sample; the launcher's network is the setup's default (the builtin stack, MTU 65520; the container's bridge takes the launcher's MTU)",
            s.iperf_secs
        ),
    );
    let mut h2c = figure(
        "bypass-h2c",
        "Host → container TCP through a published port, socket bypass",
        "Gbit/s",
        true,
        &format!(
            "iperf3 -c 127.0.0.1:PORT on the host; iperf3 -s in a rootless container run with -p \
             127.0.0.1:PORT:5201; {}s per sample; with --bypass the container's bind of 5201 gets the \
             host port itself, without it the launcher's builtin port driver forwards it",
            s.iperf_secs
        ),
    );
    let mut udp = figure(
        "bypass-udp",
        "Container → host UDP (connected socket), socket bypass",
        "Gbit/s received",
        true,
        &format!(
            "rootless container (tools image) runs iperf3 -u -b 2G -l 1400 -c HOST_IP (iperf3 \
             connects its UDP socket, so bypass gives it a host socket); iperf3 -s on the host; {}s \
             per sample; received = sent x (1 - loss)",
            s.iperf_secs
        ),
    );
    for (name, side) in [
        ("burrow run --bypass", Side::Ours),
        ("burrow run (no bypass)", Side::Ours),
        ("native (host to host)", Side::Limit),
    ] {
        c2h.rows.push(Row::new(name, side));
        h2c.rows.push(Row::new(name, side));
        udp.rows.push(Row::new(name, side));
    }
    let mut udp_loss: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let _ = proc::run_user(
        m,
        &[
            &burrow_bin().unwrap_or_default(),
            "pull",
            "-q",
            &m.image_tools,
        ],
        T,
    );
    let h2c_names = std::cell::RefCell::new(Vec::<String>::new());
    for _ in 0..s.reps {
        for (name, bypass) in [
            ("burrow run --bypass", Some(true)),
            ("burrow run (no bypass)", Some(false)),
            ("native (host to host)", None),
        ] {
            let res = c2h_iperf(m, s, host.as_deref(), bypass, &[])
                .and_then(|v| crate::net::gbits(&v, &["end", "sum_received", "bits_per_second"]));
            match res {
                Ok(g) => c2h.row_mut(name).samples.push(g),
                Err(e) => note_failure(&mut c2h, name, &e),
            }
            let udp_args = ["-u", "-b", "2G", "-l", "1400"];
            let res = c2h_iperf(m, s, host.as_deref(), bypass, &udp_args).and_then(|v| {
                let loss = v["end"]["sum"]["lost_percent"].as_f64().unwrap_or(f64::NAN);
                let sent = crate::net::gbits(&v, &["end", "sum", "bits_per_second"])?;
                Ok((sent * (1.0 - loss / 100.0), loss))
            });
            match res {
                Ok((g, loss)) => {
                    udp.row_mut(name).samples.push(g);
                    udp_loss.entry(name).or_default().push(loss);
                }
                Err(e) => note_failure(&mut udp, name, &e),
            }
            let res = (|| -> Result<f64> {
                let port = proc::free_port()?;
                let p = port.to_string();
                let _server = match bypass {
                    None => proc::spawn_user(m, "iperf3 -s", &["iperf3", "-s", "-p", &p])?,
                    Some(b) => {
                        let burrow = burrow_bin()?;
                        let publish = format!("127.0.0.1:{port}:5201");
                        let name = format!("burrow-bench-h2c-{port}");
                        h2c_names.borrow_mut().push(name.clone());
                        let mut argv = vec![
                            burrow.as_str(),
                            "run",
                            "--rm",
                            "--name",
                            &name,
                            "-p",
                            &publish,
                        ];
                        if b {
                            argv.push("--bypass");
                        }
                        // --forceflush: "Server listening" reaches the log at once.
                        argv.extend([m.image_tools.as_str(), "iperf3", "-s", "--forceflush"]);
                        proc::spawn_user(m, "burrow run iperf3 -s", &argv)?
                    }
                };
                proc::wait_tcp(
                    std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                    Duration::from_secs(30),
                )?;
                // The launcher's port answers before iperf3 in the container listens (and, with
                // bypass, before the container takes the port over): wait for iperf3 itself.
                if let (Some(_), Some(n)) = (bypass, h2c_names.borrow().last()) {
                    let burrow = burrow_bin()?;
                    let deadline = std::time::Instant::now() + Duration::from_secs(30);
                    while !proc::run_user(m, &[&burrow, "logs", n], T)
                        .unwrap_or_default()
                        .contains("Server listening")
                    {
                        if std::time::Instant::now() > deadline {
                            anyhow::bail!("iperf3 in the container did not start listening");
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
                let out = proc::run_user(
                    m,
                    &["iperf3", "-c", "127.0.0.1", "-p", &p, "-t", &secs, "-J"],
                    Duration::from_secs(s.iperf_secs + 30),
                )?;
                crate::net::gbits(
                    &serde_json::from_str(&out)?,
                    &["end", "sum_received", "bits_per_second"],
                )
            })();
            // The server's CLI was killed: its --rm cannot run, so remove the container here.
            for n in h2c_names.borrow_mut().drain(..) {
                if let Ok(b) = burrow_bin() {
                    let _ = proc::run_user(m, &[&b, "rm", "-f", &n], T);
                }
            }
            match res {
                Ok(g) => h2c.row_mut(name).samples.push(g),
                Err(e) => note_failure(&mut h2c, name, &e),
            }
        }
    }
    for (name, losses) in udp_loss {
        if let Some(l) = crate::model::median(&losses) {
            udp.row_mut(name).note = Some(format!("median loss {l:.1}%"));
        }
    }
    vec![c2h, h2c, udp]
}

/// One container → host iperf3 run (`extra` client flags, e.g. UDP) against an iperf3 server on
/// the host's address: from a rootless container with or without --bypass, or natively (None).
fn c2h_iperf(
    m: &TestMachine,
    s: &Settings,
    host: Option<&str>,
    bypass: Option<bool>,
    extra: &[&str],
) -> Result<serde_json::Value> {
    let Some(ip) = host else {
        anyhow::bail!("this host has no address outside loopback and 10/8");
    };
    let port = proc::free_port()?;
    let p = port.to_string();
    let secs = s.iperf_secs.to_string();
    let _server = proc::spawn_user(m, "iperf3 -s", &["iperf3", "-s", "-p", &p])?;
    proc::wait_tcp(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
    )?;
    let mut client = vec!["iperf3"];
    client.extend_from_slice(extra);
    client.extend(["-c", ip, "-p", &p, "-t", &secs, "-J"]);
    let out = match bypass {
        None => proc::run_user(m, &client, Duration::from_secs(s.iperf_secs + 30))?,
        Some(b) => {
            let burrow = burrow_bin()?;
            let mut argv = vec![burrow.as_str(), "run", "--rm"];
            if b {
                argv.push("--bypass");
            }
            argv.push(m.image_tools.as_str());
            argv.extend(client);
            proc::run_user(m, &argv, Duration::from_secs(s.iperf_secs + 60))?
        }
    };
    Ok(serde_json::from_str(&out)?)
}

/// The running burrow-bypass service of the test user: (pid, threads, resident KiB).
fn bypass_service(m: &TestMachine) -> Option<(u32, u64, u64)> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        let uid_ok =
            field("Uid:").is_some_and(|u| u.split_whitespace().next() == Some(&m.uid.to_string()));
        if field("Name:").as_deref() == Some("burrow-bypass") && uid_ok {
            let threads = field("Threads:").and_then(|t| t.parse().ok()).unwrap_or(0);
            return Some((pid, threads, proc::rss_kib(pid)));
        }
    }
    None
}

/// The bypass service under a soak of short connections: its threads and resident memory
/// before and after (bypass4netns grew to thousands of threads in the same test, its #115).
pub fn bypass_soak(m: &TestMachine, s: &Settings) -> Figure {
    let mut fig = figure(
        "bypass-soak",
        "burrow-bypass during a soak of short connections",
        "threads / MiB / connections per s",
        false,
        &format!(
            "a rootless --bypass container opens and closes TCP connections to a server on the \
             host's address in a loop (busybox nc, one at a time) for {}s; the service's thread \
             count and resident memory are read before and after (`burrow-bench --soak-secs \
             3600` for the 1-hour soak)",
            s.soak_secs
        ),
    );
    for name in [
        "service threads before",
        "service threads after",
        "service RSS MiB before",
        "service RSS MiB after",
        "connections per second",
    ] {
        fig.rows.push(Row::new(name, Side::Ours));
    }
    let res = (|| -> Result<[f64; 5]> {
        let Some(ip) = host_address() else {
            anyhow::bail!("this host has no address outside loopback and 10/8");
        };
        let listener = std::net::TcpListener::bind(("0.0.0.0", 0))?;
        let port = listener.local_addr()?.port();
        std::thread::spawn(move || {
            for c in listener.incoming() {
                drop(c);
            }
        });
        let (_, t0, r0) = bypass_service(m)
            .ok_or_else(|| anyhow::anyhow!("the bypass service is not running"))?;
        let burrow = burrow_bin()?;
        let script = format!(
            "end=$(($(date +%s)+{secs})); n=0; while [ $(date +%s) -lt $end ]; do \
             nc -w 2 {ip} {port} </dev/null >/dev/null 2>&1; n=$((n+1)); done; echo $n",
            secs = s.soak_secs
        );
        let out = proc::run_user(
            m,
            &[
                &burrow,
                "run",
                "--rm",
                "--bypass",
                &m.image_busybox,
                "sh",
                "-c",
                &script,
            ],
            Duration::from_secs(s.soak_secs + 120),
        )?;
        let n: f64 = out.trim().parse()?;
        let (_, t1, r1) = bypass_service(m)
            .ok_or_else(|| anyhow::anyhow!("the bypass service died during the soak"))?;
        Ok([
            t0 as f64,
            t1 as f64,
            r0 as f64 / 1024.0,
            r1 as f64 / 1024.0,
            n / s.soak_secs as f64,
        ])
    })();
    match res {
        Ok(v) => {
            for (row, val) in fig.rows.iter_mut().zip(v) {
                row.samples.push(val);
            }
        }
        Err(e) => {
            let names: Vec<String> = fig.rows.iter().map(|r| r.name.clone()).collect();
            for n in names {
                note_failure(&mut fig, &n, &e);
            }
        }
    }
    fig
}

/// Undoes [`ensure_rootless_containerd`] (images stay).
pub fn remove_rootless_containerd(m: &TestMachine) {
    if let Ok(burrow) = burrow_bin() {
        let _ = proc::run_user(m, &[&burrow, "setup", "uninstall"], T);
    }
}

fn ctr_socket(m: &TestMachine) -> String {
    format!("{}/containerd/containerd.sock", m.xdg_runtime_dir)
}

/// One figure whose rows are (name, side, argv builder); each rep runs every row once, interleaved.
pub(crate) fn compare(
    m: &TestMachine,
    s: &Settings,
    mut fig: Figure,
    rows: Vec<Variant>,
    before_each: &dyn Fn(&str),
) -> Figure {
    for (n, side, _) in &rows {
        fig.rows.push(Row::new(n, *side));
    }
    for _ in 0..s.reps {
        for (name, _, argv) in &rows {
            before_each(name);
            let res = argv().and_then(|a| {
                let refs: Vec<&str> = a.iter().map(String::as_str).collect();
                timed(m, &refs)
            });
            match res {
                Ok(v) => fig.row_mut(name).samples.push(v),
                Err(e) => note_failure(&mut fig, name, &e),
            }
        }
    }
    fig
}

/// `run --rm IMAGE true`, rootless, without network and with the default network.
pub fn run_rm(m: &TestMachine, s: &Settings) -> Vec<Figure> {
    let image = m.image_busybox.clone();
    // Podman needs the image in its own store first.
    let _ = proc::run_user(
        m,
        &["podman", "pull", "-q", "--tls-verify=false", &image],
        T,
    );
    let _ = proc::run_user(
        m,
        &[&burrow_bin().unwrap_or_default(), "pull", "-q", &image],
        T,
    );
    let mut out = Vec::new();
    for (id, title, burrow_net, podman_net) in [
        (
            "run-none",
            "run --rm IMAGE true, --network none",
            "none",
            "none",
        ),
        (
            "run-default",
            "run --rm IMAGE true, default network",
            "bridge",
            "slirp4netns",
        ),
    ] {
        let fig = figure(
            id,
            title,
            "ms",
            false,
            &format!(
                "rootless, as the test user; image {image} already pulled; burrow on its default \
                 setup, podman {podman_net} (runc and cgroupfs on cgroup v1)"
            ),
        );
        let img = image.clone();
        let img2 = image.clone();
        out.push(compare(
            m,
            s,
            fig,
            vec![
                (
                    "burrow",
                    Side::Ours,
                    Box::new(move || {
                        Ok(vec![
                            burrow_bin()?,
                            "run".into(),
                            "--rm".into(),
                            format!("--network={burrow_net}"),
                            img.clone(),
                            "true".into(),
                        ])
                    }),
                ),
                (
                    "podman",
                    Side::Peer,
                    Box::new(move || {
                        let mut argv = podman_run();
                        argv.extend([
                            "--rm".into(),
                            format!("--network={podman_net}"),
                            img2.clone(),
                            "true".into(),
                        ]);
                        Ok(argv)
                    }),
                ),
            ],
            &|_| {},
        ));
    }
    out
}

/// `ps -a` and `images` latency against `ctr` on the same rootless containerd.
pub fn list_latency(m: &TestMachine, s: &Settings) -> Vec<Figure> {
    /// Invocations per sample, back to back from one shell: the harness's own cost of starting
    /// a command as the test user is paid once per sample, not per call.
    const CALLS: usize = 20;
    let sock = ctr_socket(m);
    let mut out = Vec::new();
    let looped = |cmd: String| -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!(
                "i=0; while [ $i -lt {CALLS} ]; do {cmd} >/dev/null || exit 1; i=$((i+1)); done"
            ),
        ]
    };
    for (id, title, burrow_cmd, ctr_cmd) in [
        ("ps", "ps -a latency", "ps -a", "containers"),
        ("images", "images latency", "images", "images"),
    ] {
        let fig = figure(
            id,
            title,
            "ms",
            false,
            &format!(
                "rootless containerd of the test user; both clients over its socket; each sample \
                 is {CALLS} back-to-back invocations from one shell, divided by {CALLS} (process \
                 start included); {}",
                burrow_linkage()
            ),
        );
        let sock = sock.clone();
        let mut fig = compare(
            m,
            s,
            fig,
            vec![
                (
                    "burrow",
                    Side::Ours,
                    Box::new(move || Ok(looped(format!("{} {burrow_cmd}", burrow_bin()?)))),
                ),
                (
                    "ctr",
                    Side::Peer,
                    Box::new(move || Ok(looped(format!("ctr -a {sock} {ctr_cmd} ls")))),
                ),
            ],
            &|_| {},
        );
        for row in fig.rows.iter_mut() {
            for v in row.samples.iter_mut() {
                *v /= CALLS as f64;
            }
        }
        out.push(fig);
    }
    out
}

/// Pull time of the multi-layer test image from the local registry; the image is removed first.
pub fn pull(m: &TestMachine, s: &Settings) -> Figure {
    let image = m.image_multilayer.clone();
    let sock = ctr_socket(m);
    let fig = figure(
        "pull",
        "Pull of the multi-layer test image",
        "ms",
        false,
        &format!(
            "{image} from docker-registry on 127.0.0.1 (plain HTTP), removed before each pull"
        ),
    );
    let (i1, i2, i3) = (image.clone(), image.clone(), image.clone());
    let sock2 = sock.clone();
    let remove = move |name: &str| {
        let _ = match name {
            "burrow" => burrow_bin().and_then(|b| proc::run_user(m, &[&b, "rmi", "-f", &image], T)),
            "ctr" => proc::run_user(
                m,
                &["ctr", "-a", &sock, "images", "rm", "--sync", &image],
                T,
            ),
            _ => proc::run_user(m, &["podman", "rmi", "-f", &image], T),
        };
    };
    compare(
        m,
        s,
        fig,
        vec![
            (
                "burrow",
                Side::Ours,
                Box::new(move || Ok(vec![burrow_bin()?, "pull".into(), "-q".into(), i1.clone()])),
            ),
            (
                "ctr",
                Side::Peer,
                Box::new(move || {
                    Ok(["ctr", "-a", &sock2, "images", "pull", "--plain-http", &i2]
                        .map(String::from)
                        .to_vec())
                }),
            ),
            (
                "podman",
                Side::Peer,
                Box::new(move || {
                    Ok(["podman", "pull", "-q", "--tls-verify=false", &i3]
                        .map(String::from)
                        .to_vec())
                }),
            ),
        ],
        &remove,
    )
}
