//! `top`: the processes of a running container as `ps` shows them (`burrow top`, the Docker
//! API's `/containers/{id}/top`): ps run over the container's pids, its table split into
//! titles and rows as Docker does.

use anyhow::Context;
use containerd_client::services::v1::Container;

use super::{ops, Ctx};

/// Docker's ContainerTopOKBody: the ps columns and one row per process.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Top {
    #[serde(rename = "Titles")]
    pub titles: Vec<String>,
    #[serde(rename = "Processes")]
    pub processes: Vec<Vec<String>>,
}

/// Why `top` gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error("ps failed: {0}")]
    Ps(String),
    #[error("Couldn't find PID field in ps output")]
    NoPid,
}

/// The processes of the running container `c`, through `ps ARGS` (`-f` without any).
pub async fn top(ctx: &Ctx, c: &Container, ps_args: &[String]) -> anyhow::Result<Top> {
    let pids = ops::pids(ctx, c).await?;
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let mut cmd = std::process::Command::new("ps");
    if ps_args.is_empty() {
        cmd.arg("-f");
    } else {
        cmd.args(ps_args);
    }
    cmd.arg("-p").arg(list.join(","));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await?
        .context("running ps")?;
    // ps exits 1 when no process matched: an empty table, as Docker gives.
    if !out.status.success() && !out.stderr.is_empty() {
        return Err(TopError::Ps(String::from_utf8_lossy(&out.stderr).trim().to_string()).into());
    }
    let table = parse(&String::from_utf8_lossy(&out.stdout));
    Ok(only_pids(table, &pids)?)
}

/// ps's table as titles and rows: the last column (the command) takes the rest of its line.
pub fn parse(text: &str) -> Top {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let titles: Vec<String> = lines
        .next()
        .map(|h| h.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let n = titles.len();
    let processes = lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if n == 0 || f.len() <= n {
                return f.iter().map(|s| s.to_string()).collect();
            }
            let mut row: Vec<String> = f[..n - 1].iter().map(|s| s.to_string()).collect();
            row.push(f[n - 1..].join(" "));
            row
        })
        .collect();
    Top { titles, processes }
}

/// Keeps the rows whose PID column is one of `pids` (ps options such as `-e` list others);
/// a table without a PID column is refused, as Docker does, unless it is empty.
fn only_pids(mut t: Top, pids: &[u32]) -> Result<Top, TopError> {
    let Some(col) = t.titles.iter().position(|h| h == "PID") else {
        return if t.processes.is_empty() {
            Ok(t)
        } else {
            Err(TopError::NoPid)
        };
    };
    t.processes.retain(|row| {
        row.get(col)
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| pids.contains(&p))
    });
    Ok(t)
}

impl Top {
    /// The table as text, columns padded (the CLI's output).
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.titles.iter().map(String::len).collect();
        for row in &self.processes {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.len());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 < cells.len() {
                    let w = widths.get(i).copied().unwrap_or(0);
                    s.push_str(&format!("{c:<w$}   "));
                } else {
                    s.push_str(c);
                }
            }
            s.push('\n');
            s
        };
        let mut out = line(&self.titles);
        for row in &self.processes {
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_tables_split_as_dockers() {
        let text = "UID   PID  PPID  C STIME TTY   TIME     CMD\n\
                    root  10   1     0 11:00 ?     00:00:00 sleep 60 --x\n\
                    root  99   1     0 11:00 ?     00:00:00 other\n";
        let t = parse(text);
        assert_eq!(t.titles.len(), 8);
        assert_eq!(t.processes[0][7], "sleep 60 --x");
        let only = only_pids(t, &[10]).unwrap();
        assert_eq!(only.processes.len(), 1);
        assert!(
            only.render().starts_with("UID    PID   PPID"),
            "{}",
            only.render()
        );
        let no_pid = parse("USER CMD\nroot sh\n");
        assert!(only_pids(no_pid, &[1]).is_err());
    }
}
