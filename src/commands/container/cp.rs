//! `burrow cp`: copies files between a container (running or stopped) and the host, or a tar stream.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context};

use super::{Ctx, State};
use burrow::connection::Globals;
use burrow::containers::copy::{self, Op, Request, Root, SnapshotMount, Stat};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
  burrow cp CONTAINER:SRC_PATH DEST_PATH|-
  burrow cp SRC_PATH|- CONTAINER:DEST_PATH

A directory is copied recursively; SRC_PATH ending in /. copies its contents. With - the data is
a tar stream on stdout (from a container) or stdin (to a container, unpacked into DEST_PATH).
Files copied into a container belong to its root user unless -a is given.")]
pub struct Args {
    /// Keep the files' owners (uid and gid) as they are in the source.
    #[arg(short, long)]
    pub archive: bool,
    /// Follow a symbolic link given as SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    pub src: String,
    pub dest: String,
}

/// One side of the copy.
enum Side {
    Host(String),
    Container { name: String, path: String },
}

fn side(s: &str) -> Side {
    // CONTAINER:PATH, where a host path with a colon needs ./ in front (as with Docker).
    match s.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => Side::Container {
            name: c.to_string(),
            path: p.to_string(),
        },
        _ => Side::Host(s.to_string()),
    }
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        match (side(&args.src), side(&args.dest)) {
            (Side::Container { name, path }, Side::Host(dest)) => {
                let h = Helper::new(&ctx, &name).await?;
                copy_out(&h, &path, &dest, &args)?;
            }
            (Side::Host(src), Side::Container { name, path }) => {
                let h = Helper::new(&ctx, &name).await?;
                copy_in(&h, &src, &path, &args)?;
            }
            (Side::Container { .. }, Side::Container { .. }) => {
                bail!("copying between containers is not supported: copy to the host first")
            }
            (Side::Host(_), Side::Host(_)) => {
                bail!("one of SRC and DEST must be CONTAINER:PATH (see burrow cp --help)")
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `burrow internal cp` for one container.
struct Helper {
    name: String,
    root: Root,
    launcher_pid: Option<i32>,
}

impl Helper {
    async fn new(ctx: &Ctx, query: &str) -> anyhow::Result<Helper> {
        let c = ctx.find(query).await?;
        let root = match super::state(ctx, &c.id).await? {
            State::Running { pid } | State::Paused { pid } => Root::Pid(pid),
            _ => {
                let mounts = ctx
                    .client
                    .snapshot_mounts(&c.snapshotter, &c.snapshot_key)
                    .await
                    .with_context(|| format!("the filesystem of container {query}"))?;
                Root::Mounts(
                    mounts
                        .into_iter()
                        .map(|m| SnapshotMount {
                            typ: m.r#type,
                            source: m.source,
                            options: m.options,
                        })
                        .collect(),
                )
            }
        };
        Ok(Helper {
            name: query.to_string(),
            root,
            launcher_pid: ctx.ep.launcher.as_ref().map(|l| l.child_pid),
        })
    }

    fn command(&self, op: Op) -> anyhow::Result<Command> {
        let req = Request {
            root: self.root.clone(),
            launcher_pid: self.launcher_pid,
            op,
        };
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["internal", "cp"])
            .arg(serde_json::to_string(&req)?);
        Ok(cmd)
    }

    fn stat(&self, path: &str) -> anyhow::Result<Stat> {
        let out = self
            .command(Op::Stat {
                path: path.to_string(),
            })?
            .stdin(Stdio::null())
            .output()?;
        let body = copy::check_helper(out, &format!("cannot look at {}:{path}", self.name))?;
        Ok(serde_json::from_slice(&body)?)
    }
}

/// Where a copy lands: the directory to unpack into and the top entry's name there.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    dir: String,
    name: String,
}

/// Docker's rules for SRC → DEST (`dest` is what exists at DEST).
fn plan(src: &str, src_is_dir: bool, dest: &str, dest_stat: Stat) -> anyhow::Result<Plan> {
    let contents = src.ends_with("/.");
    let base = Path::new(src.trim_end_matches("/.").trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| ".".into());
    let trimmed = dest.trim_end_matches('/');
    let dest_dir_part = || {
        Path::new(trimmed)
            .parent()
            .map(|p| p.to_string_lossy().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| {
                if dest.starts_with('/') {
                    "/".into()
                } else {
                    ".".into()
                }
            })
    };
    let dest_name = || {
        Path::new(trimmed)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    };
    if dest_stat.exists && dest_stat.dir {
        let name = if contents && src_is_dir {
            ".".into()
        } else {
            base
        };
        return Ok(Plan {
            dir: dest.to_string(),
            name,
        });
    }
    if dest_stat.exists {
        if src_is_dir {
            bail!("cannot copy a directory to a file: {dest} is a file");
        }
        return Ok(Plan {
            dir: dest_dir_part(),
            name: dest_name(),
        });
    }
    if dest.ends_with('/') && !src_is_dir {
        bail!("the destination directory {dest} does not exist");
    }
    Ok(Plan {
        dir: dest_dir_part(),
        name: dest_name(),
    })
}

