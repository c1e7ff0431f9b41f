//! The programs a setup runs: this burrow binary, its launcher and bypass service beside it, and
//! lookups on PATH.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// This burrow binary's path, also when it was replaced on disk while running (an upgrade):
/// the kernel then reports "PATH (deleted)" and the new file at PATH is used.
pub fn burrow_exe() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find the burrow binary's path")?;
    if me.exists() {
        return Ok(std::fs::canonicalize(&me).unwrap_or(me));
    }
    let text = me.display().to_string();
    match text.strip_suffix(" (deleted)").map(PathBuf::from) {
        Some(p) if p.exists() => Ok(p),
        _ => anyhow::bail!(
            "the running burrow binary {} no longer exists: run the installed burrow again",
            text
        ),
    }
}

/// The launcher binary: `--launcher`, else burrow-rootlesskit next to this binary, else on PATH.
pub fn find_launcher(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    find_sibling("burrow-rootlesskit", "--launcher", explicit)
}

/// The bypass service: `--bypass-binary`, else burrow-bypass next to this binary, else on PATH.
pub fn find_bypass(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    find_sibling("burrow-bypass", "--bypass-binary", explicit)
}

/// One of burrow's programs: as given, else next to this binary, else on PATH.
fn find_sibling(name: &str, flag: &str, explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return absolute_program(p);
    }
    let me = burrow_exe()?;
    if let Some(dir) = me.parent() {
        let sibling = dir.join(name);
        if sibling.is_file() {
            return Ok(sibling);
        }
    }
    which(name).ok_or_else(|| {
        anyhow::anyhow!(
            "{name} was not found next to {} nor on PATH: install it with ./install.sh (or pass {flag} PATH)",
            me.display()
        )
    })
}

fn absolute_program(p: &Path) -> anyhow::Result<PathBuf> {
    if p.components().count() > 1 {
        return std::fs::canonicalize(p)
            .with_context(|| format!("launcher {} not found", p.display()));
    }
    which(&p.display().to_string())
        .ok_or_else(|| anyhow::anyhow!("launcher {} not found on PATH", p.display()))
}

/// Looks a program up on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    which_in(name, &[])
}

/// Looks a program up on PATH, then in `more` dirs (where distributions keep helpers off PATH,
/// such as /usr/libexec/podman).
pub fn which_in(name: &str, more: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    which_on(name, &path, more)
}

/// Looks a program up in the dirs of `path` (PATH's form), then in `more` dirs.
pub fn which_on(name: &str, path: &std::ffi::OsStr, more: &[&str]) -> Option<PathBuf> {
    std::env::split_paths(path)
        .chain(more.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Whether `p` is a file someone may execute.
pub fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The OCI runtime: runc when installed, else crun.
pub fn default_runtime() -> String {
    if which("runc").is_none() && which("crun").is_some() {
        "crun".into()
    } else {
        "runc".into()
    }
}
