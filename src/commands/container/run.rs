//! `burrow run`, `burrow create` and `burrow start`: image to spec, state files and network
//! hooks, the container record, the task with its stdio (json-file log driver when detached,
//! FIFOs when attached), and Docker's exit codes. A run that fails undoes everything it did.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::stdio::{start_failure_code, Attached};
use super::{labels, Ctx};
use burrow::connection::Globals;
use burrow::containers::create::{
    self, net_teardown_command, teardown_leftovers, AheadNet, CreateOptions, Created, Note,
};
use burrow::containers::lifecycle::Stdio;
use burrow::containers::logdriver;
use burrow::containers::request::ContainerRequest;
use burrow::containers::values::{parse_all, parse_flag, FlagError, KeyValue, RestartPolicy};
use burrow::network::{self, hook};

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

impl CreateFlags {
    /// The container request these flags describe (env files read, every value parsed);
    /// `auto_remove` for `run --rm`.
    pub fn request(&self, auto_remove: bool) -> anyhow::Result<ContainerRequest> {
        let mut r = ContainerRequest::new(self.image.clone());
        r.name = self.name.clone();
        r.pull = parse_flag("--pull", &self.pull)?;
        r.bypass = self.bypass;
        let c = &mut r.config;
        c.hostname = self.hostname.clone();
        c.user = self.user.clone();
        c.tty = self.tty;
        c.open_stdin = self.interactive;
        c.env = read_env_files(&self.env_file)?;
        c.env.extend(self.env.iter().cloned());
        c.cmd = self.args.clone();
        c.entrypoint = self.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                vec![]
            } else {
                vec![e.clone()]
            }
        });
        c.working_dir = self.workdir.clone();
        c.labels = super::parse_labels(&self.label).into_iter().collect();
        c.stop_signal = self.stop_signal.clone();
        c.stop_timeout = self.stop_timeout;
        self.host_config(&mut r.host_config, auto_remove)?;
        r.networking_config.ipv4_address = self.ip;
        Ok(r)
    }

    fn host_config(
        &self,
        h: &mut burrow::containers::request::HostConfig,
        auto_remove: bool,
    ) -> Result<(), FlagError> {
        h.binds = parse_all("-v", &self.volume)?;
        h.mounts = parse_all("--mount", &self.mount)?;
        h.tmpfs = parse_all("--tmpfs", &self.tmpfs)?;
        h.port_bindings = parse_all("-p", &self.publish)?;
        h.publish_all_ports = self.publish_all;
        h.network_mode = self.network.clone();
        h.restart_policy = parse_flag("--restart", &self.restart)?;
        h.auto_remove = auto_remove;
        h.cap_add = self.cap_add.clone();
        h.cap_drop = self.cap_drop.clone();
        h.privileged = self.privileged;
        h.readonly_rootfs = self.read_only;
        h.security_opt = parse_all("--security-opt", &self.security_opt)?;
        h.dns = self.dns.clone();
        h.extra_hosts = parse_all("--add-host", &self.add_host)?;
        h.init = self.init;
        h.memory = self
            .memory
            .as_deref()
            .map(|m| parse_flag("--memory", m))
            .transpose()?;
        h.cpus = self.cpus;
        h.pids_limit = self.pids_limit;
        h.ulimits = parse_all("--ulimit", &self.ulimit)?;
        h.shm_size = self
            .shm_size
            .as_deref()
            .map(|m| parse_flag("--shm-size", m))
            .transpose()?;
        h.log_config.driver = self.log_driver.clone();
        h.log_config.options = self.log_opt.clone();
        h.annotations = parse_all::<KeyValue>("--annotation", &self.annotation)?
            .into_iter()
            .map(|kv| (kv.key, kv.value))
            .collect();
        Ok(())
    }
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
        match create_container(&ctx, &args.flags, false, false).await {
            Ok(c) => {
                println!("{}", c.id);
                Ok(ExitCode::SUCCESS)
            }
            Err(f) => Ok(report(f)),
        }
    })
}

