//! Builds the OCI runtime spec of a container from the image config and the run flags:
//! process (args, env, user, cwd, capabilities, rlimits), Docker's default mounts, masked and
//! read-only paths, namespaces, seccomp, and cgroup limits only where cgroups are delegated.

use std::collections::{BTreeSet, HashMap};

use burrow_seccomp::{Context as SeccompContext, Profile};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::{caps, user};
pub use crate::images::runnable::ImageDefaults;

/// PATH when neither the image nor `-e` sets one (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which seccomp profile the container gets.
#[derive(Debug, Clone, Default)]
pub enum Seccomp {
    #[default]
    Default,
    Unconfined,
    Profile(Box<Profile>),
}

/// Where the container's cgroup limits can go.
#[derive(Debug, Clone)]
pub enum Cgroups {
    /// No cgroup may be created (rootless on cgroup v1, or v2 without delegation): the spec
    /// carries no cgroupsPath and no resources. The reason is shown when limits are asked for.
    Unavailable { reason: String },
    /// A cgroup at this path (cgroupfs `/burrow/ID` or systemd `slice:prefix:name`).
    Path(String),
}

/// The container's network namespace.
#[derive(Debug, Clone)]
pub enum NetNs {
    /// Share the namespace of the runtime (the host's, or the launcher's when rootless).
    Host,
    /// A namespace created beforehand (bind-mounted at this path) and joined.
    Path(String),
    /// A fresh namespace with only loopback.
    New,
}

pub use super::limits::{resources, Limits};

/// Everything the run/create flags decide about the spec.
#[derive(Debug, Clone)]
pub struct Options {
    pub id: String,
    pub hostname: String,
    /// Arguments after the image on the command line.
    pub args: Vec<String>,
    /// Replaces the image's entrypoint (`Some(vec![])` clears it).
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub privileged: bool,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub seccomp: Seccomp,
    pub no_new_privileges: bool,
    pub netns: NetNs,
    pub cgroups: Cgroups,
    pub limits: Limits,
    /// Extra mounts (volumes, binds, tmpfs, resolv.conf, hosts ...), after the defaults.
    pub mounts: Vec<Mount>,
    pub annotations: HashMap<String, String>,
    /// The runtime's user namespace maps one id only (a rootless user without subordinate ids):
    /// the spec may name no other uid or gid.
    pub single_id: bool,
}

