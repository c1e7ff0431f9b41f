//! Top-level argument parsing, global flags and dispatch.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands;
use burrow::connection::{Globals, RawGlobals, UserEnv};

/// burrow: rootless-first containers with a Docker/nerdctl-compatible CLI on containerd.
#[derive(Debug, Parser)]
#[command(name = "burrow", version, propagate_version = true)]
pub struct Cli {
    /// Print debug logs.
    #[arg(long, env = "BURROW_DEBUG")]
    pub debug: bool,

    /// containerd socket to use (default: the user's rootless containerd, else the system one).
    #[arg(long, env = "CONTAINERD_ADDRESS", value_name = "SOCKET")]
    pub address: Option<PathBuf>,

    /// containerd namespace [default: default].
    #[arg(short = 'n', long, env = "CONTAINERD_NAMESPACE")]
    pub namespace: Option<String>,

    /// Directory for burrow's own state [default: ~/.local/share/nerdctl rootless, /var/lib/nerdctl rootful].
    #[arg(long, env = "BURROW_DATA_ROOT", value_name = "DIR")]
    pub data_root: Option<PathBuf>,

    /// Snapshotter for images and containers [default: overlayfs].
    #[arg(long, env = "CONTAINERD_SNAPSHOTTER")]
    pub snapshotter: Option<String>,

    /// Cgroup manager: systemd, cgroupfs or none [default: decided from the host and mode].
    #[arg(long, env = "BURROW_CGROUP_MANAGER")]
    pub cgroup_manager: Option<String>,

