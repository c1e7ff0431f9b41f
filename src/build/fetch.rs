//! ADD's downloads: an HTTP(S) URL fetched into a file of the build as Docker's builders fetch
//! it (redirects followed, the file named from the URL's path, dated by Last-Modified, mode
//! 0600, `--checksum` verified), a Git repository checked out with the `git` on PATH (a ref and
//! a subdirectory from the URL's fragment, submodules included), and which sources are which.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{LOCATION, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use sha2::{Digest, Sha256};

use crate::images::https::HttpClient;

/// How long a server may stay silent before the download is given up.
const IDLE: Duration = Duration::from_secs(60);
/// Redirects followed before giving up, as Go's HTTP client does.
const MAX_REDIRECTS: usize = 10;

/// A URL downloaded into a file of the build.
#[derive(Debug, Clone)]
pub struct Download {
    /// The file's name in the image when the destination is a directory.
    pub name: String,
    pub path: PathBuf,
    pub len: u64,
    /// Seconds since the epoch from Last-Modified (0 without one).
    pub mtime: u64,
    /// `sha256:...` of the contents.
    pub digest: String,
}

/// A download that failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url:?} is not a URL that can be downloaded: {why}")]
    BadUrl { url: String, why: String },
    #[error("cannot download {url}: {reason} (check the address and that this machine reaches it; HTTPS needs the server's CA in the system bundle or SSL_CERT_FILE)")]
    Unreachable { url: String, reason: String },
    #[error("cannot download {url}: the server answered {status}")]
    Status { url: String, status: StatusCode },
    #[error("cannot download {url}: more than {MAX_REDIRECTS} redirects")]
    Redirects { url: String },
    #[error("{url} has checksum {got}, not {want} as --checksum says")]
    Checksum {
        url: String,
        want: String,
        got: String,
    },
    #[error("invalid --checksum {0:?}: use sha256:<64 hex digits>")]
    BadChecksum(String),
    #[error("cannot store the download of {url} in {dir}: {err}")]
    Store {
        url: String,
        dir: PathBuf,
        err: std::io::Error,
    },
}

/// A Git repository as ADD names it: `URL[#REF[:SUBDIR]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    pub remote: String,
    pub reference: Option<String>,
    pub subdir: Option<String>,
}

impl GitSource {
    pub fn parse(src: &str) -> GitSource {
        let (remote, fragment) = match src.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (src, None),
        };
        let (reference, subdir) = match fragment.map(|f| f.split_once(':').unwrap_or((f, ""))) {
            Some((r, d)) => (
                Some(r.to_string()).filter(|r| !r.is_empty()),
                Some(d.trim_matches('/').to_string()).filter(|d| !d.is_empty()),
            ),
            None => (None, None),
        };
        GitSource {
            remote: remote.to_string(),
            reference,
            subdir,
        }
    }
}

/// A Git checkout that failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("ADD of a Git repository needs git on PATH (apt-get install git)")]
    NoGit,
    #[error("cannot check out {url}: `git {step}` failed: {output}")]
    Step {
        url: String,
        step: String,
        output: String,
    },
    #[error("cannot check out {url}: {subdir:?} is not a directory of the repository")]
    NoSubdir { url: String, subdir: String },
    #[error("cannot check out {url} into {dir}: {err}")]
    Io {
        url: String,
        dir: PathBuf,
        err: std::io::Error,
    },
}

/// Checks `src` out into a new directory under `dir` (its ref's commit, submodules too;
/// `.git` removed unless `keep_git_dir`); returns the directory ADD copies (the subdirectory
/// when the fragment names one). Blocking: run it off the async workers.
pub fn checkout(src: &str, dir: &Path, keep_git_dir: bool) -> Result<PathBuf, GitError> {
    let g = GitSource::parse(src);
    let git = crate::setup::programs::which("git").ok_or(GitError::NoGit)?;
    let io = |err| GitError::Io {
        url: g.remote.clone(),
        dir: dir.to_path_buf(),
        err,
    };
    let work = tempfile::Builder::new()
        .prefix("git-")
        .tempdir_in(dir)
        .map_err(io)?
        .keep();
    let run = |args: &[&str]| -> Result<(), GitError> {
        let mut cmd = std::process::Command::new(&git);
        cmd.args(args)
            .current_dir(&work)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null());
        // Never a question on the terminal (an unknown host key, a passphrase): fail instead.
        if std::env::var_os("GIT_SSH_COMMAND").is_none() {
            cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
        }
        let out = cmd.output().map_err(io)?;
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr);
        Err(GitError::Step {
            url: g.remote.clone(),
            step: args.join(" "),
            output: text.trim().lines().last().unwrap_or("").to_string(),
        })
    };
    run(&["init", "-q"])?;
    run(&["remote", "add", "origin", &g.remote])?;
    let reference = g.reference.as_deref().unwrap_or("HEAD");
    // A branch, tag or (where the server allows it) commit, shallow; else everything, then the
    // commit looked up locally.
    if run(&["fetch", "-q", "--depth", "1", "origin", reference]).is_ok() {
        run(&["checkout", "-q", "FETCH_HEAD"])?;
    } else {
        run(&[
            "fetch",
            "-q",
            "--tags",
            "origin",
            "+refs/heads/*:refs/remotes/origin/*",
        ])?;
        run(&["checkout", "-q", reference])?;
    }
    run(&[
        "submodule",
        "update",
        "-q",
        "--init",
        "--recursive",
        "--depth",
        "1",
    ])?;
    if !keep_git_dir {
        std::fs::remove_dir_all(work.join(".git")).map_err(io)?;
    }
    match &g.subdir {
        None => Ok(work),
        Some(d) => {
            let sub = work.join(d);
            if !sub.is_dir() || d.split('/').any(|p| p == "..") {
                return Err(GitError::NoSubdir {
                    url: g.remote.clone(),
                    subdir: d.clone(),
                });
            }
            Ok(sub)
        }
    }
}

