//! What every container gets besides its request: burrow.toml's defaults (the site's and the
//! user's `env`, `mounts` and `devices`, see [`crate::config::ContainerDefaults`]) and, in a
//! Slurm job, the task's variables ([`crate::slurm::env`]), added before it is made.

use std::str::FromStr;

use super::request::ContainerRequest;
use super::values::{MountSpec, VolumeSource, VolumeSpec};
use crate::config::ContainerDefaults;
use crate::devices::DeviceRequest;

/// `req` with the defaults added: variables it does not set itself, mounts at paths it does
/// not mount itself (a mount whose host path is missing here is skipped, with a warning), and
/// CDI devices it does not ask for already. A default mount that does not parse is an error
/// naming burrow.toml.
pub fn apply(req: &ContainerRequest, d: &ContainerDefaults) -> anyhow::Result<ContainerRequest> {
    let mut r = req.clone();
    let key = |kv: &str| kv.split('=').next().unwrap_or("").to_string();
    let own: Vec<String> = r.config.env.iter().map(|e| key(e)).collect();
    let mut passed: Vec<String> = std::env::vars()
        .filter(|(k, _)| d.env.iter().any(|p| matches(p, k)) && !own.contains(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    passed.sort();
    passed.append(&mut r.config.env);
    r.config.env = crate::slurm::env::merged(crate::slurm::env::job_environment(), &passed);
    for m in &d.mounts {
        let spec = VolumeSpec::from_str(m)
            .map_err(|e| anyhow::anyhow!("burrow.toml's mounts: {m:?}: {e}"))?;
        if mounts_at(&r, &spec.target) {
            continue;
        }
        if let VolumeSource::Host(p) = &spec.source {
            if !p.exists() {
                tracing::warn!(
                    "burrow.toml's mount {m:?} is skipped: {} does not exist on this host",
                    p.display()
                );
                continue;
            }
        }
        r.host_config.binds.push(spec);
    }
    let asked: Vec<&String> = r
        .host_config
        .device_requests
        .iter()
        .flat_map(|q| q.device_ids.iter().flatten())
        .collect();
    let new: Vec<String> = d
        .devices
        .iter()
        .filter(|n| !asked.contains(n))
        .cloned()
        .collect();
    if !new.is_empty() {
        r.host_config.device_requests.push(DeviceRequest::cdi(new));
    }
    Ok(r)
}

/// Whether the request mounts something at `target` itself.
fn mounts_at(r: &ContainerRequest, target: &str) -> bool {
    let hc = &r.host_config;
    hc.binds.iter().any(|b| b.target == target)
        || hc.tmpfs.iter().any(|t| t.target == target)
        || hc.mounts.iter().any(|m| match m {
            MountSpec::Volume(v) => v.target == target,
            MountSpec::Tmpfs(t) => t.target == target,
        })
}

/// `name` matches `pattern`: the same, or with `*` standing for any run of characters.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && matches(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("SLURM_*", "SLURM_PROCID"));
        assert!(matches("*_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"));
        assert!(matches("A", "A") && !matches("A", "AB") && !matches("SLURM_*", "PMI_RANK"));
    }

    #[test]
    fn defaults_fill_in_what_the_request_leaves() {
        std::env::set_var("BURROW_DEFAULTS_TEST_A", "from-env");
        let mut req = ContainerRequest::default();
        req.config.env = vec!["BURROW_DEFAULTS_TEST_B=mine".into()];
        req.host_config
            .binds
            .push(VolumeSpec::from_str("/tmp:/data").unwrap());
        let d = ContainerDefaults {
            env: vec!["BURROW_DEFAULTS_TEST_*".into()],
            mounts: vec![
                "/tmp:/data:ro".into(),
                "/:/host:ro".into(),
                "/nonexistent-burrow:/x".into(),
            ],
            devices: vec!["example.com/gpu=all".into()],
            network: None,
            image_store: Vec::new(),
        };
        let r = apply(&req, &d).unwrap();
        assert!(r
            .config
            .env
            .contains(&"BURROW_DEFAULTS_TEST_A=from-env".to_string()));
        assert!(r
            .config
            .env
            .contains(&"BURROW_DEFAULTS_TEST_B=mine".to_string()));
        let targets: Vec<&str> = r
            .host_config
            .binds
            .iter()
            .map(|b| b.target.as_str())
            .collect();
        assert_eq!(targets, vec!["/data", "/host"]);
        assert!(
            !r.host_config.binds[0].read_only,
            "the request's own /data mount stays"
        );
        assert_eq!(r.host_config.device_requests.len(), 1);
        let again = apply(&r, &d).unwrap();
        assert_eq!(again.host_config.device_requests.len(), 1);
        assert!(apply(
            &req,
            &ContainerDefaults {
                mounts: vec!["::".into()],
                ..d
            }
        )
        .is_err());
    }
}
