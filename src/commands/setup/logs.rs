//! `burrow setup logs`: the rootless containerd's and launcher's log, whole, tailed or followed.

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::install::requested_data_root;
use super::layout::Layout;
use burrow::connection::{Globals, UserEnv};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing lines as they are written.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let env = UserEnv::current();
    let l = Layout::new(&env, requested_data_root(g, &env).as_deref())?;
    let mut f = match std::fs::File::open(&l.log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!(
                "no log at {}: the rootless containerd has not run yet (burrow setup install)",
                l.log.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", l.log.display())),
    };
    let mut text = Vec::new();
    f.read_to_end(&mut text)
        .with_context(|| format!("cannot read {}", l.log.display()))?;
    let start = match args.tail {
        Some(n) => tail_start(&text, n),
        None => 0,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&text[start..])?;
    out.flush()?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut pos = text.len() as u64;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let len = std::fs::metadata(&l.log).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Truncated or replaced: start over.
            f = std::fs::File::open(&l.log)?;
            pos = 0;
        }
        if len > pos {
            f.seek(SeekFrom::Start(pos))?;
            let mut chunk = Vec::new();
            f.read_to_end(&mut chunk)?;
            pos += chunk.len() as u64;
            out.write_all(&chunk)?;
            out.flush()?;
        }
    }
}

/// Byte offset where the last `n` lines start.
fn tail_start(text: &[u8], n: usize) -> usize {
    if n == 0 {
        return text.len();
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::tail_start;

    #[test]
    fn tails() {
        let t = b"a\nb\nc\n";
        assert_eq!(&t[tail_start(t, 2)..], b"b\nc\n");
        assert_eq!(&t[tail_start(t, 5)..], t);
        assert_eq!(&t[tail_start(t, 0)..], b"");
        assert_eq!(&b"a\nb"[tail_start(b"a\nb", 1)..], b"b");
    }
}
