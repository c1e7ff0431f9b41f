//! burrow's self-exec helpers: every way the burrow binary is run by burrow itself, by
//! containerd's shim (the log driver) or by runc (the OCI hooks). Each helper's command line is
//! built ([`Helper::args`], [`Helper::command`]) and parsed ([`Helper::parse`]) here and
//! nowhere else; the binary dispatches a parsed helper before its normal argument parsing.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The global flags that make a helper reach the same containerd, namespace and data root as
/// the process that started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointArgs {
    pub address: PathBuf,
    pub namespace: String,
    pub data_root: PathBuf,
    pub snapshotter: String,
    pub cgroup_manager: String,
}

impl EndpointArgs {
    /// The endpoint `ep` as helper arguments.
    pub fn of(ep: &crate::connection::Endpoint) -> EndpointArgs {
        EndpointArgs {
            address: ep.socket.clone(),
            namespace: ep.namespace.clone(),
            data_root: ep.data_root.clone(),
            snapshotter: ep.snapshotter.clone(),
            cgroup_manager: ep.cgroup_manager.clone(),
        }
    }

    /// The globals a helper runs with: exactly this endpoint, no config file read.
    pub fn globals(&self, debug: bool) -> crate::connection::Globals {
        crate::connection::Globals {
            address: Some(self.address.clone()),
            namespace: self.namespace.clone(),
            data_root: Some(self.data_root.clone()),
            data_root_flag: Some(self.data_root.clone()),
            debug,
            snapshotter: self.snapshotter.clone(),
            cgroup_manager: Some(self.cgroup_manager.clone()),
            cdi_spec_dirs: None,
            user_data_root: None,
        }
    }

    /// The flags, for a burrow command (helper or not) run on this endpoint.
    pub fn flags(&self) -> Vec<OsString> {
        let mut v = Vec::new();
        self.push(&mut v);
        v
    }

    fn push(&self, v: &mut Vec<OsString>) {
        for (flag, value) in [
            ("--address", self.address.as_os_str()),
            ("--namespace", OsStr::new(&self.namespace)),
            ("--data-root", self.data_root.as_os_str()),
            ("--snapshotter", OsStr::new(&self.snapshotter)),
            ("--cgroup-manager", OsStr::new(&self.cgroup_manager)),
        ] {
            v.push(flag.into());
            v.push(value.to_owned());
        }
    }

    /// Takes the five flags (in any order) off the front of `args`.
    fn take(args: &[String]) -> Result<(EndpointArgs, &[String]), HelperError> {
        let mut e = EndpointArgs {
            address: PathBuf::new(),
            namespace: String::new(),
            data_root: PathBuf::new(),
            snapshotter: String::new(),
            cgroup_manager: String::new(),
        };
        let mut rest = args;
        for _ in 0..5 {
            let [flag, value, tail @ ..] = rest else {
                return Err(HelperError::Usage);
            };
            match flag.as_str() {
                "--address" => e.address = value.into(),
                "--namespace" => e.namespace = value.clone(),
                "--data-root" => e.data_root = value.into(),
                "--snapshotter" => e.snapshotter = value.clone(),
                "--cgroup-manager" => e.cgroup_manager = value.clone(),
                _ => return Err(HelperError::Usage),
            }
            rest = tail;
        }
        Ok((e, rest))
    }
}

/// What a background reader is asked to do (see `session::background`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderRequest {
    /// burrow's data root and the containerd namespace (where the container's log is).
    pub data_root: PathBuf,
    pub namespace: String,
    /// The container.
    pub id: String,
    /// The dir of the process's FIFOs.
    pub fifo_dir: PathBuf,
    /// Drop the output instead of logging and serving it (an exec's process: Docker keeps exec
    /// output out of the log, and nobody can attach to it).
    pub discard: bool,
    /// Docker's StdinOnce: the first attach client whose input ends closes the process's stdin
    /// (the reader lets go of it; the client sends containerd's CloseIO).
    pub stdin_once: bool,
    /// A command (argv) to run once the output ended: the `rm` of a `--rm` container, the
    /// cleanup of an exec.
    pub then: Vec<OsString>,
}