/// Whether ADD downloads `src` (`http://` or `https://`, not a Git repository).
pub fn is_url(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && !is_git(src)
}

/// Whether `src` names a Git repository as Docker's ADD reads one: `git@host:…`, `git://…`,
/// `ssh://…`, or an HTTP(S) URL whose path ends in `.git` (a `#ref` after it).
pub fn is_git(src: &str) -> bool {
    if src.starts_with("git@") || src.starts_with("git://") || src.starts_with("ssh://") {
        return true;
    }
    if !(src.starts_with("http://") || src.starts_with("https://")) {
        return false;
    }
    let path = src.split('#').next().unwrap_or(src);
    let path = path.split('?').next().unwrap_or(path);
    path.trim_end_matches('/').ends_with(".git")
}

/// The name of a URL's file: the last segment of its path (percent-decoded), or
/// `__unnamed__` when the path has none, as BuildKit's Dockerfile frontend names it.
pub fn file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let name = percent_decode(base);
    match name.as_str() {
        "" | "." | ".." => "__unnamed__".into(),
        _ => name,
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `--checksum`'s digest, normalised to `sha256:<hex>`.
pub fn parse_checksum(v: &str) -> Result<String, FetchError> {
    let bad = || FetchError::BadChecksum(v.to_string());
    let hex = v.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// What a server said identifies its copy of a URL's contents (ETag, Last-Modified), for a
/// conditional GET next time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    fn any(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }
}

/// What a download brought.
#[derive(Debug)]
pub enum Fetched {
    /// The contents, and how the server identifies them.
    Body(Download, Validators),
    /// The server's copy is still the one `since` identified (304).
    NotModified,
}

/// Downloads `url` into a new file under `dir`; with `since`, only when the server's copy
/// changed since the download those validators came from.
pub async fn download(
    client: &HttpClient,
    url: &str,
    dir: &Path,
    checksum: Option<&str>,
    since: Option<&Validators>,
) -> Result<Fetched, FetchError> {
    let unreachable = |reason: String| FetchError::Unreachable {
        url: url.to_string(),
        reason,
    };
    let mut uri: Uri = url.parse().map_err(|e| FetchError::BadUrl {
        url: url.to_string(),
        why: format!("{e}"),
    })?;
    let mut resp = None;
    for _ in 0..=MAX_REDIRECTS {
        let mut req = Request::get(uri.clone())
            .header(USER_AGENT, concat!("burrow/", env!("CARGO_PKG_VERSION")));
        if let Some(p) = crate::images::https::proxy_authorization(&uri) {
            req = req.header(hyper::header::PROXY_AUTHORIZATION, p);
        }
        if let Some(v) = since.filter(|v| v.any()) {
            if let Some(e) = &v.etag {
                req = req.header(hyper::header::IF_NONE_MATCH, e);
            }
            if let Some(m) = &v.last_modified {
                req = req.header(hyper::header::IF_MODIFIED_SINCE, m);
            }
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| unreachable(e.to_string()))?;
        let r = match tokio::time::timeout(IDLE, client.request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(unreachable(crate::images::registry::error_chain(&e))),
            Err(_) => return Err(unreachable("no answer within a minute".into())),
        };
        if r.status().is_redirection() {
            if let Some(loc) = r.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
                uri = redirect(&uri, loc).map_err(unreachable)?;
                continue;
            }
        }
        resp = Some(r);
        break;
    }
    let Some(resp) = resp else {
        return Err(FetchError::Redirects {
            url: url.to_string(),
        });
    };
    if resp.status() == StatusCode::NOT_MODIFIED && since.is_some_and(Validators::any) {
        return Ok(Fetched::NotModified);
    }
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: resp.status(),
        });
    }
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header(hyper::header::ETAG),
        last_modified: header(hyper::header::LAST_MODIFIED),
    };
    let mtime = resp
        .headers()
        .get(hyper::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let store = |err: std::io::Error| FetchError::Store {
        url: url.to_string(),
        dir: dir.to_path_buf(),
        err,
    };
    let mut file = tempfile::Builder::new()
        .prefix("add-")
        .tempfile_in(dir)
        .map_err(store)?;
    let mut sha = Sha256::new();
    let mut len = 0u64;
    let mut body = resp.into_body();
    loop {
        let frame = match tokio::time::timeout(IDLE, body.frame()).await {
            Ok(Some(Ok(f))) => f,
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(unreachable(format!(
                    "the transfer broke off after {len} bytes: {e}"
                )))
            }
            Err(_) => {
                return Err(unreachable(format!(
                    "the server stopped sending after {len} bytes"
                )))
            }
        };
        if let Ok(data) = frame.into_data() {
            sha.update(&data);
            file.write_all(&data).map_err(store)?;
            len += data.len() as u64;
        }
    }
    let digest = format!("sha256:{}", crate::images::manifest::hex(&sha.finalize()));
    if let Some(want) = checksum {
        if want != digest {
            return Err(FetchError::Checksum {
                url: url.to_string(),
                want: want.to_string(),
                got: digest,
            });
        }
    }
    let (_, path) = file.keep().map_err(|e| store(e.error))?;
    Ok(Fetched::Body(
        Download {
            name: file_name(url),
            path,
            len,
            mtime,
            digest,
        },
        validators,
    ))
}

