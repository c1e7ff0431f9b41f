//! `burrow run`, `burrow create` and `burrow start`: image to spec, state files and network
//! hooks, the container record, the task with its stdio (json-file log driver when detached,
//! FIFOs when attached), and Docker's exit codes. A run that fails undoes everything it did.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use oci_spec::runtime::{HookBuilder, HooksBuilder, Mount, MountBuilder};

use super::detach::{self, Detached};
use super::{labels, Ctx};
use burrow::connection::Globals;
use burrow::containers::image::ImageError;
use burrow::containers::lifecycle::{NewContainer, Stdio};
use burrow::containers::spec::{self, Cgroups, Limits, NetNs, Options, Seccomp};
use burrow::containers::{logdriver, store};
use burrow::network::{self, files, hook, ports, prepare};
use burrow::session::exit::start_failure_code;
use burrow::session::{self, DetachKeys, Endpoints, Local, Outcome, Session, Target};

// Flags shared by `run` and `create`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateFlags {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to pass the CLI's value).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set metadata on the container (KEY=VALUE).
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Add an OCI annotation to the container's runtime spec (KEY=VALUE); nerdctl's
    /// nerdctl/bypass4netns=true asks for --bypass.
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Bind mount a host path or a named volume (SRC:DST[:ro|rw]).
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Mount a tmpfs (DST[:OPTIONS]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Run an init (tini or catatonit from the host) as PID 1 that forwards signals and reaps zombies.
    #[arg(long)]
    pub init: bool,
    /// The container's IPv4 address on its network (within the network's subnet).
    #[arg(long, value_name = "IPv4")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Logging driver: json-file (Docker's default; `burrow logs` reads it).
    #[arg(long, default_value = "json-file")]
    pub log_driver: String,
    /// Keys that detach the terminal from a running container, leaving it running (with -i;
    /// default ctrl-p,ctrl-q with -it). Comma-separated: a character or ctrl-X each.
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Pass the signals the CLI receives (INT, TERM, HUP, QUIT, USR1, USR2) on to the container
    /// while attached without a terminal.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    /// Log driver options: max-size=SIZE (rotate past it, e.g. 10m) and max-file=N (files kept).
    #[arg(long)]
    pub log_opt: Vec<String>,
    /// Attach a mount, Docker's long form: type=bind|volume|tmpfs,source=SRC,target=DST[,readonly]
    /// [,tmpfs-size=BYTES][,tmpfs-mode=OCTAL].
    #[arg(long)]
    pub mount: Vec<String>,
    /// Publish a container's port to the host ([hostIP:][hostPort:]containerPort[/proto]).
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random host ports.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Network: bridge (default), none, host, or a network's name.
    #[arg(long, alias = "net", default_value = network::DEFAULT_NETWORK)]
    pub network: String,
    /// Container host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Add a custom host-to-IP mapping (HOST:IP).
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges (within the user namespace when rootless).
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Security options: seccomp=unconfined|PROFILE.json, no-new-privileges.
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Socket bypass: the container's connections to the outside use host sockets (through
    /// seccomp user notification and the burrow-bypass service), for native network speed.
    /// Rootless only; also asked by the label nerdctl/bypass4netns=true.
    #[arg(long)]
    pub bypass: bool,
    /// Memory limit (e.g. 512m); needs cgroups.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Number of CPUs; needs cgroups.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Tune the container's pids limit; needs cgroups.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds to wait for the container to stop before killing it.
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    /// Restart policy: no, always, unless-stopped (containerd's restart monitor brings the
    /// container back, also after containerd restarts).
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Resource limits (NAME=SOFT[:HARD], e.g. nofile=1024:2048).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm (e.g. 64m).
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Pull the image before running: missing, always or never.
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// The image to run.
    pub image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

// `burrow run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub flags: CreateFlags,
}

// `burrow create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
}

// `burrow start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    /// Keys that detach from the container, leaving it running (with -a -i; default
    /// ctrl-p,ctrl-q when it has a terminal).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Containers to start.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// An error with the exit code Docker would give.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub err: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            code: 125,
            err: e.into(),
        }
    }
}

fn report(f: Failure) -> ExitCode {
    eprintln!("burrow: {:#}", f.err);
    ExitCode::from(f.code)
}

pub fn run(args: RunArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        Ok(match run_async(&ctx, &args).await {
            Ok(code) => code,
            Err(f) => report(f),
        })
    })
}

pub fn create(args: CreateArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        match create_container(&ctx, &args.flags, false).await {
            Ok(c) => {
                println!("{}", c.id);
                Ok(ExitCode::SUCCESS)
            }
            Err(f) => Ok(report(f)),
        }
    })
}

/// What `create_container` made, for starting it.
pub struct Created {
    pub id: String,
    pub rootfs: Vec<containerd_client::types::Mount>,
    /// `run`'s ahead-of-time network attach, settled once the task holds the namespace.
    pub net: Option<AheadNet>,
    /// Named volumes this create made (a `run` that then fails removes them again).
    pub created_volumes: Vec<String>,
}

/// A network namespace attached while `run` created the container (see
/// [`burrow::network::prepare`]), and the spec to store once the task has joined it.
pub struct AheadNet {
    helper: prepare::Prepared,
    spec_after: oci_spec::runtime::Spec,
}

impl AheadNet {
    /// The task has joined the namespace: later starts get a fresh one (the path goes away),
    /// and the helper unmounts it. Returns the helper, to wait for before the state dir goes.
    async fn settle(self, ctx: &Ctx, id: &str) -> prepare::Prepared {
        if let Err(err) = ctx.client.update_spec(id, &self.spec_after).await {
            eprintln!(
                "burrow: warning: container {id}: {err:#}; its next start may fail to find its \
                 network namespace (remove it and run it again)"
            );
        }
        let mut helper = self.helper;
        helper.done();
        helper
    }

    /// `run` failed: the helper finishes, unmounts and exits.
    fn abandon(self) {
        self.helper.release(true);
    }
}

/// Starts the detach of a `run --rm` container's networks while its task is deleted (its
/// poststop hook then has nothing to do): the two are the slowest steps of the teardown.
fn start_claimed_teardown(ctx: &Ctx, id: &str) -> Option<std::process::Child> {
    let dir = ctx.store.container_dir(id);
    if !hook::claim(&dir) {
        return None;
    }
    let Some(mut cmd) = net_teardown_command(ctx, &dir) else {
        hook::unclaim(&dir);
        return None;
    };
    cmd.arg("--claimed")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    match cmd.spawn() {
        Ok(child) => Some(child),
        Err(err) => {
            tracing::warn!(%err, "starting the network teardown; the poststop hook will detach");
            hook::unclaim(&dir);
            None
        }
    }
}

/// Everything a partly created container owns, removed again on failure.
struct Undo<'a> {
    ctx: &'a Ctx,
    id: String,
    name: Option<String>,
    dir: bool,
    record: Option<String>,
    volumes: Vec<String>,
}

