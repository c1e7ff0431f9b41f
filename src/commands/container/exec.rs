//! `burrow exec`: a new process in a running container (the container's process spec with the
//! given args, env, user and cwd), attached through FIFOs or detached; and the terminal
//! helpers shared with `run -t` (raw mode through stty, the initial pty size).

use std::process::ExitCode;

use anyhow::Context;

use super::stdio::{start_failure_code, Attached};
use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::lifecycle::Stdio;

// `burrow exec` (its help text is on the subcommand).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Detached mode: run the command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Username or UID (uid[:gid] only).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Keys that detach from the command and leave it running (with -i; ctrl-p,ctrl-q by
    /// default with -it).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The terminal in raw mode until dropped (through `stty`, so no termios code here).
pub struct RawTerminal {
    saved: String,
}

impl RawTerminal {
    pub fn enter() -> Option<RawTerminal> {
        let out = std::process::Command::new("stty")
            .arg("-g")
            .stdin(std::process::Stdio::inherit())
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let saved = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let ok = std::process::Command::new("stty")
            .args(["raw", "-echo"])
            .stdin(std::process::Stdio::inherit())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = std::process::Command::new("stty")
            .arg(&self.saved)
            .stdin(std::process::Stdio::inherit())
            .status();
    }
}

/// Gives the container's pty the size of the CLI's terminal.
pub async fn forward_resize(ctx: &Ctx, id: &str, exec_id: &str) {
    if let Some((rows, cols)) = terminal_size() {
        if let Err(err) = ctx.client.resize(id, exec_id, cols, rows).await {
            tracing::debug!(%err, "resizing the pty");
        }
    }
}

/// Keeps the container's pty the size of the CLI's terminal: now, and on every SIGWINCH until
/// the returned task is aborted.
/// Catches SIGWINCH from now on (register it before the container starts, so a resize in
/// between is not lost).
pub fn winch() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()
}

pub fn follow_resize(
    ctx: &Ctx,
    id: &str,
    exec_id: &str,
    winch: Option<tokio::signal::unix::Signal>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut winch = winch?;
    let client = ctx.client.clone();
    let (id, exec_id) = (id.to_string(), exec_id.to_string());
    Some(tokio::spawn(async move {
        while winch.recv().await.is_some() {
            let size = terminal_size();
            tracing::debug!(?size, "window changed");
            if let Some((rows, cols)) = size {
                if let Err(err) = client.resize(&id, &exec_id, cols, rows).await {
                    tracing::debug!(%err, "resizing the pty");
                }
            }
        }
    }))
}

