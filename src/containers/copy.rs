//! `burrow cp`'s container side: a helper process that enters the container's root (chroot, so
//! its symlinks resolve inside it) and stats, reads or writes paths there as tar streams; the
//! host side that runs it is [`transfer`], where a copy lands is [`plan`].

pub mod changes;
pub mod fcaps;
pub mod plan;
pub mod remap;
pub mod stubs;
pub mod transfer;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use serde::{Deserialize, Serialize};

/// Where the container's filesystem is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Root {
    /// A running container: its init's root (`/proc/PID/root`).
    Pid(u32),
    /// A stopped container: its snapshot's mounts, mounted by the helper in a private namespace.
    Mounts(Vec<SnapshotMount>),
}

/// One mount of a snapshot, as containerd describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotMount {
    pub typ: String,
    pub source: String,
    pub options: Vec<String>,
}

impl Root {
    /// A stopped container's (or an image's) snapshot, by the mounts containerd gave for it.
    pub fn of_mounts(mounts: &[containerd_client::types::Mount]) -> Root {
        Root::Mounts(
            mounts
                .iter()
                .map(|m| SnapshotMount {
                    typ: m.r#type.clone(),
                    source: m.source.clone(),
                    options: m.options.clone(),
                })
                .collect(),
        )
    }
}

/// What the helper is asked, as JSON in its argument list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub root: Root,
    /// The launcher child's pid whose user and mount namespaces to join first (rootless).
    pub launcher_pid: Option<i32>,
    pub op: Op,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    /// Print [`Stat`] as JSON.
    Stat { path: String },
    /// Print an `Option<`[`PathStat`]`>` as JSON (the Docker API's archive header).
    PathStat { path: String },
    /// Write a tar of `path` to stdout, its entries named `name` ("." for a directory's contents).
    Get {
        path: String,
        name: String,
        follow: bool,
        /// With name ".": entries named "./..." as Docker's daemon names them (its clients
        /// rename entries by replacing that leading ".").
        #[serde(default)]
        dotted: bool,
    },
    /// Unpack the tar on stdin into the directory `dir`; `no_overwrite_dir_non_dir` refuses an
    /// entry that would replace a directory with a non-directory or the other way round.
    Put {
        dir: String,
        archive: bool,
        #[serde(default)]
        no_overwrite_dir_non_dir: bool,
    },
    /// Copy the directory `path` of a snapshot (Root::Mounts) into the host directory `dest`
    /// with owners and modes (a new named volume getting the image's content).
    FillVolume { path: String, dest: String },
    /// Write a tar of the whole root to stdout (`burrow export`), not descending into other
    /// filesystems mounted in it (a running container's /proc, /sys, /dev).
    Export,
    /// Chown every entry of the snapshot (Root::Mounts) through these maps, so that what was
    /// owned by id N shows as N inside a container with them (`--userns=keep-id`).
    Remap {
        uid_map: crate::containers::userns::IdMap,
        gid_map: crate::containers::userns::IdMap,
    },
    /// Print the [`changes::Change`]s of the overlay upper directory `upper` against `lowers`
    /// as JSON (`burrow diff`; the root is not used).
    Changes { upper: String, lowers: Vec<String> },
    /// Write the snapshot (Root::Mounts) as one SquashFS file `output`, owners as they are in
    /// the namespace (`image squash`).
    Squash { output: String },
    /// Mount the SquashFS `file` at `target` with squashfuse, in the launcher's mount namespace
    /// itself (the root is not used): the shared store's image snapshot.
    MountStore { file: String, target: String },
    /// Unmount what [`Op::MountStore`] or [`Op::MountVolume`] mounted at `target` (lazily, if
    /// still busy).
    UnmountStore { target: String },
    /// Mount a volume's filesystem (`fstype` from `device`, with `flags` and `data`) at
    /// `target`, in the launcher's mount namespace itself (the root is not used).
    MountVolume {
        fstype: String,
        device: String,
        flags: Vec<String>,
        data: String,
        target: String,
    },
    /// Print (JSON) which of `paths` and the directories above them are missing from the
    /// snapshot (Root::Mounts), stopping at a symbolic link: the stubs a step's mounts will
    /// make there.
    Missing { paths: Vec<String> },
    /// Remove what [`Op::Missing`] said was missing, if it is still an empty directory or an
    /// empty file (a mount's stub), deepest first, through no symbolic link.
    RemoveStubs { paths: Vec<String> },
    /// Unpack the SquashFS `file` into the directory `target` with unsquashfs, in the
    /// launcher's namespaces (the root is not used): the shared store's image for a user whose
    /// launcher maps one id, owners as that user's (root inside), as a pull would unpack it.
    UnpackStore { file: String, target: String },
}

