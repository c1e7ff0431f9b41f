//! `burrow attach`: the terminal joined to a running container's output (and stdin, when the
//! container's stdio is held by burrow's background reader), until it exits or the detach keys.

use std::io::{IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use super::run::{wait_proxying, SigProxy};
use super::stdio::{forward_stdin, parse_detach_keys, InputEnd, DEFAULT_DETACH_KEYS};
use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::attach::{read_frame, Stream};
use burrow::containers::logfollow::Follower;

/// Attach local standard input, output and error to a running container.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Containers started with `run -d -i` or `run -d -t` (or detached from with the detach keys) keep
their stdio in burrow's background reader: attach gets their output from now on and sends your
input to their stdin; ctrl-p ctrl-q (or --detach-keys) detaches again. Other containers have no
stdin to attach: attach follows their output (as `logs -f` from now on) until they exit. Either
way attach exits with the container's status when it exits.")]
pub struct Args {
    /// Do not attach stdin.
    #[arg(long)]
    pub no_stdin: bool,
    /// Pass the signals the CLI receives on to the container (not with a terminal).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    /// The key sequence that detaches (ctrl-X or single characters, comma-separated).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// The container (name or id).
    pub container: String,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let keys = parse_detach_keys(args.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH_KEYS))?;
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
        let dir = ctx.store.container_dir(&c.id).join("fifo");
        let code = match burrow::containers::attach::connect(&dir) {
            Ok(s) => attach_stdio(&ctx, &c.id, s, tty, &args, keys).await?,
            Err(_) => follow_output(&ctx, &c.id, tty, &args).await?,
        };
        Ok(match code {
            Some(c) => ExitCode::from((c & 0xff) as u8),
            None => ExitCode::SUCCESS,
        })
    })
}

/// Joined to the background reader: output in, stdin out. None when detached.
async fn attach_stdio(
    ctx: &Ctx,
    id: &str,
    sock: UnixStream,
    tty: bool,
    args: &Args,
    keys: Vec<u8>,
) -> anyhow::Result<Option<u32>> {
    let with_stdin = !args.no_stdin;
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    // Output: frames to our stdout/stderr; the end of the stream is the container's end.
    let mut out_sock = sock.try_clone().context("attaching")?;
    let tx = done_tx.clone();
    std::thread::spawn(move || {
        while let Ok(Some((stream, data))) = read_frame(&mut out_sock) {
            let res = match stream {
                Stream::Stdout => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&data).and_then(|_| o.flush())
                }
                Stream::Stderr => {
                    let mut e = std::io::stderr().lock();
                    e.write_all(&data).and_then(|_| e.flush())
                }
            };
            if res.is_err() {
                break;
            }
        }
        let _ = tx.send(false);
    });
    let _raw = if tty && with_stdin && std::io::stdin().is_terminal() {
        super::exec::RawTerminal::enter()
    } else {
        None
    };
    if with_stdin {
        let mut in_sock = sock.try_clone().context("attaching")?;
        let tx = done_tx.clone();
        std::thread::spawn(move || match forward_stdin(&mut in_sock, keys) {
            InputEnd::Detached => {
                let _ = tx.send(true);
            }
            // Our input ended: the container's stdin stays open, as Docker leaves it.
            InputEnd::Eof => {
                let _ = in_sock.shutdown(std::net::Shutdown::Write);
            }
            InputEnd::SinkClosed => {}
        });
    }
    let resizer = if tty {
        let w = super::exec::winch();
        super::exec::forward_resize(ctx, id, "").await;
        super::exec::follow_resize(ctx, id, "", w)
    } else {
        None
    };
    let proxy = signal_proxy(args, tty);
    let wait = wait_proxying(ctx, id, proxy);
    tokio::pin!(wait);
    let outcome = tokio::select! {
        r = &mut wait => Some(r),
        d = done_rx.recv() => match d {
            Some(true) => None,
            // The output ended: the container is exiting; its status follows.
            _ => Some(wait.await),
        },
    };
    if let Some(r) = resizer {
        r.abort();
    }
    drop(_raw);
    match outcome {
        None => {
            let _ = sock.shutdown(std::net::Shutdown::Both);
            eprintln!("\r\ndetached from {}", super::short_id(id));
            Ok(None)
        }
        Some(r) => {
            // Let the last output through before the status.
            std::thread::sleep(Duration::from_millis(50));
            Ok(Some(r?))
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
    let wait = wait_proxying(ctx, id, proxy);
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
            super::logs::emit(r, false);
        }
    }
}

/// The CLI's signals passed on to the container (`--sig-proxy`), never with a terminal: there
/// the keys themselves reach the container's pty.
fn signal_proxy(args: &Args, tty: bool) -> Option<SigProxy> {
    (args.sig_proxy && !tty).then(SigProxy::install).flatten()
}
