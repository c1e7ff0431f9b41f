//! The labels burrow puts on container records: nerdctl's (so either tool can read the other's
//! containers), containerd's restart monitor's, and burrow's own.

pub const NAME: &str = "nerdctl/name";
pub const HOSTNAME: &str = "nerdctl/hostname";
pub const NETWORKS: &str = "nerdctl/networks";
pub const PORTS: &str = "nerdctl/ports";
pub const STATE_DIR: &str = "nerdctl/state-dir";
pub const LOG_URI: &str = "nerdctl/log-uri";
pub const PLATFORM: &str = "nerdctl/platform";
/// The image's ID (its config digest) for the platform the container runs (inspect's Image).
pub const IMAGE_ID: &str = "burrow/image-id";
pub const EXTRA_HOSTS: &str = "nerdctl/extraHosts";
pub const STOP_SIGNAL: &str = "nerdctl/stop-signal";
pub const STOP_TIMEOUT: &str = "nerdctl/stop-timeout";
pub const AUTO_REMOVE: &str = "burrow/auto-remove";
/// Created with -i: a detached start keeps its stdin open for `attach`.
pub const STDIN_OPEN: &str = "burrow/stdin-open";
/// Docker's StdinOnce (`true`): the first attached client's end of input closes stdin.
pub const STDIN_ONCE: &str = "burrow/stdin-once";
pub const ANONYMOUS_VOLUMES: &str = "burrow/anonymous-volumes";
/// The user's labels with an empty value (`--label KEY`), which containerd does not keep.
pub const EMPTY_LABELS: &str = "burrow/empty-labels";
/// containerd's restart monitor: "running" makes it keep a task up.
pub const RESTART_STATUS: &str = "containerd.io/restart.status";
pub const RESTART_LOG_URI: &str = "containerd.io/restart.loguri";
pub const RESTART_POLICY: &str = "nerdctl/restart-policy";
/// With a restart policy: "running" while the user wants the container up (stop/rm say "stopped").
pub const RESTART_WANTED: &str = "burrow/restart-wanted";
/// With a restart policy: restarts so far (inspect's RestartCount).
pub const RESTART_COUNT: &str = "burrow/restart-count";
/// How many short runs in a row came before the last restart (Docker's back-off step).
pub const RESTART_BACKOFF: &str = "burrow/restart-backoff";
/// The generation of the exit monitor in charge (the label kept its first name).
pub const RESTART_MONITOR: &str = "burrow/restart-monitor";
/// The healthcheck the container was created with (Docker's `Config.Healthcheck`, JSON).
pub const HEALTHCHECK: &str = "burrow/healthcheck";
/// `--device`, `--device-cgroup-rule` and `--gpus`/CDI requests as Docker's HostConfig fields
/// (JSON: Devices, DeviceCgroupRules, DeviceRequests), for inspect.
pub const DEVICES: &str = "burrow/devices";
/// `--runtime` as given, when not runc (inspect's `HostConfig.Runtime`).
pub const RUNTIME: &str = "burrow/runtime";
/// `--userns` as given (inspect's HostConfig.UsernsMode).
pub const USERNS: &str = "burrow/userns-mode";
/// `JOB.STEP`: the Slurm step whose task runs the container in the foreground; the job's
/// watcher stops it once that step is over.
pub const SLURM_STEP: &str = "burrow/slurm-step";

/// Whether `key` is one of the labels burrow, nerdctl or containerd's restart monitor keep for
/// themselves (not shown as the container's labels).
pub fn is_internal(key: &str) -> bool {
    key.starts_with("nerdctl/")
        || key.starts_with("burrow/")
        || key.starts_with("containerd.io/restart.")
}
