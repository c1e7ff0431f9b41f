//! `burrow run`, `burrow create` and `burrow start`: image to spec, state files and network
//! hooks, the container record, the task with its stdio (json-file log driver when detached,
//! FIFOs when attached), and Docker's exit codes. A run that fails undoes everything it did.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::detach::{self, Detached};
use super::runflags::Streams;
use super::Ctx;
use crate::commands::error::Failure;
use burrow::connection::Globals;
use burrow::containers::create::{
    self, teardown_leftovers, AheadNet, CreateOptions, Created, Note,
};
use burrow::containers::lifecycle::Stdio;
use burrow::containers::limits::DeviceRate;
use burrow::containers::logdriver;
use burrow::containers::request::ContainerRequest;
use burrow::containers::values::{
    parse_all, parse_flag, ByteSize, Expose, FlagError, KeyValue, RestartPolicy,
};
use burrow::network::prepare;
use burrow::session::{self, DetachKeys, Endpoints, Local, Outcome, Session, Target};

// Flags shared by `run` and `create`.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
// `-h` is --hostname, as in Docker; help is --help only.
#[command(disable_help_flag = true)]
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
    /// The container's IPv4 address on its first network (within that network's subnet).
    #[arg(long, value_name = "IPv4")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Logging driver: json-file (Docker's default), local (json-file records rotated at 20m x 5),
    /// journald (where a systemd journal runs), all read by `burrow logs`; or none (nothing kept).
    #[arg(long, default_value = "json-file")]
    pub log_driver: String,
    /// Keys that detach the terminal from a running container, leaving it running (with -i;
    /// default ctrl-p,ctrl-q with -it). Comma-separated: a character or ctrl-X each.
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Pass the signals the CLI receives (INT, TERM, HUP, QUIT, USR1, USR2) on to the container
    /// while attached without a terminal.
    #[arg(long, default_value_t = true)]
    pub sig_proxy: bool,
    /// Log driver options: max-size=SIZE (rotate past it, e.g. 10m), max-file=N (files kept);
    /// json-file and journald also labels=K1,K2, env=V1,V2, labels-regex=RE, env-regex=RE
    /// (attributes each record carries; `logs --details` shows json-file's).
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
    #[command(flatten)]
    pub net: super::netflags::NetFlags,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// DNS search domains (`.` for none).
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// DNS options (resolv.conf `options`, e.g. ndots:2).
    #[arg(long, value_name = "OPTION")]
    pub dns_option: Vec<String>,
    /// Container NIS domain name.
    #[arg(long)]
    pub domainname: Option<String>,
    /// Expose a port or a range of ports (PORT[-PORT][/PROTO]); -P publishes them.
    #[arg(long, value_name = "PORT")]
    pub expose: Vec<String>,
    /// Add supplementary groups (names from the image's /etc/group, or numbers).
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Namespaced kernel parameters (NAME=VALUE, e.g. net.ipv4.ip_forward=1).
    #[arg(long, value_name = "NAME=VALUE")]
    pub sysctl: Vec<String>,
    /// Tune the container's OOM preference (-1000 to 1000).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i32>,
    /// IPC namespace: private (default), shareable, host, or container:NAME.
    #[arg(long, value_name = "MODE", default_value = "")]
    pub ipc: String,
    /// PID namespace: the container's own (default), host, or container:NAME.
    #[arg(long, value_name = "MODE", default_value = "")]
    pub pid: String,
    /// cgroup namespace: private or host (default: the runtime's).
    #[arg(long, value_name = "MODE", default_value = "")]
    pub cgroupns: String,
    /// Link to a running container (CONTAINER[:ALIAS], repeatable; Docker's legacy links):
    /// its address under the alias in /etc/hosts, its ports and environment as ALIAS_*
    /// variables. It must be on a network this container joins.
    #[arg(long, value_name = "CONTAINER[:ALIAS]")]
    pub link: Vec<String>,
    /// The OCI runtime containerd's runc shim runs: runc (the default), crun, or another OCI
    /// runtime program by name (looked up in PATH) or path; kept for the container's later
    /// starts and execs (inspect's HostConfig.Runtime).
    #[arg(long, value_name = "RUNTIME", default_value = "")]
    pub runtime: String,
    /// The cgroup the container's is made under (a slice, NAME.slice, under systemd).
    #[arg(long, value_name = "PATH", default_value = "")]
    pub cgroup_parent: String,
    /// UTS namespace: host for the host's (its host name, not the container's to set).
    #[arg(long, value_name = "MODE", default_value = "")]
    pub uts: String,
    /// Write the container ID to this file (which must not exist yet).
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// Read labels from a file (KEY=VALUE lines; # comments).
    #[arg(long, value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
    /// Say nothing while pulling the image.
    #[arg(short, long)]
    pub quiet: bool,
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
    #[command(flatten)]
    pub limits: LimitFlags,
    #[command(flatten)]
    pub health: super::health::HealthFlags,
    #[command(flatten)]
    pub devices: super::devices::DeviceFlags,
    #[command(flatten)]
    pub userns: super::userns::UsernsFlags,
    #[command(flatten)]
    pub source: super::runflags::SourceFlags,
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
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
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
        self.source.apply(&mut r)?;
        let c = &mut r.config;
        c.hostname = self.hostname.clone();
        c.user = self.user.clone();
        c.tty = self.tty;
        c.open_stdin = self.interactive;
        c.env = read_env_files(&self.env_file)?;
        c.env.extend(self.env.iter().cloned());
        c.cmd = self.args.clone();
        // `--entrypoint ''` is [""] as the docker CLI sends it: no entrypoint and no image cmd.
        c.entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        c.working_dir = self.workdir.clone();
        c.labels = super::parse_labels(&self.label).into_iter().collect();
        c.stop_signal = self.stop_signal.clone();
        c.stop_timeout = self.stop_timeout;
        c.domainname = self.domainname.clone();
        c.healthcheck = self.health.config()?;
        c.exposed_ports = parse_all::<Expose>("--expose", &self.expose)?
            .into_iter()
            .flat_map(|e| e.ports())
            .collect();
        for line in read_env_files(&self.label_file)? {
            let (k, v) = line.split_once('=').unwrap_or((&line, ""));
            c.labels
                .entry(k.to_string())
                .or_insert_with(|| v.to_string());
        }
        self.host_config(&mut r.host_config, auto_remove)?;
        self.devices.apply(&mut r.host_config)?;
        r.networking_config.ipv4_address = self.ip;
        self.net.apply(&mut r)?;
        Ok(r)
    }

    fn host_config(
        &self,
        h: &mut burrow::containers::request::HostConfig,
        auto_remove: bool,
    ) -> anyhow::Result<()> {
        h.binds = parse_all("-v", &self.volume)?;
        h.mounts = parse_all("--mount", &self.mount)?;
        h.tmpfs = parse_all("--tmpfs", &self.tmpfs)?;
        h.port_bindings = parse_all("-p", &self.publish)?;
        h.publish_all_ports = self.publish_all;
        h.restart_policy = parse_flag("--restart", &self.restart)?;
        h.auto_remove = auto_remove;
        h.cap_add = self.cap_add.clone();
        h.cap_drop = self.cap_drop.clone();
        h.privileged = self.privileged;
        h.readonly_rootfs = self.read_only;
        h.security_opt = parse_all("--security-opt", &self.security_opt)?;
        h.dns = self.dns.clone();
        h.dns_search = self.dns_search.clone();
        h.dns_options = self.dns_option.clone();
        h.group_add = self.group_add.clone();
        h.sysctls = parse_all::<KeyValue>("--sysctl", &self.sysctl)?
            .into_iter()
            .map(|kv| (kv.key, kv.value))
            .collect();
        h.oom_score_adj = self.oom_score_adj;
        h.ipc_mode = self.ipc.clone();
        h.pid_mode = self.pid.clone();
        h.cgroupns_mode = self.cgroupns.clone();
        h.uts_mode = self.uts.clone();
        h.cgroup_parent = self.cgroup_parent.clone();
        h.links = self.link.clone();
        h.runtime = self.runtime.clone();
        h.extra_hosts = parse_all("--add-host", &self.add_host)?;
        h.init = self.init;
        self.userns.apply(h);
        let limits = self.limits.limits()?;
        h.memory = limits.memory_bytes.map(ByteSize);
        h.cpus = limits.cpus;
        h.pids_limit = limits.pids;
        h.tuning = limits.tuning;
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

// Not a doc comment: clap would show a flattened struct's doc as the command's about.
// The cgroup limits `run`, `create` and `update` take.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitFlags {
    /// Memory limit (e.g. 512m); needs cgroups.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Number of CPUs; needs cgroups.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Tune the container's pids limit; needs cgroups.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// CPU shares: the container's weight against others when CPUs are busy (default 1024).
    #[arg(short = 'c', long, value_name = "SHARES")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS period in microseconds (1000 to 1000000), with --cpu-quota.
    #[arg(long, value_name = "MICROSECONDS")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1: none).
    #[arg(long, value_name = "MICROSECONDS", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs the container may run on (0-3, 0,1).
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (0-3, 0,1).
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Memory soft limit (e.g. 256m): what the kernel reclaims down to under pressure.
    #[arg(long, value_name = "BYTES")]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (e.g. 1g; -1: unlimited swap); needs --memory.
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// How readily the container's anonymous pages are swapped (0 to 100; -1: the host's).
    #[arg(long, value_name = "0-100", allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Do not let the OOM killer kill the container's processes (give --memory with it).
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Block I/O weight (10 to 1000), where the kernel's I/O scheduler has weights.
    #[arg(long, value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
    /// Block I/O weight of one device (DEVICE:WEIGHT, e.g. /dev/sda:200); repeatable.
    #[arg(long, value_name = "DEVICE:WEIGHT")]
    pub blkio_weight_device: Vec<String>,
    /// Read rate limit of a device (DEVICE:RATE, e.g. /dev/sda:10mb a second); repeatable.
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_read_bps: Vec<String>,
    /// Write rate limit of a device (DEVICE:RATE, e.g. /dev/sda:10mb a second); repeatable.
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_write_bps: Vec<String>,
    /// Read operations a second allowed on a device (DEVICE:N); repeatable.
    #[arg(long, value_name = "DEVICE:N")]
    pub device_read_iops: Vec<String>,
    /// Write operations a second allowed on a device (DEVICE:N); repeatable.
    #[arg(long, value_name = "DEVICE:N")]
    pub device_write_iops: Vec<String>,
}