/// The spec cannot be built from these flags and this image.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "no command specified: the image has no entrypoint or cmd, give one after the image name"
    )]
    NoCommand,
    #[error(transparent)]
    User(#[from] user::UserError),
    #[error(transparent)]
    Capability(#[from] caps::UnknownCapability),
    #[error("{flags} cannot be applied: {reason}")]
    LimitsUnavailable { flags: String, reason: String },
    #[error("invalid environment variable {0:?}: expected KEY=VALUE or KEY")]
    BadEnv(String),
    #[error("building the OCI spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
    #[error(transparent)]
    Limits(#[from] super::limits::LimitsError),
}

/// Docker's entrypoint/cmd rules: the entrypoint asked for (else the image's), and the
/// arguments given (else the image's CMD, unless the entrypoint was replaced).
pub fn entrypoint_and_cmd(
    image: &ImageDefaults,
    entrypoint: Option<&Vec<String>>,
    args: &[String],
) -> (Vec<String>, Vec<String>) {
    let (entrypoint, default_cmd) = match entrypoint.map(Vec::as_slice) {
        // `[""]` (`--entrypoint ''`): no entrypoint, and not the image's cmd either.
        Some([only]) if only.is_empty() => (Vec::new(), Vec::new()),
        // `[]`: no entrypoint, the image's cmd unless one is given (Docker's merge).
        Some([]) => (Vec::new(), image.cmd.clone()),
        // Overriding the entrypoint drops the image's cmd, as in Docker.
        Some(ep) => (ep.to_vec(), Vec::new()),
        None => (image.entrypoint.clone(), image.cmd.clone()),
    };
    let cmd = if args.is_empty() {
        default_cmd
    } else {
        args.to_vec()
    };
    (entrypoint, cmd)
}

/// The command: the entrypoint then the cmd ([`entrypoint_and_cmd`]).
pub fn command(image: &ImageDefaults, opts: &Options) -> Result<Vec<String>, SpecError> {
    let (entrypoint, cmd) = entrypoint_and_cmd(image, opts.entrypoint.as_ref(), &opts.args);
    let all: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if all.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(all)
}

/// Docker's Config.Env: the image's, then `-e` (later wins per key; `-e KEY` passes this
/// process's KEY where set); what the runtime adds is not in it. Malformed entries are left out
/// ([`environment`] refuses them).
pub fn config_env(image: &[String], given: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut put = |k: &str, v: String| {
        let entry = format!("{k}={v}");
        match out
            .iter_mut()
            .find(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k))
        {
            Some(e) => *e = entry,
            None => out.push(entry),
        }
    };
    for kv in image.iter().chain(given) {
        match kv.split_once('=') {
            Some(("", _)) => {}
            Some((k, v)) => put(k, v.to_string()),
            None if kv.is_empty() => {}
            None => {
                if let Ok(v) = std::env::var(kv) {
                    put(kv, v);
                }
            }
        }
    }
    out
}

/// The environment: HOSTNAME, the image's, then `-e` (later wins per key), PATH and HOME ensured.
pub fn environment(
    image: &ImageDefaults,
    opts: &Options,
    home: Option<&str>,
) -> Result<Vec<String>, SpecError> {
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, String> = HashMap::new();
    let mut set = |k: &str, v: String, order: &mut Vec<String>| {
        if values.insert(k.to_string(), v).is_none() {
            order.push(k.to_string());
        }
    };
    set("PATH", DEFAULT_PATH.to_string(), &mut order);
    set("HOSTNAME", opts.hostname.clone(), &mut order);
    for kv in &image.env {
        if let Some((k, v)) = kv.split_once('=') {
            set(k, v.to_string(), &mut order);
        }
    }
    if opts.tty {
        set("TERM", "xterm".to_string(), &mut order);
    }
    for kv in &opts.env {
        match kv.split_once('=') {
            Some(("", _)) => return Err(SpecError::BadEnv(kv.clone())),
            Some((k, v)) => set(k, v.to_string(), &mut order),
            // `-e KEY` passes KEY from the CLI's environment, if set.
            None if kv.is_empty() => return Err(SpecError::BadEnv(kv.clone())),
            None => {
                if let Ok(v) = std::env::var(kv) {
                    set(kv, v, &mut order);
                }
            }
        }
    }
    if !values.contains_key("HOME") {
        values.insert(
            "HOME".into(),
            home.filter(|h| !h.is_empty()).unwrap_or("/").to_string(),
        );
        order.push("HOME".into());
    }
    Ok(order
        .into_iter()
        .map(|k| format!("{k}={}", values[&k]))
        .collect())
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// Docker's default mounts. With the host network namespace /sys cannot be mounted afresh
/// from a user namespace, so it is bind-mounted read-only instead. With a single-id map the
/// pty group (gid 5, "tty") does not exist, so /dev/pts belongs to the one group there is.
pub fn default_mounts(
    netns: &NetNs,
    privileged: bool,
    single_id: bool,
) -> Result<Vec<Mount>, SpecError> {
    let sys_ro = if privileged { "rw" } else { "ro" };
    let mut devpts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    if !single_id {
        devpts.push("gid=5");
    }
    let mut m = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount("/dev/pts", "devpts", "devpts", &devpts)?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    match netns {
        NetNs::Host => m.push(mount(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", sys_ro],
        )?),
        _ => m.push(mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_ro],
        )?),
    }
    m.push(mount(
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        &["nosuid", "noexec", "nodev", "relatime", sys_ro],
    )?);
    Ok(m)
}

/// The defaults, less those a user mount replaces (the same destination; every /dev one under
/// a user's /dev), then the user's mounts parents first (by path depth, stable), as Docker
/// orders them: a `--tmpfs /run` no longer hides a `/run/secrets/x` given before it.
pub fn with_user_mounts(defaults: Vec<Mount>, user: &[Mount]) -> Vec<Mount> {
    let depth = |m: &Mount| {
        let d = m.destination().to_string_lossy();
        d.trim_end_matches('/').matches('/').count()
    };
    let dest = |m: &Mount| {
        m.destination()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string()
    };
    let taken: std::collections::HashSet<String> = user.iter().map(dest).collect();
    let user_dev = taken.contains("/dev");
    let mut out: Vec<Mount> = defaults
        .into_iter()
        .filter(|m| {
            let d = dest(m);
            let replaced = taken.contains(&d) || (user_dev && d.starts_with("/dev/"));
            !replaced
        })
        .collect();
    let mut sorted = user.to_vec();
    sorted.sort_by_key(depth);
    out.extend(sorted);
    out
}

/// Docker's masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn capability_set(names: &BTreeSet<String>) -> oci_spec::runtime::Capabilities {
    names
        .iter()
        .filter_map(|n| {
            n.strip_prefix("CAP_")
                .and_then(|s| s.parse::<Capability>().ok())
        })
        .collect()
}