/// What is at a path inside the container.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stat {
    pub exists: bool,
    pub dir: bool,
}

/// What the Docker API tells of a path in a container (its `X-Docker-Container-Path-Stat`
/// header): the path not followed when it is a symbolic link, whose target is then given.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: u64,
    /// Go's `os.FileMode` bits (Docker's clients read them): the permissions, with the type
    /// and special bits at Go's positions.
    pub mode: u32,
    /// Modification time, RFC 3339 with nanoseconds.
    pub mtime: String,
    /// Where a symbolic link resolves to inside the container ("" for other types).
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// The message of an entry refused by [`Op::Put`]'s `no_overwrite_dir_non_dir`.
pub const DIR_NON_DIR: &str = "cannot overwrite";

/// A path's [`PathStat`] (inside the helper's chroot), None when nothing is there.
fn path_stat(path: &str) -> Option<PathStat> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = std::fs::symlink_metadata(path).ok()?;
    let ft = m.file_type();
    let perm = m.permissions().mode();
    let mut mode = perm & 0o777;
    let bits = [
        (ft.is_dir(), 1u32 << 31),
        (ft.is_symlink(), 1 << 27),
        (
            std::os::unix::fs::FileTypeExt::is_block_device(&ft),
            1 << 26,
        ),
        (std::os::unix::fs::FileTypeExt::is_fifo(&ft), 1 << 25),
        (std::os::unix::fs::FileTypeExt::is_socket(&ft), 1 << 24),
        (perm & 0o4000 != 0, 1 << 23),
        (perm & 0o2000 != 0, 1 << 22),
        (
            std::os::unix::fs::FileTypeExt::is_char_device(&ft),
            (1 << 21) | (1 << 26),
        ),
        (perm & 0o1000 != 0, 1 << 20),
    ];
    for (on, bit) in bits {
        if on {
            mode |= bit;
        }
    }
    let link_target = if ft.is_symlink() {
        std::fs::canonicalize(path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mtime = std::time::UNIX_EPOCH
        + std::time::Duration::new(m.mtime().max(0) as u64, m.mtime_nsec().max(0) as u32);
    Some(PathStat {
        name: plan::base_name(path),
        size: m.size(),
        mode,
        mtime: crate::images::time::rfc3339_nano(mtime),
        link_target,
    })
}

/// The helper: `burrow internal cp REQUEST_JSON` (single-threaded when it starts).
pub fn helper_main(request: &str) -> anyhow::Result<()> {
    let req: Request = serde_json::from_str(request).context("bad cp request")?;
    if let Some(pid) = req.launcher_pid {
        enter(pid)?;
    }
    if let Op::MountStore { file, target } = &req.op {
        return run_tool(
            std::process::Command::new("squashfuse").args(["-o", "allow_other,ro", file, target]),
            "squashfuse (apt-get install squashfuse; /dev/fuse must be usable: mode 0666)",
        );
    }
    if let Op::UnpackStore { file, target } = &req.op {
        // Owners it cannot give (ids the namespace lacks) are non-fatal: the files stay ours.
        return run_tool(
            std::process::Command::new("unsquashfs").args([
                "-f",
                "-d",
                target,
                "-quiet",
                "-no-progress",
                "-no-exit-code",
                file,
            ]),
            "unsquashfs (apt-get install squashfs-tools)",
        );
    }
    if let Op::MountVolume {
        fstype,
        device,
        flags,
        data,
        target,
    } = &req.op
    {
        let mut f = MsFlags::empty();
        for flag in flags {
            f |= super::volumes::mount_flag(flag).unwrap_or(MsFlags::empty());
        }
        let data = (!data.is_empty()).then_some(data.as_str());
        return mount(
            Some(device.as_str()),
            target.as_str(),
            Some(fstype.as_str()),
            f,
            data,
        )
        .with_context(|| format!("mount -t {fstype} {device} {target}"));
    }
    if let Op::UnmountStore { target } = &req.op {
        return match nix::mount::umount2(target.as_str(), nix::mount::MntFlags::MNT_DETACH) {
            // Not mounted (any more), or gone with its snapshot: nothing to do.
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("umount {target}: {e}")),
        };
    }
    if let Op::Changes { upper, lowers } = &req.op {
        let lowers: Vec<PathBuf> = lowers.iter().map(PathBuf::from).collect();
        let found = changes::changes(Path::new(upper), &lowers)?;
        println!("{}", serde_json::to_string(&found)?);
        return Ok(());
    }
    let root: PathBuf = match &req.root {
        Root::Pid(pid) => PathBuf::from(format!("/proc/{pid}/root")),
        Root::Mounts(mounts) => mount_snapshot(mounts)?,
    };
    if let Op::FillVolume { path, dest } = &req.op {
        return fill_volume(&root, path, Path::new(dest));
    }
    if let Op::Missing { paths } = &req.op {
        println!("{}", serde_json::to_string(&stubs::missing(&root, paths))?);
        return Ok(());
    }
    if let Op::RemoveStubs { paths } = &req.op {
        stubs::remove(&root, paths);
        return Ok(());
    }
    if let Op::Remap { uid_map, gid_map } = &req.op {
        return remap::remap(&root, uid_map, gid_map);
    }
    if let Op::Squash { output } = &req.op {
        return run_tool(
            std::process::Command::new("mksquashfs")
                .arg(&root)
                .arg(output)
                .args(["-noappend", "-quiet", "-no-progress", "-comp", "gzip"]),
            "mksquashfs (apt-get install squashfs-tools)",
        );
    }
    nix::unistd::chroot(&root)
        .with_context(|| format!("cannot enter the container's root {}", root.display()))?;
    std::env::set_current_dir("/")?;
    match req.op {
        Op::Stat { path } => {
            let st = match std::fs::metadata(&path) {
                Ok(m) => Stat {
                    exists: true,
                    dir: m.is_dir(),
                },
                Err(_) => Stat {
                    exists: std::fs::symlink_metadata(&path).is_ok(),
                    dir: false,
                },
            };
            println!("{}", serde_json::to_string(&st)?);
        }
        Op::PathStat { path } => {
            println!("{}", serde_json::to_string(&path_stat(&path))?);
        }
        Op::Get {
            path,
            name,
            follow,
            dotted,
        } => {
            let out = std::io::stdout().lock();
            if dotted && name == "." {
                write_dotted_tar(out, Path::new(&path))?;
            } else {
                write_tar(out, Path::new(&path), &name, follow)?;
            }
        }
        Op::Put {
            dir,
            archive,
            no_overwrite_dir_non_dir,
        } => {
            let input = std::io::stdin().lock();
            if no_overwrite_dir_non_dir {
                unpack_keeping_kinds(input, Path::new(&dir), archive)?;
            } else {
                unpack(input, Path::new(&dir), archive)?;
            }
        }
        Op::Export => {
            let out = std::io::stdout().lock();
            write_root_tar(out)?;
        }
        Op::FillVolume { .. }
        | Op::Changes { .. }
        | Op::Remap { .. }
        | Op::Squash { .. }
        | Op::MountStore { .. }
        | Op::MountVolume { .. }
        | Op::Missing { .. }
        | Op::RemoveStubs { .. }
        | Op::UnpackStore { .. }
        | Op::UnmountStore { .. } => {
            unreachable!("handled before the chroot")
        }
    }
    Ok(())
}

