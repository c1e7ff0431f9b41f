//! ADD's download cache, under the data root: each URL's last download with the validators
//! its server gave (ETag, Last-Modified), revalidated by a conditional GET at the next build
//! (a 304 reuses it), or reused without asking when `--checksum` names its contents.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::fetch::{self, Download, FetchError, Fetched, Validators};
use crate::images::https::HttpClient;

/// The cache's directory under a data root.
pub fn dir(data_root: &Path) -> PathBuf {
    data_root.join("build-downloads")
}

/// What is recorded of a URL's last download.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    url: String,
    validators: Validators,
    name: String,
    len: u64,
    mtime: u64,
    digest: String,
}

/// The cache of one data root.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(data_root: &Path) -> Cache {
        Cache {
            dir: dir(data_root),
        }
    }

    fn paths(&self, url: &str) -> (PathBuf, PathBuf) {
        let key = crate::images::manifest::hex(&Sha256::digest(url.as_bytes()));
        (
            self.dir.join(format!("{key}.json")),
            self.dir.join(format!("{key}.data")),
        )
    }

    /// `url`'s contents in a new file under `work` (the build's): from the cache when the
    /// server says they did not change, or `checksum` names what the cache holds; else
    /// downloaded, and kept for next time when the server gave validators.
    pub async fn get(
        &self,
        client: &HttpClient,
        url: &str,
        work: &Path,
        checksum: Option<&str>,
    ) -> Result<Download, FetchError> {
        let (meta, data) = self.paths(url);
        let cached: Option<Entry> = std::fs::read(&meta)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|e: &Entry| e.url == url && data.is_file());
        if let Some(e) = cached
            .as_ref()
            .filter(|e| Some(e.digest.as_str()) == checksum)
        {
            if let Some(d) = self.copy_out(e, &data, work) {
                return Ok(d);
            }
        }
        let since = cached.as_ref().map(|e| &e.validators);
        match fetch::download(client, url, work, checksum, since).await? {
            Fetched::NotModified => {
                let e = cached.expect("validators only come from an entry");
                if let Some(want) = checksum.filter(|w| *w != e.digest) {
                    return Err(FetchError::Checksum {
                        url: url.to_string(),
                        want: want.to_string(),
                        got: e.digest,
                    });
                }
                match self.copy_out(&e, &data, work) {
                    Some(d) => Ok(d),
                    // The cached copy went away meanwhile: fetch it whole.
                    None => match fetch::download(client, url, work, checksum, None).await? {
                        Fetched::Body(d, _) => Ok(d),
                        Fetched::NotModified => unreachable!("no validators were sent"),
                    },
                }
            }
            Fetched::Body(d, validators) => {
                if validators.etag.is_some()
                    || validators.last_modified.is_some()
                    || checksum.is_some()
                {
                    if let Err(err) = self.keep(url, &d, validators, &meta, &data) {
                        tracing::warn!(%url, %err, "could not keep the download for the next build");
                    }
                }
                Ok(d)
            }
        }
    }

    /// A copy of the cached contents of `e` in `work`; None when they cannot be read.
    fn copy_out(&self, e: &Entry, data: &Path, work: &Path) -> Option<Download> {
        let file = tempfile::Builder::new()
            .prefix("add-")
            .tempfile_in(work)
            .ok()?;
        std::fs::copy(data, file.path()).ok()?;
        let (_, path) = file.keep().ok()?;
        Some(Download {
            name: e.name.clone(),
            path,
            len: e.len,
            mtime: e.mtime,
            digest: e.digest.clone(),
        })
    }

    fn keep(
        &self,
        url: &str,
        d: &Download,
        validators: Validators,
        meta: &Path,
        data: &Path,
    ) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let tmp = data.with_extension("tmp");
        std::fs::copy(&d.path, &tmp)?;
        std::fs::rename(&tmp, data)?;
        let e = Entry {
            url: url.to_string(),
            validators,
            name: d.name.clone(),
            len: d.len,
            mtime: d.mtime,
            digest: d.digest.clone(),
        };
        let tmp = meta.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&e).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, meta)
    }

    /// Removes every cached download; returns the URLs they were of.
    pub fn prune(&self) -> std::io::Result<Vec<String>> {
        let mut gone = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(gone);
        };
        for f in entries.flatten() {
            let p = f.path();
            if p.extension().is_some_and(|x| x == "json") {
                if let Some(e) = std::fs::read(&p)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
                {
                    gone.push(format!("download {}", e.url));
                }
            }
            std::fs::remove_file(&p)?;
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A server of one file with an ETag: counts requests and whole answers.
    fn server() -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (asked, sent) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (a, b) = (asked.clone(), sent.clone());
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                a.fetch_add(1, Ordering::SeqCst);
                let req = String::from_utf8_lossy(&req).to_ascii_lowercase();
                let _ = if req.contains("if-none-match: \"v1\"") {
                    write!(c, "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n")
                } else {
                    b.fetch_add(1, Ordering::SeqCst);
                    write!(
                        c,
                        "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
                    )
                };
            }
        });
        (port, asked, sent)
    }

    #[test]
    fn revalidated_reused_and_pruned() {
        let (port, asked, sent) = server();
        let root = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        let client = crate::images::https::client(&[]).unwrap();
        let url = format!("http://127.0.0.1:{port}/dir/hello.txt");
        let get = |checksum: Option<&str>| {
            crate::connection::runtime()
                .block_on(cache.get(&client, &url, work.path(), checksum))
                .unwrap()
        };
        let first = get(None);
        assert_eq!((first.name.as_str(), first.len), ("hello.txt", 5));
        let again = get(None);
        assert_eq!(std::fs::read(&again.path).unwrap(), b"hello");
        assert_eq!(again.digest, first.digest);
        assert_eq!(
            (asked.load(Ordering::SeqCst), sent.load(Ordering::SeqCst)),
            (2, 1),
            "the second was a conditional GET answered 304"
        );
        // --checksum naming what is kept: not asked at all.
        let checked = get(Some(&first.digest));
        assert_eq!(checked.digest, first.digest);
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        assert_eq!(cache.prune().unwrap(), [format!("download {url}")]);
        get(None);
        assert_eq!(
            sent.load(Ordering::SeqCst),
            2,
            "pruned: fetched whole again"
        );
    }
}
