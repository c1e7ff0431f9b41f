//! The user's systemd manager, through `systemctl --user`.

use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// The unit burrow installs (the name nerdctl's setup tool uses too).
pub const UNIT: &str = "containerd.service";

/// The socket-bypass service's unit.
pub const BYPASS_UNIT: &str = "burrow-bypass.service";

/// The Docker API's socket unit (it starts [`DOCKER_SERVICE`] on the first connection).
pub const DOCKER_SOCKET: &str = "burrow-docker.socket";

/// The Docker API's service unit.
pub const DOCKER_SERVICE: &str = "burrow-docker.service";

fn systemctl() -> Command {
    let mut c = Command::new("systemctl");
    c.arg("--user").stdin(Stdio::null());
    c
}

/// Ok when `systemctl --user` reaches a running manager; else why not.
pub fn user_manager_reachable() -> Result<(), String> {
    if std::env::var_os("BURROW_NO_SYSTEMD").is_some_and(|v| v == "1") {
        return Err("BURROW_NO_SYSTEMD=1".into());
    }
    match systemctl()
        .arg("show-environment")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            Err(err
                .lines()
                .next()
                .unwrap_or("systemctl --user failed")
                .trim()
                .to_owned())
        }
        Err(e) => Err(format!("systemctl: {e}")),
    }
}

/// Runs `systemctl --user ARGS` and fails with its message.
pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let o = systemctl()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run systemctl")?;
    if !o.status.success() {
        bail!(
            "systemctl --user {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

/// A property of the unit (`systemctl --user show -p NAME --value`), empty when unknown.
pub fn property(name: &str) -> String {
    unit_property(UNIT, name)
}

/// True when a unit is active.
pub fn unit_active(unit: &str) -> bool {
    unit_property(unit, "ActiveState") == "active"
}

/// A property of a unit, empty when unknown.
pub fn unit_property(unit: &str, name: &str) -> String {
    systemctl()
        .args(["show", unit, "-p", name, "--value"])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// True when the unit is active (running).
pub fn is_active() -> bool {
    property("ActiveState") == "active"
}

/// The unit's main pid, if it runs.
pub fn main_pid() -> Option<i32> {
    property("MainPID").parse().ok().filter(|p| *p > 0)
}
