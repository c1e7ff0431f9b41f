//! What a COPY or ADD puts where: its sources (paths or globs) looked up in a source tree (the
//! context or another stage's or image's files), placed under the destination as Docker places
//! them (a directory's contents, a file into a directory or as the named file, ADD's local tar
//! archives extracted), with --chown and --chmod applied.

use std::path::Path;

use super::files::{self, Entry, Kind, Tree};
use super::ignore::{self, Ignore};

/// A COPY or ADD, its words already expanded.
#[derive(Debug, Clone, Default)]
pub struct CopySpec {
    pub sources: Vec<String>,
    /// Absolute destination (WORKDIR applied); a trailing `/` means a directory.
    pub dest: String,
    pub chown: Option<(u64, u64)>,
    pub chmod: Option<u32>,
    /// ADD: local tar archives are extracted.
    pub add: bool,
    /// `--exclude` patterns: what is under a directory source, or a wildcard source's match,
    /// left out when its path (from the source, or from the wildcard's directory) matches.
    pub exclude: Ignore,
    /// The paths the destination stage already has (contents left out), when the copy needs
    /// them: a file copied to an existing directory goes into it, and --chown owns the
    /// directories the copy creates.
    pub stage: Option<std::sync::Arc<Tree>>,
}

/// Where the sources come from, for errors about missing ones.
pub enum Origin<'a> {
    Context { root: &'a Path, ignore: &'a Ignore },
    Stage(&'a str),
}

/// A COPY or ADD that cannot be done.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CopyError {
    #[error("{0:?} is excluded by .dockerignore: it is not in the build context (remove or narrow the pattern that matches it)")]
    Excluded(String),
    #[error("{0:?} not found in the build context")]
    NotInContext(String),
    #[error("{path:?} not found in {stage}")]
    NotInStage { path: String, stage: String },
    #[error("no source files were specified")]
    NoSources,
    #[error(
        "when copying more than one source the destination must be a directory and end with a /"
    )]
    DestNotDir,
    #[error("invalid --chown {0:?}: use USER[:GROUP], names or numbers (names from the image's /etc/passwd and /etc/group)")]
    Chown(String),
    #[error("--chown {what:?}: no {kind} of that name in the image's /etc/{file}")]
    UnknownName {
        what: String,
        kind: &'static str,
        file: &'static str,
    },
    #[error("invalid --chmod {0:?}: use octal permissions such as 755")]
    Chmod(String),
    #[error("extracting {path:?}: {why}")]
    Archive { path: String, why: String },
}

/// Parses --chown `UID[:GID]` (the GID defaults to the UID, as Docker does).
pub fn parse_chown(v: &str) -> Result<(u64, u64), CopyError> {
    let bad = || CopyError::Chown(v.to_string());
    let (u, g) = v.split_once(':').unwrap_or((v, v));
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

/// Resolves --chown `USER[:GROUP]` with names looked up in `passwd` and `group` (the image's
/// files); numbers are taken as they are, and a missing group is the user's id, as BuildKit does.
pub fn resolve_chown(v: &str, passwd: &str, group: &str) -> Result<(u64, u64), CopyError> {
    let (u, g) = v.split_once(':').unwrap_or((v, ""));
    if u.is_empty() {
        return Err(CopyError::Chown(v.to_string()));
    }
    let find = |text: &str, name: &str, kind, file| -> Result<u64, CopyError> {
        if let Ok(n) = name.parse() {
            return Ok(n);
        }
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[0] == name)
            .and_then(|f| f[2].parse().ok())
            .ok_or(CopyError::UnknownName {
                what: name.to_string(),
                kind,
                file,
            })
    };
    let uid = find(passwd, u, "user", "passwd")?;
    let gid = match g {
        "" => uid,
        g => find(group, g, "group", "group")?,
    };
    Ok((uid, gid))
}

/// Parses --chmod (octal).
pub fn parse_chmod(v: &str) -> Result<u32, CopyError> {
    u32::from_str_radix(v, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| CopyError::Chmod(v.to_string()))
}

