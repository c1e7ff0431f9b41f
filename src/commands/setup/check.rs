//! `burrow setup check`: every prerequisite of a rootless containerd, each with the exact fix.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use serde::Serialize;

use super::layout::{self, Layout};
use super::systemd;
use burrow::connection::{self, Globals, UserEnv};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// The RootlessKit-compatible launcher to check [default: burrow-rootlesskit next to burrow, else on PATH].
    #[arg(long, env = "BURROW_LAUNCHER", value_name = "PATH")]
    pub launcher: Option<PathBuf>,
}

/// How one prerequisite stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Install can proceed, with a limitation the detail names.
    Warn,
    /// Install cannot proceed until the fix is applied.
    Fail,
}

/// One checked prerequisite.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What install would choose on this host.
#[derive(Debug, Clone, Serialize)]
pub struct Choices {
    /// overlayfs or native.
    pub snapshotter: String,
    /// runc or crun.
    pub runtime: Option<String>,
    /// systemd, cgroupfs or none.
    pub cgroup_manager: String,
    /// systemd (a user unit) or supervised (a background service).
    pub service: String,
    pub data_dir: PathBuf,
    /// The user has no subordinate ids: the launcher maps one id, and layers are unpacked with
    /// every file given to the user (containerd's stream processor `burrow internal layer-squash`).
    pub single_id: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when `burrow setup install` can proceed.
    pub ok: bool,
    pub user: String,
    pub uid: u32,
    pub checks: Vec<Item>,
    pub choices: Choices,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let report = gather(g, args.launcher.as_deref());
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_text(r: &Report) {
    for c in &r.checks {
        let tag = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("[{tag}] {}: {}", c.name, c.detail);
        if let Some(fix) = &c.fix {
            println!("       fix: {fix}");
        }
    }
    println!();
    println!(
        "install would use: {} service, snapshotter {}, runtime {}, cgroup manager {}, data in {}",
        r.choices.service,
        r.choices.snapshotter,
        r.choices.runtime.as_deref().unwrap_or("none found"),
        r.choices.cgroup_manager,
        r.choices.data_dir.display()
    );
    if r.ok {
        println!("ready: `burrow setup install` can proceed");
    } else {
        println!("not ready: fix the FAIL lines above, then run `burrow setup check` again");
    }
}

/// Runs every check for the current user.
pub fn gather(g: &Globals, launcher: Option<&Path>) -> Report {
    let env = UserEnv::current();
    let uid = env.euid;
    let gid = nix::unistd::getegid().as_raw();
    let user = user_name(uid);
    let mut checks = Vec::new();
    let runtime_dir = connection::effective_runtime_dir(&env);

    checks.push(check_not_root(uid));
    checks.push(check_userns_sysctls());
    checks.push(check_id_helper("newuidmap"));
    checks.push(check_id_helper("newgidmap"));
    let (subids, single_id) = check_subids(&user, uid, gid);
    checks.push(subids);
    checks.push(check_tun());
    checks.push(check_runtime_dir(&env, runtime_dir.as_deref()));
    let manager = systemd::user_manager_reachable();
    checks.push(check_systemd(&user, &manager));
    let (cg_item, cgroup_manager) = check_cgroups(uid, manager.is_ok());
    checks.push(cg_item);
    let data_dir = setup_data_dir(&env, g);
    let (snap_item, snapshotter) = check_overlay(data_dir.as_deref());
    checks.push(snap_item);
    checks.push(check_program("containerd", &["--version"], "containerd"));
    let (rt_item, runtime) = check_oci_runtime();
    checks.push(rt_item);
    let mut slirp = check_program("slirp4netns", &["--version"], "slirp4netns");
    if slirp.status == Status::Fail {
        // Only `setup install --net=slirp4netns` needs it; the default network is built in.
        slirp.status = Status::Warn;
        slirp
            .detail
            .push_str(" (needed only for `burrow setup install --net=slirp4netns`)");
    }
    checks.push(slirp);
    checks.push(check_launcher(launcher));
    if let Some(d) = &data_dir {
        checks.push(check_data_fs(d, &user));
    }
    if let Ok(l) = Layout::new(&env, None) {
        checks.push(check_existing(&l));
    }

    let ok = checks.iter().all(|c| c.status != Status::Fail);
    Report {
        ok,
        user,
        uid,
        checks,
        choices: Choices {
            snapshotter,
            runtime,
            cgroup_manager,
            service: if manager.is_ok() {
                "systemd".into()
            } else {
                "supervised".into()
            },
            data_dir: data_dir.unwrap_or_default(),
            single_id,
        },
    }
}

/// Where containerd's data will go: `--data-root`/containerd, else `$XDG_DATA_HOME/containerd`.
fn setup_data_dir(env: &UserEnv, g: &Globals) -> Option<PathBuf> {
    match super::install::requested_data_root(g, env) {
        Some(d) => Some(d.join("containerd")),
        None => env.data_home.as_ref().map(|d| d.join("containerd")),
    }
}

pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| uid.to_string())
}