impl Undo<'_> {
    async fn run(self) {
        let ctx = self.ctx;
        let _ = ctx.client.delete_task(&self.id).await;
        teardown_leftovers(ctx, &self.id);
        if let Some(snapshotter) = &self.record {
            if let Err(err) = ctx.client.delete(&self.id, snapshotter).await {
                tracing::warn!(%err, "removing the container of a failed run");
            }
        }
        if let Some(name) = &self.name {
            ctx.store.release_name(name, &self.id);
        }
        if self.dir {
            let _ = ctx.store.remove_dir(&self.id);
        }
        super::super::volume::remove_anonymous(ctx, &self.volumes);
    }
}

/// If the network hook's state is still there (the runtime failed after attaching), detach
/// by running the hook's poststop in the runtime's namespaces.
fn teardown_leftovers(ctx: &Ctx, id: &str) {
    let dir = ctx.store.container_dir(id);
    if !dir.join(hook::STATE_FILE).exists() {
        return;
    }
    let Some(mut cmd) = net_teardown_command(ctx, &dir) else {
        return;
    };
    match cmd.status() {
        Ok(s) if s.success() => {}
        other => tracing::warn!(?other, "network teardown of a failed run"),
    }
}

/// `burrow internal net-teardown STATE_DIR [LAUNCHER_PID]` (None when our own binary cannot
/// be found).
fn net_teardown_command(ctx: &Ctx, dir: &Path) -> Option<std::process::Command> {
    let exe = std::env::current_exe().ok()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["internal", "net-teardown"]).arg(dir);
    if let Some(l) = &ctx.ep.launcher {
        cmd.arg(l.child_pid.to_string());
    }
    Some(cmd)
}

fn parse_memory(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("invalid --memory {s:?}: use a size such as 512m or 1g"))?;
    Ok((n * mul as f64) as i64)
}

/// `--ulimit NAME=SOFT[:HARD]` as an OCI rlimit.
fn parse_ulimit(u: &str) -> anyhow::Result<oci_spec::runtime::PosixRlimit> {
    let bad =
        || anyhow!("invalid --ulimit {u:?}: expected NAME=SOFT[:HARD], e.g. nofile=1024:2048");
    let (name, vals) = u.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let num = |v: &str| -> anyhow::Result<u64> {
        if v == "-1" || v == "unlimited" {
            Ok(u64::MAX)
        } else {
            v.parse().map_err(|_| bad())
        }
    };
    let typ: oci_spec::runtime::PosixRlimitType = serde_json::from_value(serde_json::json!(
        format!("RLIMIT_{}", name.to_ascii_uppercase())
    ))
    .map_err(|_| anyhow!("invalid --ulimit {u:?}: unknown limit {name:?} (nofile, nproc, core, memlock, stack ...)"))?;
    let (soft, hard) = (num(soft)?, num(hard)?);
    if soft > hard {
        anyhow::bail!("invalid --ulimit {u:?}: the soft limit is above the hard one");
    }
    Ok(oci_spec::runtime::PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()?)
}

/// Replaces same-typed rlimits with `ulimits` and sizes /dev/shm.
fn apply_ulimits_and_shm(
    spec: &mut oci_spec::runtime::Spec,
    ulimits: &[oci_spec::runtime::PosixRlimit],
    shm_bytes: Option<i64>,
) {
    if !ulimits.is_empty() {
        if let Some(mut p) = spec.process().clone() {
            let mut r = p.rlimits().clone().unwrap_or_default();
            r.retain(|x| !ulimits.iter().any(|u| u.typ() == x.typ()));
            r.extend(ulimits.iter().cloned());
            p.set_rlimits(Some(r));
            spec.set_process(Some(p));
        }
    }
    if let Some(bytes) = shm_bytes {
        if let Some(mut mounts) = spec.mounts().clone() {
            for m in mounts.iter_mut() {
                if m.destination().to_str() == Some("/dev/shm") {
                    let mut o: Vec<String> = m
                        .options()
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|o| !o.starts_with("size="))
                        .collect();
                    o.push(format!("size={}k", (bytes / 1024).max(1)));
                    m.set_options(Some(o));
                }
            }
            spec.set_mounts(Some(mounts));
        }
    }
}

fn read_env_files(files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading --env-file {}", f.display()))?;
        for line in text.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                out.push(line.to_string());
            }
        }
    }
    Ok(out)
}

fn bind(dest: &str, src: &Path, ro: bool) -> anyhow::Result<Mount> {
    let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
    if ro {
        opts.push("ro".to_string());
    }
    Ok(MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(src)
        .options(opts)
        .build()?)
}

/// `-v SRC:DST[:ro]` (a host path, or a named volume under the data root) and `--tmpfs`.
/// `--ip` must fall in the subnet of the (single) network the container joins.
fn check_ip(
    ip: std::net::Ipv4Addr,
    network: &str,
    confs: &[(String, serde_json::Value)],
) -> anyhow::Result<()> {
    let Some((name, conf)) = confs.first() else {
        anyhow::bail!("--ip needs a network, and the container has none (--network {network})");
    };
    let subnets = burrow::network::conf_subnets(conf);
    let inside = subnets.iter().any(|s| {
        burrow::network::parse_cidr(s).is_some_and(|(net, len)| {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(ip) & mask == net
        })
    });
    if !inside {
        anyhow::bail!(
            "--ip {ip} is not in the subnet of network {name} ({}): pick an address there, or create a network with --subnet",
            subnets.join(", ")
        );
    }
    Ok(())
}

/// Where `--init` puts the host's init binary inside the container (Docker's path).
const INIT_PATH: &str = "/sbin/docker-init";

/// The host's init for `--init`: Docker's docker-init, tini, or catatonit (all static or nearly).
fn find_init() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/libexec/docker", "/usr/libexec/podman"].map(PathBuf::from))
        .collect();
    for name in ["docker-init", "tini-static", "tini", "catatonit"] {
        if let Some(p) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            return Ok(p);
        }
    }
    anyhow::bail!(
        "--init needs an init binary on the host (docker-init, tini or catatonit) and none was found: as root, apt-get install catatonit (or tini)"
    )
}