impl LimitFlags {
    pub fn limits(&self) -> anyhow::Result<burrow::containers::limits::Limits> {
        let bytes = |flag: &'static str, v: &Option<String>| -> Result<Option<i64>, FlagError> {
            v.as_deref()
                .map(|m| parse_flag::<ByteSize>(flag, m).map(|b| b.0))
                .transpose()
        };
        let rates = |flag: &'static str, v: &[String], bytes: bool| {
            v.iter()
                .map(|s| DeviceRate::parse(flag, s, bytes))
                .collect::<Result<Vec<_>, _>>()
        };
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            _ => bytes("--memory-swap", &self.memory_swap)?,
        };
        let memory_swappiness = match self.memory_swappiness {
            None | Some(-1) => None,
            Some(v) => Some(u64::try_from(v).map_err(|_| FlagError {
                flag: "--memory-swappiness",
                value: v.to_string(),
                reason: burrow::containers::values::ValueError::Swappiness,
            })?),
        };
        Ok(burrow::containers::limits::Limits {
            memory_bytes: bytes("--memory", &self.memory)?,
            cpus: self.cpus,
            pids: self.pids_limit,
            tuning: burrow::containers::limits::Tuning {
                cpu_shares: self.cpu_shares,
                cpu_period: self.cpu_period,
                cpu_quota: self.cpu_quota,
                cpuset_cpus: self.cpuset_cpus.clone(),
                cpuset_mems: self.cpuset_mems.clone(),
                memory_reservation: bytes("--memory-reservation", &self.memory_reservation)?,
                memory_swap,
                memory_swappiness,
                oom_kill_disable: self.oom_kill_disable.then_some(true),
                blkio_weight: self.blkio_weight,
                blkio_weight_device: rates(
                    "blkio-weight-device",
                    &self.blkio_weight_device,
                    false,
                )?,
                blkio_device_read_bps: rates("device-read-bps", &self.device_read_bps, true)?,
                blkio_device_write_bps: rates("device-write-bps", &self.device_write_bps, true)?,
                blkio_device_read_iops: rates("device-read-iops", &self.device_read_iops, false)?,
                blkio_device_write_iops: rates(
                    "device-write-iops",
                    &self.device_write_iops,
                    false,
                )?,
            },
        })
    }
}

