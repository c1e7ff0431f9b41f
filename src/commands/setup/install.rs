//! `burrow setup install`: writes the rootless containerd's config and service, starts it, waits until it answers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use burrow::connection::Globals;
use burrow::setup::install::{self, InstallOptions, Installed, Notice};
use burrow::setup::service::Manager;

use super::NetArg;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
#[command(after_help = "\
The global --data-root DIR puts containerd's images and snapshots in DIR/containerd and burrow's
own state in DIR/nerdctl (use a local disk on hosts whose home is on NFS, Lustre or GPFS); it is
remembered in ~/.config/burrow/burrow.toml.

Running install again is safe: an unchanged, running install returns at once; a changed one is
rewritten and restarted.")]
pub struct Args {
    /// Run containerd as a background service supervised by burrow, even where a systemd user manager runs.
    #[arg(long)]
    pub no_systemd: bool,
    /// Replace a rootless containerd set up by something else (its files are kept as FILE.burrow-backup).
    #[arg(long)]
    pub force: bool,
    /// The RootlessKit-compatible launcher [default: burrow-rootlesskit next to burrow, else on PATH].
    #[arg(long, env = "BURROW_LAUNCHER", value_name = "PATH")]
    pub launcher: Option<PathBuf>,
    /// The namespace's network: builtin (burrow's embedded userspace stack, the fastest) or
    /// slirp4netns (the external program, as RootlessKit's default setup uses).
    #[arg(long, value_enum, default_value_t = NetArg::Builtin)]
    pub net: NetArg,
    /// Let containers reach the host's loopback (127.0.0.1) at the gateway 10.0.2.2, as
    /// RootlessKit does without --disable-host-loopback. Off by default: with it every service
    /// listening on the host's loopback is reachable from every container.
    #[arg(long)]
    pub host_loopback: bool,
    /// Keep containerd in the host's network namespace and the containers' networks in a
    /// detached one (RootlessKit's --detach-netns): `--network host` is then the host's own
    /// network, and pulls from 127.0.0.1 reach the host's registries directly.
    #[arg(long)]
    pub detach_netns: bool,
    /// Also install and start the socket-bypass service for `burrow run --bypass` (kept by later
    /// installs; removed by uninstall).
    #[arg(long)]
    pub bypass: bool,
    /// The burrow-bypass binary [default: next to burrow, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub bypass_binary: Option<PathBuf>,
    /// Also install the Docker Engine API on $XDG_RUNTIME_DIR/burrow/docker.sock for the docker
    /// CLI, Compose and the SDKs: a socket-activated systemd user unit (burrow-docker.socket),
    /// or a supervised service without systemd (kept by later installs; removed by uninstall).
    #[arg(long)]
    pub docker_api: bool,
    /// Seconds to wait for containerd to answer.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
}

// `setup install-bypass`.
#[derive(Debug, clap::Args)]
pub struct BypassArgs {
    /// The burrow-bypass binary [default: next to burrow, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub bypass_binary: Option<PathBuf>,
    /// Seconds to wait for containerd to answer.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let opts = InstallOptions {
        no_systemd: args.no_systemd,
        force: args.force,
        launcher: args.launcher,
        net: args.net.into(),
        host_loopback: args.host_loopback,
        detach_netns: args.detach_netns,
        bypass: args.bypass,
        bypass_binary: args.bypass_binary,
        docker_api: args.docker_api,
        timeout: Duration::from_secs(args.timeout),
    };
    install_and_print(g, &opts)
}

/// `setup install --bypass` with the installed setup's manager and network.
pub fn run_bypass(args: BypassArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    let opts = install::bypass_options(g, args.bypass_binary, Duration::from_secs(args.timeout))?;
    install_and_print(g, &opts)
}

fn install_and_print(g: &Globals, opts: &InstallOptions) -> anyhow::Result<ExitCode> {
    let done = install::install(g, opts, &mut print_notice)?;
    print_installed(&done);
    Ok(ExitCode::SUCCESS)
}

fn print_notice(n: Notice) {
    match n {
        Notice::NoSystemd { why } => {
            println!("no systemd user manager ({why}): using a supervised background service")
        }
        Notice::OwnBurrowToml { path, wanted } => println!(
            "note: your own lines in {} set these keys otherwise, so they stay as you wrote them; for this host setup would have written:\n{}",
            path.display(),
            wanted
                .iter()
                .map(|x| format!("    {x}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn print_installed(done: &Installed) {
    let l = &done.layout;
    for change in &done.changes {
        println!("{change}");
    }
    println!(
        "rootless containerd {} answers on {} ({} service{}, up in {:.1}s)",
        done.version,
        l.socket.display(),
        match done.manager {
            Manager::Systemd => "systemd user",
            Manager::Supervised => "supervised",
        },
        if done.changes.is_empty() {
            ", unchanged"
        } else {
            ""
        },
        done.elapsed.as_secs_f64()
    );
    println!(
        "data: {}; logs: {} (burrow setup logs)",
        l.data_dir.display(),
        l.log.display()
    );
    if done.bypass.is_some() {
        println!(
            "socket bypass: burrow-bypass answers on {} (burrow run --bypass ...)",
            l.bypass_socket.display()
        );
    }
    if let Some(sock) = &done.docker_api {
        let how = match done.manager {
            Manager::Systemd => "burrow-docker.socket; the service starts on the first connection",
            Manager::Supervised => "supervised",
        };
        println!(
            "Docker API: unix://{} ({how}); point docker, Compose and the SDKs at it:",
            sock.display()
        );
        println!("export DOCKER_HOST=unix://{}", sock.display());
    }
    if done.manager == Manager::Supervised {
        println!(
            "to start it at login, add this line to ~/.profile: {} setup supervise --background",
            done.burrow.display()
        );
    }
    println!("next: burrow info; burrow run -d -p 8080:80 nginx");
}