fn item(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Item {
    Item {
        name,
        status,
        detail: detail.into(),
        fix,
    }
}

fn check_not_root(uid: u32) -> Item {
    if uid == 0 {
        item(
            "user",
            Status::Fail,
            "running as root: a rootless containerd belongs to an unprivileged user (root uses the system containerd)",
            Some("run burrow setup as the user who will run containers (e.g. `su - USER`)".into()),
        )
    } else {
        item(
            "user",
            Status::Ok,
            format!("unprivileged (uid {uid})"),
            None,
        )
    }
}

fn read_sysctl(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn check_userns_sysctls() -> Item {
    let name = "user namespaces";
    if let Some(0) = read_sysctl("/proc/sys/user/max_user_namespaces") {
        return item(
            name,
            Status::Fail,
            "user.max_user_namespaces is 0: user namespaces are disabled",
            Some("as root: sysctl -w user.max_user_namespaces=28633 (and persist it in /etc/sysctl.d/)".into()),
        );
    }
    if let Some(0) = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") {
        return item(
            name,
            Status::Fail,
            "kernel.unprivileged_userns_clone is 0: unprivileged users cannot create user namespaces",
            Some("as root: sysctl -w kernel.unprivileged_userns_clone=1 (and persist it in /etc/sysctl.d/)".into()),
        );
    }
    if let Some(1) = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") {
        return item(
            name,
            Status::Fail,
            "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1, as on Ubuntu 23.10+)",
            Some("as root: add an AppArmor profile allowing `userns` for burrow-rootlesskit (see docs/rootless.md), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0".into()),
        );
    }
    // The real thing: create one.
    match Command::new("unshare")
        .args(["--user", "--map-root-user", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(o) if o.status.success() => item(name, Status::Ok, "an unprivileged user namespace can be created", None),
        Ok(o) => item(
            name,
            Status::Fail,
            format!(
                "creating a user namespace failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Some("check the sysctls user.max_user_namespaces and kernel.unprivileged_userns_clone, and any LSM policy (docs/rootless.md)".into()),
        ),
        Err(_) => item(
            name,
            Status::Ok,
            "enabled by the sysctls (unshare(1) is not installed to try one)",
            None,
        ),
    }
}

fn check_id_helper(prog: &'static str) -> Item {
    let Some(path) = layout::which(prog) else {
        return item(
            prog,
            Status::Fail,
            format!("{prog} is not installed: without it only a single-id map is possible"),
            Some("as root: apt-get install uidmap".into()),
        );
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => return item(prog, Status::Fail, format!("{}: {e}", path.display()), None),
    };
    if meta.uid() == 0 && meta.permissions().mode() & 0o4000 != 0 {
        return item(
            prog,
            Status::Ok,
            format!("{} is setuid root", path.display()),
            None,
        );
    }
    if has_file_caps(&path) {
        return item(
            prog,
            Status::Ok,
            format!("{} has file capabilities", path.display()),
            None,
        );
    }
    item(
        prog,
        Status::Fail,
        format!("{} is neither setuid root nor has file capabilities, so it cannot write id maps", path.display()),
        Some(format!("as root: chmod u+s {} (or setcap cap_setuid+ep / cap_setgid+ep; reinstalling uidmap restores it)", path.display())),
    )
}

/// True when `getcap` reports capabilities on the file.
fn has_file_caps(path: &Path) -> bool {
    Command::new("getcap")
        .arg(path)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("cap_set"))
        .unwrap_or(false)
}

/// The command that gives `user` 65536 subordinate ids in a range no one in /etc/subuid or
/// /etc/subgid holds yet.
fn subid_fix(user: &str) -> String {
    use burrow_rootlesskit::subid::{free_range, parse_all, static_files};
    let (uid_file, gid_file) = static_files();
    let mut taken = Vec::new();
    for f in [uid_file, gid_file] {
        taken.extend(parse_all(&std::fs::read_to_string(f).unwrap_or_default()));
    }
    match free_range(&taken, 65536) {
        Some(r) => {
            let (a, b) = (r.start, r.start + (r.count - 1));
            format!("as root: usermod --add-subuids {a}-{b} --add-subgids {a}-{b} {user} (a range no other user in /etc/subuid or /etc/subgid has), then `burrow setup install` again")
        }
        None => format!("as root: give {user} a free range of 65536 ids in /etc/subuid and /etc/subgid (usermod --add-subuids A-B --add-subgids A-B {user})"),
    }
}

/// The subordinate-id item, and whether the user has none (the launcher then maps one id).
fn check_subids(user: &str, uid: u32, gid: u32) -> (Item, bool) {
    use burrow_rootlesskit::subid::{lookup, SubidSource};
    let (u, g) = lookup(SubidSource::Auto, user, uid, gid);
    let count =
        |r: &[burrow_rootlesskit::subid::Range]| r.iter().map(|r| u64::from(r.count)).sum::<u64>();
    let (nu, ng) = (count(&u), count(&g));
    let fix = subid_fix(user);
    if nu == 0 || ng == 0 {
        let it = item(
            "subordinate ids",
            Status::Warn,
            format!("{user} has no subordinate {} (/etc/subuid, /etc/subgid, getsubids): the launcher falls back to a single-id map: image files of other owners become yours, and containers run every user as root (you outside)", if nu == 0 { "uids" } else { "gids" }),
            Some(fix),
        );
        return (it, true);
    }
    if nu < 65536 || ng < 65536 {
        let it = item(
            "subordinate ids",
            Status::Warn,
            format!("{user} has {nu} subordinate uids and {ng} gids; images using ids above that fail to unpack (65536 is usual)"),
            Some(fix),
        );
        return (it, false);
    }
    let it = item(
        "subordinate ids",
        Status::Ok,
        format!(
            "{nu} uids starting at {}, {ng} gids starting at {}",
            u[0].start, g[0].start
        ),
        None,
    );
    (it, false)
}

fn check_tun() -> Item {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => item("/dev/net/tun", Status::Ok, "usable", None),
        Err(e) => item(
            "/dev/net/tun",
            Status::Fail,
            format!("cannot open /dev/net/tun: {e} (the namespace's network needs a tap device)"),
            Some("as root: modprobe tun; chmod 0666 /dev/net/tun".into()),
        ),
    }
}

