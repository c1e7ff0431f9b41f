//! The container commands as clap subcommands, under Docker's names both ways: at the top level
//! (`burrow run`, `burrow ps`) and in the `burrow container` group (`container run`,
//! `container ls`), one definition and one dispatch for both.

use std::process::ExitCode;

use super::{attach, commit, cp, diff, exec, export, inspect, logs, manage, ps, run, stats};
use burrow::connection::Globals;

/// The container commands named the same at the top level and in `burrow container`.
#[derive(Debug, clap::Subcommand)]
// Each subcommand's arguments are built only when it runs: building all of them cost
// more than some whole commands (`ps`) take.
#[command(defer = true)]
pub enum Command {
    /// Create and run a new container from an image.
    Run(run::RunArgs),
    /// Create a new container.
    Create(run::CreateArgs),
    /// Start one or more stopped containers.
    Start(run::StartArgs),
    /// Stop one or more running containers.
    Stop(manage::StopArgs),
    /// Restart one or more containers.
    Restart(manage::StopArgs),
    /// Kill one or more running containers.
    Kill(manage::KillArgs),
    /// Fetch the logs of a container.
    Logs(logs::Args),
    /// Run a command in a running container.
    Exec(exec::Args),
    /// Attach local standard input, output and error to a running container.
    Attach(attach::Args),
    /// Display detailed information on containers.
    Inspect(inspect::Args),
    /// List port mappings of a container.
    Port(manage::PortArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(manage::ContainersArgs),
    /// Display a live stream of containers' resource usage (CPU, memory, network, block I/O, pids).
    Stats(stats::Args),
    /// Copy files between a container and the host.
    Cp(cp::Args),
    /// Create a new image from a container's changes.
    Commit(commit::Args),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(diff::Args),
    /// Export a container's filesystem as a tar archive.
    Export(export::Args),
    /// Display the running processes of a container.
    Top(manage::TopArgs),
    /// Rename a container.
    Rename(manage::RenameArgs),
    /// Update the restart policy and resource limits of containers.
    Update(manage::UpdateArgs),
    /// Pause all processes within containers.
    Pause(manage::ContainersArgs),
    /// Unpause all processes within containers.
    Unpause(manage::ContainersArgs),
}

/// `burrow container ...`: every container command, listed by name as Docker lists them.
#[derive(Debug, clap::Subcommand)]
#[command(defer = true, next_display_order = None)]
// One exists per process, the parsed command line: boxing `run`'s flags would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Group {
    #[command(flatten)]
    Same(Command),
    /// List containers.
    #[command(visible_aliases = ["list", "ps"])]
    Ls(ps::Args),
    /// Remove one or more containers.
    #[command(visible_alias = "remove")]
    Rm(manage::RmArgs),
    /// Remove all stopped containers.
    Prune(manage::PruneArgs),
}

/// Runs a container command.
pub fn run(cmd: Command, g: &Globals) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Run(args) => run::run(args, g),
        Command::Create(args) => run::create(args, g),
        Command::Start(args) => run::start(args, g),
        Command::Stop(args) => manage::stop(args, g),
        Command::Restart(args) => manage::restart(args, g),
        Command::Kill(args) => manage::kill(args, g),
        Command::Logs(args) => logs::run(args, g),
        Command::Exec(args) => exec::run(args, g),
        Command::Attach(args) => attach::run(args, g),
        Command::Inspect(args) => inspect::run(args, g),
        Command::Port(args) => manage::port(args, g),
        Command::Wait(args) => manage::wait(args, g),
        Command::Stats(args) => stats::run(args, g),
        Command::Cp(args) => cp::run(args, g),
        Command::Commit(args) => commit::run(args, g),
        Command::Diff(args) => diff::run(args, g),
        Command::Export(args) => export::run(args, g),
        Command::Top(args) => manage::top(args, g),
        Command::Rename(args) => manage::rename(args, g),
        Command::Update(args) => manage::update(args, g),
        Command::Pause(args) => manage::pause(args, g, false),
        Command::Unpause(args) => manage::pause(args, g, true),
    }
}

/// Runs a `burrow container` command.
pub fn group(cmd: Group, g: &Globals) -> anyhow::Result<ExitCode> {
    match cmd {
        Group::Same(cmd) => run(cmd, g),
        Group::Ls(args) => ps::run(args, g),
        Group::Rm(args) => manage::rm(args, g),
        Group::Prune(args) => manage::prune(args, g),
    }
}
