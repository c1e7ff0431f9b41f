//! What the CLI does when a session detaches (or a container starts in the background with its
//! stdio kept): a background reader takes the process's stdio over, with the follow-up command
//! it runs afterwards, and the CLI says how to get back.

use std::ffi::OsString;
use std::path::Path;

use super::Ctx;
use burrow::selfexec::{EndpointArgs, Helper};
use burrow::session::background::{Reader, ReaderRequest};
use burrow::session::Session;

/// Whose output a background reader keeps reading after the CLI detached.
#[derive(Debug, Clone, Copy)]
pub enum Detached<'a> {
    /// The container's process: its output goes to the log, `burrow attach` can come back,
    /// and with `rm` the container is removed when it exits.
    Container { rm: bool },
    /// A process of `burrow exec`: its output is read and dropped (Docker keeps exec output out
    /// of the log), and the exec is deleted when it exits.
    Exec { exec_id: &'a str },
}

/// Starts `burrow internal detached-drain` for the FIFOs in `fifo_dir`. For the container's
/// process it logs the output, holds stdin open, serves `burrow attach`, and with `rm` removes
/// the container when it exits; for an exec it drops the output and deletes the exec after.
pub fn spawn_reader(
    ctx: &Ctx,
    id: &str,
    fifo_dir: &Path,
    what: Detached,
) -> anyhow::Result<Reader> {
    let exe = std::env::current_exe().map_err(|e| anyhow::anyhow!("finding burrow: {e}"))?;
    let endpoint = EndpointArgs::of(&ctx.ep);
    let (discard, then) = match what {
        Detached::Container { rm: false } => (false, Vec::new()),
        // `burrow rm -f ID` on this endpoint, once the output ended.
        Detached::Container { rm: true } => {
            let mut argv = vec![exe.into_os_string()];
            argv.extend(endpoint.flags());
            argv.extend(["rm", "-f", id].map(OsString::from));
            (false, argv)
        }
        Detached::Exec { exec_id } => {
            let cleanup = Helper::ExecCleanup {
                endpoint,
                id: id.to_string(),
                exec_id: exec_id.to_string(),
                fifo_dir: fifo_dir.to_path_buf(),
            };
            let argv = std::iter::once(exe.into_os_string())
                .chain(cleanup.args())
                .collect();
            (true, argv)
        }
    };
    Ok(Reader::spawn(&ReaderRequest {
        data_root: ctx.ep.data_root.clone(),
        namespace: ctx.ep.namespace.clone(),
        id: id.to_string(),
        fifo_dir: fifo_dir.to_path_buf(),
        discard,
        then,
    })?)
}

/// After the detach keys: a background reader keeps reading the process's output and holds
/// its stdin open, so the CLI can leave while it runs on.
pub fn hand_over(
    ctx: &Ctx,
    id: &str,
    session: Session,
    fifo_dir: &Path,
    what: Detached,
) -> anyhow::Result<()> {
    session.hand_over(spawn_reader(ctx, id, fifo_dir, what)?)?;
    let short = super::short_id(id);
    match what {
        Detached::Container { .. } => eprintln!(
            "\r\ndetached: the container keeps running (`burrow logs -f {short}` follows its output, `burrow attach {short}` attaches again)"
        ),
        Detached::Exec { .. } => eprintln!(
            "\r\ndetached: the command keeps running in {short} (`burrow top {short}` lists it)"
        ),
    }
    Ok(())
}
