//! `burrow cp`: copies files between a container (running or stopped) and the host, or a tar
//! stream; the copying is `burrow::containers::copy::transfer`'s.

use std::process::{ExitCode, Stdio};

use anyhow::bail;

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::copy::transfer::{ContainerFs, In, Options, Out};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
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
    /// Say nothing on success (on a terminal, the copy's size is said otherwise).
    #[arg(short, long)]
    pub quiet: bool,
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
    let opts = Options {
        archive: args.archive,
        follow_link: args.follow_link,
    };
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        match (side(&args.src), side(&args.dest)) {
            (Side::Container { name, path }, Side::Host(dest)) => {
                let fs = ContainerFs::open(&ctx, &name).await?;
                let mut stdout;
                let to = if dest == "-" {
                    stdout = std::io::stdout().lock();
                    Out::Tar(&mut stdout)
                } else {
                    Out::Path(dest.clone())
                };
                let size = fs.copy_out(&path, to, opts)?;
                if dest != "-" {
                    copied(args.quiet, Some(size), &dest);
                }
            }
            (Side::Host(src), Side::Container { name, path }) => {
                let fs = ContainerFs::open(&ctx, &name).await?;
                let from = if src == "-" {
                    In::Tar(Stdio::inherit())
                } else {
                    In::Path(src)
                };
                let size = fs.copy_in(from, &path, opts)?;
                copied(args.quiet, size, &format!("{name}:{path}"));
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

/// Docker's "Successfully copied SIZE to DEST", on a terminal only (scripts see nothing).
fn copied(quiet: bool, size: Option<u64>, dest: &str) {
    use std::io::IsTerminal;
    if let (false, Some(n), true) = (quiet, size, std::io::stderr().is_terminal()) {
        let size = burrow::images::catalog::human_size(i64::try_from(n).unwrap_or(i64::MAX));
        eprintln!("Successfully copied {size} to {dest}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides() {
        assert!(matches!(side("web:/etc/hosts"), Side::Container { .. }));
        assert!(matches!(side("./a:b"), Side::Host(_)));
        assert!(matches!(side("/abs/path"), Side::Host(_)));
        assert!(matches!(side("-"), Side::Host(_)));
    }
}