/// Creates the container `f` describes through the library, printing what it notes.
pub async fn create_container(
    ctx: &Ctx,
    f: &CreateFlags,
    ahead: bool,
    auto_remove: bool,
) -> Result<Created, Failure> {
    let req = f.request(auto_remove)?;
    create::create(ctx, &req, CreateOptions { ahead }, &print_note)
        .await
        .map_err(|e| Failure {
            code: 125,
            err: e.into(),
        })
}

/// What `create` notes, as burrow says it on stderr.
fn print_note(note: Note) {
    match note {
        Note::Pulling(name) => eprintln!("burrow: pulling {name}"),
        Note::SquashedOwners => eprintln!("burrow: {}", burrow::images::SQUASHED_OWNERS_NOTE),
        Note::PortsDiscarded { network } => {
            eprintln!("burrow: warning: published ports are discarded with --network {network}")
        }
        Note::SingleIdUser { user, uid, gid } => eprintln!(
            "burrow: note: user {user:?} (uid {uid}, gid {gid}) runs as uid 0 (you, outside): \
             your user has no subordinate ids, so no other id exists in its containers (add a \
             range to /etc/subuid and /etc/subgid, see `burrow setup check`)"
        ),
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
    let on_failure = matches!(
        parse_flag::<RestartPolicy>("--restart", &f.restart)?,
        RestartPolicy::OnFailure(_)
    );
    if !args.detach && on_failure {
        return Err(anyhow::anyhow!(
            "--restart {} needs -d: burrow's restart monitor watches detached containers (or use --restart always)",
            f.restart
        )
        .into());
    }
    let Created {
        id,
        rootfs,
        mut net,
        created_volumes,
        ..
    } = create_container(ctx, f, true, args.rm).await?;
    tracing::debug!("run: created the container");
    if args.detach {
        let stdio = (f.interactive, f.tty);
        let started = start_in_background(ctx, &id, stdio, rootfs, args.rm, None).await;
        if let Err(fail) = started {
            give_up(ctx, &id, net, &created_volumes).await;
            return Err(fail);
        }
        if let Some(n) = net {
            n.settle(ctx, &id).await;
        }
        if on_failure {
            super::restart::spawn(ctx, &id).await?;
        }
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let fifo_dir = ctx.store.container_dir(&id).join("fifo");
    let log = logdriver::AttachLog::open(&ctx.store, &id)
        .map_err(|e| tracing::warn!("container {id}: its output will not be logged: {e}"))
        .ok();
    let keys = match detach_keys(f.detach_keys.as_deref(), f.interactive, f.tty) {
        Ok(k) => k,
        Err(e) => {
            give_up(ctx, &id, net, &created_volumes).await;
            return Err(e.into());
        }
    };
    let attached = match Attached::new(&fifo_dir, f.interactive, f.tty, log, keys) {
        Ok(a) => a,
        Err(e) => {
            give_up(ctx, &id, net, &created_volumes).await;
            return Err(e.into());
        }
    };
    let sigwinch = if f.tty { super::exec::winch() } else { None };
    let _raw = if f.tty {
        super::exec::RawTerminal::enter()
    } else {
        None
    };
    let sig_proxy = if f.sig_proxy && !f.tty {
        SigProxy::install()
    } else {
        None
    };
    let mut sig_detach = if f.tty {
        SigProxy::install_detach()
    } else {
        None
    };
    // With --rm, a watcher removes the container should this command be killed.
    let watch = if args.rm {
        super::orphan::Watch::spawn(ctx, &id)
    } else {
        None
    };
    // The wait is registered before the start so a fast exit is not missed.
    if let Err(fail) = start_task(ctx, &id, rootfs, &attached.stdio).await {
        drop(_raw);
        drop(attached);
        give_up(ctx, &id, net, &created_volumes).await;
        return Err(fail);
    }
    tracing::debug!("run: started the task");
    let ahead = match net.take() {
        Some(n) => Some(n.settle(ctx, &id).await),
        None => None,
    };
    let resizer = if f.tty {
        super::exec::forward_resize(ctx, &id, "").await;
        super::exec::follow_resize(ctx, &id, "", sigwinch)
    } else {
        None
    };
    let closer = attached.close_stdin_on_eof(ctx.client.clone(), id.clone(), String::new());
    let status = tokio::select! {
        s = wait_proxying(ctx, &id, sig_proxy) => Some(s),
        _ = attached.detached() => None,
        _ = async {
            match sig_detach.as_mut() {
                Some(d) => d.next().await,
                None => std::future::pending().await,
            }
        } => None,
    };
    for t in [closer, resizer].into_iter().flatten() {
        t.abort();
    }
    let Some(status) = status else {
        drop(_raw);
        detach_to_background(ctx, &id, &fifo_dir, Detached::Container { rm: args.rm })?;
        // The background reader removes it (--rm) once it ends.
        if let Some(w) = watch {
            w.stand_down();
        }
        drop(attached);
        return Ok(ExitCode::SUCCESS);
    };
    attached.drain(std::time::Duration::from_secs(5));
    drop(_raw);
    let code = match status {
        Ok(c) => c,
        Err(e) => return Err(e.into()),
    };
    tracing::debug!("run: the task exited");
    // With --rm the networks are detached alongside the task's deletion.
    let teardown = if args.rm {
        start_claimed_teardown(ctx, &id)
    } else {
        None
    };
    if let Err(err) = super::delete_task_recording(ctx, &id).await {
        tracing::warn!(%err, "deleting the task");
    }
    tracing::debug!("run: deleted the task");
    drop(attached);
    if args.rm {
        // The record and snapshot go while the networks are detached; the state dir once
        // both helpers are done with it.
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
        remove_quietly_alongside(ctx, &id, helpers).await;
        tracing::debug!("run: removed the container; the network helpers are done");
    }
    if let Some(w) = watch {
        w.stand_down();
    }
    Ok(ExitCode::from((code & 0xff) as u8))
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

/// The signals an attached CLI passes on to its container (Docker's --sig-proxy): INT, TERM,
/// HUP, QUIT, USR1, USR2. Installed before the task starts so no early signal is missed.
pub(super) struct SigProxy {
    streams: Vec<(tokio::signal::unix::Signal, u32)>,
}

impl SigProxy {
    pub(super) fn install() -> Option<SigProxy> {
        use tokio::signal::unix::SignalKind;
        SigProxy::install_kinds(&[
            (SignalKind::interrupt(), 2),
            (SignalKind::terminate(), 15),
            (SignalKind::hangup(), 1),
            (SignalKind::quit(), 3),
            (SignalKind::user_defined1(), 10),
            (SignalKind::user_defined2(), 12),
        ])
    }

    /// With a terminal: TERM and HUP (the terminal went away) detach the CLI instead of killing
    /// it, so the container keeps its output logged and `--rm` still happens (Docker's daemon
    /// would do both).
    fn install_detach() -> Option<SigProxy> {
        use tokio::signal::unix::SignalKind;
        SigProxy::install_kinds(&[(SignalKind::terminate(), 15), (SignalKind::hangup(), 1)])
    }

    fn install_kinds(kinds: &[(tokio::signal::unix::SignalKind, u32)]) -> Option<SigProxy> {
        use tokio::signal::unix::signal;
        let kinds = kinds.to_vec();
        let mut streams = Vec::new();
        for (k, n) in kinds {
            streams.push((signal(k).ok()?, n));
        }
        Some(SigProxy { streams })
    }

    /// The next signal received.
    async fn next(&mut self) -> u32 {
        let futs = self.streams.iter_mut().map(|(s, n)| {
            let n = *n;
            Box::pin(async move {
                s.recv().await;
                n
            })
        });
        futures_select_all(futs).await
    }
}

/// The first of several futures to finish (a small select_all, to avoid a dependency).
async fn futures_select_all<F: std::future::Future<Output = u32> + Unpin>(
    futs: impl Iterator<Item = F>,
) -> u32 {
    let mut futs: Vec<F> = futs.collect();
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if let std::task::Poll::Ready(v) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(v);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Waits for the task's exit, passing the signals `proxy` catches on to the container, so
/// `kill CLI` stops the container and `--rm` still cleans up.
pub(super) async fn wait_proxying(
    ctx: &Ctx,
    id: &str,
    proxy: Option<SigProxy>,
) -> Result<u32, burrow::containers::lifecycle::LifecycleError> {
    let wait = ctx.client.wait_task(id);
    tokio::pin!(wait);
    let Some(mut proxy) = proxy else {
        return wait.await;
    };
    loop {
        let sig = tokio::select! {
            r = &mut wait => return r,
            n = proxy.next() => n,
        };
        if let Err(err) = ctx.client.kill_task(id, sig, false).await {
            tracing::debug!(%err, "passing signal {sig} on to {id}");
        }
    }
}

/// The detach sequence for an attached container or exec: `--detach-keys` with -i, Docker's
/// default with -it, none otherwise.
pub(super) fn detach_keys(
    flag: Option<&str>,
    interactive: bool,
    tty: bool,
) -> anyhow::Result<Option<Vec<u8>>> {
    let spec = match flag {
        Some(k) => k,
        None if tty => super::stdio::DEFAULT_DETACH_KEYS,
        None => return Ok(None),
    };
    let keys = super::stdio::parse_detach_keys(spec)?;
    Ok(interactive.then_some(keys))
}

/// Whose output a background reader keeps reading after the CLI detached.
#[derive(Debug, Clone, Copy)]
pub(super) enum Detached<'a> {
    /// The container's process: its output goes to the log, `burrow attach` can come back,
    /// and with `rm` the container is removed when it exits.
    Container { rm: bool },
    /// A process of `burrow exec`: its output is read and dropped (Docker keeps exec output out
    /// of the log), and the exec is deleted when it exits.
    Exec { exec_id: &'a str },
}

/// After the detach keys: a background `burrow internal detached-drain` keeps reading the
/// process's output and holds its stdin open, so the CLI can leave while it runs on.
pub(super) fn detach_to_background(
    ctx: &Ctx,
    id: &str,
    fifo_dir: &Path,
    what: Detached,
) -> anyhow::Result<()> {
    let mut child = spawn_reader(ctx, id, fifo_dir, what)?;
    // It says when it holds the FIFOs; only then may ours close.
    if !reader_ready(&mut child) {
        anyhow::bail!(
            "detaching from {id}: the background reader of its output did not start ({}); the process keeps running \
             without its output read (`burrow stop {id}` ends the container)",
            reader_failure(child)
        );
    }
    let short = &id[..12.min(id.len())];
    match what {
        Detached::Container { .. } => eprintln!(
            "\r\ndetached: the container keeps running (`burrow logs -f {short}` follows its output, `burrow attach {short}` attaches again)"
        ),
        Detached::Exec { .. } => eprintln!(
            "\r\ndetached: the command keeps running in {short} (`burrow top {short}` lists it)"
        ),
    }
    Ok(())
}

/// Starts `burrow internal detached-drain` for the FIFOs in `fifo_dir`. For the container's
/// process it logs the output, holds stdin open, serves `burrow attach`, and with `rm` removes
/// the container when it exits; for an exec it drops the output and deletes the exec after.
fn spawn_reader(
    ctx: &Ctx,
    id: &str,
    fifo_dir: &Path,
    what: Detached,
) -> anyhow::Result<std::process::Child> {
    use std::os::unix::process::CommandExt as _;
    let exe = std::env::current_exe().map_err(|e| anyhow::anyhow!("finding burrow: {e}"))?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(["internal", "detached-drain"])
        .arg(&ctx.ep.data_root)
        .arg(&ctx.ep.namespace)
        .arg(id)
        .arg(fifo_dir);
    match what {
        Detached::Container { rm: false } => {}
        Detached::Container { rm: true } => {
            cmd.arg("--")
                .arg(&exe)
                .args(super::same_endpoint_args(ctx))
                .args(["rm", "-f", id]);
        }
        Detached::Exec { exec_id } => {
            cmd.args(["--discard", "--"])
                .arg(&exe)
                .args(super::same_endpoint_args(ctx))
                .args(["__exec-cleanup", id, exec_id])
                .arg(fifo_dir);
        }
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    cmd.spawn()
        .map_err(|e| anyhow::anyhow!("starting the background reader of {id}'s output: {e}"))
}

/// What a reader that never said it was ready printed, and how it ended.
fn reader_failure(mut child: std::process::Child) -> String {
    use std::io::Read as _;
    let mut said = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut said);
    }
    let status = child
        .wait()
        .map(|s| s.to_string())
        .unwrap_or_else(|e| e.to_string());
    match said.trim() {
        "" => status,
        text => format!("{text}; {status}"),
    }
}

/// Waits for the reader's one byte saying it holds the FIFOs.
fn reader_ready(child: &mut std::process::Child) -> bool {
    use std::io::Read as _;
    let mut b = [0u8; 1];
    child
        .stdout
        .take()
        .is_some_and(|mut o| matches!(o.read(&mut b), Ok(1)))
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
    let dir = ctx.store.container_dir(id).join("fifo");
    let stdio = super::stdio::make_fifos(&dir, interactive, tty)?;
    let mut reader = spawn_reader(ctx, id, &dir, Detached::Container { rm })?;
    if let Err(fail) = start_task(ctx, id, rootfs, &stdio).await {
        let _ = reader.kill();
        let _ = reader.wait();
        return Err(fail);
    }
    // Nothing else runs on this (current-thread) runtime meanwhile: a plain blocking read.
    let ready = reader_ready(&mut reader);
    if !ready {
        let why = reader_failure(reader);
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
            let tty = super::process_of(&c).terminal;
            if args.attach {
                let fifo_dir = ctx.store.container_dir(&c.id).join("fifo");
                let log = logdriver::AttachLog::open(&ctx.store, &c.id)
                    .map_err(|e| {
                        tracing::warn!("container {}: its output will not be logged: {e}", c.id)
                    })
                    .ok();
                let keys = detach_keys(args.detach_keys.as_deref(), args.interactive, tty)?;
                let attached = Attached::new(&fifo_dir, args.interactive, tty, log, keys)?;
                let _raw = if tty && args.interactive {
                    super::exec::RawTerminal::enter()
                } else {
                    None
                };
                if let Err(f) = start_task(&ctx, &c.id, rootfs, &attached.stdio).await {
                    return Ok(report(f));
                }
                let closer =
                    attached.close_stdin_on_eof(ctx.client.clone(), c.id.clone(), String::new());
                let status = tokio::select! {
                    s = ctx.client.wait_task(&c.id) => Some(s?),
                    _ = attached.detached() => None,
                };
                if let Some(c) = closer {
                    c.abort();
                }
                let Some(status) = status else {
                    drop(_raw);
                    let rm = c
                        .labels
                        .get(labels::AUTO_REMOVE)
                        .is_some_and(|v| v == "true");
                    detach_to_background(&ctx, &c.id, &fifo_dir, Detached::Container { rm })?;
                    drop(attached);
                    continue;
                };
                attached.drain(std::time::Duration::from_secs(5));
                super::delete_task_recording(&ctx, &c.id).await?;
                code = ExitCode::from((status & 0xff) as u8);
            } else {
                let interactive = c
                    .labels
                    .get(labels::STDIN_OPEN)
                    .is_some_and(|v| v == "true");
                let rm = c
                    .labels
                    .get(labels::AUTO_REMOVE)
                    .is_some_and(|v| v == "true");
                let log_uri = c.labels.get(labels::LOG_URI).cloned();
                let started =
                    start_in_background(&ctx, &c.id, (interactive, tty), rootfs, rm, log_uri).await;
                if let Err(f) = started {
                    return Ok(report(f));
                }
                let on_failure = c
                    .labels
                    .get(labels::RESTART_POLICY)
                    .and_then(|p| super::restart::on_failure_max(p))
                    .is_some();
                if on_failure {
                    super::restart::spawn(&ctx, &c.id).await?;
                }
                println!("{q}");
            }
        }
        Ok(code)
    })
}
