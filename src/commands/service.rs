//! `burrow system service`: the Docker Engine API on a unix socket (`burrow::dockerapi`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::container::{block_on, Ctx};
use burrow::connection::{Globals, UserEnv};
use burrow::dockerapi::{self, ServeOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to listen: unix://PATH [default: $XDG_RUNTIME_DIR/burrow/docker.sock rootless,
    /// /run/burrow/docker.sock rootful]. Only unix sockets: no TCP.
    #[arg(long, value_name = "unix://PATH")]
    pub listen: Option<String>,
    /// End the service after SECS seconds without a client (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub timeout: u64,
}

/// The socket path `--listen` names.
fn socket_of(listen: &str) -> anyhow::Result<PathBuf> {
    match listen.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(PathBuf::from(p)),
        Some(p) => anyhow::bail!(
            "--listen {listen}: give an absolute path (unix:///run/user/1000/burrow/docker.sock, {p:?} is relative)"
        ),
        None => anyhow::bail!(
            "--listen {listen}: burrow serves the Docker API only on unix sockets (unix://PATH); a TCP listener would give anyone who reaches it your containers"
        ),
    }
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let listen = args.listen.as_deref().map(socket_of).transpose()?;
    block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let socket = match listen {
            Some(p) => p,
            None => dockerapi::default_socket(ctx.ep.mode, &UserEnv::current())?,
        };
        eprintln!(
            "burrow: serving the Docker API (v{}) on unix://{} (export DOCKER_HOST=unix://{})",
            dockerapi::API_VERSION,
            socket.display(),
            socket.display()
        );
        let opts = ServeOptions {
            socket,
            idle_timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
        };
        dockerapi::serve(ctx, opts).await?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unix_sockets_are_listened_on() {
        assert_eq!(
            socket_of("unix:///tmp/d.sock").unwrap(),
            PathBuf::from("/tmp/d.sock")
        );
        assert!(socket_of("tcp://0.0.0.0:2375")
            .unwrap_err()
            .to_string()
            .contains("unix"));
        assert!(socket_of("unix://rel.sock").is_err());
    }
}
