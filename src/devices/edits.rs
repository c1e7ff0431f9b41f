//! Applying CDI container edits to an OCI runtime spec, as the CDI library does: environment
//! (replacing same-named variables), device nodes (looked up on the host where the spec leaves
//! out their type or numbers) with device cgroup rules where the container has a device cgroup,
//! mounts, hooks and additional groups.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Hook as OciHook, HookBuilder, Hooks, LinuxDevice, Mount, MountBuilder, Spec,
};

use super::host::{DeviceCgroupRule, HostDevice, HostDeviceError};
use super::spec_file::{CdiMount, ContainerEdits, DeviceNode, Hook};

/// Edits that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("CDI device node {path}: {source}")]
    HostNode {
        path: String,
        source: HostDeviceError,
    },
    #[error("building the OCI spec for the devices: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}

/// Sets `KEY=VALUE` in `env`, replacing an earlier value of KEY.
pub fn set_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = kv.to_string(),
        None => env.push(kv.to_string()),
    }
}

/// The host node a CDI device node names, complete (type and numbers from the host when the
/// spec leaves them out).
fn host_node(n: &DeviceNode) -> Result<HostDevice, EditError> {
    let perms = n.permissions.clone().unwrap_or_else(|| "rwm".into());
    let complete = n.major.is_some() && n.minor.is_some() && n.typ.is_some();
    let mut d = if complete && n.typ.as_deref() != Some("p") {
        HostDevice {
            host_path: PathBuf::from(n.host_path.as_deref().unwrap_or(&n.path)),
            path: n.path.clone(),
            typ: n
                .typ
                .as_deref()
                .and_then(|t| t.chars().next())
                .unwrap_or('c'),
            major: n.major.unwrap_or(0),
            minor: n.minor.unwrap_or(0),
            file_mode: 0o666,
            uid: 0,
            gid: 0,
            permissions: perms,
        }
    } else {
        let host = n.host_path.as_deref().unwrap_or(&n.path);
        HostDevice::lookup(Path::new(host), &n.path, &perms).map_err(|source| {
            EditError::HostNode {
                path: n.path.clone(),
                source,
            }
        })?
    };
    if d.typ == 'u' {
        d.typ = 'c';
    }
    if let Some(m) = n.file_mode {
        d.file_mode = m & 0o7777;
    }
    if let Some(u) = n.uid {
        d.uid = u;
    }
    if let Some(g) = n.gid {
        d.gid = g;
    }
    Ok(d)
}

/// Adds device nodes to the spec (replacing one at the same path) and, where the spec has
/// cgroup resources (a cgroup the container may have), their allow rules and `extra_rules`.
/// In a user namespace (`userns`, rootless) no node can be made: each is a bind mount of the
/// host's node instead, and there is no device cgroup to write.
pub fn add_devices(
    spec: &mut Spec,
    devices: &[HostDevice],
    extra_rules: &[DeviceCgroupRule],
    userns: bool,
) -> Result<(), EditError> {
    if userns {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for d in devices {
            let m = d.to_bind_mount()?;
            mounts.retain(|x| x.destination() != m.destination());
            mounts.push(m);
        }
        spec.set_mounts(Some(mounts));
        return Ok(());
    }
    let nodes = devices
        .iter()
        .map(|d| d.to_oci())
        .collect::<Result<Vec<LinuxDevice>, _>>()?;
    let Some(linux) = spec.linux_mut() else {
        return Ok(());
    };
    let mut list = linux.devices().clone().unwrap_or_default();
    for n in nodes {
        list.retain(|d| d.path() != n.path());
        list.push(n);
    }
    linux.set_devices(Some(list));
    if let Some(res) = linux.resources_mut() {
        let mut rules = res.devices().clone().unwrap_or_default();
        rules.extend(
            devices
                .iter()
                .filter_map(|d| d.cgroup_rule())
                .map(|r| r.to_oci()),
        );
        rules.extend(extra_rules.iter().map(DeviceCgroupRule::to_oci));
        res.set_devices(Some(rules));
    }
    Ok(())
}

