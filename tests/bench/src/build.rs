//! Build figures: a cold build and a fully cached rebuild of one multi-stage Dockerfile (a
//! compile stage making a file with busybox, a slim stage copying it) from the local registry's
//! busybox, burrow vs rootless buildah vs `podman build`, interleaved. Cold: each builder's
//! cache and result removed first (the base image stays pulled); cached: the same build again.

use std::path::PathBuf;

use anyhow::Result;
use burrow_testsupport::TestMachine;

use crate::cli::{burrow_bin, compare, Variant, T};
use crate::model::{Figure, Side};
use crate::net::figure;
use crate::{proc, Settings};

const TAG: &str = "burrow-bench/build:latest";

/// The context, in the test user's home (written as the test user).
fn context(m: &TestMachine) -> Result<PathBuf> {
    let dir = PathBuf::from(&m.home).join("burrow-bench-build");
    let dockerfile = format!(
        "FROM {b} AS compile\nCOPY a.txt /src/\nRUN cat /src/a.txt > /out && echo compiled >> /out\n\
         RUN for i in 1 2 3; do echo $i >> /out; done\n\
         FROM {b}\nCOPY --from=compile /out /app/out\nWORKDIR /app\nRUN test -s out\nCMD [\"cat\", \"out\"]\n",
        b = m.image_busybox
    );
    let d = dir.display();
    let script = format!(
        "mkdir -p {d} && printf '%s' '{dockerfile}' > {d}/Dockerfile && echo a > {d}/a.txt"
    );
    proc::run_user(m, &["sh", "-c", &script], T)?;
    Ok(dir)
}

/// Each builder's command line for the context `dir`.
fn variants(dir: &str) -> Vec<Variant<'static>> {
    let (d1, d2, d3) = (dir.to_string(), dir.to_string(), dir.to_string());
    vec![
        (
            "burrow",
            Side::Ours,
            Box::new(move || {
                Ok(vec![
                    burrow_bin()?,
                    "build".into(),
                    "-q".into(),
                    "-t".into(),
                    TAG.into(),
                    d1.clone(),
                ])
            }),
        ),
        (
            "buildah",
            Side::Peer,
            Box::new(move || {
                Ok([
                    "buildah",
                    "bud",
                    "--layers",
                    "--isolation",
                    "chroot",
                    "--tls-verify=false",
                    "-q",
                    "-t",
                    TAG,
                    &d2,
                ]
                .map(String::from)
                .to_vec())
            }),
        ),
        (
            "podman build",
            Side::Peer,
            Box::new(move || {
                Ok([
                    "podman",
                    "build",
                    "--layers",
                    "--isolation",
                    "chroot",
                    "--tls-verify=false",
                    "-q",
                    "-t",
                    TAG,
                    &d3,
                ]
                .map(String::from)
                .to_vec())
            }),
        ),
    ]
}

/// Removes one builder's result and cache (buildah and podman share their store).
fn forget(m: &TestMachine, name: &str) {
    let _ = match name {
        "burrow" => burrow_bin().and_then(|b| {
            proc::run_user(m, &[&b, "rmi", "-f", TAG], T)?;
            proc::run_user(m, &[&b, "builder", "prune", "-f"], T)
        }),
        _ => proc::run_user(
            m,
            &[
                "sh",
                "-c",
                &format!("podman rmi -f {TAG}; podman image prune -f"),
            ],
            T,
        ),
    };
}

/// The cold and cached figures.
pub fn build(m: &TestMachine, s: &Settings) -> Vec<Figure> {
    let dir = match context(m) {
        Ok(d) => d.display().to_string(),
        Err(e) => {
            eprintln!("burrow-bench: build context: {e:#}");
            return Vec::new();
        }
    };
    // The base is pulled once by each, outside the timings.
    let _ = burrow_bin().and_then(|b| proc::run_user(m, &[&b, "pull", "-q", &m.image_busybox], T));
    let _ = proc::run_user(
        m,
        &[
            "podman",
            "pull",
            "-q",
            "--tls-verify=false",
            &m.image_busybox,
        ],
        T,
    );
    let conditions = format!(
        "a 2-stage Dockerfile (3 RUN, 2 COPY) from {}; rootless",
        m.image_busybox
    );
    let cold = compare(
        m,
        s,
        figure(
            "build-cold",
            "Cold build of a multi-stage Dockerfile",
            "ms",
            false,
            &conditions,
        ),
        variants(&dir),
        &|name| forget(m, name),
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
        variants(&dir),
        &|_| {},
    );
    for name in ["burrow", "buildah"] {
        forget(m, name);
    }
    let _ = proc::run_user(m, &["rm", "-rf", &dir], T);
    // Rootless podman keeps a pause process holding its namespaces: end it.
    let _ = proc::run_user(m, &["pkill", "-x", "catatonit"], T);
    vec![cold, cached]
}
