//! The programs a rootless containerd needs: containerd, an OCI runtime, slirp4netns, the launcher.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{item, Item, Status};
use crate::setup::programs::{find_launcher, which};

fn first_line(prog: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = if o.stdout.is_empty() {
        o.stderr
    } else {
        o.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

pub(super) fn check_program(prog: &'static str, args: &[&str], package: &str) -> Item {
    match which(prog) {
        Some(p) => item(
            prog,
            Status::Ok,
            format!(
                "{} ({})",
                p.display(),
                first_line(prog, args).unwrap_or_else(|| "version unknown".into())
            ),
            None,
        ),
        None => item(
            prog,
            Status::Fail,
            format!("{prog} is not on PATH"),
            Some(format!("as root: apt-get install {package}")),
        ),
    }
}

/// runc preferred, crun accepted; the chosen one.
pub(super) fn check_oci_runtime() -> (Item, Option<String>) {
    for rt in ["runc", "crun"] {
        if let Some(p) = which(rt) {
            let v = first_line(rt, &["--version"]).unwrap_or_else(|| "version unknown".into());
            return (
                item(
                    "OCI runtime",
                    Status::Ok,
                    format!("{rt}: {} ({v})", p.display()),
                    None,
                ),
                Some(rt.to_owned()),
            );
        }
    }
    (
        item(
            "OCI runtime",
            Status::Fail,
            "neither runc nor crun is on PATH",
            Some("as root: apt-get install runc".into()),
        ),
        None,
    )
}

pub(super) fn check_launcher(explicit: Option<&Path>) -> Item {
    match find_launcher(explicit) {
        Ok(p) => item("launcher", Status::Ok, p.display().to_string(), None),
        Err(e) => item(
            "launcher",
            Status::Fail,
            format!("{e:#}"),
            Some("install burrow with install.sh (it installs burrow-rootlesskit next to burrow), or pass --launcher PATH".into()),
        ),
    }
}
