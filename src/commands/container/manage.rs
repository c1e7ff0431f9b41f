//! `stop`, `kill`, `restart`, `rm`, `wait`, `pause`, `unpause`, `rename`, `port`, `top` and
//! `container prune`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::Signal;

use super::{labels, Ctx, State};
use burrow::connection::Globals;

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short, long)]
    pub time: Option<u64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes too (named volumes are kept, as in Docker).
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ContainersArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    pub container: String,
    /// PORT[/PROTO] to show.
    pub port: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    pub container: String,
    /// ps options (default: -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
// Each subcommand\'s arguments are built only when it runs: building all of them cost
// more than some whole commands (`ps`) take.
#[command(defer = true)]
pub enum ContainerCommand {
    /// Remove all stopped containers.
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// A signal by name (`TERM`, `SIGTERM`) or number.
pub fn parse_signal(s: &str) -> anyhow::Result<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    let sig: Signal = name.parse().map_err(|_| {
        anyhow::anyhow!("unknown signal {s:?}: use a name such as TERM or a number")
    })?;
    Ok(sig as i32 as u32)
}

/// Stops a container: its stop signal, then SIGKILL after the timeout; the task is deleted
/// (running the poststop hook that unpublishes ports and detaches networks).
pub async fn stop_one(
    ctx: &Ctx,
    c: &containerd_client::services::v1::Container,
    timeout: Option<u64>,
) -> anyhow::Result<()> {
    // Tell containerd's restart monitor first, or it would bring the container back.
    super::set_restart_status(ctx, c, "stopped").await?;
    let st = super::state(ctx, &c.id).await?;
    if st.is_running() {
        if matches!(st, State::Paused { .. }) {
            ctx.client.resume(&c.id).await?;
        }
        let sig = parse_signal(
            c.labels
                .get(labels::STOP_SIGNAL)
                .map(String::as_str)
                .unwrap_or("TERM"),
        )?;
        let secs = timeout
            .or_else(|| {
                c.labels
                    .get(labels::STOP_TIMEOUT)
                    .and_then(|t| t.parse().ok())
            })
            .unwrap_or(10);
        ctx.client.kill_task(&c.id, sig, false).await?;
        if tokio::time::timeout(Duration::from_secs(secs), ctx.client.wait_task(&c.id))
            .await
            .is_err()
        {
            ctx.client.kill_task(&c.id, 9, false).await?;
            ctx.client.wait_task(&c.id).await?;
        }
    }
    super::delete_task_recording(ctx, &c.id).await?;
    if c.labels.get(labels::AUTO_REMOVE).map(String::as_str) == Some("true") {
        super::remove_container(ctx, c, true).await?;
        super::super::volume::remove_anonymous(ctx, &super::anonymous_volumes(c));
    }
    Ok(())
}

fn each<'a>(ctx: &'a Ctx, names: &'a [String]) -> impl Iterator<Item = &'a String> + 'a {
    let _ = ctx;
    names.iter()
}