/// Makes the spec's network namespace a fresh one again where it named a path (`run` joins
/// a namespace it attached ahead of time; later starts of the container get a new one).
pub fn fresh_netns(spec: &mut Spec) {
    set_netns(spec, None);
}

/// Points the spec's network namespace at `path` (a namespace attached ahead of the task), or
/// makes it a fresh one with `None`.
pub fn set_netns(spec: &mut Spec, path: Option<&std::path::Path>) {
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    let Some(namespaces) = linux.namespaces_mut() else {
        return;
    };
    for ns in namespaces.iter_mut() {
        if ns.typ() == LinuxNamespaceType::Network {
            ns.set_path(path.map(std::path::Path::to_path_buf));
        }
    }
}

fn namespace(typ: LinuxNamespaceType, path: Option<&str>) -> Result<LinuxNamespace, SpecError> {
    let mut b = LinuxNamespaceBuilder::default().typ(typ);
    if let Some(p) = path {
        b = b.path(p);
    }
    Ok(b.build()?)
}

/// The full spec. The container's user namespace is the runtime's own (the launcher's when
/// rootless), so the spec has no user namespace and no id mappings.
pub fn build(image: &ImageDefaults, opts: &Options) -> Result<Spec, SpecError> {
    let args = command(image, opts)?;
    let user_spec = opts.user.clone().unwrap_or_else(|| image.user.clone());
    let mut resolved = user::resolve(&user_spec, &image.passwd, &image.group)?;
    if opts.single_id {
        resolved = resolved.squashed();
    }
    let env = environment(image, opts, resolved.home.as_deref())?;
    let cwd = opts
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| Some(image.working_dir.clone()).filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());

    let cap_names = caps::resolve(opts.privileged, &opts.cap_add, &opts.cap_drop)?;
    let capset = capability_set(&cap_names);
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(capset.clone())
        .effective(capset.clone())
        .permitted(capset)
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()?;

    let mut ub = UserBuilder::default().uid(resolved.uid).gid(resolved.gid);
    if !resolved.additional_gids.is_empty() {
        ub = ub.additional_gids(resolved.additional_gids.clone());
    }
    let process = ProcessBuilder::default()
        .terminal(opts.tty)
        .user(ub.build()?)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        // containerd's default: 1024 fits under any hard limit, which rootless cannot raise.
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(1024u64)
            .soft(1024u64)
            .build()?])
        .no_new_privileges(opts.no_new_privileges)
        .build()?;

    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid, None)?,
        namespace(LinuxNamespaceType::Ipc, None)?,
        namespace(LinuxNamespaceType::Uts, None)?,
        namespace(LinuxNamespaceType::Mount, None)?,
    ];
    match &opts.netns {
        NetNs::Host => {}
        NetNs::New => namespaces.push(namespace(LinuxNamespaceType::Network, None)?),
        NetNs::Path(p) => namespaces.push(namespace(LinuxNamespaceType::Network, Some(p))?),
    }

    let mut linux = LinuxBuilder::default().namespaces(namespaces);
    if !opts.privileged {
        linux = linux
            .masked_paths(
                MASKED_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .readonly_paths(
                READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            );
        let profile = match &opts.seccomp {
            Seccomp::Unconfined => None,
            Seccomp::Default => Some(burrow_seccomp::default_profile()),
            Seccomp::Profile(p) => Some((**p).clone()),
        };
        if let Some(profile) = profile {
            let ctx = SeccompContext::current(cap_names.iter().cloned());
            linux = linux.seccomp(burrow_seccomp::to_oci(&profile, &ctx));
        }
    }
    match &opts.cgroups {
        Cgroups::Unavailable { reason } => {
            if !opts.limits.is_empty() {
                return Err(SpecError::LimitsUnavailable {
                    flags: opts.limits.flags(),
                    reason: reason.clone(),
                });
            }
        }
        Cgroups::Path(path) => {
            linux = linux.cgroups_path(path.clone());
            linux = linux.resources(resources(&opts.limits)?);
        }
    }

    let mounts = with_user_mounts(
        default_mounts(&opts.netns, opts.privileged, opts.single_id)?,
        &opts.mounts,
    );

    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(opts.read_only)
                .build()?,
        )
        .hostname(opts.hostname.clone())
        .process(process)
        .mounts(mounts)
        .linux(finish_linux(linux.build()?, opts))
        .build()?;
    if !opts.annotations.is_empty() {
        spec.set_annotations(Some(opts.annotations.clone()));
    }
    Ok(spec)
}

