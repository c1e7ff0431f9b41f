//! `cp`'s host side: a container's filesystem reached through the helper (`burrow internal cp`,
//! see [`super::helper_main`]), and the copies out of it and into it, as files or tar streams.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use super::plan::{base_name, host_stat, plan};
use super::{check_helper, unpack, write_tar, Op, PathStat, Request, Root, Stat, DIR_NON_DIR};
use crate::containers::record::{self, State};
use crate::containers::Ctx;

/// How a copy treats owners and links.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Keep the files' owners (uid and gid) as they are in the source.
    pub archive: bool,
    /// Follow a symbolic link given as the source.
    pub follow_link: bool,
}

/// Where a copy out of a container goes.
pub enum Out<'a> {
    /// A host path, by Docker's rules (see [`super::plan::plan`]).
    Path(String),
    /// A tar stream.
    Tar(&'a mut dyn Write),
}

/// Where a copy into a container comes from.
pub enum In {
    /// A host path.
    Path(String),
    /// A tar stream, unpacked into the destination directory.
    Tar(Stdio),
}

/// Why a tar could not be put into a container (Docker's PUT archive).
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("Could not find the file {0} in container {1}")]
    NotFound(String, String),
    #[error("extraction point is not a directory: {0}")]
    NotDir(String),
    /// An entry would replace a directory with a non-directory or the other way round.
    #[error("{0}")]
    DirNonDir(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A container's filesystem: its running init's root, or its snapshot when it is stopped.
pub struct ContainerFs {
    /// The container as the user named it (in messages).
    name: String,
    root: Root,
    launcher_pid: Option<i32>,
    /// `export` is refused for a `--userns=keep-id` container (why, when it is one).
    shifted: Option<crate::containers::userns::UsernsError>,
}

impl ContainerFs {
    /// The filesystem of the container `query` names (an id, name or prefix).
    pub async fn open(ctx: &Ctx, query: &str) -> anyhow::Result<ContainerFs> {
        let c = ctx.find(query).await?;
        let root = match record::state(ctx, &c.id).await? {
            State::Running { pid } | State::Paused { pid } => Root::Pid(pid),
            _ => {
                let mounts = ctx
                    .client
                    .snapshot_mounts(&c.snapshotter, &c.snapshot_key)
                    .await
                    .with_context(|| format!("the filesystem of container {query}"))?;
                Root::of_mounts(&mounts)
            }
        };
        Ok(ContainerFs {
            name: query.to_string(),
            root,
            launcher_pid: ctx.launcher_pid(),
            shifted: crate::containers::userns::refuse_shifted(&c.labels, "export", query).err(),
        })
    }

    /// The filesystem of a snapshot's `mounts` (an image's, say), named `name` in messages.
    pub fn of_mounts(
        ctx: &Ctx,
        name: &str,
        mounts: &[containerd_client::types::Mount],
    ) -> ContainerFs {
        ContainerFs {
            name: name.to_string(),
            root: Root::of_mounts(mounts),
            launcher_pid: ctx.launcher_pid(),
            shifted: None,
        }
    }

    /// Which of `paths` and the directories above them are missing (see
    /// [`super::stubs::missing`]).
    pub fn missing(&self, paths: &[String]) -> anyhow::Result<Vec<String>> {
        self.look(
            Op::Missing {
                paths: paths.to_vec(),
            },
            "the mount targets",
        )
    }

    /// Removes the mount stubs at `paths` that are still empty (see [`super::stubs::remove`]).
    pub fn remove_stubs(&self, paths: &[String]) -> anyhow::Result<()> {
        let out = self
            .command(Op::RemoveStubs {
                paths: paths.to_vec(),
            })?
            .stdin(Stdio::null())
            .output()?;
        check_helper(out, &format!("cannot tidy {}", self.name))?;
        Ok(())
    }

    /// The whole filesystem as a tar stream, handed to `read`.
    pub fn export_to<T>(
        &self,
        read: impl FnOnce(std::process::ChildStdout) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.exportable()?;
        let what = format!("cannot export {}", self.name);
        self.read_helper(Op::Export, &what, read)
    }

    fn command(&self, op: Op) -> anyhow::Result<Command> {
        let req = Request {
            root: self.root.clone(),
            launcher_pid: self.launcher_pid,
            op,
        };
        Ok(crate::selfexec::Helper::Cp {
            request: serde_json::to_string(&req)?,
        }
        .command()?)
    }

    /// What is at `path` in the container.
    pub fn stat(&self, path: &str) -> anyhow::Result<Stat> {
        self.look(
            Op::Stat {
                path: path.to_string(),
            },
            path,
        )
    }

    /// What is at `path` in the container, as Docker's archive endpoints describe it (a
    /// symbolic link not followed); None when nothing is there.
    pub fn path_stat(&self, path: &str) -> anyhow::Result<Option<PathStat>> {
        self.look(
            Op::PathStat {
                path: path.to_string(),
            },
            path,
        )
    }

    /// The helper's JSON answer to a look at `path`.
    fn look<T: serde::de::DeserializeOwned>(&self, op: Op, path: &str) -> anyhow::Result<T> {
        let out = self.command(op)?.stdin(Stdio::null()).output()?;
        let body = check_helper(out, &format!("cannot look at {}:{path}", self.name))?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Writes a tar of `path` to `w` as Docker's GET archive gives it: its entries named
    /// after the path's last component, or `.` for `DIR/.` (the directory's contents).
    pub fn archive(&self, path: &str, w: &mut dyn Write) -> anyhow::Result<()> {
        let name = if path.ends_with("/.") || path == "." {
            ".".to_string()
        } else {
            base_name(path)
        };
        let op = Op::Get {
            path: path.trim_end_matches("/.").to_string(),
            name,
            follow: false,
            dotted: true,
        };
        let what = format!("cannot copy {}:{path}", self.name);
        self.read_helper(op, &what, |out| pipe(out, w))
    }

    /// Unpacks the tar `data` into the directory `dir` of the container (Docker's PUT
    /// archive): `archive` keeps the entries' owners, `no_overwrite_dir_non_dir` refuses to
    /// replace a directory with a non-directory or the other way round.
    pub fn put_tar(
        &self,
        data: &[u8],
        dir: &str,
        archive: bool,
        no_overwrite_dir_non_dir: bool,
    ) -> Result<(), PutError> {
        let st = self.stat(dir)?;
        if !st.exists {
            return Err(PutError::NotFound(dir.to_string(), self.name.clone()));
        }
        if !st.dir {
            return Err(PutError::NotDir(dir.to_string()));
        }
        let mut child = self
            .command(Op::Put {
                dir: dir.to_string(),
                archive,
                no_overwrite_dir_non_dir,
            })?
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(anyhow::Error::from)?;
        let mut input = child.stdin.take().context("no pipe to the copy helper")?;
        // A helper that stops reading (it failed) says why in its status and stderr.
        let _ = input.write_all(data);
        drop(input);
        let out = child.wait_with_output().map_err(anyhow::Error::from)?;
        match check_helper(out, &format!("cannot copy into {}:{dir}", self.name)) {
            Ok(_) => Ok(()),
            Err(e) if format!("{e}").contains(DIR_NON_DIR) => {
                Err(PutError::DirNonDir(format!("{e}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Copies `src` in the container to `to` on the host; the bytes of the tar stream that
    /// carried it.
    pub fn copy_out(&self, src: &str, to: Out, opts: Options) -> anyhow::Result<u64> {
        let st = self.stat(src)?;
        if !st.exists {
            bail!("could not find {src} in container {}", self.name);
        }
        let (to, name) = match to {
            Out::Tar(w) => (Out::Tar(w), base_name(src)),
            Out::Path(dest) => {
                let p = plan(src, st.dir, &dest, host_stat(&dest))?;
                if !Path::new(&p.dir).is_dir() {
                    bail!("the destination directory {} does not exist", p.dir);
                }
                (Out::Path(p.dir), p.name)
            }
        };
        let op = Op::Get {
            path: src.trim_end_matches("/.").to_string(),
            name,
            follow: opts.follow_link,
            dotted: false,
        };
        self.read_helper(op, &format!("cannot copy {}:{src}", self.name), |out| {
            let mut out = Counted::new(out);
            match to {
                Out::Tar(w) => pipe(&mut out, w)?,
                Out::Path(d) => unpack(&mut out, Path::new(&d), opts.archive)?,
            }
            Ok(out.count)
        })
    }

    /// Runs the helper for `op` and hands its stdout to `read`; the helper's failure (said
    /// with `what`) wins over `read`'s.
    fn read_helper<T>(
        &self,
        op: Op,
        what: &str,
        read: impl FnOnce(std::process::ChildStdout) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut child = self
            .command(op)?
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = child
            .stdout
            .take()
            .context("no pipe from the copy helper")?;
        let result = read(out);
        check_helper(child.wait_with_output()?, what)?;
        result
    }

    /// Whether [`ContainerFs::export`] can export this container (check before making a file).
    pub fn exportable(&self) -> Result<(), crate::containers::userns::UsernsError> {
        match &self.shifted {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Writes the container's whole filesystem to `w` as a tar (`burrow export`).
    pub fn export(&self, w: &mut dyn Write) -> anyhow::Result<()> {
        self.exportable()?;
        let what = format!("cannot export {}", self.name);
        self.read_helper(Op::Export, &what, |out| pipe(out, w))
    }

    /// Copies `from` on the host to `dest` in the container.
    /// Copies `from` into `dest` in the container; the bytes of the tar stream that carried it
    /// (None for a stream from stdin, which the helper reads itself).
    pub fn copy_in(&self, from: In, dest: &str, opts: Options) -> anyhow::Result<Option<u64>> {
        let src = match from {
            In::Tar(input) => return self.unpack_stream(input, dest, opts).map(|()| None),
            In::Path(src) => src,
        };
        let src_stat = host_stat(&src);
        if !src_stat.exists {
            bail!("{src} does not exist on the host");
        }
        let p = plan(&src, src_stat.dir, dest, self.stat(dest)?)?;
        let dir_st = self.stat(&p.dir)?;
        if !(dir_st.exists && dir_st.dir) {
            bail!(
                "the destination directory {}:{} does not exist",
                self.name,
                p.dir
            );
        }
        let mut child = self
            .command(Op::Put {
                dir: p.dir.clone(),
                archive: opts.archive,
                no_overwrite_dir_non_dir: false,
            })?
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let input = child.stdin.take().context("no pipe to the copy helper")?;
        let src_path = PathBuf::from(src.trim_end_matches("/."));
        let mut input = Counted::new(input);
        let written = write_tar(&mut input, &src_path, &p.name, opts.follow_link);
        let count = input.count;
        drop(input);
        let status = child.wait_with_output()?;
        check_helper(status, &format!("cannot copy into {}:{dest}", self.name))?;
        written.map(|()| Some(count))
    }

    /// A tar stream unpacked into `dest` (a directory that must exist).
    fn unpack_stream(&self, input: Stdio, dest: &str, opts: Options) -> anyhow::Result<()> {
        let st = self.stat(dest)?;
        if !(st.exists && st.dir) {
            bail!(
                "{}:{dest} is not a directory (a tar stream is unpacked into a directory)",
                self.name
            );
        }
        let status = self
            .command(Op::Put {
                dir: dest.to_string(),
                archive: opts.archive,
                no_overwrite_dir_non_dir: false,
            })?
            .stdin(input)
            .output()?;
        check_helper(status, &format!("cannot copy into {}:{dest}", self.name))?;
        Ok(())
    }
}

/// Copies a helper's output to `w`, flushed.
/// A reader or writer that counts the bytes through it.
struct Counted<T> {
    inner: T,
    count: u64,
}

impl<T> Counted<T> {
    fn new(inner: T) -> Counted<T> {
        Counted { inner, count: 0 }
    }
}

impl<T: Read> Read for Counted<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<T: Write> Write for Counted<T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn pipe(out: impl Read, w: &mut dyn Write) -> anyhow::Result<()> {
    std::io::copy(&mut std::io::BufReader::new(out), w)?;
    w.flush()?;
    Ok(())
}
