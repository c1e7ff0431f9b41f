//! `run --rm` outliving a killed CLI: Docker's daemon removes an `--rm` container whatever
//! happens to the client; burrow's removal is done by the CLI, so an attached `run --rm` leaves
//! a watcher behind that removes the container if the CLI dies before it could.
//!
//! The watcher (`burrow __rm-orphan ID`, in its own process group so terminal signals miss it)
//! reads the only pipe whose write end the CLI holds. The CLI writes one byte once removal is
//! taken care of (done, or handed to the background reader of a detached run); end of file
//! without it means the CLI is gone, and the watcher waits for the task to end (the container
//! keeps running, as under Docker) and removes the container and everything it owns.
//! The background reader of an auto-removed container runs the same removal (`burrow
//! __auto-remove ID`) once the container's output ends.

use std::io::{Read, Write};
use std::process::{ExitCode, Stdio};

use super::Ctx;
use burrow::connection::Globals;
use burrow::selfexec::{EndpointArgs, Helper};

/// Which container the watcher removes ([`burrow::selfexec::Helper::RmOrphan`]).
#[derive(Debug)]
pub struct Args {
    /// The container to remove if the CLI that ran it dies first.
    pub id: String,
}

/// The CLI's end of the watcher's pipe.
pub struct Watch {
    tx: std::io::PipeWriter,
}

impl Watch {
    /// Starts the watcher of container `id`; None (with a warning) if it cannot be started,
    /// which only loses the cleanup after a killed CLI.
    pub fn spawn(ctx: &Ctx, id: &str) -> Option<Watch> {
        use std::os::unix::process::CommandExt as _;
        let started = (|| {
            // Both ends are close-on-exec: no other child of the CLI keeps the pipe open.
            let (rx, tx) = std::io::pipe()?;
            Helper::RmOrphan {
                endpoint: EndpointArgs::of(&ctx.ep),
                id: id.to_string(),
            }
            .command()?
            .stdin(Stdio::from(rx))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
            Ok::<_, std::io::Error>(Watch { tx })
        })();
        started
            .map_err(|e| {
                tracing::warn!(
                    "container {id}: cannot start the watcher that removes it (--rm) should this \
                     command be killed ({e}); if it is, remove the container with `burrow rm -f {}`",
                    super::short_id(id)
                )
            })
            .ok()
    }

    /// Removal is taken care of: the watcher exits without touching the container.
    pub fn stand_down(mut self) {
        let _ = self.tx.write_all(b"x");
    }
}

/// The watcher's main.
pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let mut byte = [0u8; 1];
    let said = loop {
        match std::io::stdin().lock().read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(n) => break n > 0,
            Err(_) => break false,
        }
    };
    if said {
        return Ok(ExitCode::SUCCESS);
    }
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        if ctx.client.get(&args.id).await.is_err() {
            // Removed already (the CLI finished its work before it went away).
            return Ok(ExitCode::SUCCESS);
        }
        // Returns when the task ends; at once (an error) when it is gone already.
        let _ = ctx.client.wait_task(&args.id).await;
        if let Err(err) = burrow::containers::ops::remove_after_run(&ctx, &args.id, async {}).await
        {
            crate::commands::error::say(&err);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The background reader's follow-up once an auto-removed container's output ended
/// ([`Helper::AutoRemove`]): the container removed as `run --rm` removes it.
pub fn auto_remove(id: &str, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        burrow::containers::ops::auto_remove(&ctx, id).await?;
        Ok(ExitCode::SUCCESS)
    })
}
