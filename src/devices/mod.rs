//! Devices a container gets: host device nodes (`--device`), device cgroup rules, CDI devices
//! (`--device vendor.com/class=name`) and GPUs (`--gpus`, through CDI). [`resolve`] checks a
//! request's devices against the host and the CDI specs before anything is made; the result's
//! [`Resolved::apply`] puts them in the OCI spec. HPC job support uses the same calls with a
//! job's CDI names: `cdi::Registry::load(dirs)?.resolve(names)?` and [`edits::apply`].

pub mod cdi;
pub mod edits;
pub mod gpus;
pub mod host;
pub mod spec_file;

use std::path::PathBuf;

use oci_spec::runtime::Spec;

pub use cdi::{CdiError, Registry};
pub use gpus::{DeviceRequest, GpuError};
pub use host::{DeviceCgroupRule, DeviceMapping, HostDevice, HostDeviceError};

/// A request's devices that cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("--device {mapping}: {source}")]
    Host {
        mapping: String,
        source: HostDeviceError,
    },
    #[error(transparent)]
    Cdi(#[from] CdiError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Edit(#[from] edits::EditError),
    #[error("--device-cgroup-rule cannot be applied: {0}")]
    RulesUnavailable(String),
}

/// `--device` values split as Docker does: CDI names (`vendor.com/class=name`) become one
/// CDI device request, the others are host device mappings.
pub fn parse_device_flags(
    values: &[String],
) -> Result<(Vec<DeviceMapping>, Option<DeviceRequest>), host::DeviceFlagError> {
    let mut mappings = Vec::new();
    let mut names = Vec::new();
    for v in values {
        if cdi::is_qualified(v) {
            names.push(v.clone());
        } else {
            mappings.push(v.parse()?);
        }
    }
    let request = (!names.is_empty()).then(|| DeviceRequest::cdi(names));
    Ok((mappings, request))
}

/// A container's devices, checked and looked up.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Host nodes of `--device`.
    pub host: Vec<HostDevice>,
    /// `--device-cgroup-rule`.
    pub rules: Vec<DeviceCgroupRule>,
    /// The CDI names asked for (GPU requests made names).
    pub cdi_names: Vec<String>,
    /// Their edits.
    pub cdi: cdi::ContainerEdits,
    /// NVIDIA driver capabilities `--gpus` asked for.
    pub gpu_capabilities: Vec<String>,
}

/// Looks up the host nodes of `devices` and resolves the CDI devices and GPUs of `requests`
/// in the specs of `cdi_dirs` (read only when something asks for CDI).
pub fn resolve(
    devices: &[DeviceMapping],
    rules: &[DeviceCgroupRule],
    requests: &[DeviceRequest],
    cdi_dirs: &[PathBuf],
) -> Result<Resolved, DeviceError> {
    let mut r = Resolved {
        rules: rules.to_vec(),
        ..Resolved::default()
    };
    for m in devices {
        r.host.extend(
            HostDevice::of_mapping(m).map_err(|source| DeviceError::Host {
                mapping: m.path_on_host.clone(),
                source,
            })?,
        );
    }
    if requests.is_empty() {
        return Ok(r);
    }
    let registry = Registry::load(cdi_dirs)?;
    for skipped in registry.skipped() {
        tracing::warn!("{skipped}");
    }
    for req in requests {
        r.cdi_names.extend(req.cdi_names(&registry)?);
        if req.is_gpu() {
            r.gpu_capabilities.extend(req.driver_capabilities());
        }
    }
    r.cdi = registry.resolve(&r.cdi_names)?;
    Ok(r)
}

impl Resolved {
    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
            && self.rules.is_empty()
            && self.cdi_names.is_empty()
            && self.gpu_capabilities.is_empty()
    }

    /// Puts the devices in the spec: host nodes with their cgroup rules and the extra rules
    /// (where the container has a device cgroup), then the CDI edits. `userns`: the runtime
    /// runs in a user namespace (rootless), where nodes are bind-mounted from the host.
    pub fn apply(&self, spec: &mut Spec, userns: bool) -> Result<(), DeviceError> {
        let has_cgroup = spec
            .linux()
            .as_ref()
            .is_some_and(|l| l.resources().is_some());
        if !self.rules.is_empty() && (userns || !has_cgroup) {
            return Err(DeviceError::RulesUnavailable(if userns {
                "a rootless container has no device cgroup of its own (its device nodes are bind mounts of the host's, limited by their permissions there)".into()
            } else {
                "the container has no cgroup (the cgroup manager is \"none\"; see --cgroup-manager)"
                    .into()
            }));
        }
        edits::add_devices(spec, &self.host, &self.rules, userns)?;
        edits::apply(&self.cdi, spec, userns)?;
        if !self.gpu_capabilities.is_empty() {
            if let Some(p) = spec.process_mut() {
                let mut env = p.env().clone().unwrap_or_default();
                edits::set_env(
                    &mut env,
                    &format!(
                        "NVIDIA_DRIVER_CAPABILITIES={}",
                        self.gpu_capabilities.join(",")
                    ),
                );
                p.set_env(Some(env));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_flags_split_into_host_nodes_and_cdi_names() {
        let (m, r) = parse_device_flags(&[
            "/dev/zero:/dev/myzero".into(),
            "example.com/dev=one".into(),
            "nvidia.com/gpu=all".into(),
        ])
        .unwrap();
        assert_eq!(m.len(), 1);
        let r = r.unwrap();
        assert_eq!(r.driver, "cdi");
        assert_eq!(
            r.device_ids.unwrap(),
            ["example.com/dev=one", "nvidia.com/gpu=all"]
        );
        assert!(parse_device_flags(&["zero".into()]).is_err());
        assert!(parse_device_flags(&[]).unwrap().1.is_none());
    }

    #[test]
    fn rules_without_a_device_cgroup_are_refused() {
        let mut spec = oci_spec::runtime::Spec::default();
        let r = Resolved {
            rules: vec!["c 1:3 r".parse().unwrap()],
            ..Resolved::default()
        };
        // oci-spec's default spec has resources: rootful with a cgroup.
        r.apply(&mut spec, false).unwrap();
        let e = r.apply(&mut spec, true).unwrap_err().to_string();
        assert!(e.contains("rootless"), "{e}");
        if let Some(l) = spec.linux_mut() {
            l.set_resources(None);
        }
        assert!(r.apply(&mut spec, false).is_err());
    }
}
