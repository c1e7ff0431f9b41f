//! The output of a project's containers, each line prefixed with its coloured
//! `name  | ` as Docker Compose prints it (`compose logs`, an attached `up`).

use std::io::Write;

use super::state::Member;
use crate::containers::logdriver::Record;
use crate::containers::logquery::{self, LogQuery};
use crate::containers::Ctx;

/// How to print.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    pub timestamps: bool,
    /// Lines without the `name  | ` prefix (`--no-log-prefix`).
    pub no_prefix: bool,
}

const COLORS: [u8; 6] = [36, 33, 32, 35, 34, 31];

/// The `name  | ` prefix of member `i` of those shown, padded to `width`.
pub fn prefix(name: &str, i: usize, width: usize, color: bool) -> String {
    let text = format!("{name:<width$}  | ");
    if color {
        format!("\x1b[{}m{text}\x1b[0m", COLORS[i % COLORS.len()])
    } else {
        text
    }
}

fn emit(prefix: &str, r: &Record, style: Style) {
    let mut line = String::from(prefix);
    if style.timestamps {
        line.push_str(&r.time);
        line.push(' ');
    }
    line.push_str(&r.log);
    if !line.ends_with('\n') {
        line.push('\n');
    }
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(line.as_bytes());
    let _ = o.flush();
}

/// Prints the logs `q` selects of every member, concurrently; with `q.follow`, until each
/// has stopped.
pub async fn show(
    ctx: &Ctx,
    members: &[&Member],
    q: &LogQuery,
    style: Style,
) -> anyhow::Result<()> {
    let width = members.iter().map(|m| m.name.len()).max().unwrap_or(0);
    let futures: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let p = match style.no_prefix {
                true => String::new(),
                false => prefix(&m.name, i, width, style.color),
            };
            Box::pin(async move { logquery::read(ctx, m.id(), q, |r| emit(&p, r, style)).await })
        })
        .collect();
    for r in join_all(futures).await {
        r?;
    }
    Ok(())
}

/// Runs the futures concurrently on this task; their results in order.
pub async fn join_all<F: std::future::Future + Unpin>(futs: Vec<F>) -> Vec<F::Output> {
    let mut slots: Vec<Option<F>> = futs.into_iter().map(Some).collect();
    let mut out: Vec<Option<F::Output>> = slots.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, slot) in slots.iter_mut().enumerate() {
            if let Some(f) = slot {
                match std::pin::Pin::new(f).poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