fn check_runtime_dir(env: &UserEnv, effective: Option<&Path>) -> Item {
    let name = "XDG_RUNTIME_DIR";
    let uid = env.euid;
    let conv = env.conventional_runtime_dir();
    let Some(dir) = effective else {
        return item(
            name,
            Status::Fail,
            format!("XDG_RUNTIME_DIR is not set (as after su or ssh without a login session) and {} is not yours", conv.display()),
            Some(format!(
                "as root: mkdir -m 0700 {c} && chown {uid} {c}; then export XDG_RUNTIME_DIR={c} (or a private 0700 dir on local disk: see docs/hpc.md)",
                c = conv.display()
            )),
        );
    };
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => {
            return item(
                name,
                Status::Fail,
                format!("{}: {e}", dir.display()),
                Some(format!("mkdir -m 0700 {}", dir.display())),
            )
        }
    };
    if meta.uid() != uid {
        return item(
            name,
            Status::Fail,
            format!("{} belongs to uid {}, not to you", dir.display(), meta.uid()),
            Some(format!("export XDG_RUNTIME_DIR to a 0700 dir of yours, e.g. as root: mkdir -m 0700 {c} && chown {uid} {c}", c = conv.display())),
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return item(
            name,
            Status::Fail,
            format!(
                "{} is mode {:o}: others could reach your containerd's socket",
                dir.display(),
                meta.permissions().mode() & 0o7777
            ),
            Some(format!("chmod 0700 {}", dir.display())),
        );
    }
    if env.runtime_dir.is_none() {
        return item(
            name,
            Status::Warn,
            format!("not set; using {} (yours, 0700)", dir.display()),
            Some(format!(
                "export XDG_RUNTIME_DIR={} in your shell profile",
                dir.display()
            )),
        );
    }
    item(
        name,
        Status::Ok,
        format!("{} (yours, 0700)", dir.display()),
        None,
    )
}

fn check_systemd(user: &str, manager: &Result<(), String>) -> Item {
    match manager {
        Ok(()) => {
            let linger = Path::new("/var/lib/systemd/linger").join(user).exists();
            if linger {
                item("systemd --user", Status::Ok, "the user manager answers; lingering is on (services run without a login session)", None)
            } else {
                item(
                    "systemd --user",
                    Status::Ok,
                    "the user manager answers; lingering is off, so containerd stops when your last session ends",
                    Some(format!("to keep it running: loginctl enable-linger {user}")),
                )
            }
        }
        Err(why) => item(
            "systemd --user",
            Status::Warn,
            format!("no user manager ({why}): install runs containerd as a supervised background service instead (see docs/hpc.md for starting it at login)"),
            None,
        ),
    }
}

