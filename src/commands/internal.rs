//! Runs burrow's self-exec helpers (`burrow::selfexec::Helper`: the log driver containerd's
//! shim runs, runc's OCI hooks, the network helpers, the container side of `cp`, the layer
//! squasher, background readers, the restart and health monitors, the --rm watcher and exec cleanup),
//! recognised before normal argument parsing.

use std::ffi::OsString;
use std::process::ExitCode;

use burrow::containers::logdriver;
use burrow::network::hook;
use burrow::selfexec::Helper;
use burrow::session::background;

/// Runs the helper argv names, if it names one.
pub fn intercept(argv: &[OsString]) -> Option<ExitCode> {
    let result = match Helper::parse(argv)? {
        Ok(helper) => run(helper),
        Err(e) => Err(e.into()),
    };
    Some(match result {
        Ok(code) => code,
        Err(e) => {
            crate::commands::error::say(&e);
            ExitCode::FAILURE
        }
    })
}

fn run(helper: Helper) -> anyhow::Result<ExitCode> {
    let debug = std::env::var_os("BURROW_DEBUG").is_some_and(|v| v != "0" && v != "false");
    match helper {
        Helper::LogDriver { data_root } => logdriver::main(&data_root.to_string_lossy())?,
        Helper::OciHook { event, state_dir } => oci_hook(&event, &state_dir)?,
        Helper::Cp { request } => burrow::containers::copy::helper_main(&request)?,
        Helper::SetDomainname { name } => burrow::containers::utsname::set_domainname(&name)
            .map_err(|e| anyhow::anyhow!("setting the container's domain name {name:?}: {e}"))?,
        Helper::LayerSquash => burrow::images::owners::processor_main()?,
        Helper::JobWatch { job_id } => burrow::slurm::watch::main(&job_id)?,
        Helper::DetachedDrain(request) => background::drain(&request)?,
        Helper::NetTeardown {
            state_dir,
            launcher_pid,
            claimed,
        } => net_teardown(&state_dir, launcher_pid, claimed)?,
        Helper::NetPrepare {
            state_dir,
            launcher_pid,
        } => {
            enter_if(launcher_pid)?;
            burrow::network::prepare::main(&state_dir)?;
        }
        Helper::NetConnect {
            state_dir,
            launcher_pid,
            request,
        } => {
            enter_if(launcher_pid)?;
            let req: burrow::network::live::Request = serde_json::from_str(&request)?;
            burrow::network::live::apply(&state_dir, &req)?;
        }
        Helper::NetRemove {
            bridge,
            launcher_pid,
            netns,
        } => {
            let rootless = launcher_pid.is_some();
            enter_if(launcher_pid)?;
            if let Some(path) = netns {
                burrow::connection::ns::enter_net(&path)?;
            }
            burrow::network::teardown::remove(&bridge, rootless)?;
        }
        Helper::NetDeleteLink { bridge } => burrow::network::teardown::finish(&bridge)?,
        Helper::ExitMonitor {
            endpoint,
            id,
            generation,
        } => {
            super::init_logging(debug);
            let watched =
                burrow::containers::exitmonitor::main(&endpoint.globals(debug), &id, &generation)?;
            return Ok(if watched {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Helper::HealthMonitor {
            endpoint,
            id,
            generation,
        } => {
            super::init_logging(debug);
            burrow::containers::health::monitor::main(&endpoint.globals(debug), &id, &generation)?;
        }
        Helper::RmOrphan { endpoint, id } => {
            super::init_logging(debug);
            let args = super::container::orphan::Args { id };
            return super::container::orphan::run(args, &endpoint.globals(debug));
        }
        Helper::AutoRemove { endpoint, id } => {
            super::init_logging(debug);
            return super::container::orphan::auto_remove(&id, &endpoint.globals(debug));
        }
        Helper::ExecCleanup {
            endpoint,
            id,
            exec_id,
            fifo_dir,
        } => {
            super::init_logging(debug);
            let args = super::container::exec::CleanupArgs {
                container: id,
                exec_id,
                fifo_dir,
            };
            return super::container::exec::cleanup(args, &endpoint.globals(debug));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Detaches a container's networks from outside its task: after a failed `run` (everything
/// left), or alongside the task's deletion in `run --rm` (`--claimed`: what `run` claimed, so
/// the poststop hook had nothing to do and the two overlap).
fn net_teardown(dir: &std::path::Path, pid: Option<i32>, claimed: bool) -> anyhow::Result<()> {
    enter_if(pid)?;
    if claimed {
        hook::detach_claimed(dir)?;
    } else {
        let _lock = hook::lock(dir)?;
        hook::detach_all(dir);
    }
    Ok(())
}

/// Joins the launcher's user, network (the detached one with `--detach-netns`) and mount
/// namespaces when its child's pid is given (rootless); single-threaded here.
fn enter_if(pid: Option<i32>) -> anyhow::Result<()> {
    match pid {
        Some(p) => Ok(burrow::connection::enter_launcher_pid_with_net(p)?),
        None => Ok(()),
    }
}

fn oci_hook(event: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    match event {
        "createRuntime" => {
            let pid = hook::pid_from_stdin(std::io::stdin().lock())?;
            hook::create_runtime(dir, pid)?;
            Ok(())
        }
        "poststop" => Ok(hook::poststop(dir)?),
        other => anyhow::bail!("unknown OCI hook event {other:?}"),
    }
}