fn cdi_mount(m: &CdiMount) -> Result<Mount, EditError> {
    let typ = m.typ.clone().unwrap_or_else(|| "bind".into());
    let mut options = m.options.clone();
    if typ == "bind" && !options.iter().any(|o| o == "bind" || o == "rbind") {
        options.push("rbind".into());
    }
    Ok(MountBuilder::default()
        .destination(&m.container_path)
        .source(PathBuf::from(&m.host_path))
        .typ(typ)
        .options(options)
        .build()?)
}

fn oci_hook(h: &Hook) -> Result<OciHook, EditError> {
    let mut b = HookBuilder::default().path(&h.path);
    if !h.args.is_empty() {
        b = b.args(h.args.clone());
    }
    if !h.env.is_empty() {
        b = b.env(h.env.clone());
    }
    if let Some(t) = h.timeout {
        b = b.timeout(t);
    }
    Ok(b.build()?)
}

/// Appends `hook` to the `name`d event's list (OCI's event names; unknown ones are prestart).
pub fn add_hook(hooks: &mut Hooks, name: &str, hook: OciHook) {
    let push = |list: Option<Vec<OciHook>>| {
        let mut l = list.unwrap_or_default();
        l.push(hook);
        Some(l)
    };
    match name {
        "createRuntime" => hooks.set_create_runtime(push(hooks.create_runtime().clone())),
        "createContainer" => hooks.set_create_container(push(hooks.create_container().clone())),
        "startContainer" => hooks.set_start_container(push(hooks.start_container().clone())),
        "poststart" => hooks.set_poststart(push(hooks.poststart().clone())),
        "poststop" => hooks.set_poststop(push(hooks.poststop().clone())),
        #[allow(deprecated)]
        _ => hooks.set_prestart(push(hooks.prestart().clone())),
    };
}

