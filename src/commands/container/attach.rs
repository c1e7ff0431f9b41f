//! `burrow attach`: the terminal joined to a running container's output (and stdin, when the
//! container's stdio is held by burrow's background reader), until it exits or the detach keys.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::logfollow::Follower;
use burrow::session::signals::{self, Signals};
use burrow::session::{
    self, keys, DetachKeys, Endpoints, Local, Outcome, Session, SessionError, Target,
};

/// Attach local standard input, output and error to a running container.
#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
#[command(after_help = "\
Containers started with `run -d -i` or `run -d -t` (or detached from with the detach keys) keep
their stdio in burrow's background reader: attach gets their output from now on and sends your
input to their stdin; ctrl-p ctrl-q (or --detach-keys) detaches again. Other containers have no
stdin to attach: attach follows their output (as `logs -f` from now on) until they exit. Either
way attach exits with the container's status when it exits.")]
pub struct Args {
    #[command(flatten)]
    pub opts: AttachFlags,
    /// The container (name or id).
    pub container: String,
}

// The flags of `attach` (and `compose attach`); a plain comment (clap reads doc comments).
#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct AttachFlags {
    /// Do not attach stdin.
    #[arg(long)]
    pub no_stdin: bool,
    /// Pass the signals the CLI receives on to the container (not with a terminal).
    #[arg(long, default_value_t = true)]
    pub sig_proxy: bool,
    /// The key sequence that detaches (ctrl-X or single characters, comma-separated).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let keys = DetachKeys::parse(args.opts.detach_keys.as_deref().unwrap_or(keys::DEFAULT))?;
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let c = ctx.find(&args.container).await?;
        if !super::state(&ctx, &c.id).await?.is_running() {
            bail!(
                "cannot attach to {}: it is not running (start it with `burrow start -ai {}`)",
                args.container,
                args.container
            );
        }
        let tty = super::process_of(&c).terminal;
        let with_stdin = !args.opts.no_stdin;
        let opts = session::Options {
            stdin: with_stdin,
            tty,
            detach_keys: Some(keys),
            log: None,
        };
        let local = Local {
            raw: tty && with_stdin && std::io::stdin().is_terminal(),
            follow_size: tty,
            sig_proxy: args.opts.sig_proxy && !tty,
            detach_on_hangup: false,
        };
        let dir = session::fifo::dir(&ctx.store.container_dir(&c.id), "");
        let code = match Session::join(&dir, opts, Endpoints::terminal(local)) {
            Ok(s) => attach_stdio(&ctx, &c.id, s).await?,
            Err(SessionError::Connect(_)) => follow_output(&ctx, &c.id, tty, &args).await?,
            Err(e) => return Err(e.into()),
        };
        Ok(match code {
            Some(c) => ExitCode::from(session::exit::code(c)),
            None => ExitCode::SUCCESS,
        })
    })
}

/// Joined to the background reader: output in, stdin out. None when detached.
async fn attach_stdio(ctx: &Ctx, id: &str, mut session: Session) -> anyhow::Result<Option<u32>> {
    let target = Target::task(ctx, id);
    let exit = session.watch(&target).await;
    match session.attend(&target, exit).await? {
        Outcome::Exited(status) => Ok(Some(status)),
        Outcome::Detached => {
            drop(session);
            eprintln!("\r\ndetached from {}", super::short_id(id));
            Ok(None)
        }
    }
}

/// No background reader: the container's output from its log as it comes, until it exits.
async fn follow_output(ctx: &Ctx, id: &str, tty: bool, args: &Args) -> anyhow::Result<Option<u32>> {
    // What the log holds already was written before we attached: only what comes next.
    let path = ctx.store.log_path(id);
    let mut log = Follower::from_end(&path)
        .with_context(|| format!("reading the log of {id} at {}", path.display()))?;
    let proxy = signal_proxy(args, tty);
    let target = Target::task(ctx, id);
    let wait = signals::wait_proxying(&target, proxy);
    tokio::pin!(wait);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            r = &mut wait => {
                // The log driver may still be writing the last lines.
                tokio::time::sleep(Duration::from_millis(200)).await;
                print_new(&mut log);
                return Ok(Some(r?));
            }
            _ = tick.tick() => print_new(&mut log),
        }
    }
}

fn print_new(log: &mut Follower) {
    if let Ok(records) = log.poll() {
        for r in &records {
            super::logs::emit(r, false, false);
        }
    }
}

/// The CLI's signals passed on to the container (`--sig-proxy`), never with a terminal: there
/// the keys themselves reach the container's pty.
fn signal_proxy(args: &Args, tty: bool) -> Option<Signals> {
    (args.opts.sig_proxy && !tty)
        .then(Signals::proxied)
        .flatten()
}
