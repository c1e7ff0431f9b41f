//! Entry points other programs run, handled before normal argument parsing: containerd's shim
//! runs `burrow _BURROW_INTERNAL_LOGGING DATA_ROOT` (the json-file log driver), runc runs
//! `burrow internal oci-hook EVENT STATE_DIR` (container networking), and a failed run runs
//! `burrow internal net-teardown STATE_DIR [LAUNCHER_PID] [--claimed]` (also alongside the task
//! deletion of `run --rm`), `run` runs `burrow internal net-prepare STATE_DIR [LAUNCHER_PID]`
//! (its ahead-of-time attach), `burrow cp` runs `burrow internal cp REQUEST` for the
//! container side of a copy, and containerd runs `burrow internal layer-squash` as the stream
//! processor that gives a single-id user's layers to that user.

use std::ffi::OsString;
use std::fs::File;
use std::process::ExitCode;

use nix::sched::{setns, CloneFlags};

use burrow::containers::logdriver;
use burrow::network::hook;
use burrow::session::background;

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
        ["internal", "cp", request] => burrow::containers::copy::helper_main(request),
        ["internal", "layer-squash"] => burrow::images::owners::processor_main(),
        ["internal", "detached-drain", root, ns, id, dir, rest @ ..] => {
            detached_drain(root, ns, id, dir, rest)
        }
        ["internal", "net-teardown", dir, rest @ ..] => net_teardown(dir, rest),
        ["internal", "net-prepare", dir, rest @ ..] => {
            enter_if(rest.first()).and_then(|_| burrow::network::prepare::main(dir.as_ref()))
        }
        ["internal", ..] => Err(anyhow::anyhow!(
            "usage: burrow internal oci-hook EVENT STATE_DIR | net-teardown STATE_DIR [PID] [--claimed] | net-prepare STATE_DIR [PID] | detached-drain DATA_ROOT NS ID FIFO_DIR [--discard] [-- COMMAND...] | cp REQUEST | layer-squash (these are run by burrow itself, containerd and runc)"
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

/// A detached session's background reader (see [`background::drain`]):
/// `DATA_ROOT NS ID FIFO_DIR [--discard] [-- COMMAND...]`.
fn detached_drain(root: &str, ns: &str, id: &str, dir: &str, rest: &[&str]) -> anyhow::Result<()> {
    // `--discard` (an exec's process): the output is read and dropped, nobody can attach.
    let (discard, rest) = match rest {
        ["--discard", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let then = match rest {
        ["--", argv @ ..] => argv.iter().map(OsString::from).collect(),
        _ => Vec::new(),
    };
    background::drain(&background::ReaderRequest {
        data_root: root.into(),
        namespace: ns.to_string(),
        id: id.to_string(),
        fifo_dir: dir.into(),
        discard,
        then,
    })?;
    Ok(())
}

/// Detaches a container's networks from outside its task: after a failed `run` (everything
/// left), or alongside the task's deletion in `run --rm` (`--claimed`: what `run` claimed, so
/// the poststop hook had nothing to do and the two overlap).
fn net_teardown(dir: &str, rest: &[&str]) -> anyhow::Result<()> {
    let claimed = rest.contains(&"--claimed");
    enter_if(rest.iter().find(|a| **a != "--claimed"))?;
    let dir = std::path::Path::new(dir);
    if claimed {
        hook::detach_claimed(dir)?;
    } else {
        let _lock = hook::lock(dir)?;
        hook::detach_all(dir);
    }
    Ok(())
}

/// Joins the launcher's namespaces when its child's pid is given (rootless).
fn enter_if(pid: Option<&&str>) -> anyhow::Result<()> {
    match pid {
        Some(p) => enter(p),
        None => Ok(()),
    }
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