/// The entries the copy writes (paths relative to the image's root).
pub fn select(src: &Tree, spec: &CopySpec, origin: &Origin) -> Result<Tree, CopyError> {
    if spec.sources.is_empty() {
        return Err(CopyError::NoSources);
    }
    let mut matched: Vec<String> = Vec::new();
    for s in &spec.sources {
        let clean = ignore::clean(s);
        if clean.is_empty() {
            matched.push(String::new());
        } else if ignore::has_glob(&clean) {
            let re = ignore::to_regex(&clean).map_err(|_| missing(&clean, origin))?;
            let hits: Vec<String> = src.keys().filter(|p| re.is_match(p)).cloned().collect();
            if hits.is_empty() {
                return Err(missing(&clean, origin));
            }
            let base = glob_base(&clean);
            matched.extend(
                hits.into_iter()
                    .filter(|h| !spec.exclude.excludes(rel_to(h, &base))),
            );
        } else if src.contains_key(&clean) {
            matched.push(clean);
        } else {
            return Err(missing(&clean, origin));
        }
    }
    // A source that is a symlink is copied as what it points to, as BuildKit does.
    let mut followed = Vec::with_capacity(matched.len());
    for m in matched {
        match follow(src, &m) {
            Some(to) => followed.push((m, to)),
            None => return Err(missing(&m, origin)),
        }
    }
    let matched = followed;
    let dest = ignore::clean(&spec.dest);
    let stage_dir = |p: &str| {
        spec.stage
            .as_ref()
            .is_some_and(|t| matches!(t.get(p).map(|e| &e.kind), Some(Kind::Dir)))
    };
    let single_file = matches!(matched.as_slice(), [(_, to)] if !is_dir(src, to));
    let into_dir = spec.dest.ends_with('/')
        || spec.dest.ends_with("/.")
        || dest.is_empty()
        || (single_file && stage_dir(&dest));
    if matched.len() > 1 && !into_dir {
        return Err(CopyError::DestNotDir);
    }
    let mut out = Tree::new();
    for (m, to) in &matched {
        place(src, m, to, &dest, into_dir, spec, &mut out)?;
    }
    for e in out.values_mut() {
        if let Some((u, g)) = spec.chown {
            e.uid = u;
            e.gid = g;
        }
        if let Some(mode) = spec.chmod {
            e.mode = mode;
        }
    }
    // --chown owns the directories the copy creates (the destination and its missing
    // parents), as BuildKit does; those the stage has keep their owner.
    if let (Some((uid, gid)), Some(stage)) = (spec.chown, &spec.stage) {
        let top = if into_dir || !single_file {
            dest.as_str()
        } else {
            dest.rsplit_once('/').map_or("", |(d, _)| d)
        };
        let mut at = String::new();
        for part in top.split('/').filter(|p| !p.is_empty()) {
            at = join(&at, part);
            if !stage.contains_key(&at) && !out.contains_key(&at) {
                let e = Entry {
                    path: at.clone(),
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid,
                    gid,
                    mtime: 0,
                };
                out.insert(at.clone(), e);
            }
        }
    }
    Ok(out)
}

/// The directories of a wildcard source before its first wildcard (`a/b*/c` → `a`).
fn glob_base(pattern: &str) -> String {
    let fixed: Vec<&str> = pattern
        .split('/')
        .take_while(|part| !ignore::has_glob(part))
        .collect();
    fixed.join("/")
}

/// `path` relative to the directory `base` (`""`: the root).
fn rel_to<'a>(path: &'a str, base: &str) -> &'a str {
    match base.is_empty() {
        true => path,
        false => path
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(path),
    }
}

fn is_dir(src: &Tree, p: &str) -> bool {
    p.is_empty() || matches!(src.get(p).map(|e| &e.kind), Some(Kind::Dir))
}

/// Where `m` leads in `src` when it is a symlink (itself otherwise): absolute targets from the
/// tree's root, relative ones from the link's directory; None when the chain leaves the tree
/// or loops.
fn follow(src: &Tree, m: &str) -> Option<String> {
    let mut at = m.to_string();
    for _ in 0..32 {
        let Some(Kind::Symlink(target)) = src.get(&at).map(|e| &e.kind) else {
            return Some(at);
        };
        let joined = if target.starts_with('/') {
            target.clone()
        } else {
            let dir = at.rsplit_once('/').map_or("", |(d, _)| d);
            format!("{dir}/{target}")
        };
        at = ignore::clean(&joined);
        if !at.is_empty() && !src.contains_key(&at) {
            return None;
        }
    }
    None
}