/// oci-spec's builder starts from its own defaults (resources, masked paths); clear what this
/// container must not have, since runc fails to create a cgroup it may not create.
fn finish_linux(mut linux: oci_spec::runtime::Linux, opts: &Options) -> oci_spec::runtime::Linux {
    if opts.privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    }
    if let Cgroups::Unavailable { .. } = opts.cgroups {
        linux.set_resources(None);
        linux.set_cgroups_path(None);
    }
    linux
}

/// Why no cgroup can be used on this machine, or `None` when one can: rootless needs cgroup v2
/// with the controllers delegated to the user; rootful can always use cgroupfs.
pub fn cgroup_unavailable_reason(rootless: bool) -> Option<String> {
    if !rootless {
        return None;
    }
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 {
        return Some(
            "this machine runs cgroup v1, where an unprivileged user cannot get a cgroup of its own; \
             boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2) and run systemd so it can \
             delegate controllers to your user (Delegate=yes in user@.service), then run \
             `burrow setup install` again"
                .to_string(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_mounts_go_parents_first_and_replace_the_defaults_they_cover() {
        let m = |d: &str, t: &str| mount(d, t, t, &[]).unwrap();
        let defaults = default_mounts(&NetNs::New, false, false).unwrap();
        let user = vec![
            m("/run/secrets/s", "bind"),
            m("/run", "tmpfs"),
            m("/dev/shm", "bind"),
            m("/a/b/c", "bind"),
            m("/a/x", "bind"),
        ];
        let got: Vec<(String, String)> = with_user_mounts(defaults.clone(), &user)
            .iter()
            .map(|m| {
                (
                    m.destination().display().to_string(),
                    m.typ().clone().unwrap_or_default(),
                )
            })
            .collect();
        let dests: Vec<&str> = got.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(
            dests[dests.len() - 5..],
            ["/run", "/dev/shm", "/a/x", "/run/secrets/s", "/a/b/c"]
        );
        assert_eq!(
            got.iter().filter(|(d, _)| d == "/dev/shm").count(),
            1,
            "the user's /dev/shm replaces the default: {got:?}"
        );
        assert!(dests.contains(&"/dev/mqueue") && dests.contains(&"/proc"));
        // A user's /dev takes every default under it.
        let got = with_user_mounts(defaults, &[m("/dev", "bind")]);
        assert!(
            !got.iter()
                .any(|m| m.destination().to_string_lossy().starts_with("/dev/")),
            "{got:?}"
        );
    }

    fn image() -> ImageDefaults {
        ImageDefaults {
            env: vec!["PATH=/opt/bin:/bin".into(), "LANG=C.UTF-8".into()],
            entrypoint: vec!["/docker-entrypoint.sh".into()],
            cmd: vec!["httpd".into(), "-f".into()],
            user: "www-data".into(),
            working_dir: "/srv".into(),
            passwd: "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\n".into(),
            group: "root:x:0:\nwww-data:x:33:\nweb:x:99:www-data\n".into(),
            ..Default::default()
        }
    }

    fn opts() -> Options {
        Options {
            id: "c1".into(),
            hostname: "c1host".into(),
            args: vec![],
            entrypoint: None,
            env: vec![],
            workdir: None,
            user: None,
            tty: false,
            privileged: false,
            read_only: false,
            cap_add: vec![],
            cap_drop: vec![],
            seccomp: Seccomp::Default,
            no_new_privileges: false,
            netns: NetNs::Path("/run/netns/x".into()),
            cgroups: Cgroups::Unavailable {
                reason: "cgroup v1".into(),
            },
            limits: Limits::default(),
            mounts: vec![],
            annotations: HashMap::new(),
            single_id: false,
        }
    }

    #[test]
    fn entrypoint_and_cmd_rules() {
        let img = image();
        let mut o = opts();
        assert_eq!(
            command(&img, &o).unwrap(),
            ["/docker-entrypoint.sh", "httpd", "-f"]
        );
        o.args = vec!["sh".into()];
        assert_eq!(command(&img, &o).unwrap(), ["/docker-entrypoint.sh", "sh"]);
        o.entrypoint = Some(vec!["/bin/echo".into()]);
        assert_eq!(command(&img, &o).unwrap(), ["/bin/echo", "sh"]);
        o.args.clear();
        assert_eq!(command(&img, &o).unwrap(), ["/bin/echo"]);
        // The docker CLI's `--entrypoint ''` sends [""]: no entrypoint, no image cmd.
        o.entrypoint = Some(vec![String::new()]);
        assert!(matches!(command(&img, &o), Err(SpecError::NoCommand)));
        o.args = vec!["echo".into(), "x".into()];
        assert_eq!(command(&img, &o).unwrap(), ["echo", "x"]);
        // []: no entrypoint, the image's cmd when none is given.
        o.args.clear();
        o.entrypoint = Some(Vec::new());
        assert_eq!(command(&img, &o).unwrap(), ["httpd", "-f"]);
    }

    #[test]
    fn config_env_is_the_images_with_the_requests_over_it() {
        let image = ["PATH=/bin".to_string(), "A=1".to_string()];
        let given = ["A=2".to_string(), "B=x=y".to_string(), "=bad".to_string()];
        assert_eq!(config_env(&image, &given), ["PATH=/bin", "A=2", "B=x=y"]);
    }

    #[test]
    fn env_merges_in_docker_order() {
        let mut o = opts();
        o.env = vec!["LANG=en".into(), "FOO=bar".into()];
        o.tty = true;
        let env = environment(&image(), &o, Some("/var/www")).unwrap();
        assert_eq!(
            env,
            [
                "PATH=/opt/bin:/bin",
                "HOSTNAME=c1host",
                "LANG=en",
                "TERM=xterm",
                "FOO=bar",
                "HOME=/var/www"
            ]
        );
        o.env = vec!["=x".into()];
        assert!(environment(&image(), &o, None).is_err());
    }

    #[test]
    fn rootless_v1_spec_has_no_cgroups() {
        let spec = build(&image(), &opts()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.resources().is_none());
        assert!(linux.cgroups_path().is_none());
        assert!(linux.uid_mappings().is_none());
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert!(!ns.contains(&LinuxNamespaceType::User));
        assert!(!ns.contains(&LinuxNamespaceType::Cgroup));
        let net = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(net.path().as_ref().unwrap().to_str(), Some("/run/netns/x"));
        assert!(linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string()));
        assert!(linux
            .readonly_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/sys".to_string()));
        assert!(linux.seccomp().is_some());

        let p = spec.process().as_ref().unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (33, 33));
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &vec![99]);
        assert_eq!(p.cwd().to_str(), Some("/srv"));
        let caps = p
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap();
        assert_eq!(caps.len(), caps::DOCKER_DEFAULT.len());
        assert!(
            caps.contains(&Capability::NetBindService) && !caps.contains(&Capability::SysAdmin)
        );

        // Serialized as runc reads it.
        let json = serde_json::to_value(&spec).unwrap();
        assert!(json["linux"].get("resources").is_none());
        assert!(json["linux"].get("cgroupsPath").is_none());
        assert_eq!(json["root"]["path"], "rootfs");
    }

    #[test]
    fn limits_refused_without_cgroups_with_reason() {
        let mut o = opts();
        o.limits.memory_bytes = Some(64 << 20);
        o.limits.pids = Some(10);
        let err = build(&image(), &o).unwrap_err().to_string();
        assert!(
            err.contains("--memory, --pids-limit") && err.contains("cgroup v1"),
            "{err}"
        );
        let reason = cgroup_unavailable_reason(true);
        if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            assert!(reason.unwrap().contains("cgroup v2"));
        }
        assert!(cgroup_unavailable_reason(false).is_none());
    }

    #[test]
    fn limits_applied_with_cgroup_path() {
        let mut o = opts();
        o.cgroups = Cgroups::Path("/burrow/c1".into());
        o.limits = Limits {
            memory_bytes: Some(1 << 30),
            cpus: Some(1.5),
            pids: Some(100),
            ..Limits::default()
        };
        let spec = build(&image(), &o).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(
            linux.cgroups_path().as_ref().unwrap().to_str(),
            Some("/burrow/c1")
        );
        let r = linux.resources().as_ref().unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(1 << 30));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(150_000));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
    }

    #[test]
    fn privileged_unconfined_host_network() {
        let mut o = opts();
        o.privileged = true;
        o.netns = NetNs::Host;
        o.user = Some("0".into());
        let spec = build(&image(), &o).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert!(linux.masked_paths().is_none());
        let ns = linux.namespaces().as_ref().unwrap();
        assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        let sys = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination().to_str() == Some("/sys"))
            .unwrap();
        assert_eq!(sys.typ().as_deref(), Some("bind"));
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));

        let mut o = opts();
        o.seccomp = Seccomp::Unconfined;
        o.user = Some("nobody".into());
        assert!(matches!(build(&image(), &o), Err(SpecError::User(_))));
        o.user = None;
        assert!(build(&image(), &o)
            .unwrap()
            .linux()
            .as_ref()
            .unwrap()
            .seccomp()
            .is_none());
    }
}
