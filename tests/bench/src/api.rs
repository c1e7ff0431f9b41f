//! Docker API figures: a container's whole life (`docker run --rm IMAGE true`) through burrow's
//! socket against `burrow run --rm` and against rootless podman's `podman system service`, and
//! `GET /containers/json` latency with 50 containers, burrow's service against podman's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use burrow_testsupport::TestMachine;

use crate::cli::{burrow_bin, compare, T};
use crate::model::{Figure, Side};
use crate::net::figure;
use crate::proc::{self, Guard};
use crate::Settings;

/// Containers present while the list latency is measured.
const LISTED: usize = 50;
/// List calls per sample, back to back from one shell.
const CALLS: usize = 20;

/// Docker's client: Debian's (API 1.41, which podman 4.3 also speaks).
fn docker() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

/// The shell line that runs one container's life through the API at `sock`.
fn life(sock: &Path, image: &str) -> String {
    let d = format!("DOCKER_HOST=unix://{} {}", sock.display(), docker());
    format!("{d} run --rm {image} true >/dev/null")
}

/// Starts an API service as the test user and waits until it answers a ping.
fn start_service(m: &TestMachine, name: &str, argv: &[&str], sock: &Path) -> Result<Guard> {
    let _ = std::fs::remove_file(sock);
    let g = proc::spawn_user(m, name, argv)?;
    let url = "http://d/_ping";
    let s = sock.display().to_string();
    for _ in 0..150 {
        let ok = proc::run_user(m, &["curl", "-fsS", "--unix-socket", &s, url], T);
        if ok.is_ok_and(|b| b.trim() == "OK") {
            return Ok(g);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{name} did not answer on {}", sock.display())
}

/// burrow's API service as the test user on a socket of the benchmark's own (stopped when the
/// guard drops), for clients such as docker-compose.
pub fn burrow_service(m: &TestMachine) -> Result<(Guard, PathBuf)> {
    let sock = sockets(m).0;
    let burrow = burrow_bin()?;
    let listen = format!("unix://{}", sock.display());
    let g = start_service(
        m,
        "burrow system service",
        &[&burrow, "system", "service", "--listen", &listen],
        &sock,
    )?;
    Ok((g, sock))
}

/// The two services' sockets, under the test user's runtime dir.
fn sockets(m: &TestMachine) -> (PathBuf, PathBuf) {
    let dir = Path::new(&m.xdg_runtime_dir);
    (
        dir.join("burrow-bench-api/docker.sock"),
        dir.join("burrow-bench-podman.sock"),
    )
}

/// Both figures, with both services running for their duration.
pub fn docker_api(m: &TestMachine, s: &Settings) -> Vec<Figure> {
    let image = m.image_busybox.clone();
    let (bsock, psock) = sockets(m);
    let burrow = burrow_bin().unwrap_or_default();
    // Podman's own store needs the image: from the local registry.
    let _ = proc::run_user(
        m,
        &["podman", "pull", "-q", "--tls-verify=false", &image],
        T,
    );
    let _ = proc::run_user(m, &[&burrow, "pull", "-q", &image], T);
    let listen = format!("unix://{}", bsock.display());
    let ours = start_service(
        m,
        "burrow system service",
        &[&burrow, "system", "service", "--listen", &listen],
        &bsock,
    );
    let mut podman_argv = vec!["podman"];
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        // As cli::podman_run: runc and cgroupfs on cgroup v1.
        podman_argv.extend(["--cgroup-manager=cgroupfs", "--runtime=runc"]);
    }
    let purl = format!("unix://{}", psock.display());
    podman_argv.extend(["system", "service", "--time=0", &purl]);
    let theirs = start_service(m, "podman system service", &podman_argv, &psock);
    for (name, r) in [("burrow", &ours), ("podman", &theirs)] {
        if let Err(e) = r {
            eprintln!("burrow-bench: api: the {name} service: {e:#}");
        }
    }
    let out = vec![
        run_life(m, s, &image, &bsock, &psock),
        list(m, s, &image, &bsock, &psock),
    ];
    drop(ours);
    drop(theirs);
    let _ = std::fs::remove_file(&psock);
    // Rootless podman keeps a pause process (catatonit) holding its namespaces: end it too.
    let _ = proc::run_user(m, &["pkill", "-x", "catatonit"], T);
    out
}

fn run_life(m: &TestMachine, s: &Settings, image: &str, bsock: &Path, psock: &Path) -> Figure {
    let what = "docker run --rm IMAGE true";
    let fig = figure(
        "api-run",
        "A container's life through the Docker API (run --rm IMAGE true)",
        "ms",
        false,
        &format!(
            "rootless, as the test user; {image} already pulled in both stores; {what} with \
             Debian's docker client (API 1.41) against `burrow system service` and against \
             `podman system service` (slirp4netns, runc and cgroupfs on cgroup v1); `burrow run \
             --rm IMAGE true` on the same containerd for reference; default networks"
        ),
    );
    let (b, p, img) = (life(bsock, image), life(psock, image), image.to_string());
    let sh = |line: String| -> Vec<String> { vec!["sh".into(), "-c".into(), line] };
    compare(
        m,
        s,
        fig,
        vec![
            (
                "burrow, docker CLI on burrow's socket",
                Side::Ours,
                Box::new(move || Ok(sh(b.clone()))),
            ),
            (
                "burrow run --rm (its own CLI)",
                Side::Limit,
                Box::new(move || {
                    Ok(vec![
                        burrow_bin()?,
                        "run".into(),
                        "--rm".into(),
                        img.clone(),
                        "true".into(),
                    ])
                }),
            ),
            (
                "podman, docker CLI on podman's socket",
                Side::Peer,
                Box::new(move || Ok(sh(p.clone()))),
            ),
        ],
        &|_| {},
    )
}

/// Creates (or removes) the 50 listed containers through the API at `sock`.
fn populate(m: &TestMachine, sock: &Path, image: &str, create: bool) -> Result<()> {
    let d = format!("DOCKER_HOST=unix://{} {}", sock.display(), docker());
    let line = if create {
        format!(
            "i=0; while [ $i -lt {LISTED} ]; do {d} create --name bench-ls-$i {image} true \
             >/dev/null || exit 1; i=$((i+1)); done"
        )
    } else {
        format!(
            "i=0; while [ $i -lt {LISTED} ]; do {d} rm -f bench-ls-$i >/dev/null 2>&1; \
             i=$((i+1)); done"
        )
    };
    proc::run_user(m, &["sh", "-c", &line], Duration::from_secs(600)).map(drop)
}

fn list(m: &TestMachine, s: &Settings, image: &str, bsock: &Path, psock: &Path) -> Figure {
    let fig = figure(
        "api-ps",
        "GET /containers/json?all=1 with 50 containers",
        "ms",
        false,
        &format!(
            "{LISTED} created containers in each store; each sample is {CALLS} back-to-back curl \
             calls on the unix socket from one shell, divided by {CALLS} (curl's start included)"
        ),
    );
    for sock in [bsock, psock] {
        if let Err(e) = populate(m, sock, image, true) {
            eprintln!(
                "burrow-bench: api-ps: creating containers on {}: {e:#}",
                sock.display()
            );
        }
    }
    let looped = |sock: &Path| -> Vec<String> {
        let line = format!(
            "i=0; while [ $i -lt {CALLS} ]; do curl -fsS --unix-socket {} \
             'http://d/v1.41/containers/json?all=1' >/dev/null || exit 1; i=$((i+1)); done",
            sock.display()
        );
        vec!["sh".into(), "-c".into(), line]
    };
    let (b, p) = (looped(bsock), looped(psock));
    let mut fig = compare(
        m,
        s,
        fig,
        vec![
            (
                "burrow system service",
                Side::Ours,
                Box::new(move || Ok(b.clone())),
            ),
            (
                "podman system service",
                Side::Peer,
                Box::new(move || Ok(p.clone())),
            ),
        ],
        &|_| {},
    );
    for row in fig.rows.iter_mut() {
        for v in row.samples.iter_mut() {
            *v /= CALLS as f64;
        }
    }
    for sock in [bsock, psock] {
        let _ = populate(m, sock, image, false);
    }
    fig
}

/// The goals of these figures, as lines for the summary.
pub fn goals(figures: &[Figure]) -> Vec<String> {
    let med = |f: &Figure, name: &str| f.median_of(name);
    let mut out = Vec::new();
    if let Some(f) = figures.iter().find(|f| f.id == "api-run") {
        if let (Some(sock), Some(cli)) = (med(f, "burrow, docker"), med(f, "burrow run")) {
            out.push(format!(
                "api-run: burrow's socket / burrow's CLI = {:.2}x (goal <= 1.2x)",
                sock / cli
            ));
        }
        if let (Some(sock), Some(pod)) = (med(f, "burrow, docker"), med(f, "podman")) {
            out.push(format!(
                "api-run: podman / burrow's socket = {:.2}x (goal > 1: burrow faster)",
                pod / sock
            ));
        }
    }
    if let Some(f) = figures.iter().find(|f| f.id == "api-ps") {
        if let (Some(b), Some(p)) = (med(f, "burrow"), med(f, "podman")) {
            out.push(format!(
                "api-ps: podman / burrow = {:.2}x (goal > 1: burrow faster)",
                p / b
            ));
        }
    }
    out
}