/// Where a Location header leads from `from`.
fn redirect(from: &Uri, loc: &str) -> Result<Uri, String> {
    let next = if loc.starts_with("//") {
        format!("{}:{loc}", from.scheme_str().unwrap_or("http"))
    } else if loc.starts_with('/') {
        format!(
            "{}://{}{loc}",
            from.scheme_str().unwrap_or("http"),
            from.authority().map(|a| a.as_str()).unwrap_or("")
        )
    } else if loc.contains("://") {
        loc.to_string()
    } else {
        let path = from.path();
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        format!(
            "{}://{}{dir}/{loc}",
            from.scheme_str().unwrap_or("http"),
            from.authority().map(|a| a.as_str()).unwrap_or("")
        )
    };
    next.parse()
        .map_err(|e| format!("bad redirect to {loc:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_git_repositories() {
        assert!(is_url("https://example.com/a.tar.gz"));
        assert!(is_url("http://127.0.0.1:8000/x"));
        assert!(!is_url("src/a.txt"));
        assert!(!is_url("https://github.com/o/r.git#main"));
        assert!(is_git("https://github.com/o/r.git#main:dir"));
        assert!(is_git("git@github.com:o/r.git"));
        assert!(is_git("git://host/r"));
        assert!(!is_git("https://host/r.git.tar"));
    }

    #[test]
    fn git_fragments_name_a_ref_and_a_subdirectory() {
        let g = GitSource::parse("https://h/r.git#v1.2:docs/site/");
        assert_eq!(g.remote, "https://h/r.git");
        assert_eq!(g.reference.as_deref(), Some("v1.2"));
        assert_eq!(g.subdir.as_deref(), Some("docs/site"));
        let g = GitSource::parse("git@h:o/r.git");
        assert_eq!((g.reference, g.subdir), (None, None));
        let g = GitSource::parse("git://h/r#:sub");
        assert_eq!((g.reference, g.subdir.as_deref()), (None, Some("sub")));
    }

    #[test]
    fn file_names_come_from_the_path() {
        assert_eq!(file_name("https://h/dir/a%20b.txt?x=1#f"), "a b.txt");
        assert_eq!(file_name("https://h/dir/"), "dir");
        assert_eq!(file_name("https://h"), "__unnamed__");
        assert_eq!(file_name("https://h/"), "__unnamed__");
        assert_eq!(file_name("http://h/50%"), "50%");
    }

    #[test]
    fn checksums() {
        let h = "A".repeat(64);
        assert_eq!(
            parse_checksum(&format!("sha256:{h}")).unwrap(),
            format!("sha256:{}", "a".repeat(64))
        );
        assert!(parse_checksum("sha256:abc").is_err());
        assert!(parse_checksum(&"a".repeat(64)).is_err());
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        let from: Uri = "http://h:1/a/b?q".parse().unwrap();
        assert_eq!(redirect(&from, "/c").unwrap(), "http://h:1/c");
        assert_eq!(redirect(&from, "d").unwrap(), "http://h:1/a/d");
        assert_eq!(redirect(&from, "https://o/e").unwrap(), "https://o/e");
        assert_eq!(redirect(&from, "//o/f").unwrap(), "http://o/f");
    }
}