// `burrow run`.
#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Attach to STDIN, STDOUT or STDERR (repeatable; default: stdout and stderr, and stdin
    /// with -i).
    #[arg(short, long, value_name = "STREAM")]
    pub attach: Vec<String>,
    #[command(flatten)]
    pub flags: CreateFlags,
}

// `burrow create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub flags: CreateFlags,
}

// `burrow start`.
#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
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

pub fn run(args: RunArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        Ok(match run_async(&ctx, &args).await {
            Ok(code) => code,
            Err(f) => f.report(),
        })
    })
}

pub fn create(args: CreateArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        // As `docker create`: stdout and stderr attached at the start, stdin with -i.
        let streams = Streams {
            stdin: args.flags.interactive,
            stdout: true,
            stderr: true,
        };
        match create_container(&ctx, &args.flags, Some(streams), false, args.rm, false).await {
            Ok(c) => {
                println!("{}", c.id);
                Ok(ExitCode::SUCCESS)
            }
            Err(f) => Ok(f.report()),
        }
    })
}

/// Creates the container `f` describes through the library, printing what it notes;
/// `streams`: those a client attaches at the start (None: detached).
pub async fn create_container(
    ctx: &Ctx,
    f: &CreateFlags,
    streams: Option<Streams>,
    ahead: bool,
    auto_remove: bool,
    step_bound: bool,
) -> Result<Created, Failure> {
    let mut req = f.request(auto_remove)?;
    if let Some(s) = streams {
        req.config.attach_stdin = s.stdin || f.interactive;
        req.config.attach_stdout = s.stdout;
        req.config.attach_stderr = s.stderr;
    }
    if step_bound {
        burrow::slurm::steps::bind(&mut req);
    }
    if let Some(file) = &f.cidfile {
        if file.exists() {
            return Err(anyhow::anyhow!(
                "container ID file {} found: make sure the other container isn't running or delete it",
                file.display()
            )
            .into());
        }
    }
    let quiet = f.quiet;
    let note = move |n: Note| {
        if !(quiet
            && matches!(
                n,
                Note::Pulling(_) | Note::SquashedOwners | Note::RemappingOwners
            ))
        {
            print_note(n)
        }
    };
    let created = create::create(ctx, &req, CreateOptions::attach_ahead(ahead), &note)
        .await
        .map_err(Failure::from)?;
    if let Some(file) = &f.cidfile {
        std::fs::write(file, &created.id)
            .with_context(|| format!("writing the container ID file {}", file.display()))?;
    }
    Ok(created)
}