pub fn stop(args: StopArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let mut failed = false;
        for q in each(&ctx, &args.containers) {
            let res = async {
                let c = ctx.find(q).await?;
                stop_one(&ctx, &c, args.time).await
            }
            .await;
            match res {
                Ok(()) => println!("{q}"),
                Err(e) => {
                    eprintln!("burrow: {e:#}");
                    failed = true;
                }
            }
        }
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

pub fn restart(args: StopArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    for q in &args.containers {
        let code = stop(
            StopArgs {
                time: args.time,
                containers: vec![q.clone()],
            },
            g,
        )?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    super::run::start(
        super::run::StartArgs {
            attach: false,
            interactive: false,
            containers: args.containers,
            detach_keys: None,
        },
        g,
    )
}

pub fn kill(args: KillArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    let sig = parse_signal(&args.signal)?;
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        for q in &args.containers {
            let c = ctx.find(q).await?;
            if !super::state(&ctx, &c.id).await?.is_running() {
                anyhow::bail!("cannot kill container {q}: it is not running");
            }
            ctx.client.kill_task(&c.id, sig, false).await?;
            println!("{q}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn rm(args: RmArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let mut failed = false;
        for q in &args.containers {
            let res = async {
                let c = ctx.find(q).await?;
                super::remove_container(&ctx, &c, args.force).await?;
                if args.volumes {
                    super::super::volume::remove_anonymous(&ctx, &super::anonymous_volumes(&c));
                }
                anyhow::Ok(())
            }
            .await;
            match res {
                Ok(()) => println!("{q}"),
                Err(e) => {
                    eprintln!("burrow: {e:#}");
                    failed = true;
                }
            }
        }
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

pub fn wait(args: ContainersArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        for q in &args.containers {
            let c = ctx.find(q).await?;
            let code = match super::state(&ctx, &c.id).await? {
                State::Created => anyhow::bail!("container {q} has not been started"),
                _ => ctx.client.wait_task(&c.id).await?,
            };
            println!("{code}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn pause(args: ContainersArgs, g: &Globals, resume: bool) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        for q in &args.containers {
            let c = ctx.find(q).await?;
            let r = if resume {
                ctx.client.resume(&c.id).await
            } else {
                ctx.client.pause(&c.id).await
            };
            r.with_context(|| {
                format!(
                    "{} {q} (pausing needs the freezer cgroup, which rootless containers on cgroup v1 do not have)",
                    if resume { "unpausing" } else { "pausing" }
                )
            })?;
            println!("{q}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn rename(args: RenameArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let c = ctx.find(&args.container).await?;
        let old = super::name_of(&c);
        ctx.store.reserve_name(&args.new_name, &c.id)?;
        let mut l = c.labels.clone();
        l.insert(labels::NAME.into(), args.new_name.clone());
        if let Err(e) = ctx.client.update_labels(c.clone(), l).await {
            ctx.store.release_name(&args.new_name, &c.id);
            return Err(e.into());
        }
        ctx.store.release_name(&old, &c.id);
        Ok(ExitCode::SUCCESS)
    })
}

pub fn port(args: PortArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let c = ctx.find(&args.container).await?;
        let want = args.port.as_deref().map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            (n.parse::<u16>().unwrap_or(0), proto.to_string())
        });
        let mut any = false;
        for p in super::ports_of(&c) {
            match &want {
                Some((n, proto)) => {
                    if p.container_port == *n && &p.protocol == proto {
                        println!("{}:{}", p.host_ip, p.host_port);
                        any = true;
                    }
                }
                None => {
                    println!(
                        "{}/{} -> {}:{}",
                        p.container_port, p.protocol, p.host_ip, p.host_port
                    );
                    any = true;
                }
            }
        }
        if let (Some(p), false) = (&args.port, any) {
            anyhow::bail!("no public port {p} published for {}", args.container);
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn top(args: TopArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let c = ctx.find(&args.container).await?;
        if !super::state(&ctx, &c.id).await?.is_running() {
            anyhow::bail!("container {} is not running", args.container);
        }
        let pids = ctx.client.pids(&c.id).await?;
        let list: Vec<String> = pids.iter().map(u32::to_string).collect();
        let mut cmd = std::process::Command::new("ps");
        if args.ps_args.is_empty() {
            cmd.arg("-f");
        } else {
            cmd.args(&args.ps_args);
        }
        let out = cmd
            .arg("-p")
            .arg(list.join(","))
            .output()
            .context("running ps")?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        Ok(ExitCode::SUCCESS)
    })
}

pub fn container(cmd: ContainerCommand, g: &Globals) -> anyhow::Result<ExitCode> {
    match cmd {
        ContainerCommand::Prune(_) => super::block_on(async move {
            let ctx = Ctx::connect(g).await?;
            println!("Deleted Containers:");
            for c in ctx.client.list(vec![]).await? {
                if !super::state(&ctx, &c.id).await?.is_running() {
                    super::remove_container(&ctx, &c, false).await?;
                    println!("{}", c.id);
                }
            }
            Ok(ExitCode::SUCCESS)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
    }
}
