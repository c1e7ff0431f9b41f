//! `run`/`create` flags of where a container's content comes from (`--volumes-from`,
//! `--platform`, flattened into CreateFlags) and `run -a/--attach`: parsed into the request and
//! the attached session's streams.

use burrow::containers::mounts::VolumesFrom;
use burrow::containers::request::ContainerRequest;
use burrow::containers::values::{parse_all, AttachStream};
use burrow::images::manifest::Platform;

// Not a doc comment: clap would show a flattened struct's doc as the command's about.
// `--volumes-from` and `--platform`.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceFlags {
    /// Mount the volumes and bind mounts of another container, at the same paths
    /// (CONTAINER[:ro|rw]; repeatable).
    #[arg(long, value_name = "CONTAINER")]
    pub volumes_from: Vec<String>,
    /// Run the image for this platform (os/arch[/variant], e.g. linux/arm64), pulled if needed.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
}

impl SourceFlags {
    /// Sets these flags' fields of `r`.
    pub fn apply(&self, r: &mut ContainerRequest) -> anyhow::Result<()> {
        r.host_config.volumes_from = self
            .volumes_from
            .iter()
            .map(|v| v.parse::<VolumesFrom>())
            .collect::<Result<_, _>>()?;
        r.platform = self
            .platform
            .as_deref()
            .map(|p| match p {
                // The OS alone, as Docker takes it: this host's architecture.
                "linux" => Ok(Platform::host()),
                p => Platform::parse(p),
            })
            .transpose()
            .map_err(|e| anyhow::anyhow!("--platform: {e}"))?;
        Ok(())
    }
}

/// The streams an attached `run` joins to the terminal (`-a`; none given: stdout and stderr,
/// and stdin with -i, as Docker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Streams {
    /// The streams of `-a` values (checked), refused with -d as Docker refuses them.
    pub fn of(attach: &[String], detach: bool) -> anyhow::Result<Streams> {
        let given: Vec<AttachStream> = parse_all("-a", attach)?;
        if detach && !given.is_empty() {
            anyhow::bail!("conflicting options: cannot specify both --attach and --detach");
        }
        if given.is_empty() {
            return Ok(Streams {
                stdin: false,
                stdout: true,
                stderr: true,
            });
        }
        Ok(Streams {
            stdin: given.contains(&AttachStream::Stdin),
            stdout: given.contains(&AttachStream::Stdout),
            stderr: given.contains(&AttachStream::Stderr),
        })
    }

    /// Neither output attached (`-a stdin` alone): Docker prints the container's id.
    pub fn no_output(self) -> bool {
        !self.stdout && !self.stderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str], d: bool) -> anyhow::Result<Streams> {
        Streams::of(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>(), d)
    }

    #[test]
    fn attach_streams_as_docker_takes_them() {
        let all = s(&[], false).unwrap();
        assert!(all.stdout && all.stderr);
        let out = s(&["STDOUT"], false).unwrap();
        assert!(out.stdout && !out.stderr);
        assert!(s(&["stdin"], false).unwrap().no_output());
        let e = s(&["stdout"], true).unwrap_err().to_string();
        assert!(e.contains("conflicting options"), "{e}");
        let e = s(&["tty"], false).unwrap_err().to_string();
        assert!(
            e.contains("STDIN, STDOUT and STDERR") && e.contains("-a"),
            "{e}"
        );
    }
}
