//! What `--ipc shareable` shares and `--ipc container:NAME` joins besides the IPC namespace: the
//! donor's /dev/shm, a tmpfs of its own in its state dir, mounted where the runtime runs (the
//! launcher's mount namespace when rootless) from each start until its task is deleted, and
//! bound as /dev/shm into the donor and every container that joins it, as Docker does.

use std::path::{Path, PathBuf};

use anyhow::Context;
use oci_spec::runtime::{MountBuilder, Spec};

use super::asked::Asked;
use super::copy::{run_helper, Op, Root};
use super::Ctx;

/// Where in a container's state dir its shareable /dev/shm is mounted.
const SHM_DIR: &str = "shm";

/// Where container `id`'s shareable /dev/shm is mounted (while it runs); the directory exists
/// only for containers made with `--ipc shareable`.
fn shm_dir(ctx: &Ctx, id: &str) -> PathBuf {
    ctx.store.container_dir(id).join(SHM_DIR)
}

/// The /dev/shm size in bytes container `id` was made with (`--shm-size`), if recorded.
fn shm_size_of(ctx: &Ctx, id: &str) -> Option<i64> {
    Some(Asked::read(&ctx.store.container_dir(id))?.host.shm_size)
}

/// Makes `spec`'s /dev/shm the shareable one of the container whose state dir is `dir`
/// (`--ipc shareable`).
pub fn share_shm(spec: &mut Spec, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join(SHM_DIR))
        .with_context(|| format!("making {}", dir.join(SHM_DIR).display()))?;
    bind_shm(spec, &dir.join(SHM_DIR))
}

/// Makes `spec`'s /dev/shm that of `owner`, the container whose IPC namespace `--ipc
/// container:QUERY` joins, made with IPC mode `mode`: its shareable one. A private IPC
/// namespace is refused, as Docker refuses it (the host's is no donor's to share: see
/// `share_host`).
pub fn join_shm(
    ctx: &Ctx,
    spec: &mut Spec,
    (owner, mode): (&str, &str),
    query: &str,
) -> anyhow::Result<()> {
    match mode {
        "shareable" => bind_shm(spec, &shm_dir(ctx, owner)),
        _ => anyhow::bail!(
            "container {query}: non-shareable IPC (its /dev/shm is its own): run it with `--ipc shareable` to let other containers join it"
        ),
    }
}

/// Replaces the /dev/shm mount of `spec` with a bind of `source`.
fn bind_shm(spec: &mut Spec, source: &Path) -> anyhow::Result<()> {
    let shm = MountBuilder::default()
        .destination("/dev/shm")
        .typ("bind")
        .source(source)
        .options(vec![
            "rbind".to_string(),
            "nosuid".into(),
            "noexec".into(),
            "nodev".into(),
        ])
        .build()?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.retain(|m| m.destination() != Path::new("/dev/shm"));
    mounts.push(shm);
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// `--ipc host`, or joining a container that has the host's IPC namespace: the host's /dev/shm
/// and /dev/mqueue, bound (as Docker shares them; an mqueue of an IPC namespace the user
/// namespace does not own cannot be mounted afresh). Where the host has no /dev/mqueue mounted,
/// the container has none either.
pub fn share_host(spec: &mut Spec) -> anyhow::Result<()> {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.retain(|m| {
        m.destination().to_str() != Some("/dev/mqueue") || Path::new("/dev/mqueue").is_dir()
    });
    for m in mounts.iter_mut() {
        let Some(dest @ ("/dev/shm" | "/dev/mqueue")) = m.destination().to_str() else {
            continue;
        };
        let dest = dest.to_string();
        *m = MountBuilder::default()
            .destination(&dest)
            .typ("bind")
            .source(&dest)
            .options(vec!["rbind".to_string(), "nosuid".into(), "nodev".into()])
            .build()?;
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// Mounts container `id`'s shareable /dev/shm (a fresh tmpfs of its --shm-size) before its task
/// is made; nothing for other containers (one stat) or when it is mounted already.
pub fn mount_shm(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let target = shm_dir(ctx, id);
    if !target.is_dir() || super::mounts::is_mount_point(ctx.launcher_pid(), &target) {
        return Ok(());
    }
    let Some(size) = shm_size_of(ctx, id) else {
        return Ok(());
    };
    run_helper(
        ctx.launcher_pid(),
        Root::Mounts(Vec::new()),
        Op::MountVolume {
            fstype: "tmpfs".into(),
            device: "shm".into(),
            flags: vec!["nosuid".into(), "nodev".into(), "noexec".into()],
            data: format!("mode=1777,size={}k", (size / 1024).max(1)),
            target: target.display().to_string(),
        },
        "mounting the shareable /dev/shm",
    )
    .with_context(|| format!("container {id}: --ipc shareable"))?;
    Ok(())
}

/// Unmounts container `id`'s shareable /dev/shm once its task is gone (containers that joined
/// it keep their view until they end); nothing when it has none mounted (for a container that
/// is not shareable, one stat: this runs at every stop and removal).
pub fn unmount_shm(ctx: &Ctx, id: &str) {
    let target = shm_dir(ctx, id);
    if !target.is_dir() || !super::mounts::is_mount_point(ctx.launcher_pid(), &target) {
        return;
    }
    let done = run_helper(
        ctx.launcher_pid(),
        Root::Mounts(Vec::new()),
        Op::UnmountStore {
            target: target.display().to_string(),
        },
        "unmounting the shareable /dev/shm",
    );
    if let Err(err) = done {
        tracing::warn!(%err, "container {id}: unmounting its shareable /dev/shm");
    }
}
