//! Compose and build figures: `compose up -d` and `down` of a five-service file (burrow compose
//! against Debian's docker-compose through burrow's Docker API socket and against Debian's
//! podman-compose), and a multi-stage Dockerfile built cold and rebuilt fully cached (burrow
//! build against rootless buildah and `podman build`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burrow_testsupport::TestMachine;

use crate::cli::{burrow_bin, compare, T};
use crate::model::{Figure, Side};
use crate::net::figure;
use crate::proc;
use crate::Settings;

/// The stem of each tool's project name: every tool brings up the same services, each in a
/// project of its own (podman 4 writes its networks as CNI configs where burrow's are, so with
/// one name a network left by one tool would be another's, and change what it has to do).
const PROJECT: &str = "burrowbench";

/// A directory the test user can read (and, for build contexts, nothing else needs).
fn work_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Five services on two networks with a named volume; each stops at once on SIGTERM.
fn compose_file(image: &str) -> String {
    let cmd = r#"["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]"#;
    let mut s = String::from("version: \"3.8\"\nservices:\n");
    for (name, extra) in [
        (
            "web",
            "    ports: [\"18090:80\"]\n    networks: [front, back]\n",
        ),
        (
            "api",
            "    networks: [back]\n    volumes: [\"data:/data\"]\n",
        ),
        (
            "db",
            "    networks: [back]\n    volumes: [\"data:/var/lib/db\"]\n",
        ),
        ("cache", "    networks: [back]\n"),
        (
            "worker",
            "    networks: [back]\n    depends_on: [db, cache]\n",
        ),
    ] {
        s.push_str(&format!(
            "  {name}:\n    image: {image}\n    command: {cmd}\n{extra}"
        ));
    }
    s.push_str("networks:\n  front: {}\n  back: {}\nvolumes:\n  data: {}\n");
    s
}

/// Podman's global flags on cgroup v1 (crun refuses hybrid hierarchies): runc and cgroupfs,
/// as the other podman figures run it.
pub(crate) fn podman_globals() -> Option<&'static str> {
    (!Path::new("/sys/fs/cgroup/cgroup.controllers").exists())
        .then_some("--runtime=runc --cgroup-manager=cgroupfs")
}

/// One compose tool: the words before `up`/`down`, as a shell line prefix.
struct Tool {
    name: &'static str,
    side: Side,
    prefix: String,
}

fn compose_tools(file: &Path, api_sock: &Path) -> Result<Vec<Tool>> {
    let f = file.display();
    Ok(vec![
        Tool {
            name: "burrow compose",
            side: Side::Ours,
            prefix: format!("{} compose -f {f} -p {PROJECT}-burrow", burrow_bin()?),
        },
        Tool {
            name: "docker-compose 1.29 on burrow's API socket",
            side: Side::Peer,
            prefix: format!(
                "DOCKER_HOST=unix://{} docker-compose -f {f} -p {PROJECT}-dc",
                api_sock.display()
            ),
        },
        Tool {
            name: "podman-compose (rootless podman)",
            side: Side::Peer,
            prefix: format!(
                "podman-compose {} -f {f} -p {PROJECT}-podman",
                podman_globals()
                    .map(|g| format!("--podman-args='{g}'"))
                    .unwrap_or_default()
            ),
        },
    ])
}

/// `compose up -d` and `down` of the same file with each tool.
pub fn compose(m: &TestMachine, s: &Settings) -> Vec<Figure> {
    let image = m.image_busybox.clone();
    match compose_figures(m, s, &image) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("burrow-bench: compose: {e:#}");
            Vec::new()
        }
    }
}

