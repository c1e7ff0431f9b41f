//! `burrow system service`: the Docker Engine API on a unix socket (`burrow::dockerapi`), on
//! TCP only when asked (with a warning), or on the socket a service manager passed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::container::Ctx;
use burrow::connection::{self, Globals};
use burrow::dockerapi::{self, listen, Listen, ServeOptions};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Started by a service manager with a listening socket (systemd's socket activation:
LISTEN_FDS/LISTEN_PID, as `burrow setup install --docker-api` sets up), it serves that socket
(--listen is refused then).

TCP has no authentication and no encryption: anyone who can connect owns your containers.
Prefer the unix socket, or reach it from elsewhere through `ssh -L`.")]
pub struct Args {
    /// Where to listen: unix://PATH [default: $XDG_RUNTIME_DIR/burrow/docker.sock rootless,
    /// /run/burrow/docker.sock rootful], or tcp://HOST:PORT (unauthenticated: see below).
    #[arg(long, value_name = "unix://PATH|tcp://HOST:PORT")]
    pub listen: Option<Listen>,
    /// End the service after SECS seconds without a client (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub timeout: u64,
    /// Wait up to SECS seconds for containerd to answer before giving up (the installed
    /// service starts on the first connection, maybe before containerd is up).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub wait: u64,
}

/// Connects to containerd, retrying for `wait`.
async fn connect(g: &Globals, wait: Duration) -> anyhow::Result<Ctx> {
    let deadline = Instant::now() + wait;
    loop {
        match Ctx::connect(g).await {
            Ok(ctx) => return Ok(ctx),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(e) => {
                tracing::debug!(%e, "containerd does not answer yet");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    // Before the runtime starts: it clears the activation variables of this process.
    let passed = listen::activated()?;
    if let (Some(_), Some(l)) = (&passed, &args.listen) {
        anyhow::bail!(
            "--listen {l}: this service was started with a listening socket (socket activation: LISTEN_FDS); drop --listen, or start it without the socket unit"
        );
    }
    connection::service_runtime().block_on(async move {
        let ctx = connect(g, Duration::from_secs(args.wait)).await?;
        let chosen = dockerapi::choose(passed, args.listen, ctx.ep.mode)?;
        if let Some(w) = &chosen.warning {
            eprintln!("{w}");
        }
        let (listener, shown) = (chosen.listener, chosen.shown);
        eprintln!(
            "burrow: serving the Docker API (v{}) on {shown} (export DOCKER_HOST={shown})",
            dockerapi::API_VERSION,
        );
        let opts = ServeOptions {
            listener,
            idle_timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
        };
        dockerapi::serve(ctx, opts).await?;
        Ok(ExitCode::SUCCESS)
    })
}