/// Makes the host's init PID 1: bound read-only at [`INIT_PATH`], running the command after `--`.
fn apply_init(spec: &mut oci_spec::runtime::Spec, host_init: &Path) -> anyhow::Result<()> {
    let process = spec
        .process_mut()
        .as_mut()
        .context("the container spec has no process")?;
    let mut args = vec![INIT_PATH.to_string(), "--".to_string()];
    args.extend(process.args().clone().unwrap_or_default());
    process.set_args(Some(args));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(
        MountBuilder::default()
            .destination(INIT_PATH)
            .typ("bind")
            .source(host_init)
            .options(vec![
                "bind".to_string(),
                "ro".to_string(),
                "nosuid".to_string(),
                "nodev".to_string(),
            ])
            .build()?,
    );
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// A `--mount` in the short forms the rest of the code takes (`-v` and `--tmpfs`).
#[derive(Debug, PartialEq, Eq)]
enum LongMount {
    Volume(String),
    Tmpfs(String),
}

/// Parses Docker's `--mount` (type=bind|volume|tmpfs,source,target,readonly,tmpfs-size,tmpfs-mode).
fn parse_mount(spec: &str) -> anyhow::Result<LongMount> {
    let mut typ = "volume".to_string();
    let (mut src, mut dst, mut ro) = (None::<String>, None::<String>, false);
    let (mut size, mut mode) = (None::<String>, None::<String>);
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (field.trim(), None),
        };
        match (k, v) {
            ("type", Some(v)) => typ = v.to_string(),
            ("source" | "src", Some(v)) => src = Some(v.to_string()),
            ("target" | "destination" | "dst", Some(v)) => dst = Some(v.to_string()),
            ("readonly" | "ro", None) => ro = true,
            ("readonly" | "ro", Some(v)) => {
                ro = match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => anyhow::bail!("invalid --mount {spec:?}: readonly={v:?} must be true or false"),
                }
            }
            ("tmpfs-size", Some(v)) => size = Some(parse_memory(v)?.to_string()),
            ("tmpfs-mode", Some(v)) => {
                u32::from_str_radix(v, 8).map_err(|_| {
                    anyhow!("invalid --mount {spec:?}: tmpfs-mode={v:?} must be octal, e.g. 1777")
                })?;
                mode = Some(v.to_string());
            }
            _ => anyhow::bail!(
                "invalid --mount {spec:?}: unsupported field {field:?} (use type, source, target, readonly, tmpfs-size, tmpfs-mode)"
            ),
        }
    }
    let Some(dst) = dst else {
        anyhow::bail!("invalid --mount {spec:?}: target=PATH is required");
    };
    let ro_opt = if ro { ":ro" } else { "" };
    match typ.as_str() {
        "bind" => {
            let Some(src) = src else {
                anyhow::bail!("invalid --mount {spec:?}: a bind mount needs source=PATH");
            };
            if !src.starts_with('/') {
                anyhow::bail!("invalid --mount {spec:?}: the bind source {src:?} must be an absolute path");
            }
            if !Path::new(&src).exists() {
                anyhow::bail!("invalid --mount {spec:?}: bind source path {src:?} does not exist");
            }
            Ok(LongMount::Volume(format!("{src}:{dst}{ro_opt}")))
        }
        "volume" => match src {
            Some(name) if name.starts_with('/') => anyhow::bail!(
                "invalid --mount {spec:?}: a volume's source is a volume name; use type=bind for the path {name:?}"
            ),
            Some(name) => Ok(LongMount::Volume(format!("{name}:{dst}{ro_opt}"))),
            None if ro => Ok(LongMount::Volume(format!(":{dst}{ro_opt}"))),
            None => Ok(LongMount::Volume(dst)),
        },
        "tmpfs" => {
            if src.is_some() {
                anyhow::bail!("invalid --mount {spec:?}: a tmpfs mount has no source");
            }
            let mut opts: Vec<String> = Vec::new();
            if let Some(s) = size {
                opts.push(format!("size={s}"));
            }
            if let Some(m) = mode {
                opts.push(format!("mode={m}"));
            }
            if ro {
                opts.push("ro".into());
            }
            Ok(LongMount::Tmpfs(if opts.is_empty() {
                dst
            } else {
                format!("{dst}:{}", opts.join(","))
            }))
        }
        other => anyhow::bail!("invalid --mount {spec:?}: type={other:?} (use bind, volume or tmpfs)"),
    }
}

/// `fresh` gets (container path, volume data dir) of each named volume that is still empty:
/// the image's content at that path is copied into it once the snapshot exists, as Docker does.
/// `anonymous` gets the anonymous volumes made (the container's own), `created_named` the named
/// volumes this call created (removed again if the run fails).
fn user_mounts(
    ctx: &Ctx,
    f: &CreateFlags,
    anonymous: &mut Vec<String>,
    created_named: &mut Vec<String>,
    fresh: &mut Vec<(String, std::path::PathBuf)>,
) -> anyhow::Result<Vec<Mount>> {
    let mut out = Vec::new();
    let mut volumes = f.volume.clone();
    let mut tmpfs = f.tmpfs.clone();
    for m in &f.mount {
        match parse_mount(m)? {
            LongMount::Volume(v) => volumes.push(v),
            LongMount::Tmpfs(t) => tmpfs.push(t),
        }
    }
    for v in &volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [dst] => ("", *dst, ""),
            [src, dst] => (*src, *dst, ""),
            [src, dst, opts] => (*src, *dst, *opts),
            _ => anyhow::bail!("invalid -v {v:?}: expected SRC:DST[:ro|rw]"),
        };
        if !dst.starts_with('/') {
            anyhow::bail!("invalid -v {v:?}: the container path {dst:?} must be absolute");
        }
        let mut ro = false;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => ro = true,
                "rw" => ro = false,
                "z" | "Z" => {}
                other => anyhow::bail!("invalid -v {v:?}: unknown option {other:?} (use ro or rw)"),
            }
        }
        let source = if src.starts_with('/') || src.starts_with('.') {
            let p = std::fs::canonicalize(src)
                .with_context(|| format!("bind source {src:?} of -v {v:?} does not exist"))?;
            p
        } else {
            let data = if src.is_empty() {
                let (name, data) = super::super::volume::create_anonymous(ctx)?;
                anonymous.push(name);
                data
            } else {
                let (data, created) = super::super::volume::ensure(ctx, src)?;
                if created {
                    created_named.push(src.to_string());
                }
                data
            };
            let empty = std::fs::read_dir(&data).is_ok_and(|mut d| d.next().is_none());
            if empty {
                fresh.push((dst.to_string(), data.clone()));
            }
            data
        };
        out.push(bind(dst, &source, ro)?);
    }
    for t in &tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
        if !dst.starts_with('/') {
            anyhow::bail!("invalid --tmpfs {t:?}: the path must be absolute");
        }
        let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        o.extend(
            opts.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        out.push(
            MountBuilder::default()
                .destination(dst)
                .typ("tmpfs")
                .source("tmpfs")
                .options(o)
                .build()?,
        );
    }
    Ok(out)
}

fn security(f: &CreateFlags) -> anyhow::Result<(Seccomp, bool)> {
    let mut seccomp = Seccomp::Default;
    let mut nnp = false;
    for o in &f.security_opt {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o, ""));
        match (k, v) {
            ("seccomp", "unconfined") => seccomp = Seccomp::Unconfined,
            ("seccomp", path) if !path.is_empty() => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the seccomp profile {path}"))?;
                let profile: burrow_seccomp::Profile = serde_json::from_str(&text)
                    .with_context(|| format!("parsing the seccomp profile {path}"))?;
                seccomp = Seccomp::Profile(Box::new(profile));
            }
            ("no-new-privileges", "" | "true") => nnp = true,
            ("no-new-privileges", "false") => nnp = false,
            _ => anyhow::bail!(
                "unsupported --security-opt {o:?}: use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges"
            ),
        }
    }
    Ok((seccomp, nnp))
}

/// A container's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restart {
    No,
    /// always / unless-stopped: containerd's restart monitor keeps the task up.
    Containerd,
    /// on-failure[:N]: burrow's monitor restarts after a failing exit (N: 0 = no limit).
    OnFailure,
}