    /// burrow.toml to read [default: ~/.config/burrow/burrow.toml, /etc/burrow/burrow.toml as root].
    #[arg(long, env = "BURROW_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// Each subcommand\'s arguments are built only when it runs: building all of them cost
// more than some whole commands (`ps`) take.
#[command(defer = true)]
pub enum Command {
    /// Show the client and server versions.
    Version(commands::version::Args),
    /// Show how burrow reaches containerd and how that containerd is set up.
    Info(commands::info::Args),
    /// Set up, inspect and remove the per-user rootless containerd.
    #[command(subcommand)]
    Setup(commands::setup::Command),
    /// Load images from an OCI archive or a docker-archive (file or stdin).
    Load(commands::load::Args),
    /// Pull an image from a registry.
    Pull(commands::pull::Args),
    /// Log in to a registry (credentials go to ~/.docker/config.json).
    Login(commands::login::LoginArgs),
    /// Log out from a registry.
    Logout(commands::login::LogoutArgs),
    /// List images.
    Images(commands::images::Args),
    /// Manage images.
    #[command(subcommand)]
    Image(commands::image::Command),
    /// Remove images.
    Rmi(commands::rmi::Args),
    /// Give an image another name.
    Tag(commands::tag::Args),
    /// Show the history of an image.
    History(commands::history::Args),
    /// Push an image to a registry.
    Push(commands::push::Args),
    /// Save images to a tar archive (OCI and docker-archive at once).
    Save(commands::save::Args),
    /// Create and run a new container from an image.
    Run(commands::container::run::RunArgs),
    /// Create a new container.
    Create(commands::container::run::CreateArgs),
    /// Start one or more stopped containers.
    Start(commands::container::run::StartArgs),
    /// Stop one or more running containers.
    Stop(commands::container::manage::StopArgs),
    /// Restart one or more containers.
    Restart(commands::container::manage::StopArgs),
    /// Kill one or more running containers.
    Kill(commands::container::manage::KillArgs),
    /// Remove one or more containers.
    Rm(commands::container::manage::RmArgs),
    /// List containers.
    Ps(commands::container::ps::Args),
    /// Fetch the logs of a container.
    Logs(commands::container::logs::Args),
    /// Run a command in a running container.
    Exec(commands::container::exec::Args),
    /// Attach local standard input, output and error to a running container.
    Attach(commands::container::attach::Args),
    /// Display detailed information on containers.
    Inspect(commands::container::inspect::Args),
    /// List port mappings of a container.
    Port(commands::container::manage::PortArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(commands::container::manage::ContainersArgs),
    /// Display a live stream of containers' resource usage (CPU, memory, network, block I/O, pids).
    Stats(commands::container::stats::Args),
    /// Copy files between a container and the host.
    Cp(commands::container::cp::Args),
    /// Display the running processes of a container.
    Top(commands::container::manage::TopArgs),
    /// Rename a container.
    Rename(commands::container::manage::RenameArgs),
    /// Pause all processes within containers.
    Pause(commands::container::manage::ContainersArgs),
    /// Unpause all processes within containers.
    Unpause(commands::container::manage::ContainersArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(commands::container::manage::ContainerCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(commands::network::Command),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(commands::volume::Command),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(commands::completion::Args),
    /// Write man pages for every command into DIR.
    #[command(hide = true)]
    Man(commands::completion::ManArgs),
}

/// Parses the command line, runs the command and maps errors to Docker's exit codes.
pub fn main() -> ExitCode {
    // burrow's self-exec helpers (log driver, OCI hooks, background helpers) skip the CLI.
    if let Some(code) = commands::internal::intercept(&std::env::args_os().collect::<Vec<_>>()) {
        return code;
    }
    let cli = parse(std::env::args_os().collect());
    let raw = RawGlobals {
        config: cli.config,
        address: cli.address,
        namespace: cli.namespace,
        data_root: cli.data_root,
        debug: cli.debug,
        snapshotter: cli.snapshotter,
        cgroup_manager: cli.cgroup_manager,
    };
    let result = Globals::load(raw, &UserEnv::current())
        .map_err(anyhow::Error::from)
        .and_then(|g| {
            commands::init_logging(g.debug);
            dispatch(cli.command, &g)
        });
    match result {
        Ok(code) => code,
        // Docker and nerdctl exit 125 when the CLI or the daemon failed, 126/127 when the
        // runtime could not start the process.
        Err(err) => commands::error::Failure::from(err).report(),
    }
}

/// Parses the command line. The top-level flags are not clap `global` arguments, which clap
/// copies into every subcommand at every start (~0.4 ms of a 3 ms `ps`). They are still taken
/// after the subcommand, as nerdctl's are: when clap rejects one there, it is moved in front of
/// the subcommand and the line parsed again (a subcommand's own flag of that name wins).
fn parse(mut args: Vec<OsString>) -> Cli {
    loop {
        match Cli::try_parse_from(&args) {
            Ok(cli) => return cli,
            Err(err) => match hoist_top_level_flag(&args, &err) {
                Some(fixed) => args = fixed,
                None => err.exit(),
            },
        }
    }
}

/// The command line with the top-level flag that `err` rejects (its first use after the
/// subcommand, with its value) moved in front of the subcommand; None when `err` is about
/// something else. Each call moves one flag from behind the subcommand to before it, so
/// `parse` ends.
fn hoist_top_level_flag(args: &[OsString], err: &clap::Error) -> Option<Vec<OsString>> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(bad)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let cmd = Cli::command();
    // The top-level flag a word is, and how many words it takes (its value unless attached).
    let flag = |word: &OsString| -> Option<(&clap::Arg, usize)> {
        let word = word.to_string_lossy();
        let arg = cmd.get_arguments().find(|a| {
            let long = a.get_long().map(|l| format!("--{l}"));
            let short = a.get_short().map(|c| format!("-{c}"));
            long.as_deref() == word.split('=').next()
                || short.as_deref().is_some_and(|s| word.starts_with(s))
        })?;
        let attached = word.contains('=') || (!word.starts_with("--") && word.len() > 2);
        Some((
            arg,
            if arg.get_action().takes_values() && !attached {
                2
            } else {
                1
            },
        ))
    };
    // clap names the flag (`--address` for `--address=/x`, `-n` for `-nfoo`).
    let (wanted, _) = flag(&OsString::from(bad))?;
    // The subcommand: the first word that is not a top-level flag or its value. Earlier uses of
    // the flag being moved go: the one after the subcommand was the later, and wins.
    let mut fixed: Vec<OsString> = vec![args[0].clone()];
    let mut sub = 1;
    while let Some((arg, n)) = args.get(sub).and_then(&flag) {
        let end = (sub + n).min(args.len());
        if arg.get_id() != wanted.get_id() {
            fixed.extend_from_slice(&args[sub..end]);
        }
        sub = end;
    }
    let (at, n) = (sub + 1..args.len()).find_map(|i| {
        let (arg, n) = flag(&args[i])?;
        (arg.get_id() == wanted.get_id()).then_some((i, n))
    })?;
    let end = at + n;
    if end > args.len() {
        return None;
    }
    fixed.extend_from_slice(&args[at..end]);
    fixed.extend_from_slice(&args[sub..at]);
    fixed.extend_from_slice(&args[end..]);
    Some(fixed)
}

fn dispatch(command: Command, g: &Globals) -> anyhow::Result<ExitCode> {
    match command {
        Command::Version(args) => commands::version::run(args, g),
        Command::Info(args) => commands::info::run(args, g),
        Command::Setup(cmd) => commands::setup::run(cmd, g),
        Command::Load(args) => commands::load::run(args, g),
        Command::Pull(args) => commands::pull::run(args, g),
        Command::Login(args) => commands::login::login(args),
        Command::Logout(args) => commands::login::logout(args),
        Command::Images(args) => commands::images::run(args, g),
        Command::Image(cmd) => commands::image::run(cmd, g),
        Command::Rmi(args) => commands::rmi::run(args, g),
        Command::Tag(args) => commands::tag::run(args, g),
        Command::History(args) => commands::history::run(args, g),
        Command::Push(args) => commands::push::run(args, g),
        Command::Save(args) => commands::save::run(args, g),
        Command::Run(args) => commands::container::run::run(args, g),
        Command::Create(args) => commands::container::run::create(args, g),
        Command::Start(args) => commands::container::run::start(args, g),
        Command::Stop(args) => commands::container::manage::stop(args, g),
        Command::Restart(args) => commands::container::manage::restart(args, g),
        Command::Kill(args) => commands::container::manage::kill(args, g),
        Command::Rm(args) => commands::container::manage::rm(args, g),
        Command::Ps(args) => commands::container::ps::run(args, g),
        Command::Logs(args) => commands::container::logs::run(args, g),
        Command::Exec(args) => commands::container::exec::run(args, g),
        Command::Attach(args) => commands::container::attach::run(args, g),
        Command::Inspect(args) => commands::container::inspect::run(args, g),
        Command::Port(args) => commands::container::manage::port(args, g),
        Command::Wait(args) => commands::container::manage::wait(args, g),
        Command::Top(args) => commands::container::manage::top(args, g),
        Command::Cp(args) => commands::container::cp::run(args, g),
        Command::Stats(args) => commands::container::stats::run(args, g),
        Command::Rename(args) => commands::container::manage::rename(args, g),
        Command::Pause(args) => commands::container::manage::pause(args, g, false),
        Command::Unpause(args) => commands::container::manage::pause(args, g, true),
        Command::Container(cmd) => commands::container::manage::container(cmd, g),
        Command::Network(cmd) => commands::network::run(cmd, g),
        Command::Volume(cmd) => commands::volume::run(cmd, g),
        Command::Completion(args) => commands::completion::run(args, Cli::command()),
        Command::Man(args) => commands::completion::run_man(args, Cli::command()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Catches flag clashes inside each command at test time.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parsed(line: &str) -> Cli {
        parse(
            std::iter::once("burrow")
                .chain(line.split_whitespace())
                .map(OsString::from)
                .collect(),
        )
    }

    #[test]
    fn top_level_flags_work_after_the_subcommand_too() {
        let cli = parsed("ps -a --namespace k8s.io --debug --address=/run/x.sock");
        assert_eq!(cli.namespace.as_deref(), Some("k8s.io"));
        assert!(cli.debug);
        assert_eq!(cli.address, Some(PathBuf::from("/run/x.sock")));
        assert!(matches!(cli.command, Command::Ps(ref a) if a.all));
        let cli = parsed("-n one setup install -ntwo");
        assert_eq!(
            cli.namespace.as_deref(),
            Some("two"),
            "the later one wins, as before"
        );
        let cli = parsed("volume ls --data-root /d");
        assert_eq!(cli.data_root, Some(PathBuf::from("/d")));
        assert!(matches!(cli.command, Command::Volume(_)));
    }

    #[test]
    fn a_containers_own_arguments_stay_where_they_are() {
        let cli = parsed("run --rm --debug img sh -c echo --namespace x");
        assert!(cli.debug);
        assert_eq!(cli.namespace, None);
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.flags.image, "img");
        assert_eq!(run.flags.args, ["sh", "-c", "echo", "--namespace", "x"]);
    }

    #[test]
    fn unknown_flags_are_still_errors() {
        let args: Vec<OsString> = ["burrow", "ps", "--nonsense"].map(OsString::from).into();
        let err = Cli::try_parse_from(&args).unwrap_err();
        assert!(hoist_top_level_flag(&args, &err).is_none());
        // A top-level flag without its value is not moved (clap then says what is missing).
        let args: Vec<OsString> = ["burrow", "ps", "--address"].map(OsString::from).into();
        let err = Cli::try_parse_from(&args).unwrap_err();
        assert!(hoist_top_level_flag(&args, &err).is_none());
    }
}