fn host_stat(p: &str) -> Stat {
    match std::fs::metadata(p) {
        Ok(m) => Stat {
            exists: true,
            dir: m.is_dir(),
        },
        Err(_) => Stat {
            exists: std::fs::symlink_metadata(p).is_ok(),
            dir: false,
        },
    }
}

fn copy_out(h: &Helper, src: &str, dest: &str, args: &Args) -> anyhow::Result<()> {
    let st = h.stat(src)?;
    if !st.exists {
        bail!("could not find {src} in container {}", h.name);
    }
    let base = Path::new(src.trim_end_matches("/.").trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| ".".into());
    let (dir, name) = if dest == "-" {
        (None, base)
    } else {
        let p = plan(src, st.dir, dest, host_stat(dest))?;
        if !Path::new(&p.dir).is_dir() {
            bail!("the destination directory {} does not exist", p.dir);
        }
        (Some(p.dir), p.name)
    };
    let mut child = h
        .command(Op::Get {
            path: src.trim_end_matches("/.").to_string(),
            name,
            follow: args.follow_link,
        })?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = child
        .stdout
        .take()
        .context("no pipe from the copy helper")?;
    let result = match &dir {
        None => {
            let mut o = std::io::stdout().lock();
            std::io::copy(&mut std::io::BufReader::new(out), &mut o)
                .map(|_| ())
                .map_err(anyhow::Error::from)
                .and_then(|_| o.flush().map_err(Into::into))
        }
        Some(d) => copy::unpack(out, Path::new(d), args.archive),
    };
    let status = child.wait_with_output()?;
    copy::check_helper(status, &format!("cannot copy {}:{src}", h.name))?;
    result
}

fn copy_in(h: &Helper, src: &str, dest: &str, args: &Args) -> anyhow::Result<()> {
    if src == "-" {
        // A tar stream on stdin, unpacked into DEST (a directory that must exist).
        let st = h.stat(dest)?;
        if !(st.exists && st.dir) {
            bail!(
                "{}:{dest} is not a directory (a tar stream is unpacked into a directory)",
                h.name
            );
        }
        let status = h
            .command(Op::Put {
                dir: dest.to_string(),
                archive: args.archive,
            })?
            .stdin(Stdio::inherit())
            .output()?;
        copy::check_helper(status, &format!("cannot copy into {}:{dest}", h.name))?;
        return Ok(());
    }
    let src_stat = host_stat(src);
    if !src_stat.exists {
        bail!("{src} does not exist on the host");
    }
    let p = plan(src, src_stat.dir, dest, h.stat(dest)?)?;
    let dir_st = h.stat(&p.dir)?;
    if !(dir_st.exists && dir_st.dir) {
        bail!(
            "the destination directory {}:{} does not exist",
            h.name,
            p.dir
        );
    }
    let mut child = h
        .command(Op::Put {
            dir: p.dir.clone(),
            archive: args.archive,
        })?
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let input = child.stdin.take().context("no pipe to the copy helper")?;
    let src_path: PathBuf = PathBuf::from(src.trim_end_matches("/."));
    let written = copy::write_tar(input, &src_path, &p.name, args.follow_link);
    let status = child.wait_with_output()?;
    copy::check_helper(status, &format!("cannot copy into {}:{dest}", h.name))?;
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Stat = Stat {
        exists: false,
        dir: false,
    };
    const DIR: Stat = Stat {
        exists: true,
        dir: true,
    };
    const FILE: Stat = Stat {
        exists: true,
        dir: false,
    };

    fn p(dir: &str, name: &str) -> Plan {
        Plan {
            dir: dir.into(),
            name: name.into(),
        }
    }

    #[test]
    fn docker_path_rules() {
        assert_eq!(
            plan("/etc/hosts", false, "/tmp", DIR).unwrap(),
            p("/tmp", "hosts")
        );
        assert_eq!(
            plan("/etc/hosts", false, "/tmp/h", NONE).unwrap(),
            p("/tmp", "h")
        );
        assert_eq!(
            plan("/etc/hosts", false, "/tmp/h", FILE).unwrap(),
            p("/tmp", "h")
        );
        assert!(plan("/etc/hosts", false, "/tmp/nodir/", NONE).is_err());
        assert_eq!(plan("/etc", true, "/tmp/x", NONE).unwrap(), p("/tmp", "x"));
        assert_eq!(plan("/etc", true, "/tmp", DIR).unwrap(), p("/tmp", "etc"));
        assert_eq!(plan("/etc/.", true, "/tmp", DIR).unwrap(), p("/tmp", "."));
        assert!(plan("/etc", true, "/tmp/file", FILE).is_err());
        assert_eq!(plan("f", false, "out", NONE).unwrap(), p(".", "out"));
    }

    #[test]
    fn sides() {
        assert!(matches!(side("web:/etc/hosts"), Side::Container { .. }));
        assert!(matches!(side("./a:b"), Side::Host(_)));
        assert!(matches!(side("/abs/path"), Side::Host(_)));
        assert!(matches!(side("-"), Side::Host(_)));
    }
}