/// One helper and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Helper {
    /// The json-file log driver containerd's shim runs for each task (`binary://` URI).
    LogDriver { data_root: PathBuf },
    /// runc's createRuntime and poststop hooks: attach and detach the container's networks.
    OciHook { event: String, state_dir: PathBuf },
    /// Detaches a container's networks from outside its task (a failed run; `claimed`: what
    /// `run --rm` claimed, alongside the task's deletion).
    NetTeardown {
        state_dir: PathBuf,
        launcher_pid: Option<i32>,
        claimed: bool,
    },
    /// `run`'s ahead-of-time network attach.
    NetPrepare {
        state_dir: PathBuf,
        launcher_pid: Option<i32>,
    },
    /// `network connect` / `disconnect` of a container (a JSON
    /// [`crate::network::live::Request`]), in the launcher's namespaces when rootless.
    NetConnect {
        state_dir: PathBuf,
        launcher_pid: Option<i32>,
        request: String,
    },
    /// Deletes a removed network's bridge where it lives. Rootful, in the host's namespaces, at
    /// once. Rootless (the launcher's namespaces, and its detached network namespace when it
    /// has one), it takes the bridge down, so that its routes are gone, and leaves the deletion
    /// to a [`Helper::NetDeleteLink`] of its own (the kernel's unregister takes tens of
    /// milliseconds, and the bridge is out of the user's sight there).
    NetRemove {
        bridge: String,
        launcher_pid: Option<i32>,
        netns: Option<PathBuf>,
    },
    /// Deletes the bridge of a [`Helper::NetRemove`], and its masquerading rule, in the
    /// namespaces it was started in.
    NetDeleteLink { bridge: String },
    /// The container side of `cp` and of filling a new volume (a JSON request).
    Cp { request: String },
    /// runc's createContainer hook of a rootless container with a domain name: sets it in
    /// the container's UTS namespace (see [`crate::containers::utsname`]).
    SetDomainname { name: String },
    /// Reads a detached interactive container's FIFOs into its log and serves `attach`, then
    /// runs what the request says (the `rm` of a --rm container); discards an exec's output.
    DetachedDrain(ReaderRequest),
    /// containerd's stream processor that gives a single-id user's layers to that user.
    LayerSquash,
    /// The exit monitor of one container (its restart policy, or letting go of what its exited
    /// task held).
    ExitMonitor {
        endpoint: EndpointArgs,
        id: String,
        generation: String,
    },
    /// The health monitor of one container (its probes, on its healthcheck's interval).
    HealthMonitor {
        endpoint: EndpointArgs,
        id: String,
        generation: String,
    },
    /// Removes an attached `run --rm` container if the CLI that ran it is killed first.
    RmOrphan { endpoint: EndpointArgs, id: String },
    /// Removes an auto-removed container once its background reader saw its output end.
    AutoRemove { endpoint: EndpointArgs, id: String },
    /// Ends a Slurm job's containerd once the job is over (see [`crate::slurm::watch`]).
    JobWatch { job_id: String },
    /// Deletes a finished detached exec's process and FIFOs.
    ExecCleanup {
        endpoint: EndpointArgs,
        id: String,
        exec_id: String,
        fifo_dir: PathBuf,
    },
}

/// A helper command line that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    #[error("usage: burrow internal oci-hook EVENT STATE_DIR | net-teardown STATE_DIR [PID] [--claimed] | net-prepare STATE_DIR [PID] | net-connect STATE_DIR REQUEST [PID] | detached-drain DATA_ROOT NS ID FIFO_DIR [--discard] [--stdin-once] [-- COMMAND...] | cp REQUEST | set-domainname NAME | layer-squash (these are run by burrow itself, containerd and runc)")]
    Usage,
    #[error("{0:?} is not a process id")]
    BadPid(String),
}

/// The log driver's first argument (containerd passes the URI's query as `KEY VALUE`).
pub const LOG_DRIVER_ARG: &str = "_BURROW_INTERNAL_LOGGING";

fn pid(s: &str) -> Result<i32, HelperError> {
    s.parse().map_err(|_| HelperError::BadPid(s.to_string()))
}