fn join(dir: &str, rel: &str) -> String {
    match (dir.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (_, true) => dir.to_string(),
        _ => format!("{dir}/{rel}"),
    }
}

/// Places source `m` (a path of `src`, `""` for its root), whose entry is at `to` (`m`, or
/// what the symlink `m` leads to), at `dest`.
fn place(
    src: &Tree,
    m: &str,
    to: &str,
    dest: &str,
    into_dir: bool,
    spec: &CopySpec,
    out: &mut Tree,
) -> Result<(), CopyError> {
    if is_dir(src, to) {
        let prefix = if to.is_empty() {
            String::new()
        } else {
            format!("{to}/")
        };
        for (p, e) in src.range(prefix.clone()..) {
            let Some(rel) = p.strip_prefix(&prefix) else {
                break;
            };
            if !spec.exclude.is_empty() && spec.exclude.excludes(rel) {
                let dir = matches!(e.kind, Kind::Dir);
                if !(dir && spec.exclude.may_reinclude_under(rel)) {
                    continue;
                }
            }
            put(out, e, join(dest, rel));
        }
        return Ok(());
    }
    let e = &src[to];
    if spec.add {
        if let Kind::File(data) = &e.kind {
            let archive_err = |why: String| CopyError::Archive {
                path: m.to_string(),
                why,
            };
            let head = data
                .head(64 * 1024)
                .map_err(|e| archive_err(e.to_string()))?;
            let compressed =
                head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]);
            let inner = match compressed {
                true => {
                    let all = data.bytes().map_err(|e| archive_err(e.to_string()))?;
                    files::bzip2_or_xz_tar(&all)
                        .transpose()
                        .map_err(|e| archive_err(e.to_string()))?
                        .filter(|tar| files::is_archive(tar))
                }
                false => None,
            };
            if inner.is_some() || files::is_archive(&head) {
                let data = match inner {
                    Some(tar) => std::borrow::Cow::Owned(tar),
                    None => data.bytes().map_err(|e| archive_err(e.to_string()))?,
                };
                let mut extracted = Tree::new();
                files::apply_layer(&mut extracted, &data, m)
                    .map_err(|err| archive_err(err.to_string()))?;
                for (p, x) in &extracted {
                    put(out, x, join(dest, p));
                }
                return Ok(());
            }
        }
    }
    let base = m.rsplit('/').next().unwrap_or(m);
    let target = if into_dir {
        join(dest, base)
    } else {
        dest.to_string()
    };
    put(out, e, target);
    Ok(())
}

fn put(out: &mut Tree, e: &Entry, path: String) {
    if path.is_empty() {
        return;
    }
    let mut e = e.clone();
    e.path = path.clone();
    out.insert(path, e);
}