/// What `create` notes, as burrow says it on stderr.
fn print_note(note: Note) {
    match note {
        Note::Pulling(name) => eprintln!("burrow: pulling {name}"),
        Note::SquashedOwners => eprintln!("burrow: {}", burrow::images::SQUASHED_OWNERS_NOTE),
        Note::ForeignPlatform(warning) | Note::LimitDiscarded(warning) => {
            eprintln!("burrow: warning: {warning}")
        }
        Note::PortsDiscarded { network } => {
            eprintln!("burrow: warning: published ports are discarded with --network {network}")
        }
        Note::RemappingOwners => eprintln!(
            "burrow: copying the image's files with their owners remapped for --userns=keep-id \
             (once per image and id map)"
        ),
        Note::SingleIdUser { user, uid, gid } => eprintln!(
            "burrow: note: user {user:?} (uid {uid}, gid {gid}) runs as uid 0 (you, outside): \
             your user has no subordinate ids, so no other id exists in its containers (add a \
             range to /etc/subuid and /etc/subgid, see `burrow setup check`)"
        ),
    }
}

/// The `KEY=VALUE` lines of `--env-file` files (blank lines and # comments skipped).
pub(super) fn read_env_files(files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
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

/// Creates the task with `stdio` and starts it (the library's start); on failure returns
/// Docker's code for the cause.
async fn start_task(
    ctx: &Ctx,
    id: &str,
    rootfs: Vec<containerd_client::types::Mount>,
    stdio: &Stdio,
) -> Result<u32, Failure> {
    Ok(burrow::containers::start::start_task(ctx, id, rootfs, stdio).await?)
}

/// Removes a container and everything it owns after a failed or finished `run`, printing
/// (not returning) what could not be removed.
async fn remove_quietly(ctx: &Ctx, id: &str) {
    if let Err(err) = burrow::containers::ops::remove_after_run(ctx, id, async {}).await {
        crate::commands::error::say(&err);
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
            "--restart {} needs -d: burrow's exit monitor watches detached containers (or use --restart always)",
            f.restart
        )
        .into());
    }
    // Docker's check before it creates anything: a terminal for the container needs one here.
    if f.tty
        && f.interactive
        && !args.detach
        && !std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        return Err(anyhow::anyhow!(
            "the input device is not a TTY: run -it needs a terminal on stdin (leave out -t to pipe input)"
        )
        .into());
    }
    let streams = Streams::of(&args.attach, args.detach)?;
    // A task of a `srun --mpi=pmi2` step: its PMI_FD reaches the container through a relay.
    if !args.detach {
        burrow::slurm::pmi::start_for(&ctx.ep).map_err(anyhow::Error::from)?;
    }
    // In a Slurm step, a container run in the foreground ends with the step, as the task's own
    // process would (its watcher stops it if the task is killed first).
    let attached = (!args.detach).then_some(streams);
    let created = create_container(ctx, f, attached, true, args.rm, !args.detach).await?;
    tracing::debug!("run: created the container");
    if args.detach {
        return run_detached(ctx, args, created).await;
    }
    run_attached(ctx, args, created, streams).await
}

