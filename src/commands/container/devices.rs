//! The device flags of `run` and `create`: `--device`, `--device-cgroup-rule`, `--gpus`.

use burrow::containers::request::HostConfig;
use burrow::devices::{self, DeviceCgroupRule, DeviceRequest};

// Not a doc comment: clap would show a flattened struct's doc as the command's about.
// Devices for the container.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceFlags {
    /// Add a host device (HOST[:CONTAINER[:PERMS]], PERMS from r, w, m; rootless: a bind of
    /// the host's node) or a CDI device (vendor.com/class=name, or =all for every device of
    /// the kind; specs from /etc/cdi, /var/run/cdi, rootless also ~/.config/cdi).
    #[arg(long, value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Add a rule to the container's device cgroup ('TYPE MAJOR:MINOR PERMS', e.g. 'c 1:3 rwm');
    /// needs a cgroup (rootful).
    #[arg(long, value_name = "RULE")]
    pub device_cgroup_rule: Vec<String>,
    /// GPUs to add, through the nvidia.com/gpu CDI spec: all, N (the first N),
    /// '"device=0,1"', and capabilities=CAP[,CAP] (passed as NVIDIA_DRIVER_CAPABILITIES).
    #[arg(long, value_name = "GPUS")]
    pub gpus: Vec<String>,
}

impl DeviceFlags {
    /// Sets the request's devices, device cgroup rules and device requests.
    pub fn apply(&self, h: &mut HostConfig) -> anyhow::Result<()> {
        let (mappings, cdi) = devices::parse_device_flags(&self.device)?;
        h.devices = mappings;
        h.device_cgroup_rules = self
            .device_cgroup_rule
            .iter()
            .map(|r| r.parse::<DeviceCgroupRule>())
            .collect::<Result<_, _>>()?;
        h.device_requests = self
            .gpus
            .iter()
            .map(|g| g.parse::<DeviceRequest>())
            .collect::<Result<_, _>>()?;
        h.device_requests.extend(cdi);
        Ok(())
    }
}