fn compose_figures(m: &TestMachine, s: &Settings, image: &str) -> Result<Vec<Figure>> {
    let dir = work_dir("burrow-bench-compose")?;
    let file = dir.join("compose.yaml");
    std::fs::write(&file, compose_file(image)).context("writing the compose file")?;
    let burrow = burrow_bin()?;
    let _ = proc::run_user(m, &[&burrow, "pull", "-q", image], T);
    let _ = proc::run_user(m, &["podman", "pull", "-q", "--tls-verify=false", image], T);
    let (api, sock) = crate::api::burrow_service(m)?;
    let tools = compose_tools(&file, &sock)?;
    let sh = |line: String| -> Vec<String> { vec!["sh".into(), "-c".into(), line] };
    // A setup step that fails leaves the measured step less to do: say so.
    let run = |line: &str| {
        if let Err(e) = proc::run_user(m, &["sh", "-c", line], T) {
            eprintln!("burrow-bench: compose: setup step failed: {e:#}");
        }
    };
    let conditions = format!(
        "rootless, as the test user; five services of {image} (sleep, stopped at once by \
         SIGTERM) on two networks with one port published and a named volume; images already \
         in each store; each tool in a project of its own, every project down before each \
         sample; burrow compose and Debian's docker-compose 1.29 (through `burrow system \
         service`) on burrow's containerd, Debian's podman-compose on rootless podman"
    );
    let rows = |line: &dyn Fn(&Tool) -> String| -> Vec<crate::cli::Variant> {
        tools
            .iter()
            .map(|t| {
                let l = line(t);
                (
                    t.name,
                    t.side,
                    Box::new(move || Ok(sh(l.clone()))) as crate::cli::ArgvFn,
                )
            })
            .collect()
    };
    // Before each sample: every tool's project down (they publish the same port).
    let all_down = || {
        for t in &tools {
            run(&format!("{} down >/dev/null 2>&1", t.prefix));
        }
    };
    let prefix_of = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.prefix.clone())
            .unwrap_or_default()
    };
    let up = compare(
        m,
        s,
        figure(
            "compose-up",
            "compose up -d of five services (until all run)",
            "ms",
            false,
            &conditions,
        ),
        rows(&|t| format!("{} up -d >/dev/null", t.prefix)),
        &|_| all_down(),
    );
    let down = compare(
        m,
        s,
        figure(
            "compose-down",
            "compose down of five running services",
            "ms",
            false,
            &conditions,
        ),
        rows(&|t| format!("{} down >/dev/null", t.prefix)),
        &|name| {
            all_down();
            run(&format!("{} up -d >/dev/null 2>&1", prefix_of(name)))
        },
    );
    for t in &tools {
        run(&format!("{} down -v >/dev/null 2>&1", t.prefix));
    }
    drop(api);
    let _ = std::fs::remove_file(&sock);
    let _ = proc::run_user(m, &["pkill", "-x", "catatonit"], T);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(vec![up, down])
}

/// A multi-stage Dockerfile: a stage that makes files with the shell, one that copies them.
fn dockerfile(image: &str) -> String {
    format!(
        "FROM {image} AS build\n\
         RUN mkdir /out && i=0; while [ $i -lt 500 ]; do echo line $i >> /out/data.txt; i=$((i+1)); done\n\
         COPY input.txt /src/input.txt\n\
         RUN sort -r /src/input.txt > /out/sorted.txt && wc -l /out/data.txt > /out/count.txt\n\
         FROM {image}\n\
         ENV APP=/app\n\
         WORKDIR /app\n\
         COPY --from=build /out /app\n\
         RUN ls -l /app > /app/listing.txt\n\
         LABEL bench=burrow\n\
         CMD [\"cat\", \"/app/count.txt\"]\n"
    )
}

/// One builder: the build line, and what makes its next build cold.
struct Builder {
    name: &'static str,
    side: Side,
    build: String,
    forget: String,
}

fn builders(ctx: &Path) -> Result<Vec<Builder>> {
    let c = ctx.display();
    let burrow = burrow_bin()?;
    let tag = "localhost/burrow-bench-build:latest";
    Ok(vec![
        Builder {
            name: "burrow build",
            side: Side::Ours,
            build: format!("{burrow} build -q -t {tag} {c}"),
            forget: format!(
                "{burrow} rmi -f {tag}; {burrow} builder prune -a -f; {burrow} image prune -f"
            ),
        },
        Builder {
            name: "buildah bud --layers (rootless, chroot isolation)",
            side: Side::Peer,
            // chroot isolation: buildah's default (the OCI runtime) is refused on hybrid cgroups.
            build: format!(
                "buildah bud --layers --isolation chroot -q --tls-verify=false -t {tag} {c}"
            ),
            forget: format!("buildah rmi -f {tag}; buildah rmi --prune"),
        },
        Builder {
            name: "podman build (rootless)",
            side: Side::Peer,
            build: format!(
                "podman {} build -q --tls-verify=false -t {tag} {c}",
                podman_globals().unwrap_or_default()
            ),
            forget: format!("podman rmi -f {tag}; podman image prune -f"),
        },
    ])
}