fn terminal_size() -> Option<(u32, u32)> {
    let out = std::process::Command::new("stty")
        .arg("size")
        .stdin(std::process::Stdio::inherit())
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    let mut it = s.split_whitespace().map(|n| n.parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

/// `exec --user`: names and numbers resolved against the image's /etc/passwd and /etc/group,
/// as `run --user` is; where the launcher maps a single id, every user is root (said once).
async fn exec_user(
    ctx: &Ctx,
    c: &containerd_client::services::v1::Container,
    spec: &str,
) -> anyhow::Result<burrow::containers::user::ResolvedUser> {
    let mut passwd_group = (String::new(), String::new());
    if let Ok(mut image) = ctx.images.resolve(&c.image).await {
        let cache = burrow::images::userdb::cache_dir(ctx.store.root());
        if ctx
            .images
            .load_user_db_cached(&mut image, &cache)
            .await
            .is_ok()
        {
            passwd_group = (image.defaults.passwd, image.defaults.group);
        }
    }
    let resolved = burrow::containers::user::resolve(spec, &passwd_group.0, &passwd_group.1)
        .with_context(|| format!("exec --user {spec:?}"))?;
    if ctx.ep.launcher.as_ref().is_some_and(|l| l.single_id()) && !resolved.fits_single_id() {
        eprintln!(
            "burrow: note: user {spec:?} runs as uid 0 (you, outside): your user has no \
             subordinate ids, so no other id exists in its containers"
        );
        return Ok(resolved.squashed());
    }
    Ok(resolved)
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let c = ctx.find(&args.container).await?;
        if !super::state(&ctx, &c.id).await?.is_running() {
            anyhow::bail!(
                "container {} is not running (start it with `burrow start {}`)",
                super::name_of(&c),
                super::name_of(&c)
            );
        }
        let spec = super::spec_of(&c).context("the container has no OCI spec")?;
        let mut process = spec
            .process()
            .clone()
            .context("the container spec has no process")?;
        process.set_args(Some(args.command.clone()));
        process.set_terminal(Some(args.tty));
        let mut env = process.env().clone().unwrap_or_default();
        for kv in &args.env {
            let key = kv.split('=').next().unwrap_or(kv);
            env.retain(|e| e.split('=').next() != Some(key));
            if kv.contains('=') {
                env.push(kv.clone());
            } else if let Ok(v) = std::env::var(kv) {
                env.push(format!("{kv}={v}"));
            }
        }
        process.set_env(Some(env));
        if let Some(w) = &args.workdir {
            process.set_cwd(w.into());
        }
        if let Some(u) = &args.user {
            let resolved = exec_user(&ctx, &c, u).await?;
            let mut user = process.user().clone();
            user.set_uid(resolved.uid);
            user.set_gid(resolved.gid);
            user.set_additional_gids(Some(resolved.additional_gids).filter(|g| !g.is_empty()));
            process.set_user(user);
        }
        if args.privileged {
            let all: oci_spec::runtime::Capabilities =
                burrow::containers::caps::resolve(true, &[], &[])?
                    .iter()
                    .filter_map(|n| n.strip_prefix("CAP_").and_then(|s| s.parse().ok()))
                    .collect();
            if let Some(mut caps) = process.capabilities().clone() {
                caps.set_bounding(Some(all.clone()));
                caps.set_effective(Some(all.clone()));
                caps.set_permitted(Some(all));
                process.set_capabilities(Some(caps));
            }
        }
        let exec_id = format!("exec-{}", &burrow::containers::store::new_id()[..12]);
        let fifo_dir = ctx
            .store
            .container_dir(&c.id)
            .join(format!("fifo-{exec_id}"));
        if args.detach {
            let stdio = Stdio::default();
            if let Err(e) = ctx.client.exec(&c.id, &exec_id, &process, &stdio).await {
                eprintln!("burrow: {e:#}");
                return Ok(ExitCode::from(start_failure_code(&e.to_string())));
            }
            if let Err(e) = ctx.client.start_exec(&c.id, &exec_id).await {
                let _ = ctx.client.delete_exec(&c.id, &exec_id).await;
                eprintln!("burrow: {e:#}");
                return Ok(ExitCode::from(start_failure_code(&e.to_string())));
            }
            return Ok(ExitCode::SUCCESS);
        }
        let keys =
            super::run::detach_keys(args.detach_keys.as_deref(), args.interactive, args.tty)?;
        let attached = Attached::new(&fifo_dir, args.interactive, args.tty, None, keys)?;
        if let Err(e) = ctx
            .client
            .exec(&c.id, &exec_id, &process, &attached.stdio)
            .await
        {
            eprintln!("burrow: {e:#}");
            return Ok(ExitCode::from(start_failure_code(&e.to_string())));
        }
        let raw = if args.tty { RawTerminal::enter() } else { None };
        let sigwinch = if args.tty { winch() } else { None };
        let waiter = {
            let client = ctx.client.clone();
            let (id, eid) = (c.id.clone(), exec_id.clone());
            tokio::spawn(async move { client.wait_exec(&id, &eid).await })
        };
        tokio::task::yield_now().await;
        if let Err(e) = ctx.client.start_exec(&c.id, &exec_id).await {
            drop(raw);
            waiter.abort();
            let _ = ctx.client.delete_exec(&c.id, &exec_id).await;
            eprintln!("burrow: {e:#}");
            return Ok(ExitCode::from(start_failure_code(&e.to_string())));
        }
        let resizer = if args.tty {
            forward_resize(&ctx, &c.id, &exec_id).await;
            follow_resize(&ctx, &c.id, &exec_id, sigwinch)
        } else {
            None
        };
        let closer = attached.close_stdin_on_eof(ctx.client.clone(), c.id.clone(), exec_id.clone());
        let status = tokio::select! {
            s = waiter => Some(s),
            _ = attached.detached() => None,
        };
        for t in [closer, resizer].into_iter().flatten() {
            t.abort();
        }
        let Some(status) = status else {
            drop(raw);
            let what = super::run::Detached::Exec { exec_id: &exec_id };
            super::run::detach_to_background(&ctx, &c.id, &fifo_dir, what)?;
            drop(attached);
            return Ok(ExitCode::SUCCESS);
        };
        let status = status.context("waiting for the exec")??;
        attached.drain(std::time::Duration::from_secs(5));
        drop(raw);
        let _ = ctx.client.delete_exec(&c.id, &exec_id).await;
        Ok(ExitCode::from((status & 0xff) as u8))
    })
}

// `burrow __exec-cleanup CONTAINER EXEC_ID FIFO_DIR` (hidden; its help text is on the
// subcommand).
#[derive(Debug, clap::Args)]
pub struct CleanupArgs {
    pub container: String,
    pub exec_id: String,
    pub fifo_dir: std::path::PathBuf,
}

/// After a detached exec's output ended: waits for its process, deletes the exec from
/// containerd and removes its FIFOs.
pub fn cleanup(args: CleanupArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        // The output can end before the process does (it closed its stdio): deleting a live
        // exec would kill it.
        let _ = ctx.client.wait_exec(&args.container, &args.exec_id).await;
        let _ = ctx.client.delete_exec(&args.container, &args.exec_id).await;
        let ours = args
            .fifo_dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy() == format!("fifo-{}", args.exec_id));
        if ours {
            let _ = std::fs::remove_dir_all(&args.fifo_dir);
        }
        Ok(ExitCode::SUCCESS)
    })
}