/// The cgroup situation and the cgroup manager containers get.
fn check_cgroups(uid: u32, systemd_user: bool) -> (Item, String) {
    let name = "cgroups";
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return (
            item(
                name,
                Status::Warn,
                "cgroup v1: nothing is delegated to users, so rootless containers run without resource limits (--memory, --cpus and --pids-limit are refused)",
                Some("for limits: boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2) and delegate controllers to user@.service".into()),
            ),
            "none".into(),
        );
    }
    let dir = PathBuf::from(format!(
        "/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service"
    ));
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let owned = std::fs::metadata(&dir)
        .map(|m| m.uid() == uid)
        .unwrap_or(false);
    if owned && !controllers.trim().is_empty() {
        let mgr = if systemd_user { "systemd" } else { "cgroupfs" };
        let wanted = ["cpu", "memory", "pids"];
        let missing: Vec<_> = wanted
            .iter()
            .filter(|c| !controllers.split_whitespace().any(|x| x == **c))
            .collect();
        let detail = format!("cgroup v2, delegated controllers: {}", controllers.trim());
        if missing.is_empty() {
            return (item(name, Status::Ok, detail, None), mgr.into());
        }
        return (
            item(
                name,
                Status::Warn,
                format!("{detail} (missing: {missing:?}: those limits are refused)"),
                Some("as root: mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf && systemctl daemon-reload".into()),
            ),
            mgr.into(),
        );
    }
    (
        item(
            name,
            Status::Warn,
            "cgroup v2 but nothing is delegated to you: containers run without resource limits",
            Some("as root: mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf && systemctl daemon-reload".into()),
        ),
        "none".into(),
    )
}

/// Tries an overlay mount inside a user namespace, on the filesystem that will hold the data.
fn check_overlay(data_dir: Option<&Path>) -> (Item, String) {
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
    let script = "mkdir l u w m && echo x > l/f && mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m && cat m/f >/dev/null";
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
        let fuse = if layout::which("fuse-overlayfs").is_some() {
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

fn first_line(prog: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = if o.stdout.is_empty() {
        o.stderr
    } else {
        o.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

fn check_program(prog: &'static str, args: &[&str], package: &str) -> Item {
    match layout::which(prog) {
        Some(p) => item(
            prog,
            Status::Ok,
            format!(
                "{} ({})",
                p.display(),
                first_line(prog, args).unwrap_or_else(|| "version unknown".into())
            ),
            None,
        ),
        None => item(
            prog,
            Status::Fail,
            format!("{prog} is not on PATH"),
            Some(format!("as root: apt-get install {package}")),
        ),
    }
}

/// runc preferred, crun accepted; the chosen one.
fn check_oci_runtime() -> (Item, Option<String>) {
    for rt in ["runc", "crun"] {
        if let Some(p) = layout::which(rt) {
            let v = first_line(rt, &["--version"]).unwrap_or_else(|| "version unknown".into());
            return (
                item(
                    "OCI runtime",
                    Status::Ok,
                    format!("{rt}: {} ({v})", p.display()),
                    None,
                ),
                Some(rt.to_owned()),
            );
        }
    }
    (
        item(
            "OCI runtime",
            Status::Fail,
            "neither runc nor crun is on PATH",
            Some("as root: apt-get install runc".into()),
        ),
        None,
    )
}

fn check_launcher(explicit: Option<&Path>) -> Item {
    match layout::find_launcher(explicit) {
        Ok(p) => item("launcher", Status::Ok, p.display().to_string(), None),
        Err(e) => item(
            "launcher",
            Status::Fail,
            format!("{e:#}"),
            Some("install burrow with install.sh (it installs burrow-rootlesskit next to burrow), or pass --launcher PATH".into()),
        ),
    }
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
fn check_data_fs(data_dir: &Path, user: &str) -> Item {
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

/// A rootless containerd set up by something else (nerdctl's setup tool) is not ours to replace.
fn check_existing(l: &Layout) -> Item {
    let name = "existing setup";
    for p in [&l.unit, &l.containerd_config] {
        if layout::foreign(p).unwrap_or(false) {
            return item(
                name,
                Status::Warn,
                format!("{} exists and was not written by burrow (nerdctl's containerd-rootless-setuptool.sh?): install leaves it alone", p.display()),
                Some("to replace it: burrow setup install --force (the old file is kept as FILE.burrow-backup)".into()),
            );
        }
    }
    if std::fs::read_to_string(&l.unit).is_ok() || l.supervise_pid.exists() {
        return item(
            name,
            Status::Ok,
            "burrow's own setup is installed (install refreshes it)",
            None,
        );
    }
    item(name, Status::Ok, "none", None)
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

    #[test]
    fn root_fails() {
        assert_eq!(check_not_root(0).status, Status::Fail);
        assert_eq!(check_not_root(1000).status, Status::Ok);
    }
}
