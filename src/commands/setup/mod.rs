//! `burrow setup ...`: provision, inspect and remove the per-user rootless containerd; the work is
//! in [`burrow::setup`].

mod check;
mod child;
mod install;
mod logs;
mod nsenter;
mod status;
mod supervise;
mod uninstall;

use std::process::ExitCode;

use burrow::connection::Globals;
use burrow::setup::layout::NetDriver;

#[derive(Debug, clap::Subcommand)]
// Each subcommand\'s arguments are built only when it runs: building all of them cost
// more than some whole commands (`ps`) take.
#[command(defer = true)]
pub enum Command {
    /// Check every prerequisite of a rootless containerd and say how to fix what is missing.
    Check(check::Args),
    /// Set up (or refresh) this user's rootless containerd inside burrow-rootlesskit and start it.
    Install(install::Args),
    /// Add the socket-bypass service (burrow run --bypass) to this user's setup, keeping how it
    /// runs (systemd or supervised) and its network: `setup install --bypass` with the current
    /// choices. Installs the rootless containerd too when it is not set up yet.
    InstallBypass(install::BypassArgs),
    /// Stop and remove this user's rootless containerd (images stay unless --purge).
    Uninstall(uninstall::Args),
    /// Show whether the rootless containerd is installed, running and answering.
    Status(status::Args),
    /// Run a command inside the rootless containerd's namespaces (user, mount, network).
    Nsenter(nsenter::Args),
    /// Print the log of the rootless containerd and its launcher.
    Logs(logs::Args),
    /// Run the supervised service (no systemd): restarts launcher and containerd when they die.
    Supervise(supervise::Args),
    /// Inside the launcher: bind the user's dirs over containerd's paths and exec containerd.
    #[command(hide = true)]
    Child(child::Args),
}

pub fn run(cmd: Command, g: &Globals) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check(a) => check::run(a, g),
        Command::Install(a) => install::run(a, g),
        Command::InstallBypass(a) => install::run_bypass(a, g),
        Command::Uninstall(a) => uninstall::run(a, g),
        Command::Status(a) => status::run(a, g),
        Command::Nsenter(a) => nsenter::run(a, g),
        Command::Logs(a) => logs::run(a, g),
        Command::Supervise(a) => supervise::run(a, g),
        Command::Child(a) => child::run(a),
    }
}

/// `--net`: the network the launcher gives the rootless containerd's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NetArg {
    /// burrow's embedded userspace stack (no external program).
    #[default]
    Builtin,
    /// The slirp4netns program.
    Slirp4netns,
}

impl From<NetArg> for NetDriver {
    fn from(n: NetArg) -> NetDriver {
        match n {
            NetArg::Builtin => NetDriver::Builtin,
            NetArg::Slirp4netns => NetDriver::Slirp4netns,
        }
    }
}