impl Helper {
    /// The arguments after the program name.
    pub fn args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        let internal = |v: &mut Vec<OsString>, what: &str| {
            v.push("internal".into());
            v.push(what.into());
        };
        match self {
            Helper::LogDriver { data_root } => {
                v.push(LOG_DRIVER_ARG.into());
                v.push(data_root.into());
            }
            Helper::OciHook { event, state_dir } => {
                internal(&mut v, "oci-hook");
                v.push(event.into());
                v.push(state_dir.into());
            }
            Helper::NetTeardown {
                state_dir,
                launcher_pid,
                claimed,
            } => {
                internal(&mut v, "net-teardown");
                v.push(state_dir.into());
                v.extend(launcher_pid.map(|p| p.to_string().into()));
                if *claimed {
                    v.push("--claimed".into());
                }
            }
            Helper::NetPrepare {
                state_dir,
                launcher_pid,
            } => {
                internal(&mut v, "net-prepare");
                v.push(state_dir.into());
                v.extend(launcher_pid.map(|p| p.to_string().into()));
            }
            Helper::NetConnect {
                state_dir,
                launcher_pid,
                request,
            } => {
                internal(&mut v, "net-connect");
                v.push(state_dir.into());
                v.push(request.into());
                v.extend(launcher_pid.map(|p| p.to_string().into()));
            }
            Helper::NetRemove {
                bridge,
                launcher_pid,
                netns,
            } => {
                internal(&mut v, "net-remove");
                v.push(bridge.into());
                v.push(
                    launcher_pid
                        .map_or_else(|| "-".into(), |p| p.to_string())
                        .into(),
                );
                v.push(
                    netns
                        .as_ref()
                        .map_or_else(|| "-".into(), |p| p.clone().into_os_string()),
                );
            }
            Helper::NetDeleteLink { bridge } => {
                internal(&mut v, "net-delete-link");
                v.push(bridge.into());
            }
            Helper::Cp { request } => {
                internal(&mut v, "cp");
                v.push(request.into());
            }
            Helper::SetDomainname { name } => {
                internal(&mut v, "set-domainname");
                v.push(name.into());
            }
            Helper::DetachedDrain(r) => {
                internal(&mut v, "detached-drain");
                v.push(r.data_root.clone().into());
                v.push(r.namespace.clone().into());
                v.push(r.id.clone().into());
                v.push(r.fifo_dir.clone().into());
                if r.discard {
                    v.push("--discard".into());
                }
                if r.stdin_once {
                    v.push("--stdin-once".into());
                }
                if !r.then.is_empty() {
                    v.push("--".into());
                    v.extend(r.then.iter().cloned());
                }
            }
            Helper::LayerSquash => internal(&mut v, "layer-squash"),
            Helper::ExitMonitor {
                endpoint,
                id,
                generation,
            } => {
                endpoint.push(&mut v);
                v.extend(["__exit-monitor", id, generation].map(OsString::from));
            }
            Helper::HealthMonitor {
                endpoint,
                id,
                generation,
            } => {
                endpoint.push(&mut v);
                v.extend(["__health-monitor", id, generation].map(OsString::from));
            }
            Helper::RmOrphan { endpoint, id } => {
                endpoint.push(&mut v);
                v.extend(["__rm-orphan", id].map(OsString::from));
            }
            Helper::AutoRemove { endpoint, id } => {
                endpoint.push(&mut v);
                v.extend(["__auto-remove", id].map(OsString::from));
            }
            Helper::JobWatch { job_id } => {
                internal(&mut v, "job-watch");
                v.push(job_id.into());
            }
            Helper::ExecCleanup {
                endpoint,
                id,
                exec_id,
                fifo_dir,
            } => {
                endpoint.push(&mut v);
                v.extend(["__exec-cleanup", id, exec_id].map(OsString::from));
                v.push(fifo_dir.into());
            }
        }
        v
    }

    /// The helper as a command of this very binary.
    pub fn command(&self) -> std::io::Result<std::process::Command> {
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.args(self.args());
        Ok(cmd)
    }

    /// The helper as the argv of an OCI hook (`exe` first, as runc passes it).
    pub fn hook_argv(&self, exe: &Path) -> Vec<String> {
        std::iter::once(exe.display().to_string())
            .chain(self.args().iter().map(|a| a.to_string_lossy().into_owned()))
            .collect()
    }

    /// The helper a command line names (`argv[0]` is the program), or `None` when it names
    /// none (a normal burrow command).
    pub fn parse(argv: &[OsString]) -> Option<Result<Helper, HelperError>> {
        let args: Vec<String> = argv
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Some(first) = args.first() {
            if first == LOG_DRIVER_ARG {
                return Some(match args.get(1) {
                    Some(root) => Ok(Helper::LogDriver {
                        data_root: root.into(),
                    }),
                    None => Err(HelperError::Usage),
                });
            }
            if first == "internal" {
                return Some(Self::parse_internal(&args[1..]));
            }
        }
        // The helpers that take the endpoint: its five flags (ten words) come first.
        let named = args.get(10).map(String::as_str);
        if matches!(
            named,
            Some(
                "__exit-monitor"
                    | "__health-monitor"
                    | "__rm-orphan"
                    | "__auto-remove"
                    | "__exec-cleanup"
            )
        ) {
            return Some(Self::parse_with_endpoint(&args));
        }
        None
    }

    fn parse_internal(args: &[String]) -> Result<Helper, HelperError> {
        let strs: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(match strs.as_slice() {
            ["oci-hook", event, dir] => Helper::OciHook {
                event: event.to_string(),
                state_dir: dir.into(),
            },
            ["net-teardown", dir, rest @ ..] => {
                let claimed = rest.contains(&"--claimed");
                let launcher_pid = rest.iter().find(|a| **a != "--claimed").map(|p| pid(p));
                Helper::NetTeardown {
                    state_dir: dir.into(),
                    launcher_pid: launcher_pid.transpose()?,
                    claimed,
                }
            }
            ["net-prepare", dir, rest @ ..] => Helper::NetPrepare {
                state_dir: dir.into(),
                launcher_pid: rest.first().map(|p| pid(p)).transpose()?,
            },
            ["net-connect", dir, request, rest @ ..] => Helper::NetConnect {
                state_dir: dir.into(),
                request: request.to_string(),
                launcher_pid: rest.first().map(|p| pid(p)).transpose()?,
            },
            ["net-remove", bridge, launcher_pid, netns] => Helper::NetRemove {
                bridge: bridge.to_string(),
                launcher_pid: match *launcher_pid {
                    "-" => None,
                    p => Some(pid(p)?),
                },
                netns: (*netns != "-").then(|| PathBuf::from(netns)),
            },
            ["net-delete-link", bridge] => Helper::NetDeleteLink {
                bridge: bridge.to_string(),
            },
            ["cp", request] => Helper::Cp {
                request: request.to_string(),
            },
            ["set-domainname", name] => Helper::SetDomainname {
                name: name.to_string(),
            },
            ["detached-drain", root, ns, id, dir, rest @ ..] => {
                let (discard, rest) = match rest {
                    ["--discard", rest @ ..] => (true, rest),
                    _ => (false, rest),
                };
                let (stdin_once, rest) = match rest {
                    ["--stdin-once", rest @ ..] => (true, rest),
                    _ => (false, rest),
                };
                let then = match rest {
                    ["--", cmd @ ..] => cmd.iter().map(OsString::from).collect(),
                    [] => Vec::new(),
                    _ => return Err(HelperError::Usage),
                };
                Helper::DetachedDrain(ReaderRequest {
                    data_root: root.into(),
                    namespace: ns.to_string(),
                    id: id.to_string(),
                    fifo_dir: dir.into(),
                    discard,
                    stdin_once,
                    then,
                })
            }
            ["layer-squash"] => Helper::LayerSquash,
            ["job-watch", id] => Helper::JobWatch {
                job_id: id.to_string(),
            },
            _ => return Err(HelperError::Usage),
        })
    }

    fn parse_with_endpoint(args: &[String]) -> Result<Helper, HelperError> {
        let (endpoint, rest) = EndpointArgs::take(args)?;
        let strs: Vec<&str> = rest.iter().map(String::as_str).collect();
        Ok(match strs.as_slice() {
            ["__exit-monitor", id, generation] => Helper::ExitMonitor {
                endpoint,
                id: id.to_string(),
                generation: generation.to_string(),
            },
            ["__health-monitor", id, generation] => Helper::HealthMonitor {
                endpoint,
                id: id.to_string(),
                generation: generation.to_string(),
            },
            ["__rm-orphan", id] => Helper::RmOrphan {
                endpoint,
                id: id.to_string(),
            },
            ["__auto-remove", id] => Helper::AutoRemove {
                endpoint,
                id: id.to_string(),
            },
            ["__exec-cleanup", id, exec_id, fifo_dir] => Helper::ExecCleanup {
                endpoint,
                id: id.to_string(),
                exec_id: exec_id.to_string(),
                fifo_dir: fifo_dir.into(),
            },
            _ => return Err(HelperError::Usage),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> EndpointArgs {
        EndpointArgs {
            address: "/run/c.sock".into(),
            namespace: "default".into(),
            data_root: "/d".into(),
            snapshotter: "overlayfs".into(),
            cgroup_manager: "none".into(),
        }
    }

    #[test]
    fn every_helper_parses_back_from_its_command_line() {
        let all = vec![
            Helper::LogDriver {
                data_root: "/data root".into(),
            },
            Helper::OciHook {
                event: "createRuntime".into(),
                state_dir: "/s".into(),
            },
            Helper::NetTeardown {
                state_dir: "/s".into(),
                launcher_pid: Some(42),
                claimed: true,
            },
            Helper::NetTeardown {
                state_dir: "/s".into(),
                launcher_pid: None,
                claimed: false,
            },
            Helper::NetPrepare {
                state_dir: "/s".into(),
                launcher_pid: Some(7),
            },
            Helper::NetConnect {
                state_dir: "/s".into(),
                launcher_pid: Some(7),
                request: "{}".into(),
            },
            Helper::NetRemove {
                bridge: "br-0123456789ab".into(),
                launcher_pid: Some(7),
                netns: Some("/run/user/1/burrow/netns".into()),
            },
            Helper::NetRemove {
                bridge: "br-0123456789ab".into(),
                launcher_pid: None,
                netns: None,
            },
            Helper::NetDeleteLink {
                bridge: "br-0123456789ab".into(),
            },
            Helper::Cp {
                request: "{\"a\":1}".into(),
            },
            Helper::SetDomainname {
                name: "example.org".into(),
            },
            Helper::DetachedDrain(ReaderRequest {
                data_root: "/d".into(),
                namespace: "default".into(),
                id: "abc".into(),
                fifo_dir: "/f".into(),
                discard: true,
                stdin_once: true,
                then: vec!["/bin/burrow".into(), "rm".into(), "-f".into()],
            }),
            Helper::LayerSquash,
            Helper::ExitMonitor {
                endpoint: endpoint(),
                id: "abc".into(),
                generation: "123".into(),
            },
            Helper::HealthMonitor {
                endpoint: endpoint(),
                id: "abc".into(),
                generation: "9".into(),
            },
            Helper::RmOrphan {
                endpoint: endpoint(),
                id: "abc".into(),
            },
            Helper::AutoRemove {
                endpoint: endpoint(),
                id: "abc".into(),
            },
            Helper::ExecCleanup {
                endpoint: endpoint(),
                id: "abc".into(),
                exec_id: "exec-1".into(),
                fifo_dir: "/f/fifo-exec-1".into(),
            },
        ];
        for h in all {
            let argv: Vec<OsString> = std::iter::once(OsString::from("burrow"))
                .chain(h.args())
                .collect();
            assert_eq!(Helper::parse(&argv), Some(Ok(h.clone())), "{argv:?}");
        }
    }

    #[test]
    fn normal_commands_are_not_helpers_and_bad_helpers_say_how() {
        let argv = |s: &str| -> Vec<OsString> { s.split(' ').map(OsString::from).collect() };
        assert_eq!(Helper::parse(&argv("burrow ps -a")), None);
        assert_eq!(
            Helper::parse(&argv("burrow --address /x ps")),
            None,
            "a global flag before a command"
        );
        assert_eq!(
            Helper::parse(&argv("burrow --address /x run img __not-a-helper")),
            None,
            "a container's arguments"
        );
        assert_eq!(
            Helper::parse(&argv("burrow internal nope")),
            Some(Err(HelperError::Usage))
        );
        assert_eq!(
            Helper::parse(&argv("burrow internal net-prepare /s x")),
            Some(Err(HelperError::BadPid("x".into())))
        );
    }

    #[test]
    fn hooks_get_the_binary_first() {
        let h = Helper::OciHook {
            event: "poststop".into(),
            state_dir: "/s".into(),
        };
        assert_eq!(
            h.hook_argv(Path::new("/bin/burrow")),
            ["/bin/burrow", "internal", "oci-hook", "poststop", "/s"]
        );
    }
}