/// [`Op::FillVolume`]: a tar of `root`/`path` (symlinks kept as links, never followed: the
/// snapshot's own links must not reach the host) unpacked into `dest`, owners kept. Nothing to
/// do when the image has no directory there.
fn fill_volume(root: &Path, path: &str, dest: &Path) -> anyhow::Result<()> {
    let src = root.join(path.trim_start_matches('/'));
    // Every component must be a real directory inside the snapshot (no symlink on the way).
    let mut at = root.to_path_buf();
    for c in Path::new(path.trim_start_matches('/')).components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            _ => return Ok(()),
        }
    }
    let (r, w) = nix::unistd::pipe()?;
    let writer = std::thread::spawn(move || write_tar(std::fs::File::from(w), &src, ".", false));
    let unpacked = unpack(std::fs::File::from(r), dest, true);
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the tar writer panicked"))?;
    written.and(unpacked)
}

/// Joins the launcher child's user and mount namespaces.
fn enter(pid: i32) -> anyhow::Result<()> {
    let open = |ns: &str| {
        let p = format!("/proc/{pid}/ns/{ns}");
        std::fs::File::open(&p).with_context(|| {
            format!("opening {p} (is the rootless containerd running? burrow setup status)")
        })
    };
    let (user, mnt) = (open("user")?, open("mnt")?);
    nix::sched::setns(&user, CloneFlags::CLONE_NEWUSER)
        .context("joining the launcher's user namespace")?;
    nix::sched::setns(&mnt, CloneFlags::CLONE_NEWNS)
        .context("joining the launcher's mount namespace")?;
    Ok(())
}