/// A cold build (base image present, no cache) and a fully cached rebuild with each builder.
pub fn build(m: &TestMachine, s: &Settings) -> Vec<Figure> {
    match build_figures(m, s) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("burrow-bench: build: {e:#}");
            Vec::new()
        }
    }
}

fn build_figures(m: &TestMachine, s: &Settings) -> Result<Vec<Figure>> {
    let image = m.image_busybox.clone();
    let ctx = work_dir("burrow-bench-build")?;
    std::fs::write(ctx.join("Dockerfile"), dockerfile(&image))?;
    let input: String = (0..2000).map(|i| format!("input {i}\n")).collect();
    std::fs::write(ctx.join("input.txt"), input)?;
    let burrow = burrow_bin()?;
    let _ = proc::run_user(m, &[&burrow, "pull", "-q", &image], T);
    let _ = proc::run_user(
        m,
        &["podman", "pull", "-q", "--tls-verify=false", &image],
        T,
    );
    let list = builders(&ctx)?;
    let sh = |line: String| -> Vec<String> { vec!["sh".into(), "-c".into(), line] };
    // A setup step that fails leaves the measured step less to do: say so.
    let run = |line: &str| {
        if let Err(e) = proc::run_user(m, &["sh", "-c", line], T) {
            eprintln!("burrow-bench: compose: setup step failed: {e:#}");
        }
    };
    let rows = || -> Vec<crate::cli::Variant> {
        list.iter()
            .map(|b| {
                let l = format!("{} >/dev/null", b.build);
                (
                    b.name,
                    b.side,
                    Box::new(move || Ok(sh(l.clone()))) as crate::cli::ArgvFn,
                )
            })
            .collect()
    };
    let of = |name: &str| list.iter().find(|b| b.name == name);
    let conditions = format!(
        "rootless, as the test user; a two-stage Dockerfile on {image} (two RUN and a COPY in \
         the first stage, COPY --from, WORKDIR, ENV, a RUN, LABEL and CMD in the second); the \
         base image already in each store; buildah and podman share containers/storage (each \
         cold build forgets the other's layers too)"
    );
    let cold = compare(
        m,
        s,
        figure(
            "build-cold",
            "Cold build of a two-stage Dockerfile",
            "ms",
            false,
            &conditions,
        ),
        rows(),
        &|name| {
            // Cold for everyone: buildah's and podman's layers are one store.
            let _ = name;
            for b in &list {
                run(&format!("{{ {}; }} >/dev/null 2>&1", b.forget));
            }
        },
    );
    let cached = compare(
        m,
        s,
        figure(
            "build-cached",
            "Fully cached rebuild of the same Dockerfile",
            "ms",
            false,
            &conditions,
        ),
        rows(),
        &|name| {
            if let Some(b) = of(name) {
                run(&format!("{} >/dev/null 2>&1", b.build));
            }
        },
    );
    for b in &list {
        run(&format!("{{ {}; }} >/dev/null 2>&1", b.forget));
    }
    let _ = proc::run_user(m, &["pkill", "-x", "catatonit"], T);
    let _ = std::fs::remove_dir_all(&ctx);
    Ok(vec![cold, cached])
}

/// The goals of these figures, as lines for the summary.
pub fn goals(figures: &[Figure]) -> Vec<String> {
    let med = |f: &Figure, name: &str| f.median_of(name);
    let mut out = Vec::new();
    for id in ["compose-up", "compose-down"] {
        if let Some(f) = figures.iter().find(|f| f.id == id) {
            let best_peer = f
                .rows
                .iter()
                .filter(|r| r.side == Side::Peer)
                .filter_map(|r| r.median())
                .fold(f64::INFINITY, f64::min);
            if let (Some(ours), true) = (med(f, "burrow compose"), best_peer.is_finite()) {
                out.push(format!(
                    "{id}: burrow compose / best peer = {:.2}x (goal <= 0.5x)",
                    ours / best_peer
                ));
            }
        }
    }
    for (id, goal) in [("build-cold", "1x"), ("build-cached", "0.5x")] {
        if let Some(f) = figures.iter().find(|f| f.id == id) {
            if let (Some(b), Some(h)) = (med(f, "burrow build"), med(f, "buildah")) {
                out.push(format!(
                    "{id}: burrow / buildah = {:.2}x (goal <= {goal})",
                    b / h
                ));
            }
        }
    }
    out
}
