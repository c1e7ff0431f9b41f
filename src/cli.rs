//! Top-level argument parsing, global flags and dispatch.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands;
use burrow::connection::{Globals, RawGlobals, UserEnv};

/// burrow: rootless-first containers with a Docker/nerdctl-compatible CLI on containerd.
#[derive(Debug, Parser)]
#[command(mut_args(crate::commands::flags::go_bool))]
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
    /// Import the contents from a tarball to create a filesystem image.
    Import(commands::import::Args),
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
    /// Search Docker Hub, or a registry's catalog (REGISTRY/TERM), for repositories.
    Search(commands::search::Args),
    /// Make, inspect and push manifest lists (multi-platform images).
    #[command(subcommand)]
    Manifest(commands::manifest::Command),
    /// Push an image to a registry.
    Push(commands::push::Args),
    /// Save images to a tar archive (OCI and docker-archive at once).
    Save(commands::save::Args),
    /// Build an image from a Dockerfile.
    Build(commands::build::Args),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(commands::build::BuilderCommand),
    /// List containers.
    Ps(commands::container::ps::Args),
    /// Remove one or more containers.
    Rm(commands::container::manage::RmArgs),
    #[command(flatten)]
    Containers(commands::container::group::Command),
    /// Manage containers.
    #[command(subcommand)]
    Container(commands::container::group::Group),
    /// Manage networks.
    #[command(subcommand)]
    Network(commands::network::Command),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(commands::volume::Command),
    /// Define and run multi-container applications from Compose files.
    Compose(commands::compose::Args),
    /// Stream container and image events (from now on: containerd keeps no history).
    Events(commands::events::Args),
    /// Manage burrow: info, prune, events.
    #[command(subcommand)]
    System(commands::system::Command),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(commands::completion::Args),
    /// srun with pyxis's container flags: each task runs in a container (--container-image,
    /// --container-mounts, --container-workdir, --container-name); see docs/hpc.md.
    Srun(commands::srun::Args),
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
    let cli = match parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return usage_exit_code(&err);
        }
    };
    let raw = RawGlobals {
        config: cli.config,
        address: cli.address,
        namespace: cli.namespace,
        data_root: cli.data_root,
        debug: cli.debug,
        snapshotter: cli.snapshotter,
        cgroup_manager: cli.cgroup_manager,
    };
    // Docker's exit code for a failure: 125 for run and create, 1 for the others.
    let fail = {
        let container_run = runs_a_container(&cli.command);
        move |err: anyhow::Error| {
            let f = commands::error::Failure::from(err);
            match container_run {
                true => f.report(),
                false => f.outside_run().report(),
            }
        }
    };
    // Inside a Slurm job, the job's own containerd on node-local disk (see burrow::slurm).
    let job = burrow::slurm::Job::current();
    if let Some(j) = &job {
        if let Err(e) = j.enter() {
            return fail(e.into());
        }
    }
    let result = Globals::load(raw, &UserEnv::current())
        .map_err(anyhow::Error::from)
        .and_then(|g| {
            commands::init_logging(g.debug);
            if let Some(j) = job.as_ref().filter(|_| needs_engine(&cli.command)) {
                j.ensure_running(&g, &|line| eprintln!("{line}"))?;
            }
            dispatch(cli.command, &g)
        });
    match result {
        Ok(code) => code,
        // `docker run` exits 125 when the CLI or the daemon failed, 126/127 when the runtime
        // could not start the process; other commands 1.
        Err(err) => fail(err),
    }
}

/// Whether the command runs or creates a container (`run`, `create`, `container run|create`),
/// whose failures exit 125 as Docker's do.
fn runs_a_container(command: &Command) -> bool {
    use commands::container::group::{Command as Ctr, Group};
    matches!(
        command,
        Command::Containers(Ctr::Run(_) | Ctr::Create(_))
            | Command::Container(Group::Same(Ctr::Run(_) | Ctr::Create(_)))
    )
}

/// Whether the command talks to containerd (in a Slurm job, the job's is started first).
fn needs_engine(command: &Command) -> bool {
    !matches!(
        command,
        Command::Setup(_)
            | Command::Completion(_)
            | Command::Man(_)
            | Command::Login(_)
            | Command::Logout(_)
            | Command::Srun(_)
    )
}

