//! Entry points other programs run, handled before normal argument parsing: containerd's shim
//! runs `burrow _BURROW_INTERNAL_LOGGING DATA_ROOT` (the json-file log driver), runc runs
//! `burrow internal oci-hook EVENT STATE_DIR` (container networking), and a failed run runs
//! `burrow internal net-teardown STATE_DIR [LAUNCHER_PID]`, and `burrow cp` runs
//! `burrow internal cp REQUEST` for the container side of a copy.

use std::ffi::OsString;
use std::fs::File;
use std::process::ExitCode;

use nix::sched::{setns, CloneFlags};

use crate::containers::logdriver;
use crate::network::hook;

/// Runs an internal entry point if argv names one.
pub fn intercept(argv: &[OsString]) -> Option<ExitCode> {
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().to_string())
        .collect();
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match strs.as_slice() {
        [logdriver::MAGIC_ARG, root, ..] => logdriver::main(root),
        ["internal", "oci-hook", event, dir, ..] => oci_hook(event, dir),
        ["internal", "cp", request] => crate::containers::copy::helper_main(request),
        ["internal", "net-teardown", dir] => hook::poststop(dir.as_ref()).map_err(Into::into),
        ["internal", "net-teardown", dir, pid] => {
            enter(pid).and_then(|_| hook::poststop(dir.as_ref()).map_err(Into::into))
        }
        ["internal", ..] => Err(anyhow::anyhow!(
            "usage: burrow internal oci-hook EVENT STATE_DIR | net-teardown STATE_DIR [PID]"
        )),
        _ => return None,
    };
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("burrow: {e:#}");
            ExitCode::FAILURE
        }
    })
}

fn oci_hook(event: &str, dir: &str) -> anyhow::Result<()> {
    match event {
        "createRuntime" => {
            let pid = hook::pid_from_stdin(std::io::stdin().lock())?;
            hook::create_runtime(dir.as_ref(), pid)?;
            Ok(())
        }
        "poststop" => Ok(hook::poststop(dir.as_ref())?),
        other => anyhow::bail!("unknown OCI hook event {other:?}"),
    }
}

/// Joins the launcher child's user, network and mount namespaces (single-threaded here).
fn enter(pid: &str) -> anyhow::Result<()> {
    let open = |ns: &str| {
        let p = format!("/proc/{pid}/ns/{ns}");
        File::open(&p)
            .map_err(|e| anyhow::anyhow!("opening {p}: {e} (is the rootless containerd running?)"))
    };
    let files = [
        (open("user")?, CloneFlags::CLONE_NEWUSER),
        (open("net")?, CloneFlags::CLONE_NEWNET),
        (open("mnt")?, CloneFlags::CLONE_NEWNS),
    ];
    for (f, flag) in &files {
        setns(f, *flag)
            .map_err(|e| anyhow::anyhow!("joining the launcher's namespaces (pid {pid}): {e}"))?;
    }
    Ok(())
}