/// Runs a tool to completion; its failure (or absence: `what` says how to get it) is the error.
fn run_tool(cmd: &mut std::process::Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The temporary mountpoints of stopped containers' snapshots: PREFIX + the helper's pid.
const MOUNTPOINT_PREFIX: &str = "burrow-cp-";

/// The helper cannot remove its own mountpoint (it works chrooted inside it until it exits):
/// each helper removes those of helpers that have ended, which no longer hold the flock on
/// their mountpoint (whatever pid namespace they ran in), once they are five minutes old.
fn remove_stale_mountpoints() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let ours = name
            .to_str()
            .and_then(|n| n.strip_prefix(MOUNTPOINT_PREFIX))
            .is_some_and(|p| p.parse::<u32>().is_ok());
        if !ours {
            continue;
        }
        // A new one may not be locked yet by the helper that just made it.
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(300));
        if !old {
            continue;
        }
        let Ok(dir) = std::fs::File::open(e.path()) else {
            continue;
        };
        if let Ok(_free) = nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock)
        {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// Mounts a stopped container's snapshot in a private mount namespace; returns where.
fn mount_snapshot(mounts: &[SnapshotMount]) -> anyhow::Result<PathBuf> {
    unshare(CloneFlags::CLONE_NEWNS).context("cannot create a private mount namespace")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("cannot make the mounts private")?;
    let target = std::env::temp_dir().join(format!("{MOUNTPOINT_PREFIX}{}", std::process::id()));
    remove_stale_mountpoints();
    std::fs::create_dir_all(&target)?;
    // Held until this helper exits: the mountpoint is in use (see remove_stale_mountpoints).
    let held = nix::fcntl::Flock::lock(
        std::fs::File::open(&target)?,
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", target.display()))?;
    std::mem::forget(held);
    for m in mounts {
        let mut flags = MsFlags::empty();
        let mut data: Vec<&str> = Vec::new();
        for o in &m.options {
            match o.as_str() {
                "bind" => flags |= MsFlags::MS_BIND,
                "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
                "ro" => flags |= MsFlags::MS_RDONLY,
                "rw" => {}
                other => data.push(other),
            }
        }
        let data = data.join(",");
        let fstype = (!m.typ.is_empty() && m.typ != "bind").then_some(m.typ.as_str());
        mount(
            Some(m.source.as_str()),
            &target,
            fstype,
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .with_context(|| format!("cannot mount the container's snapshot ({})", m.typ))?;
    }
    Ok(target)
}

/// Writes a tar of `path` whose entries are named `name` (or `path`'s contents for ".").
pub fn write_tar<W: Write>(out: W, path: &Path, name: &str, follow: bool) -> anyhow::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let path = if follow {
        std::fs::canonicalize(path).with_context(|| format!("{}", path.display()))?
    } else {
        path.to_path_buf()
    };
    let meta = std::fs::symlink_metadata(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        b.append_dir_all(name, &path)
            .with_context(|| format!("cannot archive {}", path.display()))?;
    } else {
        b.append_path_with_name(&path, name)
            .with_context(|| format!("cannot archive {}", path.display()))?;
    }
    b.into_inner()?.flush()?;
    Ok(())
}

/// Writes a tar of the directory `dir`'s contents whose entries are named "./", "./a",
/// "./a/b" (in PAX path records: the tar crate drops a leading "./" from header names).
fn write_dotted_tar<W: Write>(out: W, dir: &Path) -> anyhow::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut stack = vec![(dir.to_path_buf(), String::from("."))];
    while let Some((path, name)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let shown = if meta.is_dir() {
            format!("{name}/")
        } else {
            name.clone()
        };
        append_pax_path(&mut b, &shown)?;
        b.append_path_with_name(&path, &name)
            .with_context(|| format!("cannot archive {}", path.display()))?;
        if meta.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .collect::<Result<_, _>>()?;
            entries.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
            for e in entries {
                let child = format!("{name}/{}", e.file_name().to_string_lossy());
                stack.push((e.path(), child));
            }
        }
    }
    b.into_inner()?.flush()?;
    Ok(())
}