fn missing(path: &str, origin: &Origin) -> CopyError {
    match origin {
        Origin::Context { root, ignore } => {
            if root.join(path).symlink_metadata().is_ok() && ignore.excludes(path) {
                CopyError::Excluded(path.to_string())
            } else {
                CopyError::NotInContext(path.to_string())
            }
        }
        Origin::Stage(name) => CopyError::NotInStage {
            path: path.to_string(),
            stage: name.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(paths: &[&str]) -> Tree {
        paths
            .iter()
            .map(|p| {
                let (p, kind) = match p.strip_suffix('/') {
                    Some(d) => (d, Kind::Dir),
                    None => (*p, Kind::File(p.as_bytes().to_vec().into())),
                };
                let e = Entry {
                    path: p.into(),
                    kind,
                    mode: 0o644,
                    uid: 5,
                    gid: 5,
                    mtime: 0,
                };
                (p.to_string(), e)
            })
            .collect()
    }

    fn paths(t: &Tree) -> Vec<&str> {
        t.keys().map(String::as_str).collect()
    }

    fn spec(sources: &[&str], dest: &str) -> CopySpec {
        CopySpec {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.into(),
            ..Default::default()
        }
    }

    #[test]
    fn exclude_patterns_leave_out_paths_under_a_source_and_wildcard_matches() {
        let src = tree(&[
            "app/",
            "app/main.rs",
            "app/notes.txt",
            "app/node_modules/",
            "app/node_modules/x/",
            "app/node_modules/x/index.js",
            "app/docs/",
            "app/docs/a.md",
            "app/docs/keep.md",
            "home.txt",
            "homedir/",
            "homedir/b.txt",
            "homedir/c.rs",
            "homer.rs",
        ]);
        let with = |sources: &[&str], dest: &str, ex: &[&str]| {
            let mut s = spec(sources, dest);
            s.exclude =
                Ignore::from_patterns(&ex.iter().map(|p| p.to_string()).collect::<Vec<_>>())
                    .unwrap();
            select(&src, &s, &Origin::Stage("t")).unwrap()
        };
        // A directory's contents: a name, a glob and `**`, with an exception.
        let out = with(
            &["app"],
            "/dst/",
            &["node_modules", "*.txt", "docs/**", "!docs/keep.md"],
        );
        assert_eq!(paths(&out), ["dst/docs", "dst/docs/keep.md", "dst/main.rs"]);
        // Wildcard matches themselves (the doc's `COPY --exclude=*.txt hom* /mydir/`), and
        // what is under a matched directory.
        let out = with(&["hom*"], "/mydir/", &["*.txt"]);
        assert_eq!(
            paths(&out),
            ["mydir/c.rs", "mydir/homer.rs"],
            "{:?}",
            paths(&out)
        );
        // A file named as a source is copied whatever the patterns say.
        let out = with(&["home.txt"], "/d/", &["*.txt"]);
        assert_eq!(paths(&out), ["d/home.txt"]);
        assert!(Ignore::from_patterns(&["[abc".to_string()]).is_err());
    }

    #[test]
    fn symlinks_existing_directories_and_chown() {
        let mut src = tree(&["top.txt", "d/", "d/x"]);
        for (name, target) in [("link.txt", "top.txt"), ("dl", "d"), ("gone", "nope")] {
            let e = Entry {
                path: name.into(),
                kind: Kind::Symlink(target.into()),
                mode: 0o777,
                uid: 0,
                gid: 0,
                mtime: 0,
            };
            src.insert(name.into(), e);
        }
        let o = Origin::Stage("s");
        let got = select(&src, &spec(&["link.txt"], "/c"), &o).unwrap();
        assert_eq!(got["c"].kind, Kind::File(b"top.txt".to_vec().into()));
        assert_eq!(
            paths(&select(&src, &spec(&["dl"], "/w"), &o).unwrap()),
            ["w/x"]
        );
        assert!(select(&src, &spec(&["gone"], "/g"), &o).is_err());
        // A file copied to a directory the stage has goes into it.
        let stage = std::sync::Arc::new(tree(&["bin/", "bin/sh"]));
        let mut s = spec(&["top.txt"], "/bin");
        s.stage = Some(stage.clone());
        assert_eq!(paths(&select(&src, &s, &o).unwrap()), ["bin/top.txt"]);
        // --chown owns the directories the copy makes, not those the stage has.
        let mut s = spec(&["d"], "/bin/new/app");
        s.stage = Some(stage);
        s.chown = Some((7, 8));
        let got = select(&src, &s, &o).unwrap();
        assert_eq!(paths(&got), ["bin/new", "bin/new/app", "bin/new/app/x"]);
        assert_eq!((got["bin/new"].uid, got["bin/new"].gid), (7, 8));
    }

    #[test]
    fn places_files_dirs_and_globs() {
        let src = tree(&["a.txt", "b.txt", "d/", "d/x", "d/e/", "d/e/y"]);
        let o = Origin::Stage("s");
        assert_eq!(
            paths(&select(&src, &spec(&["a.txt"], "/app/f"), &o).unwrap()),
            ["app/f"]
        );
        assert_eq!(
            paths(&select(&src, &spec(&["./a.txt"], "/app/"), &o).unwrap()),
            ["app/a.txt"]
        );
        assert_eq!(
            paths(&select(&src, &spec(&["*.txt"], "/t/"), &o).unwrap()),
            ["t/a.txt", "t/b.txt"]
        );
        assert_eq!(
            paths(&select(&src, &spec(&["d"], "/w"), &o).unwrap()),
            ["w/e", "w/e/y", "w/x"]
        );
        assert_eq!(
            select(&src, &spec(&["*.txt"], "/t"), &o).unwrap_err(),
            CopyError::DestNotDir
        );
        assert!(matches!(
            select(&src, &spec(&["nope"], "/t"), &o),
            Err(CopyError::NotInStage { .. })
        ));
    }

    #[test]
    fn add_extracts_local_archives_and_copy_does_not() {
        let inner = tree(&["pkg/", "pkg/bin"]);
        let archive = files::layer_tar(&inner).unwrap();
        let mut src = Tree::new();
        src.insert(
            "pkg.tar".into(),
            Entry {
                path: "pkg.tar".into(),
                kind: Kind::File(archive.into()),
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
            },
        );
        let mut s = spec(&["pkg.tar"], "/opt/");
        s.add = true;
        assert_eq!(
            paths(&select(&src, &s, &Origin::Stage("s")).unwrap()),
            ["opt/pkg", "opt/pkg/bin"]
        );
        s.add = false;
        assert_eq!(
            paths(&select(&src, &s, &Origin::Stage("s")).unwrap()),
            ["opt/pkg.tar"]
        );
        // bzip2- and xz-compressed tars are extracted too, as Docker's ADD does.
        let plain = files::layer_tar(&inner).unwrap();
        let mut bz = Vec::new();
        std::io::Read::read_to_end(
            &mut bzip2::read::BzEncoder::new(&plain[..], bzip2::Compression::fast()),
            &mut bz,
        )
        .unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut std::io::BufReader::new(&plain[..]), &mut xz).unwrap();
        for (name, data) in [("pkg.tar.bz2", bz), ("pkg.tar.xz", xz)] {
            let mut src = Tree::new();
            let mut e = src_entry(name);
            e.kind = Kind::File(data.into());
            src.insert(name.into(), e);
            let mut s = spec(&[name], "/opt/");
            s.add = true;
            assert_eq!(
                paths(&select(&src, &s, &Origin::Stage("s")).unwrap()),
                ["opt/pkg", "opt/pkg/bin"],
                "{name}"
            );
        }
    }

    fn src_entry(name: &str) -> Entry {
        Entry {
            path: name.into(),
            kind: Kind::Dir,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    #[test]
    fn chown_and_chmod() {
        let src = tree(&["a"]);
        let mut s = spec(&["a"], "/a");
        s.chown = Some(parse_chown("10:20").unwrap());
        s.chmod = Some(parse_chmod("750").unwrap());
        let out = select(&src, &s, &Origin::Stage("s")).unwrap();
        let e = &out["a"];
        assert_eq!((e.uid, e.gid, e.mode), (10, 20, 0o750));
        assert_eq!(parse_chown("7").unwrap(), (7, 7));
        assert!(parse_chown("root").is_err());
        let passwd = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
        let group = "root:x:0:\nstaff:x:50:\n";
        assert_eq!(resolve_chown("app", passwd, group).unwrap(), (1000, 1000));
        assert_eq!(
            resolve_chown("app:staff", passwd, group).unwrap(),
            (1000, 50)
        );
        assert_eq!(resolve_chown("7:root", passwd, group).unwrap(), (7, 0));
        assert!(matches!(
            resolve_chown("nobody", passwd, group),
            Err(CopyError::UnknownName { .. })
        ));
        assert!(parse_chmod("99").is_err());
    }

    #[test]
    fn missing_sources_say_whether_dockerignore_excluded_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        let ig = Ignore::parse("secret\n").unwrap();
        let src = files::context_tree(dir.path(), &ig).unwrap();
        let o = Origin::Context {
            root: dir.path(),
            ignore: &ig,
        };
        assert_eq!(
            select(&src, &spec(&["secret"], "/x"), &o).unwrap_err(),
            CopyError::Excluded("secret".into())
        );
        assert_eq!(
            select(&src, &spec(&["other"], "/x"), &o).unwrap_err(),
            CopyError::NotInContext("other".into())
        );
    }
}
