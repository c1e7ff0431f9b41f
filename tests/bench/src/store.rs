//! The shared image store's figure: `burrow run --rm` of an image that is not in containerd,
//! started from a squashed image in a store dir, against pulling and unpacking it first (burrow
//! from the local registry, and rootless podman the same way); the conditions say how many files
//! each way reads (one SquashFS file against the image's unpacked files).

use anyhow::{Context, Result};
use burrow_testsupport::TestMachine;

use crate::cli::{burrow_bin, compare, T};
use crate::model::{Figure, Side};
use crate::net::figure;
use crate::proc;
use crate::Settings;

/// Start-up from the store against a pull and unpack (image removed before each run).
pub fn store(m: &TestMachine, s: &Settings) -> Vec<Figure> {
    match store_figure(m, s) {
        Ok(f) => vec![f],
        Err(e) => {
            eprintln!("burrow-bench: store: {e:#}");
            Vec::new()
        }
    }
}

fn store_figure(m: &TestMachine, s: &Settings) -> Result<Figure> {
    let image = m.image_tools.clone();
    let burrow = burrow_bin()?;
    let dir = std::env::temp_dir().join("burrow-bench-store");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::os::unix::fs::chown(&dir, Some(m.uid), Some(m.gid))?;
    let d = dir.display().to_string();
    let out = proc::run_user(m, &[&burrow, "image", "squash", &image, "--to", &d], T)
        .context("burrow image squash")?;
    let file = out.trim().to_string();
    let listing = proc::run_user(m, &["unsquashfs", "-l", &file], T).unwrap_or_default();
    let files = listing
        .lines()
        .filter(|l| l.starts_with("squashfs-root"))
        .count();
    let conditions = format!(
        "rootless, as the test user; {image} (iperf3 and its libraries) not in the engine's \
         store before each run; from the store: one SquashFS file of {files} files and \
         directories in a local dir (standing in for the shared filesystem) mounted with \
         squashfuse, 1 file read there; pulled: from the registry on 127.0.0.1 and unpacked, \
         the image's files written to local disk; --network none everywhere"
    );
    let sh = |line: String| -> Result<Vec<String>> { Ok(vec!["sh".into(), "-c".into(), line]) };
    let store_line = format!(
        "BURROW_IMAGE_STORE={d} {burrow} run --rm --pull never --network none {image} true"
    );
    let pull_line = format!("{burrow} run --rm --network none {image} true >/dev/null 2>&1");
    let podman_line = format!(
        "podman {} run --rm --tls-verify=false --network none {image} true >/dev/null 2>&1",
        crate::engines::podman_globals().unwrap_or_default()
    );
    let rows: Vec<crate::cli::Variant> = vec![
        (
            "burrow run --rm from the shared store",
            Side::Ours,
            Box::new(move || sh(store_line.clone())),
        ),
        (
            "burrow run --rm, pulled and unpacked",
            Side::Peer,
            Box::new(move || sh(pull_line.clone())),
        ),
        (
            "podman run --rm, pulled and unpacked",
            Side::Peer,
            Box::new(move || sh(podman_line.clone())),
        ),
    ];
    let forget = format!(
        "{burrow} rmi -f {image} >/dev/null 2>&1; podman rmi -f {image} >/dev/null 2>&1; true"
    );
    let fig = compare(
        m,
        s,
        figure(
            "store-run",
            "run --rm of an image not here: from the shared store vs pulled",
            "ms",
            false,
            &conditions,
        ),
        rows,
        &|_| {
            let _ = proc::run_user(m, &["sh", "-c", &forget], T);
        },
    );
    let _ = proc::run_user(m, &["sh", "-c", &forget], T);
    // Rootless podman leaves its pause process behind.
    let _ = proc::run_user(m, &["pkill", "-x", "catatonit"], T);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(fig)
}
