//! The rootless containerd's and launcher's log (`burrow setup logs`): whole, tailed or followed.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

/// Writes the log at `log` to `out`: whole, or its last `tail` lines; with `follow`, keeps
/// writing what is appended (starting over when the file is truncated or replaced) and returns
/// only on an error.
pub fn copy(
    log: &Path,
    tail: Option<usize>,
    follow: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut f = match std::fs::File::open(log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!(
                "no log at {}: the rootless containerd has not run yet (burrow setup install)",
                log.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", log.display())),
    };
    let mut text = Vec::new();
    f.read_to_end(&mut text)
        .with_context(|| format!("cannot read {}", log.display()))?;
    let start = match tail {
        Some(n) => tail_start(&text, n),
        None => 0,
    };
    out.write_all(&text[start..])?;
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut pos = text.len() as u64;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let len = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Truncated or replaced: start over.
            f = std::fs::File::open(log)?;
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