/// Parses the command line. The top-level flags are not clap `global` arguments, which clap
/// copies into every subcommand at every start (~0.4 ms of a 3 ms `ps`). They are still taken
/// after the subcommand, as nerdctl's are: when clap rejects one there, it is moved in front of
/// the subcommand and the line parsed again (a subcommand's own flag of that name wins).
/// A line clap does not take is clap's error, with the usage of the command it names.
fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let mut args = end_flags_after_operand(args);
    loop {
        match Cli::try_parse_from(&args) {
            Ok(cli) => return Ok(cli),
            Err(err) => match hoist_top_level_flag(&args, &err) {
                Some(fixed) => args = fixed,
                None => return Err(with_own_usage(err, &args)),
            },
        }
    }
}

/// Docker's exit code for a command line that was not run: 0 for help and version (also the
/// help a command group prints when named alone, as `docker container` does), 125 for a usage
/// error (unknown flag, missing or bad value), where clap's own would be 2.
fn usage_exit_code(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::SUCCESS,
        _ => ExitCode::from(125),
    }
}

/// `err` with the usage line of the command `args` names, as its `--help` shows it: clap's
/// errors show a usage built from the words given (`burrow run --rm <IMAGE> [ARGS]...`,
/// `burrow stop <CONTAINERS>...` without its options). Errors without a usage stay so.
fn with_own_usage(mut err: clap::Error, args: &[OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    if err.get(ContextKind::Usage).is_none() {
        return err;
    }
    let mut cmd = Cli::command();
    // Every command built, for their names and usages: only on this error path.
    cmd.build();
    let mut words = args.iter().skip(1);
    // The top-level flags before the subcommand, and their values.
    let mut next = words.next();
    while let Some((_, n)) = next.and_then(|w| top_level_flag(&cmd, w)) {
        next = words.nth(n - 1);
    }
    // Then the subcommand's name, its subcommand's, ... (aliases too).
    let mut path = Vec::new();
    let mut named = &cmd;
    while let Some(sub) = next.and_then(|w| named.find_subcommand(w)) {
        path.push(sub.get_name().to_string());
        named = sub;
        next = words.next();
    }
    let named = path.iter().fold(&mut cmd, |c, name| {
        c.find_subcommand_mut(name).expect("found above")
    });
    err.insert(
        ContextKind::Usage,
        ContextValue::StyledStr(named.render_usage()),
    );
    err
}

/// Commands whose own flags end at their first operand, as Docker's (`SetInterspersed(false)`):
/// every word after the image of `run`/`create`, the container of `exec`/`top`, the service of
/// `compose run`/`compose exec` is the command's, flags included (`docker run IMAGE -e x` passes
/// `-e x` to the container; clap would take `-e x` as run's own flag).
const FLAGS_END_AT_OPERAND: &[&[&str]] = &[
    &["run"],
    &["create"],
    &["exec"],
    &["top"],
    &["container", "run"],
    &["container", "create"],
    &["container", "exec"],
    &["container", "top"],
    &["compose", "run"],
    &["compose", "exec"],
];

/// For the commands of [`FLAGS_END_AT_OPERAND`]: a `--` right after their first operand, so that
/// clap leaves every word after it to the command.
fn end_flags_after_operand(mut args: Vec<OsString>) -> Vec<OsString> {
    let mut cmd = Cli::command();
    let mut i = 1;
    while let Some((_, n)) = args.get(i).and_then(|w| top_level_flag(&cmd, w)) {
        i += n;
    }
    // Only lines that may name one of them pay for building clap's tree.
    let Some(first) = args.get(i).and_then(|w| cmd.find_subcommand(w)) else {
        return args;
    };
    let first = first.get_name().to_string();
    if !FLAGS_END_AT_OPERAND.iter().any(|p| p[0] == first) {
        return args;
    }
    // Subcommands' flags exist only once built (the derive defers them).
    cmd.build();
    let mut sub = cmd.find_subcommand(&first).expect("found before the build");
    let mut path = vec![first];
    i += 1;
    // Down the subcommand path (`compose -f x.yml run`) over each level's own flags, to the
    // first operand of a command of the table.
    let mut ends = FLAGS_END_AT_OPERAND.contains(&[path[0].as_str()].as_slice());
    while let Some(word) = args.get(i) {
        let w = word.to_string_lossy();
        if w == "--" {
            return args;
        }
        if !w.starts_with('-') || w == "-" {
            if ends {
                // The operand; a `--` after it unless nothing follows.
                if i + 1 < args.len() {
                    args.insert(i + 1, OsString::from("--"));
                }
                return args;
            }
            let Some(next) = sub.find_subcommand(word) else {
                return args;
            };
            path.push(next.get_name().to_string());
            let names: Vec<&str> = path.iter().map(String::as_str).collect();
            ends = FLAGS_END_AT_OPERAND.contains(&names.as_slice());
            sub = next;
            i += 1;
            continue;
        }
        i += flag_width(sub, &w)
            .or_else(|| top_level_flag(&cmd, word).map(|(_, n)| n))
            .unwrap_or(1);
    }
    args
}

/// How many words the flag `word` of `cmd` takes: 2 when its value is the next word, else 1
/// (value attached, a Go boolean, or a cluster of short flags); None when `cmd` has no such flag.
fn flag_width(cmd: &clap::Command, word: &str) -> Option<usize> {
    let takes_next = |a: &clap::Arg| a.get_action().takes_values() && !a.is_require_equals_set();
    if let Some(long) = word.strip_prefix("--") {
        let (name, attached) = match long.split_once('=') {
            Some((n, _)) => (n, true),
            None => (long, false),
        };
        let arg = cmd.get_arguments().find(|a| {
            a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|v| v.contains(&name))
        })?;
        return Some(if takes_next(arg) && !attached { 2 } else { 1 });
    }
    let chars: Vec<char> = word.trim_start_matches('-').chars().collect();
    for (k, c) in chars.iter().enumerate() {
        if *c == '=' {
            return Some(1);
        }
        let arg = cmd.get_arguments().find(|a| a.get_short() == Some(*c))?;
        if takes_next(arg) {
            // Its value is the rest of this word, or the next word.
            return Some(if k + 1 < chars.len() { 1 } else { 2 });
        }
    }
    Some(1)
}