fn restart_policy(p: &str) -> anyhow::Result<Restart> {
    match p {
        "no" | "" => Ok(Restart::No),
        "always" | "unless-stopped" => Ok(Restart::Containerd),
        p if super::restart::on_failure_max(p).is_some() => Ok(Restart::OnFailure),
        other => anyhow::bail!(
            "invalid --restart {other:?}: use no, always, unless-stopped or on-failure[:MAX-RETRIES]"
        ),
    }
}

fn hooks(state_dir: &Path) -> anyhow::Result<oci_spec::runtime::Hooks> {
    let exe = std::env::current_exe().context("finding the burrow binary for the OCI hooks")?;
    let hook = |event: &str| -> anyhow::Result<oci_spec::runtime::Hook> {
        Ok(HookBuilder::default()
            .path(&exe)
            .args(vec![
                exe.display().to_string(),
                "internal".into(),
                "oci-hook".into(),
                event.into(),
                state_dir.display().to_string(),
            ])
            .env(vec![format!("PATH={}", spec::DEFAULT_PATH)])
            .build()?)
    };
    Ok(HooksBuilder::default()
        .create_runtime(vec![hook("createRuntime")?])
        .poststop(vec![hook("poststop")?])
        .build()?)
}

/// Creates the container (state dir, record, snapshot) without a task.
/// With `ahead` (`run`), the container's networks are attached by a helper while the
/// container is created, in a namespace its task then joins (see [`burrow::network::prepare`]).
pub async fn create_container(ctx: &Ctx, f: &CreateFlags, ahead: bool) -> Result<Created, Failure> {
    // Everything that can be refused is checked before anything is created.
    let restart = restart_policy(&f.restart)?;
    let (seccomp, no_new_privileges) = security(f)?;
    let init = if f.init { Some(find_init()?) } else { None };
    let log_opts = logdriver::parse_opts(&f.log_driver, &f.log_opt)?;
    let annotations = annotations(&f.annotation)?;
    let bypass = if burrow::containers::bypass::wanted(f.bypass, &f.label, &f.annotation) {
        Some(burrow::containers::bypass::prepare(&ctx.ep, &f.network)?)
    } else {
        None
    };
    let limits = Limits {
        memory_bytes: f.memory.as_deref().map(parse_memory).transpose()?,
        cpus: f.cpus,
        pids: f.pids_limit,
    };
    let ulimits = f
        .ulimit
        .iter()
        .map(|u| parse_ulimit(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shm_bytes = f.shm_size.as_deref().map(parse_memory).transpose()?;
    let mut env = read_env_files(&f.env_file)?;
    env.extend(f.env.iter().cloned());
    let extra_hosts: Vec<(String, String)> = f
        .add_host
        .iter()
        .map(|h| {
            h.split_once(':')
                .filter(|(n, ip)| !n.is_empty() && ip.parse::<std::net::IpAddr>().is_ok())
                .map(|(n, ip)| (n.to_string(), ip.to_string()))
                .ok_or_else(|| anyhow!("invalid --add-host {h:?}: expected HOST:IP"))
        })
        .collect::<anyhow::Result<_>>()?;
    tracing::debug!("run: checked the flags");
    let mut image = match (f.pull.as_str(), ctx.images.resolve(&f.image).await) {
        ("missing", Ok(i)) | ("never", Ok(i)) => i,
        ("never", Err(e)) => return Err(e.into()),
        ("missing", Err(ImageError::NotFound(_))) => {
            pull_image(ctx, &f.image).await.with_context(|| {
                format!("no such image {} locally, and pulling it failed", f.image)
            })?;
            ctx.images.resolve(&f.image).await?
        }
        ("always", _) => {
            pull_image(ctx, &f.image).await?;
            ctx.images.resolve(&f.image).await?
        }
        ("missing", Err(e)) => return Err(e.into()),
        (other, _) => {
            return Err(anyhow!("invalid --pull {other:?}: use missing, always or never").into())
        }
    };
    tracing::debug!("run: resolved the image");
    let user = f
        .user
        .clone()
        .unwrap_or_else(|| image.defaults.user.clone());
    // Names need the image's /etc/passwd; root's HOME does too. Read once the network
    // attach is under way.
    let needs_user_db = user
        .split(':')
        .any(|p| !p.is_empty() && p.parse::<u32>().is_err())
        || user.is_empty();
    let mut port_maps = Vec::new();
    for p in &f.publish {
        port_maps.extend(ports::parse(p, ports::kernel_free_port)?);
    }
    if f.publish_all {
        for e in &image.exposed_ports {
            let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
            port_maps.extend(ports::parse(
                &format!("{port}/{proto}"),
                ports::kernel_free_port,
            )?);
        }
    }
    let (netns, networks) = match f.network.as_str() {
        "none" => (NetNs::New, vec![]),
        "host" => (NetNs::Host, vec![]),
        other => (NetNs::New, vec![other.to_string()]),
    };
    if networks.is_empty() && !port_maps.is_empty() {
        eprintln!(
            "burrow: warning: published ports are discarded with --network {}",
            f.network
        );
        port_maps.clear();
    }
    let net_confs = hook::resolve_networks(&ctx.net, &networks)?;
    if let Some(ip) = f.ip {
        check_ip(ip, &f.network, &net_confs)?;
    }
    let cgroups = match ctx.ep.cgroup_manager.as_str() {
        "none" => Cgroups::Unavailable {
            reason: spec::cgroup_unavailable_reason(ctx.rootless()).unwrap_or_else(|| {
                "the cgroup manager is \"none\" (see --cgroup-manager and `burrow info`)".into()
            }),
        },
        "systemd" => Cgroups::Path(format!(
            "{}:nerdctl:{{ID}}",
            if ctx.rootless() {
                "user.slice"
            } else {
                "system.slice"
            }
        )),
        _ => Cgroups::Path(format!("/{}/{{ID}}", ctx.ep.namespace)),
    };

    let id = store::new_id();
    let short = super::short_id(&id).to_string();
    let name = match &f.name {
        Some(n) => n.clone(),
        None => {
            let base = image
                .name
                .rsplit('/')
                .next()
                .unwrap_or("c")
                .split([':', '@'])
                .next()
                .unwrap_or("c")
                .to_string();
            format!("{base}-{}", &id[..5])
        }
    };
    let hostname = f.hostname.clone().unwrap_or_else(|| short.clone());
    let mut net: Option<AheadNet> = None;
    let mut undo = Undo {
        ctx,
        id: id.clone(),
        name: None,
        dir: false,
        record: None,
        volumes: Vec::new(),
    };
    let result = async {
        ctx.store.reserve_name(&name, &id)?;
        undo.name = Some(name.clone());
        let dir = ctx.store.create_dir(&id)?;
        undo.dir = true;
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = ctx.store.write_file(
            &id,
            "resolv.conf",
            &files::resolv_conf(ctx.rootless(), &f.dns, &host_resolv),
        )?;
        let hosts_file =
            ctx.store
                .write_file(&id, "hosts", &files::hosts(None, &[], &extra_hosts))?;
        let hostname_file = ctx
            .store
            .write_file(&id, "hostname", &format!("{hostname}\n"))?;
        let mut mounts = vec![
            bind("/etc/resolv.conf", &resolv, false)?,
            bind("/etc/hosts", &hosts_file, false)?,
            bind("/etc/hostname", &hostname_file, false)?,
        ];
        let mut anonymous = Vec::new();
        let mut created_named = Vec::new();
        let mut fresh_volumes = Vec::new();
        let extra = user_mounts(
            ctx,
            f,
            &mut anonymous,
            &mut created_named,
            &mut fresh_volumes,
        );
        undo.volumes = anonymous.iter().chain(&created_named).cloned().collect();
        mounts.extend(extra?);
        if !net_confs.is_empty() {
            hook::write_config(
                &dir,
                &hook::HookConfig {
                    container_id: id.clone(),
                    name: name.clone(),
                    hostname: hostname.clone(),
                    networks: net_confs.clone(),
                    ports: port_maps.clone(),
                    plugin_dirs: ctx.net.plugin_dirs.clone(),
                    launcher_api: ctx.ep.launcher.as_ref().map(|l| l.api_socket.clone()),
                    extra_hosts: extra_hosts.clone(),
                    hosts_file: hosts_file.clone(),
                    ip: f.ip.map(|ip| ip.to_string()),
                },
            )?;
        }
        tracing::debug!("run: wrote the state dir");
        let starting = if ahead && !net_confs.is_empty() {
            let launcher = ctx.ep.launcher.as_ref().map(|l| l.child_pid);
            std::env::current_exe()
                .and_then(|exe| prepare::Prepared::spawn(&exe, &dir, launcher))
                .map_err(|err| tracing::debug!(%err, "attaching ahead of the task"))
                .ok()
        } else {
            None
        };
        let netns = match &starting {
            Some(_) => NetNs::Path(dir.join(prepare::NETNS_FILE).display().to_string()),
            None => netns.clone(),
        };
        if needs_user_db {
            image_user_db(ctx, &mut image).await?;
        }
        let single_id = ctx.ep.launcher.as_ref().is_some_and(|l| l.single_id());
        if single_id {
            warn_single_id_user(&user, &image.defaults);
        }
        let opts = Options {
            id: id.clone(),
            hostname: hostname.clone(),
            args: f.args.clone(),
            entrypoint: f.entrypoint.clone(),
            env: env.clone(),
            workdir: f.workdir.clone(),
            user: Some(user.clone()),
            tty: f.tty,
            privileged: f.privileged,
            read_only: f.read_only,
            cap_add: f.cap_add.clone(),
            cap_drop: f.cap_drop.clone(),
            seccomp: seccomp.clone(),
            no_new_privileges,
            netns: netns.clone(),
            cgroups: match &cgroups {
                Cgroups::Path(p) => Cgroups::Path(p.replace("{ID}", &id)),
                other => other.clone(),
            },
            limits: limits.clone(),
            mounts,
            annotations: annotations.clone(),
            single_id,
        };
        let mut spec = spec::build(&image.defaults, &opts)?;
        apply_ulimits_and_shm(&mut spec, &ulimits, shm_bytes);
        if let Some(host_init) = &init {
            apply_init(&mut spec, host_init)?;
        }
        if let Some(listener) = &bypass {
            let meta = burrow::containers::bypass::metadata(&ctx.ep, &net_confs, &port_maps);
            burrow::containers::bypass::apply(&mut spec, listener, &meta)?;
        }
        if !net_confs.is_empty() {
            spec.set_hooks(Some(hooks(&dir)?));
        }
        if let Some(s) = starting {
            let mut spec_after = spec.clone();
            spec::fresh_netns(&mut spec_after);
            // Ready within milliseconds of its start; the spec was built meanwhile.
            match tokio::task::spawn_blocking(move || s.ready()).await {
                Ok(Ok(helper)) => net = Some(AheadNet { helper, spec_after }),
                // The createRuntime hook attaches as usual.
                failed => {
                    tracing::debug!(?failed, "attaching ahead of the task");
                    spec = spec_after;
                }
            }
        }
        let mut l = super::parse_labels(&f.label);
        l.insert(labels::NAME.into(), name.clone());
        l.insert(labels::HOSTNAME.into(), hostname.clone());
        l.insert(labels::NETWORKS.into(), serde_json::to_string(&networks)?);
        l.insert(labels::PORTS.into(), serde_json::to_string(&port_maps)?);
        if f.interactive {
            l.insert(labels::STDIN_OPEN.into(), "true".into());
        }
        l.insert(labels::STATE_DIR.into(), dir.display().to_string());
        l.insert(
            labels::PLATFORM.into(),
            format!("linux/{}", burrow::containers::image::go_arch()),
        );
        if !extra_hosts.is_empty() {
            l.insert(
                labels::EXTRA_HOSTS.into(),
                serde_json::to_string(&extra_hosts)?,
            );
        }
        if !anonymous.is_empty() {
            l.insert(
                labels::ANONYMOUS_VOLUMES.into(),
                serde_json::to_string(&anonymous)?,
            );
        }
        if let Some(s) = &f.stop_signal {
            l.insert(labels::STOP_SIGNAL.into(), s.clone());
        }
        if let Some(t) = f.stop_timeout {
            l.insert(labels::STOP_TIMEOUT.into(), t.to_string());
        }
        let exe = std::env::current_exe().context("finding the burrow binary for logging")?;
        let log_uri = logdriver::uri(&exe, ctx.store.root());
        if log_opts.max_size > 0 {
            let path = logdriver::opts_path(&ctx.store.log_path(&id));
            if let Some(d) = path.parent() {
                burrow::containers::store::private_dir(d)?;
            }
            std::fs::write(&path, serde_json::to_vec(&log_opts)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        match restart {
            Restart::Containerd => {
                l.insert(labels::RESTART_STATUS.into(), "running".into());
                l.insert(labels::RESTART_LOG_URI.into(), log_uri.clone());
                l.insert(labels::RESTART_POLICY.into(), f.restart.clone());
            }
            Restart::OnFailure => {
                l.insert(labels::RESTART_POLICY.into(), f.restart.clone());
                l.insert(labels::RESTART_WANTED.into(), "running".into());
                l.insert(labels::RESTART_COUNT.into(), "0".into());
            }
            Restart::No => {}
        }
        l.insert(labels::LOG_URI.into(), log_uri);
        tracing::debug!("run: built the spec");
        let rootfs = ctx
            .client
            .create(
                &NewContainer {
                    id: id.clone(),
                    image: image.name.clone(),
                    parent_chain_id: image.chain_id.clone(),
                    snapshotter: ctx.ep.snapshotter.clone(),
                    labels: l,
                },
                &spec,
            )
            .await
            .with_context(|| {
                format!(
                    "creating the container from {} (is it unpacked for snapshotter {}?)",
                    image.name, ctx.ep.snapshotter
                )
            })?;
        for (path, data) in &fresh_volumes {
            fill_volume(ctx, &rootfs, path, data).with_context(|| {
                format!(
                    "copying the image's {path} into its volume {}",
                    data.display()
                )
            })?;
        }
        Ok::<_, anyhow::Error>((rootfs, created_named))
    }
    .await;
    match result {
        Ok((rootfs, created_volumes)) => Ok(Created {
            id,
            rootfs,
            net,
            created_volumes,
        }),
        Err(err) => {
            if let Some(n) = net {
                n.abandon();
            }
            undo.run().await;
            Err(Failure { code: 125, err })
        }
    }
}

/// Copies the image's content at `path` (in the new container's snapshot) into an empty
/// volume's `data` dir, owners and modes kept (inside the launcher's user namespace when
/// rootless), through the `burrow internal cp` helper.
fn fill_volume(
    ctx: &Ctx,
    rootfs: &[containerd_client::types::Mount],
    path: &str,
    data: &Path,
) -> anyhow::Result<()> {
    use burrow::containers::copy::{self, Op, Request, Root, SnapshotMount};
    let req = Request {
        root: Root::Mounts(
            rootfs
                .iter()
                .map(|m| SnapshotMount {
                    typ: m.r#type.clone(),
                    source: m.source.clone(),
                    options: m.options.clone(),
                })
                .collect(),
        ),
        launcher_pid: ctx.ep.launcher.as_ref().map(|l| l.child_pid),
        op: Op::FillVolume {
            path: path.to_string(),
            dest: data.display().to_string(),
        },
    };
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["internal", "cp"])
        .arg(serde_json::to_string(&req)?)
        .stdin(std::process::Stdio::null())
        .output()?;
    copy::check_helper(out, "the volume copy helper failed").map(|_| ())
}

/// Pulls `name` from its registry (quietly: stdout is the container's).
async fn pull_image(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    use burrow::images::{manifest::Platform, progress::Progress, pull, reference::Reference};
    let reference = Reference::parse(name)?;
    eprintln!("burrow: pulling {}", reference.familiar());
    let reg = std::sync::Arc::new(crate::commands::pull::registry_for(
        &reference.domain,
        false,
    )?);
    let opts = pull::PullOptions {
        platform: Platform::host(),
        all_platforms: false,
        unpack: true,
    };
    let store = burrow::images::open_store(&ctx.ep).await?;
    let pulled = pull::pull(
        &store,
        reg,
        &reference,
        &opts,
        std::sync::Arc::new(Progress::new(true)),
    )
    .await
    .with_context(|| format!("pulling {}", reference.familiar()))?;
    if store.squashed_owners && pulled.downloaded > 0 {
        eprintln!("burrow: {}", burrow::images::SQUASHED_OWNERS_NOTE);
    }
    Ok(())
}

async fn image_user_db(
    ctx: &Ctx,
    image: &mut burrow::containers::image::Image,
) -> anyhow::Result<()> {
    ctx.images
        .load_user_db_cached(
            image,
            &burrow::containers::image::user_db_cache_dir(ctx.store.root()),
        )
        .await
        .context("reading /etc/passwd from the image")
}

/// Says, when the launcher maps a single id, that a user other than root inside runs as root
/// (the caller's own uid outside): no other id exists there.
fn warn_single_id_user(user: &str, image: &spec::ImageDefaults) {
    let Ok(resolved) = burrow::containers::user::resolve(user, &image.passwd, &image.group) else {
        return; // spec::build reports the unknown user
    };
    if !resolved.fits_single_id() {
        eprintln!(
            "burrow: note: user {user:?} (uid {}, gid {}) runs as uid 0 (you, outside): your user \
             has no subordinate ids, so no other id exists in its containers (add a range to \
             /etc/subuid and /etc/subgid, see `burrow setup check`)",
            resolved.uid, resolved.gid
        );
    }
}

/// `--annotation KEY=VALUE` values as a map; a value without `=` is refused.
fn annotations(given: &[String]) -> anyhow::Result<HashMap<String, String>> {
    given
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(anyhow!("--annotation {a:?}: give KEY=VALUE")),
        })
        .collect()
}

/// Creates the task with `stdio` and starts it; on failure removes the task and returns
/// Docker's code for the cause.
async fn start_task(
    ctx: &Ctx,
    id: &str,
    rootfs: Vec<containerd_client::types::Mount>,
    stdio: &Stdio,
) -> Result<u32, Failure> {
    let created = ctx.client.create_task(id, rootfs, stdio).await;
    if let Err(e) = created {
        let msg = e.to_string();
        let _ = ctx.client.delete_task(id).await;
        teardown_leftovers(ctx, id);
        return Err(Failure {
            code: start_failure_code(&msg),
            err: e.into(),
        });
    }
    match ctx.client.start_task(id).await {
        Ok(pid) => {
            ctx.store.record_start(id);
            Ok(pid)
        }
        Err(e) => {
            let msg = e.to_string();
            let _ = ctx.client.delete_task(id).await;
            teardown_leftovers(ctx, id);
            Err(Failure {
                code: start_failure_code(&msg),
                err: e.into(),
            })
        }
    }
}

/// Removes a container and everything it owns after a failed or finished `run`, printing
/// (not returning) what could not be removed.
pub(super) async fn remove_quietly(ctx: &Ctx, id: &str) {
    remove_quietly_alongside(ctx, id, async {}).await;
}

/// [`remove_quietly`], the record and snapshot going while `alongside` runs (helpers that
/// still use the state dir), the state dir and anonymous volumes once both are done.
async fn remove_quietly_alongside(
    ctx: &Ctx,
    id: &str,
    alongside: impl std::future::Future<Output = ()>,
) {
    let record = async {
        let c = ctx.client.get(id).await.ok()?;
        Some(super::remove_record(ctx, &c, true).await.map(|()| c))
    };
    let ((), removed) = tokio::join!(alongside, record);
    let Some(removed) = removed else {
        return;
    };
    match removed.and_then(|c| {
        ctx.store.remove_dir(id)?;
        Ok(c)
    }) {
        Ok(c) => super::super::volume::remove_anonymous(ctx, &super::anonymous_volumes(&c)),
        Err(err) => eprintln!("burrow: {err:#}"),
    }
}

async fn run_async(ctx: &Ctx, args: &RunArgs) -> Result<ExitCode, Failure> {
    let f = &args.flags;
    if !args.detach && restart_policy(&f.restart)? == Restart::OnFailure {
        return Err(anyhow::anyhow!(
            "--restart {} needs -d: burrow's restart monitor watches detached containers (or use --restart always)",
            f.restart
        )
        .into());
    }
    if args.rm && restart_policy(&f.restart)? != Restart::No {
        return Err(anyhow!("conflicting options: --restart {} and --rm", f.restart).into());
    }
    let created = create_container(ctx, f, true).await?;
    tracing::debug!("run: created the container");
    if args.rm {
        if let Ok(c) = ctx.client.get(&created.id).await {
            let mut l = c.labels.clone();
            l.insert(labels::AUTO_REMOVE.into(), "true".into());
            let _ = ctx.client.update_labels(c, l).await;
        }
    }
    if args.detach {
        return run_detached(ctx, args, created).await;
    }
    run_attached(ctx, args, created).await
}

/// `run -d`: the task started in the background, the container's id printed.
async fn run_detached(ctx: &Ctx, args: &RunArgs, created: Created) -> Result<ExitCode, Failure> {
    let f = &args.flags;
    let Created {
        id,
        rootfs,
        net,
        created_volumes,
    } = created;
    let stdio = (f.interactive, f.tty);
    let started = start_in_background(ctx, &id, stdio, rootfs, args.rm, None).await;
    if let Err(fail) = started {
        give_up(ctx, &id, net, &created_volumes).await;
        return Err(fail);
    }
    if let Some(n) = net {
        n.settle(ctx, &id).await;
    }
    if restart_policy(&f.restart)? == Restart::OnFailure {
        super::restart::spawn(ctx, &id).await?;
    }
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// An attached `run`: the container's stdio joined to the CLI's until it exits (then, with
/// --rm, removed) or the user detaches.
async fn run_attached(ctx: &Ctx, args: &RunArgs, created: Created) -> Result<ExitCode, Failure> {
    let f = &args.flags;
    let Created {
        id,
        rootfs,
        mut net,
        created_volumes,
    } = created;
    let local = Local {
        raw: f.tty,
        follow_size: f.tty,
        sig_proxy: f.sig_proxy && !f.tty,
        detach_on_hangup: f.tty,
    };
    let keys = f.detach_keys.as_deref();
    let mut session = match task_session(ctx, &id, (f.interactive, f.tty), keys, local) {
        Ok(s) => s,
        Err(e) => {
            give_up(ctx, &id, net, &created_volumes).await;
            return Err(e.into());
        }
    };
    // With --rm, a watcher removes the container should this command be killed.
    let watch = if args.rm {
        super::orphan::Watch::spawn(ctx, &id)
    } else {
        None
    };
    if let Err(fail) = start_task(ctx, &id, rootfs, &session.stdio()).await {
        drop(session);
        give_up(ctx, &id, net, &created_volumes).await;
        return Err(fail);
    }
    tracing::debug!("run: started the task");
    let ahead = match net.take() {
        Some(n) => Some(n.settle(ctx, &id).await),
        None => None,
    };
    let target = Target::task(ctx.client.clone(), &id);
    let exit = session.watch(&target).await;
    let code = match session.attend(&target, exit).await? {
        Outcome::Exited(code) => code,
        Outcome::Detached => {
            let fifo_dir = session::fifo::dir(&ctx.store.container_dir(&id), "");
            detach::hand_over(
                ctx,
                &id,
                session,
                &fifo_dir,
                Detached::Container { rm: args.rm },
            )?;
            // The background reader removes it (--rm) once it ends.
            if let Some(w) = watch {
                w.stand_down();
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    tracing::debug!("run: the task exited");
    finish_attached_run(ctx, &id, args.rm, session, ahead).await;
    if let Some(w) = watch {
        w.stand_down();
    }
    Ok(ExitCode::from(session::exit::code(code)))
}

/// After an attached run's task exited: the task deleted, and with `rm` the container and
/// everything it owns removed, its networks detached alongside.
async fn finish_attached_run(
    ctx: &Ctx,
    id: &str,
    rm: bool,
    session: Session,
    ahead: Option<prepare::Prepared>,
) {
    // With --rm the networks are detached alongside the task's deletion.
    let teardown = if rm {
        start_claimed_teardown(ctx, id)
    } else {
        None
    };
    if let Err(err) = super::delete_task_recording(ctx, id).await {
        tracing::warn!(%err, "deleting the task");
    }
    tracing::debug!("run: deleted the task");
    drop(session);
    if !rm {
        return;
    }
    // The record and snapshot go while the networks are detached; the state dir once both
    // helpers are done with it.
    let helpers = async {
        let waited = tokio::task::spawn_blocking(move || {
            if let Some(mut t) = teardown {
                let _ = t.wait();
            }
            if let Some(h) = ahead {
                h.release(true);
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!("waiting for the network helpers");
        }
    };
    remove_quietly_alongside(ctx, id, helpers).await;
    tracing::debug!("run: removed the container; the network helpers are done");
}

/// The session of an attached `run` or `start -a`: the container's FIFOs joined to the CLI's
/// terminal, its output also logged, the detach keys of `keys` (`--detach-keys`) with -i.
fn task_session(
    ctx: &Ctx,
    id: &str,
    (stdin, tty): (bool, bool),
    keys: Option<&str>,
    local: Local,
) -> anyhow::Result<Session> {
    let log = logdriver::AttachLog::open(&ctx.store, id)
        .map_err(|e| tracing::warn!("container {id}: its output will not be logged: {e}"))
        .ok();
    let opts = session::Options {
        stdin,
        tty,
        detach_keys: DetachKeys::for_session(keys, stdin, tty)?,
        log,
    };
    let dir = session::fifo::dir(&ctx.store.container_dir(id), "");
    Ok(Session::fifos(&dir, opts, Endpoints::terminal(local))?)
}

/// A `run` that failed after creating its container: the ahead-of-time attach (if any) ends,
/// then the container, everything it owns and the named volumes it created go.
async fn give_up(ctx: &Ctx, id: &str, net: Option<AheadNet>, created_volumes: &[String]) {
    if let Some(n) = net {
        n.abandon();
    }
    teardown_leftovers(ctx, id);
    remove_quietly(ctx, id).await;
    super::super::volume::remove_anonymous(ctx, created_volumes);
}

/// Starts a container's task in the background (`run -d`, `start`): with -i or -t its stdio are
/// FIFOs kept by the background reader, so `attach` can join it; otherwise its output goes to
/// the log driver (`log_uri`, or burrow's own).
async fn start_in_background(
    ctx: &Ctx,
    id: &str,
    (interactive, tty): (bool, bool),
    rootfs: Vec<containerd_client::types::Mount>,
    rm: bool,
    log_uri: Option<String>,
) -> Result<(), Failure> {
    if interactive || tty {
        return start_detached_with_stdio(ctx, id, (interactive, tty), rootfs, rm).await;
    }
    let uri = match log_uri {
        Some(u) => u,
        None => {
            let exe = std::env::current_exe().context("finding the burrow binary for logging")?;
            logdriver::uri(&exe, ctx.store.root())
        }
    };
    let stdio = Stdio {
        stdin: String::new(),
        stdout: uri.clone(),
        stderr: uri,
        terminal: tty,
    };
    start_task(ctx, id, rootfs, &stdio).await.map(drop)
}

/// `run -d` with -i or -t: the container's stdio are FIFOs held by a background reader (which
/// logs the output and keeps stdin open), so `burrow attach` can connect to it later.
async fn start_detached_with_stdio(
    ctx: &Ctx,
    id: &str,
    (interactive, tty): (bool, bool),
    rootfs: Vec<containerd_client::types::Mount>,
    rm: bool,
) -> Result<(), Failure> {
    let dir = session::fifo::dir(&ctx.store.container_dir(id), "");
    let stdio = session::fifo::create(&dir, interactive, tty)?;
    let mut reader = detach::spawn_reader(ctx, id, &dir, Detached::Container { rm })?;
    if let Err(fail) = start_task(ctx, id, rootfs, &stdio).await {
        reader.abandon();
        return Err(fail);
    }
    // Nothing else runs on this (current-thread) runtime meanwhile: a plain blocking read.
    if !reader.ready() {
        let why = reader.failure();
        // Without its reader nothing would hold its stdio: stop it rather than leave it so.
        let _ = ctx.client.kill_task(id, 9, true).await;
        let _ = ctx.client.wait_task(id).await;
        let _ = ctx.client.delete_task(id).await;
        return Err(anyhow::anyhow!(
            "container {id}: the background reader that keeps its stdio (burrow internal detached-drain) \
             did not start ({why}), so the container was stopped again; fix that and start it again, \
             or create it without -i/-t to log through the log driver"
        )
        .into());
    }
    Ok(())
}

/// `burrow start`: a new task on the existing rootfs, detached (log driver) or attached.
pub fn start(args: StartArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let mut code = ExitCode::SUCCESS;
        for q in &args.containers {
            let c = ctx.find(q).await?;
            let st = super::state(&ctx, &c.id).await?;
            if st.is_running() {
                println!("{q}");
                continue;
            }
            // A stopped task is deleted first (its poststop hook detaches the old network), its
            // exit recorded (inspect's FinishedAt while the new task runs).
            let _ = super::delete_task_recording(&ctx, &c.id).await;
            super::set_restart_status(&ctx, &c, "running").await?;
            let rootfs = ctx.client.snapshot_mounts(&c.snapshotter, &c.id).await?;
            let started = if args.attach {
                start_attached(&ctx, &c, rootfs, &args).await
            } else {
                start_detached(&ctx, &c, rootfs).await.map(|()| None)
            };
            match started {
                Err(f) => return Ok(report(f)),
                Ok(Some(status)) => code = ExitCode::from(session::exit::code(status)),
                Ok(None) if args.attach => {}
                Ok(None) => println!("{q}"),
            }
        }
        Ok(code)
    })
}

/// `start -a`: the container's output (with -i its input too) joined to the CLI's until it
/// exits (its status) or the user detaches (None).
async fn start_attached(
    ctx: &Ctx,
    c: &containerd_client::services::v1::Container,
    rootfs: Vec<containerd_client::types::Mount>,
    args: &StartArgs,
) -> Result<Option<u32>, Failure> {
    let tty = super::process_of(c).terminal;
    let local = Local {
        raw: tty && args.interactive,
        ..Local::default()
    };
    let keys = args.detach_keys.as_deref();
    let mut session = task_session(ctx, &c.id, (args.interactive, tty), keys, local)?;
    start_task(ctx, &c.id, rootfs, &session.stdio()).await?;
    let target = Target::task(ctx.client.clone(), &c.id);
    let exit = session.watch(&target).await;
    match session.attend(&target, exit).await? {
        Outcome::Detached => {
            let rm = c
                .labels
                .get(labels::AUTO_REMOVE)
                .is_some_and(|v| v == "true");
            let fifo_dir = session::fifo::dir(&ctx.store.container_dir(&c.id), "");
            detach::hand_over(ctx, &c.id, session, &fifo_dir, Detached::Container { rm })?;
            Ok(None)
        }
        Outcome::Exited(status) => {
            super::delete_task_recording(ctx, &c.id).await?;
            Ok(Some(status))
        }
    }
}

/// `start` without -a: the task in the background as the container was created (stdio kept
/// with -i/-t, else the log driver), its on-failure restart monitor started again.
async fn start_detached(
    ctx: &Ctx,
    c: &containerd_client::services::v1::Container,
    rootfs: Vec<containerd_client::types::Mount>,
) -> Result<(), Failure> {
    let tty = super::process_of(c).terminal;
    let label = |k: &str| c.labels.get(k).is_some_and(|v| v == "true");
    let (interactive, rm) = (label(labels::STDIN_OPEN), label(labels::AUTO_REMOVE));
    let log_uri = c.labels.get(labels::LOG_URI).cloned();
    start_in_background(ctx, &c.id, (interactive, tty), rootfs, rm, log_uri).await?;
    let on_failure = c
        .labels
        .get(labels::RESTART_POLICY)
        .and_then(|p| super::restart::on_failure_max(p))
        .is_some();
    if on_failure {
        super::restart::spawn(ctx, &c.id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_key_value_pairs() {
        let a = annotations(&["nerdctl/bypass4netns=true".into(), "x=".into()]).unwrap();
        assert_eq!(a["nerdctl/bypass4netns"], "true");
        assert_eq!(a["x"], "");
        let err = annotations(&["novalue".into()]).unwrap_err().to_string();
        assert!(err.contains("KEY=VALUE"), "{err}");
        assert!(annotations(&["=v".into()]).is_err());
    }

    #[test]
    fn sizes_limits_and_policies() {
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("2048").unwrap(), 2048);
        assert!(parse_memory("lots").is_err());
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft(), u.hard()), (1024, 2048));
        assert_eq!(
            serde_json::to_value(u.typ()).unwrap(),
            serde_json::json!("RLIMIT_NOFILE")
        );
        assert!(parse_ulimit("nofile=10:5").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert_eq!(restart_policy("no").unwrap(), Restart::No);
        assert_eq!(restart_policy("always").unwrap(), Restart::Containerd);
        assert_eq!(restart_policy("on-failure:3").unwrap(), Restart::OnFailure);
        assert!(restart_policy("on-failure:x").is_err());
        assert!(restart_policy("sometimes").is_err());
    }

    #[test]
    fn long_mounts_become_short_ones() {
        use LongMount::*;
        assert_eq!(
            parse_mount("type=bind,source=/tmp,target=/data,readonly").unwrap(),
            Volume("/tmp:/data:ro".into())
        );
        assert_eq!(
            parse_mount("type=bind,src=/tmp,dst=/data,readonly=false").unwrap(),
            Volume("/tmp:/data".into())
        );
        assert_eq!(
            parse_mount("source=cache,target=/cache").unwrap(),
            Volume("cache:/cache".into())
        );
        assert_eq!(
            parse_mount("type=volume,target=/anon").unwrap(),
            Volume("/anon".into())
        );
        assert_eq!(
            parse_mount("type=tmpfs,destination=/scratch,tmpfs-size=64m,tmpfs-mode=1770").unwrap(),
            Tmpfs("/scratch:size=67108864,mode=1770".into())
        );
        for bad in [
            "type=bind,source=/no/such/dir/here,target=/x",
            "type=bind,source=rel,target=/x",
            "type=bind,target=/x",
            "type=volume,source=/abs,target=/x",
            "type=tmpfs,source=x,target=/x",
            "type=nfs,target=/x",
            "type=bind,source=/tmp",
            "type=bind,source=/tmp,target=/x,bind-propagation=shared",
            "type=tmpfs,target=/x,tmpfs-mode=999",
        ] {
            let err = parse_mount(bad).unwrap_err().to_string();
            assert!(err.contains("--mount"), "{bad}: {err}");
        }
    }
}