/// A PAX extended header giving the next entry's path as `path`, unchanged.
fn append_pax_path<W: Write>(b: &mut tar::Builder<W>, path: &str) -> anyhow::Result<()> {
    let body = format!(" path={path}\n");
    // A record's length counts its own digits.
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    let record = format!("{len}{body}");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_path("PaxHeader")?;
    h.set_size(record.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, record.as_bytes())?;
    Ok(())
}

/// Writes a tar of everything under the current root, entries named relative to it ("etc/passwd"),
/// directories on another filesystem than the root's kept empty.
fn write_root_tar<W: Write>(out: W) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let dev = std::fs::symlink_metadata("/")?.dev();
    let mut stack = vec![PathBuf::from("/")];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries.into_iter().rev() {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let name = path.strip_prefix("/").unwrap_or(&path);
            b.append_path_with_name(&path, name)
                .with_context(|| format!("cannot archive {}", path.display()))?;
            if meta.is_dir() && meta.dev() == dev {
                stack.push(path);
            }
        }
    }
    b.into_inner()?.flush()?;
    Ok(())
}

/// Unpacks a tar into `dir`; `archive` keeps the entries' owners (else they are the unpacker's).
pub fn unpack<R: Read>(input: R, dir: &Path, archive: bool) -> anyhow::Result<()> {
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(archive);
    ar.set_overwrite(true);
    ar.unpack(dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    Ok(())
}

/// [`unpack`], refusing (before writing it) an entry that would replace a directory with a
/// non-directory or a non-directory with a directory (Docker's `noOverwriteDirNonDir`).
pub fn unpack_keeping_kinds<R: Read>(input: R, dir: &Path, archive: bool) -> anyhow::Result<()> {
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(archive);
    ar.set_overwrite(true);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        let want_dir = entry.header().entry_type().is_dir();
        if let Ok(m) = std::fs::symlink_metadata(dir.join(&name)) {
            if m.is_dir() != want_dir {
                let (old, new) = if m.is_dir() {
                    ("directory", "non-directory")
                } else {
                    ("non-directory", "directory")
                };
                bail!(
                    "{DIR_NON_DIR} {old} {:?} with {new} {:?}",
                    dir.join(&name),
                    name
                );
            }
        }
        entry
            .unpack_in(dir)
            .with_context(|| format!("cannot write {} into {}", name.display(), dir.display()))?;
    }
    Ok(())
}

/// Runs the helper for `op` on `root` in the namespaces of the launcher child `launcher_pid`
/// (None: here); what it printed, or an error saying `what` failed and why.
pub fn run_helper(
    launcher_pid: Option<i32>,
    root: Root,
    op: Op,
    what: &str,
) -> anyhow::Result<Vec<u8>> {
    let req = Request {
        root,
        launcher_pid,
        op,
    };
    let out = crate::selfexec::Helper::Cp {
        request: serde_json::to_string(&req)?,
    }
    .command()?
    .stdin(std::process::Stdio::null())
    .output()?;
    check_helper(out, what)
}

/// Reads everything the helper printed, failing with its stderr when it failed.
pub fn check_helper(out: std::process::Output, what: &str) -> anyhow::Result<Vec<u8>> {
    if !out.status.success() {
        bail!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .trim_start_matches("burrow: ")
        );
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_tars_name_entries_as_dockers_daemon() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/resolv.conf"), "x").unwrap();
        let mut out = Vec::new();
        write_dotted_tar(&mut out, dir.path()).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                String::from_utf8_lossy(&e.path_bytes()).into_owned()
            })
            .collect();
        assert_eq!(names, ["./", "./sub/", "./sub/resolv.conf"]);
        let st = path_stat(dir.path().join("sub").to_str().unwrap()).unwrap();
        assert_eq!(st.name, "sub");
        assert_eq!(st.mode & (1 << 31), 1 << 31, "Go's ModeDir");
        assert!(path_stat("/nonexistent/x").is_none());
    }
}
