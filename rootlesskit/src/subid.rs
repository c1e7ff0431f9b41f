//! Subordinate id ranges of the invoking user: from `getsubids` (dynamic) or /etc/subuid and
//! /etc/subgid (static), matched by user name or by numeric id.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where subordinate ids come from (`--subid-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SubidSource {
    /// `getsubids` when installed, else the files.
    Auto,
    /// `/usr/bin/getsubids` (shadow's libsubid, honours nsswitch).
    Dynamic,
    /// `/etc/subuid` and `/etc/subgid`.
    Static,
}

/// One subordinate range: `count` ids starting at `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// The files read by the static source. Tests and unusual hosts may point them elsewhere with
/// `BURROW_ROOTLESSKIT_SUBUID_FILE` / `BURROW_ROOTLESSKIT_SUBGID_FILE`.
pub fn static_files() -> (PathBuf, PathBuf) {
    let get = |k: &str, d: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .unwrap_or_else(|| d.into())
    };
    (
        get("BURROW_ROOTLESSKIT_SUBUID_FILE", "/etc/subuid"),
        get("BURROW_ROOTLESSKIT_SUBGID_FILE", "/etc/subgid"),
    )
}

/// Parses subuid/subgid text: `name-or-id:start:count` lines, comments and junk skipped.
pub fn parse(text: &str, name: &str, id: u32) -> Vec<Range> {
    let id = id.to_string();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split(':');
            let (who, start, count) = (it.next()?, it.next()?, it.next()?);
            if who != name && who != id {
                return None;
            }
            let r = Range {
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            };
            (r.count > 0).then_some(r)
        })
        .collect()
}

/// Every range in subuid/subgid text, whoever holds it.
pub fn parse_all(text: &str) -> Vec<Range> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split(':');
            let (_, start, count) = (it.next()?, it.next()?, it.next()?);
            Some(Range {
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            })
        })
        .collect()
}

/// The first range of `count` ids from 100000 up, aligned to `count`, that overlaps none of
/// `taken` (useradd's way of handing out ranges, without its state).
pub fn free_range(taken: &[Range], count: u32) -> Option<Range> {
    let count64 = u64::from(count.max(1));
    let mut start: u64 = 100_000;
    while start + count64 <= u64::from(u32::MAX) {
        let clash = taken.iter().find(|r| {
            let (a, b) = (u64::from(r.start), u64::from(r.start) + u64::from(r.count));
            a < start + count64 && start < b
        });
        match clash {
            None => {
                return Some(Range {
                    start: start as u32,
                    count,
                })
            }
            // Past the range in the way, at the next multiple of `count` above 100000.
            Some(r) => {
                let end = u64::from(r.start) + u64::from(r.count);
                start = 100_000 + (end - 100_000).div_ceil(count64) * count64;
            }
        }
    }
    None
}

/// Parses `getsubids` output: `0: name start count` lines.
pub fn parse_getsubids(text: &str) -> Vec<Range> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 || !f[0].ends_with(':') {
                return None;
            }
            let r = Range {
                start: f[2].parse().ok()?,
                count: f[3].parse().ok()?,
            };
            (r.count > 0).then_some(r)
        })
        .collect()
}

const GETSUBIDS: &str = "/usr/bin/getsubids";

fn dynamic(name: &str, group: bool) -> Option<Vec<Range>> {
    if !Path::new(GETSUBIDS).exists() {
        return None;
    }
    let mut cmd = Command::new(GETSUBIDS);
    if group {
        cmd.arg("-g");
    }
    let out = cmd.arg(name).output().ok()?;
    if !out.status.success() {
        tracing::debug!(
            "getsubids {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Some(Vec::new());
    }
    Some(parse_getsubids(&String::from_utf8_lossy(&out.stdout)))
}

fn from_file(path: &Path, name: &str, id: u32) -> Vec<Range> {
    match std::fs::read_to_string(path) {
        Ok(t) => parse(&t, name, id),
        Err(e) => {
            tracing::debug!("{}: {e}", path.display());
            Vec::new()
        }
    }
}

/// The user's (uid ranges, gid ranges) from `source`.
pub fn lookup(source: SubidSource, name: &str, uid: u32, gid: u32) -> (Vec<Range>, Vec<Range>) {
    let (uf, gf) = static_files();
    let dynamic_ok = || Some((dynamic(name, false)?, dynamic(name, true)?));
    match source {
        SubidSource::Dynamic => dynamic_ok().unwrap_or_default(),
        SubidSource::Static => (from_file(&uf, name, uid), from_file(&gf, name, gid)),
        SubidSource::Auto => match dynamic_ok() {
            Some((u, g)) if !u.is_empty() && !g.is_empty() => (u, g),
            _ => (from_file(&uf, name, uid), from_file(&gf, name, gid)),
        },
    }
}

/// The `newuidmap`-style triples (inside, outside, count): 0 → `id`, then 1.. → the ranges.
pub fn map_triples(id: u32, ranges: &[Range]) -> Vec<(u32, u32, u32)> {
    let mut v = vec![(0, id, 1)];
    let mut inside = 1u32;
    for r in ranges {
        v.push((inside, r.start, r.count));
        inside = inside.saturating_add(r.count);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ranges_avoid_every_holder() {
        let r = |start, count| Range { start, count };
        assert_eq!(free_range(&[], 65536), Some(r(100000, 65536)));
        let taken = parse_all("alice:100000:65536\nbob:165536:65536\n# x\nbroken\n");
        assert_eq!(taken.len(), 2);
        assert_eq!(free_range(&taken, 65536), Some(r(231072, 65536)));
        // An odd range in the middle pushes to the next aligned start past it.
        let taken = [r(150000, 10)];
        assert_eq!(free_range(&taken, 65536), Some(r(165536, 65536)));
        assert_eq!(free_range(&[r(0, u32::MAX)], 65536), None);
    }

    #[test]
    fn matches_by_name_or_uid() {
        let t = "# c\nalice:100000:65536\n1001:300000:1000\nbob:200000:65536\nbroken\nalice:x:1\n";
        assert_eq!(
            parse(t, "alice", 1000),
            vec![Range {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(
            parse(t, "carol", 1001),
            vec![Range {
                start: 300000,
                count: 1000
            }]
        );
        assert!(parse(t, "dave", 5).is_empty());
    }

    #[test]
    fn getsubids_output() {
        let t = "0: alice 100000 65536\n1: alice 500000 10\n";
        assert_eq!(parse_getsubids(t).len(), 2);
        assert_eq!(
            parse_getsubids(t)[1],
            Range {
                start: 500000,
                count: 10
            }
        );
    }

    #[test]
    fn triples() {
        let r = [
            Range {
                start: 100000,
                count: 65536,
            },
            Range {
                start: 500000,
                count: 10,
            },
        ];
        assert_eq!(
            map_triples(1000, &r),
            vec![(0, 1000, 1), (1, 100000, 65536), (65537, 500000, 10)]
        );
        assert_eq!(map_triples(7, &[]), vec![(0, 7, 1)]);
    }
}
