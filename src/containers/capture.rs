//! An exec run to its end with its output captured (bounded, as Docker keeps a probe's): the
//! health probes, and Compose's lifecycle hooks.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use containerd_client::services::v1::{Container, KillRequest};
use nix::fcntl::{fcntl, FcntlArg, OFlag};

use super::exec::{self, ExecRequest};
use super::health::state::LimitedOutput;
use super::Ctx;

/// How an exec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Exited(u32),
    TimedOut,
}

/// Removes an exec's FIFO dir when dropped.
struct FifoDir(PathBuf);

impl Drop for FifoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `req` in container `c` as an exec (its id `PREFIX-<random>`), copies its output into
/// `output`, and waits for it to end (killed after `timeout`, if one is given).
pub async fn run(
    ctx: &Ctx,
    c: &Container,
    req: &ExecRequest,
    prefix: &str,
    timeout: Option<Duration>,
    output: Arc<Mutex<LimitedOutput>>,
) -> anyhow::Result<End> {
    let exec_id = format!("{prefix}-{}", &crate::containers::store::new_id()[..12]);
    let dir = crate::session::fifo::dir(&ctx.store.container_dir(&c.id), &exec_id);
    let stdio = crate::session::fifo::create(&dir, false, false)?;
    let _dir = FifoDir(dir);
    // Opened now without waiting for a writer; blocking once the shim holds the write ends.
    let readers = [
        open_nonblocking(Path::new(&stdio.stdout))?,
        open_nonblocking(Path::new(&stdio.stderr))?,
    ];
    let process = exec::process(ctx, c, req, &|_| {}).await?;
    ctx.client.exec(&c.id, &exec_id, &process, &stdio).await?;
    let ended = attend(ctx, &c.id, &exec_id, timeout, readers, output).await;
    let _ = ctx.client.delete_exec(&c.id, &exec_id).await;
    ended
}

/// Starts the created exec, copies its output, and waits for it with the timeout (then kills
/// it).
async fn attend(
    ctx: &Ctx,
    id: &str,
    exec_id: &str,
    timeout: Option<Duration>,
    readers: [File; 2],
    output: Arc<Mutex<LimitedOutput>>,
) -> anyhow::Result<End> {
    ctx.client.start_exec(id, exec_id).await?;
    let mut copies = Vec::new();
    for f in readers {
        fcntl(&f, FcntlArg::F_SETFL(OFlag::empty()))?;
        let out = output.clone();
        copies.push(tokio::task::spawn_blocking(move || copy(f, &out)));
    }
    let timeout = timeout.unwrap_or(Duration::MAX);
    let end = match tokio::time::timeout(timeout, ctx.client.wait_exec(id, exec_id)).await {
        Ok(code) => End::Exited(code?),
        Err(_) => {
            let kill = KillRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                signal: 9,
                all: false,
            };
            let _ = ctx.client.containerd().tasks().kill(kill).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), ctx.client.wait_exec(id, exec_id))
                .await;
            End::TimedOut
        }
    };
    // The output ends with the process (unless a child it left holds it open).
    for c in copies {
        let _ = tokio::time::timeout(Duration::from_secs(1), c).await;
    }
    Ok(end)
}

fn open_nonblocking(path: &Path) -> anyhow::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

fn copy(mut f: File, out: &Mutex<LimitedOutput>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        if let Ok(mut o) = out.lock() {
            o.push(&buf[..n]);
        }
    }
}
