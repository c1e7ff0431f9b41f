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

/// Where container `id`'s shareable /dev/shm is mounted (while it runs).
pub fn shm_dir(ctx: &Ctx, id: &str) -> PathBuf {
    ctx.store.container_dir(id).join(SHM_DIR)
}

fn launcher_pid(ctx: &Ctx) -> Option<i32> {
    ctx.ep.launcher.as_ref().map(|l| l.child_pid)
}

/// The IPC mode container `id` was made with (Docker's HostConfig.IpcMode) and its /dev/shm
/// size in bytes, if recorded.
fn ipc_mode_of(ctx: &Ctx, id: &str) -> Option<(String, i64)> {
    let asked = Asked::read(&ctx.store.container_dir(id))?;
    Some((asked.host.ipc_mode, asked.host.shm_size))
}

/// Makes `spec`'s /dev/shm the shareable one of the container whose state dir is `dir`
/// (`--ipc shareable`).
pub fn share_shm(spec: &mut Spec, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join(SHM_DIR))
        .with_context(|| format!("making {}", dir.join(SHM_DIR).display()))?;
    bind_shm(spec, &dir.join(SHM_DIR))
}

/// Makes `spec`'s /dev/shm donor `donor`'s (`--ipc container:NAME`): its shareable one, or the
/// host's when it has the host's IPC namespace. A donor with a private IPC namespace is refused,
/// as Docker refuses it.
pub fn join_shm(ctx: &Ctx, spec: &mut Spec, donor: &str, query: &str) -> anyhow::Result<()> {
    match ipc_mode_of(ctx, donor).map(|(m, _)| m).as_deref() {
        Some("shareable") => bind_shm(spec, &shm_dir(ctx, donor)),
        Some("host") => bind_shm(spec, Path::new("/dev/shm")),
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

/// Mounts container `id`'s shareable /dev/shm (a fresh tmpfs of its --shm-size) before its task
/// is made; nothing for other containers or when it is mounted already.
pub fn mount_shm(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let Some((mode, size)) = ipc_mode_of(ctx, id) else {
        return Ok(());
    };
    let target = shm_dir(ctx, id);
    if mode != "shareable" || super::mounts::is_mount_point(launcher_pid(ctx), &target) {
        return Ok(());
    }
    std::fs::create_dir_all(&target).with_context(|| format!("making {}", target.display()))?;
    run_helper(
        launcher_pid(ctx),
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
/// it keep their view until they end); nothing when it has none mounted.
pub fn unmount_shm(ctx: &Ctx, id: &str) {
    let target = shm_dir(ctx, id);
    if !super::mounts::is_mount_point(launcher_pid(ctx), &target) {
        return;
    }
    let done = run_helper(
        launcher_pid(ctx),
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