/// `run -d`: the task started in the background, the container's id printed.
async fn run_detached(ctx: &Ctx, args: &RunArgs, created: Created) -> Result<ExitCode, Failure> {
    let f = &args.flags;
    let Created {
        id,
        rootfs,
        net,
        created_volumes,
        ..
    } = created;
    let stdio = (f.interactive, f.tty);
    let started =
        burrow::containers::start::start_in_background(ctx, &id, stdio, rootfs, args.rm, None)
            .await
            .map_err(Failure::from);
    if let Err(fail) = started {
        give_up(ctx, &id, net, &created_volumes).await;
        return Err(fail);
    }
    if let Some(n) = net {
        n.settle(ctx, &id).await;
    }
    if !args.rm {
        burrow::containers::start::spawn_exit_monitor(ctx, &id).await?;
    }
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// An attached `run`: the container's stdio joined to the CLI's until it exits (then, with
/// --rm, removed) or the user detaches.
async fn run_attached(
    ctx: &Ctx,
    args: &RunArgs,
    created: Created,
    streams: Streams,
) -> Result<ExitCode, Failure> {
    let f = &args.flags;
    let Created {
        id,
        rootfs,
        mut net,
        created_volumes,
        ..
    } = created;
    let local = Local {
        raw: f.tty,
        follow_size: f.tty,
        sig_proxy: f.sig_proxy && !f.tty,
        detach_on_hangup: f.tty,
    };
    let keys = f.detach_keys.as_deref();
    let ends = Endpoints::terminal(local).only(streams.stdout, streams.stderr);
    let mut session = match task_session(ctx, &id, (f.interactive, f.tty), keys, ends) {
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
    if streams.no_output() {
        println!("{id}");
    }
    let ahead = match net.take() {
        Some(n) => Some(n.settle(ctx, &id).await),
        None => None,
    };
    let target = Target::task(ctx, &id);
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
                Detached::Container {
                    rm: args.rm,
                    stdin_once: false,
                },
            )?;
            // The background reader removes it (--rm) once it ends; else its exit monitor
            // lets go of what it holds.
            if !args.rm {
                burrow::containers::start::spawn_exit_monitor(ctx, &id).await?;
            }
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

/// After an attached run's task exited: with `rm` the container and everything it owns removed
/// (the library's end of an auto-removed container), else its task deleted.
async fn finish_attached_run(
    ctx: &Ctx,
    id: &str,
    rm: bool,
    session: Session,
    ahead: Option<prepare::Prepared>,
) {
    if rm {
        if let Err(err) = burrow::containers::ops::remove_exited(ctx, id, ahead).await {
            crate::commands::error::say(&err);
        }
    } else if let Err(err) = super::delete_task_recording(ctx, id).await {
        tracing::warn!(%err, "deleting the task");
    }
    tracing::debug!("run: the task deleted");
    drop(session);
}

/// The session of an attached `run` or `start -a`: the container's FIFOs joined to the CLI's
/// terminal, its output also logged, the detach keys of `keys` (`--detach-keys`) with -i.
fn task_session(
    ctx: &Ctx,
    id: &str,
    (stdin, tty): (bool, bool),
    keys: Option<&str>,
    ends: Endpoints,
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
    Ok(Session::fifos(&dir, opts, ends)?)
}

/// A `run` that failed after creating its container: the ahead-of-time attach (if any) ends,
/// then the container, everything it owns and the named volumes it created go.
async fn give_up(ctx: &Ctx, id: &str, net: Option<AheadNet>, created_volumes: &[String]) {
    if let Some(n) = net {
        n.abandon();
    }
    teardown_leftovers(ctx, id);
    remove_quietly(ctx, id).await;
    burrow::containers::volumes::Volumes::of(ctx).remove_quietly(created_volumes);
}

/// `burrow start`: a new task on the existing rootfs, detached (log driver) or attached.
pub fn start(mut args: StartArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    // -i attaches as -a does (the output with the input), as Docker's start.
    args.attach |= args.interactive;
    if args.attach && args.containers.len() > 1 {
        anyhow::bail!("you cannot start and attach multiple containers at once: start them one by one, or leave out -a/-i");
    }
    let started = burrow::connection::runtime().block_on(async {
        let ctx = Ctx::connect(g).await?;
        let mut code = ExitCode::SUCCESS;
        for q in &args.containers {
            let c = ctx.find(q).await?;
            let st = super::state(&ctx, &c.id).await?;
            if st.is_running() && args.attach {
                // Running already: start -a joins it as attach does.
                return Ok(None);
            }
            if st.is_running() {
                println!("{q}");
                continue;
            }
            // A stopped task is deleted first (its poststop hook detaches the old network), its
            // exit recorded (inspect's FinishedAt while the new task runs): prepare_existing.
            let started = if args.attach {
                let rootfs = burrow::containers::start::prepare_existing(&ctx, &c).await?;
                start_attached(&ctx, &c, rootfs, &args).await
            } else {
                burrow::containers::start::start_background(&ctx, &c)
                    .await
                    .map(|()| None)
                    .map_err(Failure::from)
            };
            match started {
                Err(f) => return Ok(Some(f.outside_run().report())),
                Ok(Some(status)) => code = ExitCode::from(session::exit::code(status)),
                Ok(None) if args.attach => {}
                Ok(None) => println!("{q}"),
            }
        }
        Ok::<_, anyhow::Error>(Some(code))
    })?;
    match started {
        Some(code) => Ok(code),
        None => super::attach::run(
            super::attach::Args {
                opts: super::attach::AttachFlags {
                    no_stdin: !args.interactive,
                    sig_proxy: true,
                    detach_keys: args.detach_keys,
                },
                container: args.containers[0].clone(),
            },
            g,
        ),
    }
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
    let ends = Endpoints::terminal(local);
    let mut session = task_session(ctx, &c.id, (args.interactive, tty), keys, ends)?;
    start_task(ctx, &c.id, rootfs, &session.stdio()).await?;
    let target = Target::task(ctx, &c.id);
    let exit = session.watch(&target).await;
    match session.attend(&target, exit).await? {
        Outcome::Detached => {
            let rm = burrow::containers::record::auto_removed(c);
            let fifo_dir = session::fifo::dir(&ctx.store.container_dir(&c.id), "");
            let what = Detached::Container {
                rm,
                stdin_once: false,
            };
            detach::hand_over(ctx, &c.id, session, &fifo_dir, what)?;
            burrow::containers::start::watch_exit(ctx, c).await?;
            Ok(None)
        }
        Outcome::Exited(status) => {
            let rm = burrow::containers::record::auto_removed(c);
            if rm {
                // Created with --rm: gone once it exited, as Docker's daemon does it.
                remove_quietly(ctx, &c.id).await;
            } else {
                super::delete_task_recording(ctx, &c.id).await?;
            }
            Ok(Some(status))
        }
    }
}