/// Applies CDI edits to the spec; `userns` as for [`add_devices`].
pub fn apply(edits: &ContainerEdits, spec: &mut Spec, userns: bool) -> Result<(), EditError> {
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &edits.env {
            set_env(&mut env, kv);
        }
        p.set_env(Some(env));
        if !edits.additional_gids.is_empty() {
            let mut user = p.user().clone();
            let mut gids = user.additional_gids().clone().unwrap_or_default();
            for g in &edits.additional_gids {
                if *g != 0 && !gids.contains(g) {
                    gids.push(*g);
                }
            }
            user.set_additional_gids(Some(gids));
            p.set_user(user);
        }
    }
    let nodes = edits
        .device_nodes
        .iter()
        .map(host_node)
        .collect::<Result<Vec<_>, _>>()?;
    add_devices(spec, &nodes, &[], userns)?;
    if !edits.mounts.is_empty() {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for m in &edits.mounts {
            mounts.push(cdi_mount(m)?);
        }
        spec.set_mounts(Some(mounts));
    }
    if !edits.hooks.is_empty() {
        let mut hooks = spec.hooks().clone().unwrap_or_default();
        for h in &edits.hooks {
            add_hook(&mut hooks, &h.hook_name, oci_hook(h)?);
        }
        spec.set_hooks(Some(hooks));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceType;
    use oci_spec::runtime::{LinuxBuilder, LinuxResourcesBuilder, ProcessBuilder, SpecBuilder};

    /// A device node of the spec by its container path.
    fn spec_device<'a>(spec: &'a Spec, path: &str) -> Option<&'a LinuxDevice> {
        spec.linux()
            .as_ref()?
            .devices()
            .as_ref()?
            .iter()
            .find(|d| d.path().to_str() == Some(path))
    }

    /// Whether a spec device is a character device.
    fn is_char(d: &LinuxDevice) -> bool {
        d.typ() == LinuxDeviceType::C
    }

    fn spec(with_cgroup: bool) -> Spec {
        let mut linux = LinuxBuilder::default().build().unwrap();
        linux.set_resources(if with_cgroup {
            Some(LinuxResourcesBuilder::default().build().unwrap())
        } else {
            None
        });
        linux.set_devices(None);
        SpecBuilder::default()
            .process(
                ProcessBuilder::default()
                    .env(vec!["PATH=/bin".to_string(), "A=old".to_string()])
                    .build()
                    .unwrap(),
            )
            .linux(linux)
            .build()
            .unwrap()
    }

    fn edits() -> ContainerEdits {
        ContainerEdits {
            env: vec!["A=new".into(), "B=1".into()],
            device_nodes: vec![DeviceNode {
                path: "/dev/fake0".into(),
                host_path: Some("/dev/null".into()),
                permissions: Some("rw".into()),
                ..Default::default()
            }],
            hooks: vec![Hook {
                hook_name: "createContainer".into(),
                path: "/usr/bin/true".into(),
                args: vec!["true".into(), "x".into()],
                ..Default::default()
            }],
            mounts: vec![CdiMount {
                host_path: "/etc/hostname".into(),
                container_path: "/fake/hostname".into(),
                options: vec!["ro".into()],
                typ: None,
            }],
            additional_gids: vec![0, 44, 44],
            ..Default::default()
        }
    }

    #[test]
    fn edits_land_in_the_spec() {
        let mut s = spec(true);
        apply(&edits(), &mut s, false).unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.env().as_ref().unwrap(), &["PATH=/bin", "A=new", "B=1"]);
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[44]);
        let d = spec_device(&s, "/dev/fake0").unwrap();
        assert!(is_char(d));
        assert_eq!((d.major(), d.minor()), (1, 3));
        let rules = s
            .linux()
            .as_ref()
            .unwrap()
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            (rules[0].major(), rules[0].access().as_deref()),
            (Some(1), Some("rw"))
        );
        let m = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination().to_str() == Some("/fake/hostname"))
            .unwrap();
        assert_eq!(m.typ().as_deref(), Some("bind"));
        assert_eq!(m.options().as_ref().unwrap(), &["ro", "rbind"]);
        let hooks = s
            .hooks()
            .as_ref()
            .unwrap()
            .create_container()
            .clone()
            .unwrap();
        assert_eq!(hooks[0].path().to_str(), Some("/usr/bin/true"));
    }

    #[test]
    fn no_cgroup_no_rules_and_missing_nodes_fail() {
        let mut s = spec(false);
        apply(&edits(), &mut s, false).unwrap();
        assert!(spec_device(&s, "/dev/fake0").is_some());
        assert!(s.linux().as_ref().unwrap().resources().is_none());
        // In a user namespace: a bind of the host's node, no node, no rule.
        let mut s = spec(true);
        apply(&edits(), &mut s, true).unwrap();
        assert!(spec_device(&s, "/dev/fake0").is_none());
        let m = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination().to_str() == Some("/dev/fake0"))
            .unwrap();
        assert_eq!(m.source().as_ref().unwrap().to_str(), Some("/dev/null"));
        assert!(s
            .linux()
            .as_ref()
            .unwrap()
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .is_none());
        let mut e = edits();
        e.device_nodes[0].host_path = Some("/dev/not-here".into());
        let err = apply(&e, &mut spec(true), false).unwrap_err().to_string();
        assert!(
            err.contains("/dev/fake0") && err.contains("/dev/not-here"),
            "{err}"
        );
    }

    #[test]
    fn complete_nodes_need_no_host_lookup() {
        let mut s = spec(true);
        let e = ContainerEdits {
            device_nodes: vec![DeviceNode {
                path: "/dev/nvidia9".into(),
                typ: Some("c".into()),
                major: Some(195),
                minor: Some(9),
                ..Default::default()
            }],
            ..Default::default()
        };
        apply(&e, &mut s, false).unwrap();
        assert_eq!(spec_device(&s, "/dev/nvidia9").unwrap().major(), 195);
    }
}