/// The top-level flag `word` is, with how many words it takes (its value too unless attached).
fn top_level_flag<'c>(cmd: &'c clap::Command, word: &OsString) -> Option<(&'c clap::Arg, usize)> {
    let word = word.to_string_lossy();
    if !word.starts_with('-') || word == "-" || word == "--" {
        return None;
    }
    let arg = cmd.get_arguments().find(|a| {
        let long = a.get_long().map(|l| format!("--{l}"));
        let short = a.get_short().map(|c| format!("-{c}"));
        long.as_deref() == word.split('=').next()
            || short.as_deref().is_some_and(|s| word.starts_with(s))
    })?;
    let attached = word.contains('=') || (!word.starts_with("--") && word.len() > 2);
    // A Go boolean (`--debug`) takes its value only attached (`--debug=false`).
    let n = if arg.get_action().takes_values() && !arg.is_require_equals_set() && !attached {
        2
    } else {
        1
    };
    Some((arg, n))
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
    let flag = |word: &OsString| top_level_flag(&cmd, word);
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
        Command::Import(args) => commands::import::run(args, g),
        Command::Pull(args) => commands::pull::run(args, g),
        Command::Login(args) => commands::login::login(args),
        Command::Logout(args) => commands::login::logout(args),
        Command::Images(args) => commands::images::run(args, g),
        Command::Srun(args) => commands::srun::run(args, g),
        Command::Image(cmd) => commands::image::run(cmd, g),
        Command::Build(a) => commands::build::run(a, g),
        Command::Builder(cmd) => commands::build::builder(cmd, g),
        Command::Rmi(args) => commands::rmi::run(args, g),
        Command::Tag(args) => commands::tag::run(args, g),
        Command::History(args) => commands::history::run(args, g),
        Command::Search(args) => commands::search::run(args, g),
        Command::Manifest(cmd) => commands::manifest::run(cmd, g),
        Command::Push(args) => commands::push::run(args, g),
        Command::Save(args) => commands::save::run(args, g),
        Command::Ps(args) => commands::container::ps::run(args, g),
        Command::Rm(args) => commands::container::manage::rm(args, g),
        Command::Containers(cmd) => commands::container::group::run(cmd, g),
        Command::Container(cmd) => commands::container::group::group(cmd, g),
        Command::Network(cmd) => commands::network::run(cmd, g),
        Command::Volume(cmd) => commands::volume::run(cmd, g),
        Command::Compose(args) => commands::compose::run(args, g),
        Command::Events(args) => commands::events::run(args, g),
        Command::System(cmd) => commands::system::run(cmd, g),
        Command::Completion(args) => commands::completion::run(args, Cli::command()),
        Command::Man(args) => commands::completion::run_man(args, Cli::command()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commands::container::group::{Command as Ctr, Group};

    /// Catches flag clashes inside each command at test time.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn args(line: &str) -> Vec<OsString> {
        std::iter::once("burrow")
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    fn parsed(line: &str) -> Cli {
        parse(args(line)).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn refused(line: &str) -> clap::Error {
        match parse(args(line)) {
            Ok(cli) => panic!("{line}: taken as {:?}", cli.command),
            Err(e) => e,
        }
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
        let Command::Containers(Ctr::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.flags.image, "img");
        assert_eq!(run.flags.args, ["sh", "-c", "echo", "--namespace", "x"]);
    }

    #[test]
    fn everything_after_the_image_is_the_containers_even_run_flags() {
        // As Docker: `docker run --entrypoint echo img -e hi` prints "hi".
        let Command::Containers(Ctr::Run(run)) =
            parsed("run --rm -e A=1 -p80:80 -it --entrypoint echo img -e hi -p 80 -d").command
        else {
            panic!("not run")
        };
        assert_eq!(run.flags.image, "img");
        assert_eq!(run.flags.args, ["-e", "hi", "-p", "80", "-d"]);
        assert_eq!(run.flags.env, ["A=1"]);
        assert_eq!(run.flags.publish, ["80:80"]);
        assert!(!run.detach && run.flags.interactive && run.flags.tty);
        for line in [
            "create img -P",
            "container create img -P",
            "--debug container create --name=x img -P",
        ] {
            let (Command::Containers(Ctr::Create(create))
            | Command::Container(Group::Same(Ctr::Create(create)))) = parsed(line).command
            else {
                panic!("{line}: not create")
            };
            assert_eq!(create.flags.image, "img", "{line}");
            assert_eq!(create.flags.args, ["-P"], "{line}");
            assert!(!create.flags.publish_all, "{line}");
        }
        // A `--` after the image is the container's too (Docker's flag parser stops at the
        // image and passes the rest on as it is); one before the image ends run's flags.
        let Command::Containers(Ctr::Run(run)) = parsed("run img -- ls").command else {
            panic!("not run")
        };
        assert_eq!(run.flags.args, ["--", "ls"]);
        let Command::Containers(Ctr::Run(run)) = parsed("run --rm -- img -e x").command else {
            panic!("not run")
        };
        assert_eq!(
            (run.flags.image.as_str(), &run.flags.args[..]),
            ("img", &["-e".to_string(), "x".to_string()][..])
        );
    }

    #[test]
    fn everything_after_the_container_or_service_is_the_commands() {
        // `docker exec c -e x` runs `-e x`; the top-level flags still work before the operand.
        for (line, env) in [
            ("exec c -e x", &[][..]),
            ("exec --debug -e A=1 c -e x", &["A=1"][..]),
            ("container exec -e A=1 c -e x", &["A=1"][..]),
        ] {
            let (Command::Containers(Ctr::Exec(exec))
            | Command::Container(Group::Same(Ctr::Exec(exec)))) = parsed(line).command
            else {
                panic!("{line}: not exec")
            };
            assert_eq!(exec.container, "c", "{line}");
            assert_eq!(exec.command, ["-e", "x"], "{line}");
            assert_eq!(exec.env, env, "{line}: exec's own -e");
        }
        let Command::Containers(Ctr::Top(top)) = parsed("top c -e -o pid").command else {
            panic!("not top")
        };
        assert_eq!(top.ps_args, ["-e", "-o", "pid"]);
        use commands::compose::Command as Compose;
        let cli = parsed("compose -f x.yml -p p run --rm -e A=1 web -e B -T --rm");
        let Command::Compose(compose) = cli.command else {
            panic!("not compose")
        };
        let Compose::Run(run) = compose.command else {
            panic!("not compose run")
        };
        assert_eq!(run.service, "web");
        assert_eq!(run.command, ["-e", "B", "-T", "--rm"]);
        let Command::Compose(compose) = parsed("compose exec -T web -T ls").command else {
            panic!("not compose")
        };
        let Compose::Exec(exec) = compose.command else {
            panic!("not compose exec")
        };
        assert!(exec.no_tty);
        assert_eq!(
            (exec.service.as_str(), &exec.command[..]),
            ("web", &["-T".to_string(), "ls".to_string()][..])
        );
        // Other commands are left as they are.
        assert_eq!(
            end_flags_after_operand(["burrow", "logs", "c", "-f"].map(OsString::from).into()),
            ["burrow", "logs", "c", "-f"].map(OsString::from)
        );
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

    /// The container command a line runs, whichever way it is named.
    fn container_command(line: &str) -> String {
        match parsed(line).command {
            Command::Containers(c) | Command::Container(Group::Same(c)) => format!("{c:?}"),
            Command::Ps(a) | Command::Container(Group::Ls(a)) => format!("ps {a:?}"),
            Command::Rm(a) | Command::Container(Group::Rm(a)) => format!("rm {a:?}"),
            other => panic!("{line}: not a container command: {other:?}"),
        }
    }

    #[test]
    fn dockers_noun_forms_are_the_top_level_commands() {
        for (group, top) in [
            ("container run --rm img true", "run --rm img true"),
            ("container create --name a img", "create --name a img"),
            ("container start -a c", "start -a c"),
            ("container stop -t 3 c", "stop -t 3 c"),
            ("container restart c", "restart c"),
            ("container kill -s TERM c", "kill -s TERM c"),
            ("container logs -f c", "logs -f c"),
            ("container exec -it c sh", "exec -it c sh"),
            ("container attach c", "attach c"),
            ("container inspect c", "inspect c"),
            ("container port c 80", "port c 80"),
            ("container wait c", "wait c"),
            ("container stats --no-stream", "stats --no-stream"),
            ("container cp c:/a b", "cp c:/a b"),
            ("container top c", "top c"),
            ("container rename a b", "rename a b"),
            ("container pause c", "pause c"),
            ("container unpause c", "unpause c"),
            ("container ls -a", "ps -a"),
            ("container list -a", "ps -a"),
            ("container ps -a", "ps -a"),
            ("container rm -f c", "rm -f c"),
            ("container remove -f c", "rm -f c"),
        ] {
            assert_eq!(container_command(group), container_command(top), "{group}");
        }
        assert!(matches!(
            parsed("container prune -f").command,
            Command::Container(Group::Prune(_))
        ));
        for line in ["image list", "image ls", "image remove x", "image rm x"] {
            assert!(matches!(parsed(line).command, Command::Image(_)), "{line}");
        }
        for line in [
            "network list",
            "network remove n",
            "volume list",
            "volume remove v",
        ] {
            let cli = parsed(line);
            assert!(matches!(
                cli.command,
                Command::Network(_) | Command::Volume(_)
            ));
        }
    }

    #[test]
    fn events_and_system_events_are_one_command() {
        let Command::Events(a) = parsed("events -f type=container --filter event=die").command
        else {
            panic!("not events")
        };
        assert_eq!(a.filter, ["type=container", "event=die"]);
        assert!(matches!(
            parsed("system events --until 10s --format json").command,
            Command::System(commands::system::Command::Events(ref a))
                if a.until.as_deref() == Some("10s") && a.format.as_deref() == Some("json")
        ));
    }

    #[test]
    fn the_container_group_lists_its_commands() {
        let mut cmd = Cli::command();
        cmd.build();
        let group = cmd.find_subcommand_mut("container").unwrap();
        let help = group.render_help().to_string();
        for name in ["run", "ls", "rm", "exec", "logs", "prune", "stats", "cp"] {
            assert!(help.contains(&format!("\n  {name} ")), "{name} in {help}");
        }
    }

    #[test]
    fn command_local_short_flags_of_docker() {
        use clap::error::ErrorKind;
        // -h is --hostname for run and create; --help stays help.
        let Command::Containers(Ctr::Run(run)) = parsed("run -h box --rm img").command else {
            panic!("not run")
        };
        assert_eq!(run.flags.hostname.as_deref(), Some("box"));
        let Command::Container(Group::Same(Ctr::Create(create))) =
            parsed("container create -h box img").command
        else {
            panic!("not create")
        };
        assert_eq!(create.flags.hostname.as_deref(), Some("box"));
        assert_eq!(refused("run --help").kind(), ErrorKind::DisplayHelp);
        assert_eq!(refused("ps -h").kind(), ErrorKind::DisplayHelp);
        // logs -n is --tail, ps -n is --last, ps -l is --latest.
        let cli = parsed("logs -n 5 c");
        assert_eq!(cli.namespace, None);
        let Command::Containers(Ctr::Logs(logs)) = cli.command else {
            panic!("not logs")
        };
        assert_eq!(logs.tail, "5");
        let cli = parsed("-n k8s.io ps -n 2 -l");
        assert_eq!(cli.namespace.as_deref(), Some("k8s.io"));
        assert!(matches!(cli.command, Command::Ps(ref a) if a.last == 2 && a.latest));
        // Where the command has no -n, -n after it is still the namespace.
        let cli = parsed("exec -n k8s.io c sh");
        assert_eq!(cli.namespace.as_deref(), Some("k8s.io"));
        let cli = parsed("container logs --namespace k8s.io -n 1 c");
        assert_eq!(cli.namespace.as_deref(), Some("k8s.io"));
    }

    #[test]
    fn go_boolean_forms() {
        let Command::Containers(Ctr::Run(run)) =
            parsed("run --rm=true -d=false --privileged=false --tty=true -i=false img").command
        else {
            panic!("not run")
        };
        assert!(run.rm && run.flags.tty);
        assert!(!run.detach && !run.flags.privileged && !run.flags.interactive);
        // A bare boolean does not take the next word: `false` is the image here, as in Go.
        let Command::Containers(Ctr::Run(run)) =
            parsed("run -it --sig-proxy=false --rm false").command
        else {
            panic!("not run")
        };
        assert!(run.rm && run.flags.interactive && run.flags.tty && !run.flags.sig_proxy);
        assert_eq!(run.flags.image, "false");
        assert!(!parsed("--debug=false ps").debug);
        assert!(matches!(parsed("ps --all=false").command, Command::Ps(ref a) if !a.all));
    }

    /// Every boolean flag of every command takes Go's `=BOOL` (see commands::flags).
    #[test]
    fn no_boolean_flag_misses_the_go_forms() {
        fn walk(cmd: &clap::Command, path: &str, found: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if matches!(a.get_action(), clap::ArgAction::SetTrue) {
                    found.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut found = Vec::new();
        walk(&cmd, "burrow", &mut found);
        assert!(
            found.is_empty(),
            "add #[command(mut_args(crate::commands::flags::go_bool))] to: {found:?}"
        );
    }

    #[test]
    fn run_and_create_are_the_commands_whose_failures_exit_125() {
        for line in [
            "run img",
            "create img",
            "container run img",
            "container create img",
        ] {
            assert!(runs_a_container(&parsed(line).command), "{line}");
        }
        for line in ["ps", "rm x", "pull img", "container rm x", "exec x true"] {
            assert!(!runs_a_container(&parsed(line).command), "{line}");
        }
    }

    #[test]
    fn usage_errors_exit_125_with_the_commands_own_usage() {
        for (line, usage) in [
            ("ps --nonsense", "Usage: burrow ps [OPTIONS]\n"),
            (
                "run --rm",
                "Usage: burrow run [OPTIONS] <IMAGE> [ARGS]...\n",
            ),
            ("stop", "Usage: burrow stop [OPTIONS] <CONTAINERS>...\n"),
            (
                "-n x --debug container remove",
                "Usage: burrow container rm [OPTIONS] <CONTAINERS>",
            ),
            (
                "network create",
                "Usage: burrow network create [OPTIONS] <NAME>\n",
            ),
            ("nonsense", "Usage: burrow [OPTIONS] <COMMAND>\n"),
        ] {
            let err = refused(line);
            let text = err.render().to_string();
            assert!(text.contains(usage), "{line}: {text}");
            assert_eq!(usage_exit_code(&err), ExitCode::from(125), "{line}");
        }
        let err = refused("run --rm=maybe img");
        assert_eq!(usage_exit_code(&err), ExitCode::from(125));
        for line in ["--help", "run --help", "container", "--version"] {
            assert_eq!(usage_exit_code(&refused(line)), ExitCode::SUCCESS, "{line}");
        }
    }
}
