//! Where the images go: overlayfs inside a user namespace, and the data dir's filesystem.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{item, Item, Status};
use crate::setup::programs::which;

/// Tries an overlay mount inside a user namespace, on the filesystem that will hold the data.
pub(super) fn check_overlay(data_dir: Option<&Path>) -> (Item, String) {
    let name = "snapshotter";
    let base = data_dir
        .and_then(existing_ancestor)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = match tempfile::Builder::new()
        .prefix(".burrow-overlay-check")
        .tempdir_in(&base)
    {
        Ok(t) => t,
        Err(_) => match tempfile::tempdir() {
            Ok(t) => t,
            Err(e) => {
                return (
                    item(
                        name,
                        Status::Warn,
                        format!("cannot try overlayfs ({e}); native will be used"),
                        None,
                    ),
                    "native".into(),
                )
            }
        },
    };
    // overlayfs leaves w/work mode 000: opened up again so the temporary dir can be deleted.
    let script = "mkdir l u w m && echo x > l/f && mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m && cat m/f >/dev/null; s=$?; umount m 2>/dev/null; chmod -R u+rwx w 2>/dev/null; exit $s";
    let ok = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", script])
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        (
            item(
                name,
                Status::Ok,
                format!(
                    "overlayfs mounts inside a user namespace on {} (snapshotter overlayfs)",
                    base.display()
                ),
                None,
            ),
            "overlayfs".into(),
        )
    } else {
        let fuse = if which("fuse-overlayfs").is_some() {
            "; fuse-overlayfs is installed, but containerd needs its separate snapshotter plugin (containerd-fuse-overlayfs-grpc), which burrow does not set up"
        } else {
            ""
        };
        (
            item(
                name,
                Status::Warn,
                format!("overlayfs cannot be mounted inside a user namespace on {} (kernel older than 5.11, or a filesystem overlay refuses): the native snapshotter is used, which copies every layer and is slower{fuse}", base.display()),
                Some("use a kernel >= 5.11 and a local disk for the data (--data-root DIR)".into()),
            ),
            "native".into(),
        )
    }
}

fn existing_ancestor(p: &Path) -> Option<PathBuf> {
    p.ancestors().find(|a| a.is_dir()).map(Path::to_path_buf)
}

/// Network filesystems on which containerd's data must not live, by statfs magic.
const NETWORK_FS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x0BD0_0BD0, "Lustre"),
    (0x4750_4653, "GPFS"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x1983_0326, "BeeGFS"),
    (0x00C3_6400, "CephFS"),
    (0x0102_1994, "tmpfs"),
];

/// The data dir's filesystem: a network filesystem cannot hold layers (no xattrs, no subuid owners).
pub(super) fn check_data_fs(data_dir: &Path, user: &str) -> Item {
    let name = "data filesystem";
    let Some(at) = existing_ancestor(data_dir) else {
        return item(
            name,
            Status::Warn,
            format!("{} has no existing parent", data_dir.display()),
            None,
        );
    };
    let st = match nix::sys::statfs::statfs(&at) {
        Ok(s) => s,
        Err(e) => {
            return item(
                name,
                Status::Warn,
                format!("statfs {}: {e}", at.display()),
                None,
            )
        }
    };
    let magic = st.filesystem_type().0;
    match NETWORK_FS.iter().find(|(m, _)| *m == magic) {
        Some((_, "tmpfs")) => item(
            name,
            Status::Warn,
            format!(
                "{} is on tmpfs: images are lost at reboot and use memory",
                data_dir.display()
            ),
            Some("burrow setup install --data-root DIR on a local disk".into()),
        ),
        Some((_, fs)) => {
            let proposal = propose_local_dir(user);
            item(
                name,
                Status::Fail,
                format!("{} is on {fs}, a network filesystem: image layers need local disk (owners from subordinate ids, xattrs, overlayfs)", data_dir.display()),
                Some(format!("burrow setup install --data-root {}", proposal.display())),
            )
        }
        None => item(
            name,
            Status::Ok,
            format!("{} is on a local filesystem", data_dir.display()),
            None,
        ),
    }
}

/// A local directory for the data: the first local scratch location that exists.
fn propose_local_dir(user: &str) -> PathBuf {
    for base in ["/scratch", "/local", "/tmp/local", "/var/tmp"] {
        let b = Path::new(base);
        if b.is_dir() {
            let local = nix::sys::statfs::statfs(b)
                .map(|s| !NETWORK_FS.iter().any(|(m, _)| *m == s.filesystem_type().0))
                .unwrap_or(false);
            if local {
                return b.join(format!("burrow-{user}"));
            }
        }
    }
    PathBuf::from(format!("/var/tmp/burrow-{user}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_filesystems_are_known() {
        assert!(NETWORK_FS.iter().any(|(m, n)| *m == 0x6969 && *n == "NFS"));
        assert!(NETWORK_FS.iter().any(|(_, n)| *n == "Lustre"));
    }

    #[test]
    fn proposal_is_local() {
        let p = propose_local_dir("alice");
        assert!(p.ends_with("burrow-alice"), "{}", p.display());
    }
}
