//! The Compose specification's known keys, level by level (as far as the `compose_spec` model
//! has them), and what burrow does with the specification's keys the model lacks. A key the
//! specification does not have is an error naming its path, as in Docker Compose (a misspelt
//! `volume:` must not silently lose a mount); `x-` extension keys stay where the model keeps
//! extensions.

use serde_yaml::{Mapping, Value};

/// One level of a Compose file: the keys it knows and whether it keeps `x-` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Top,
    Service,
    Build,
    Deploy,
    Resources,
    Limits,
    Reservations,
    RestartPolicy,
    Placement,
    UpdateConfig,
    Healthcheck,
    Logging,
    Network,
    Ipam,
    IpamConfig,
    Volume,
    Secret,
    Config,
    ServiceNetwork,
    Dependency,
    Port,
    Mount,
    BindOptions,
    VolumeOptions,
    TmpfsOptions,
    Extends,
    Ulimit,
    Grant,
    EnvFile,
    Include,
}

/// What burrow does with a key of the Compose specification that the model does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    /// Left in place: the loader moves it out of the model's way and the engine applies it.
    Applied,
    /// Removed with a warning: it changes nothing a single engine does.
    Ignored(&'static str),
    /// An error: the file asks for something burrow cannot do.
    Refused(&'static str),
}

/// How a key's value holds the next level.
enum Child {
    /// The value is a mapping at this level.
    Map(Level),
    /// A mapping of names, each a mapping at this level (services, networks, ...).
    Named(Level),
    /// A sequence whose mapping items are at this level (ports, volumes, ...).
    Items(Level),
    /// A mapping of names at this level, or a plain sequence of names.
    NamedOrList(Level),
}

impl Level {
    fn keys(self) -> &'static [&'static str] {
        use Level::*;
        match self {
            Top => &[
                "version", "name", "include", "services", "networks", "volumes", "configs",
                "secrets",
            ],
            Service => SERVICE,
            Build => &[
                "context",
                "dockerfile",
                "dockerfile_inline",
                "args",
                "ssh",
                "cache_from",
                "cache_to",
                "additional_contexts",
                "entitlements",
                "extra_hosts",
                "isolation",
                "privileged",
                "labels",
                "no_cache",
                "pull",
                "network",
                "shm_size",
                "target",
                "secrets",
                "tags",
                "ulimits",
                "platforms",
            ],
            Deploy => &[
                "endpoint_mode",
                "labels",
                "mode",
                "placement",
                "replicas",
                "resources",
                "restart_policy",
                "rollback_config",
                "update_config",
            ],
            Resources => &["limits", "reservations"],
            Limits => &["cpus", "memory", "pids"],
            Reservations => &["cpus", "memory", "devices", "generic_resources"],
            RestartPolicy => &["condition", "delay", "max_attempts", "window"],
            Placement => &["constraints", "preferences", "max_replicas_per_node"],
            UpdateConfig => &[
                "parallelism",
                "delay",
                "failure_action",
                "monitor",
                "max_failure_ratio",
                "order",
            ],
            Healthcheck => &[
                "test",
                "interval",
                "timeout",
                "retries",
                "start_period",
                "start_interval",
                "disable",
            ],
            Logging => &["driver", "options"],
            Network => &[
                "driver",
                "driver_opts",
                "attachable",
                "enable_ipv6",
                "ipam",
                "internal",
                "labels",
                "name",
                "external",
            ],
            Ipam => &["driver", "config", "options"],
            IpamConfig => &["subnet", "ip_range", "gateway", "aux_addresses"],
            Volume => &["driver", "driver_opts", "labels", "name", "external"],
            Secret => &[
                "file",
                "environment",
                "external",
                "name",
                "labels",
                "driver",
                "driver_opts",
            ],
            Config => &[
                "file",
                "environment",
                "content",
                "external",
                "name",
                "labels",
            ],
            ServiceNetwork => &[
                "aliases",
                "ipv4_address",
                "ipv6_address",
                "link_local_ips",
                "mac_address",
                "driver_opts",
                "priority",
            ],
            Dependency => &["condition", "restart", "required"],
            Port => &[
                "name",
                "target",
                "published",
                "host_ip",
                "protocol",
                "app_protocol",
                "mode",
            ],
            Mount => &[
                "type",
                "source",
                "target",
                "read_only",
                "consistency",
                "bind",
                "volume",
                "tmpfs",
            ],
            BindOptions => &["propagation", "create_host_path", "selinux"],
            VolumeOptions => &["nocopy", "subpath"],
            TmpfsOptions => &["size", "mode"],
            Extends => &["service", "file"],
            Ulimit => &["soft", "hard"],
            Grant => &["source", "target", "uid", "gid", "mode"],
            EnvFile => &["path", "required"],
            Include => &["path", "project_directory", "env_file"],
        }
    }

    /// The specification's keys at this level that the model lacks.
    fn gap(self, key: &str) -> Option<Gap> {
        use Gap::*;
        use Level::*;
        Some(match (self, key) {
            (Service, "gpus" | "label_file" | "post_start" | "pre_stop") => Applied,
            (Top | Service, "models") => Refused("AI models (Docker Model Runner)"),
            (Service, "provider") => Refused("provider services"),
            (Service, "use_api_socket") => {
                Refused("use_api_socket (mount the socket with `volumes:` instead)")
            }
            (Service, "pull_refresh_after") => Ignored("images are pulled by pull_policy"),
            (Build, "provenance" | "sbom") => Ignored("burrow's builder writes no attestations"),
            (Network, "enable_ipv4") => Ignored("every network has IPv4"),
            (Secret | Config, "template_driver") => Refused("templated secrets and configs"),
            (ServiceNetwork, "interface_name") => Refused("naming a container's interface"),
            (ServiceNetwork, "gw_priority") => Ignored("the default route is the first network's"),
            (Mount, "image") => Refused("image mounts"),
            (BindOptions, "recursive") => Applied,
            (VolumeOptions, "labels") => {
                Refused("labels on a mount's volume (give them under the top-level volumes:)")
            }
            (EnvFile, "format") => Refused("env_file formats (files are read as KEY=VALUE lines)"),
            _ => return None,
        })
    }

    /// Whether the model keeps `x-` keys at this level.
    fn extensions(self) -> bool {
        use Level::*;
        !matches!(self, Dependency | Extends | EnvFile | Include)
    }

    fn child(self, key: &str) -> Option<Child> {
        use Child::*;
        use Level::*;
        Some(match (self, key) {
            (Top, "services") => Named(Service),
            (Top, "networks") => Named(Network),
            (Top, "volumes") => Named(Volume),
            (Top, "secrets") => Named(Secret),
            (Top, "configs") => Named(Config),
            (Top, "include") => Items(Include),
            (Service, "build") => Map(Build),
            (Service, "deploy") => Map(Deploy),
            (Service, "healthcheck") => Map(Healthcheck),
            (Service, "logging") => Map(Logging),
            (Service, "networks") => NamedOrList(ServiceNetwork),
            (Service, "depends_on") => NamedOrList(Dependency),
            (Service, "ports") => Items(Port),
            (Service, "volumes") => Items(Mount),
            (Service, "extends") => Map(Extends),
            (Service, "ulimits") => Named(Ulimit),
            (Service, "secrets") | (Service, "configs") => Items(Grant),
            (Service, "env_file") => Items(EnvFile),
            (Deploy, "resources") => Map(Resources),
            (Deploy, "restart_policy") => Map(RestartPolicy),
            (Deploy, "placement") => Map(Placement),
            (Deploy, "update_config") | (Deploy, "rollback_config") => Map(UpdateConfig),
            (Resources, "limits") => Map(Limits),
            (Resources, "reservations") => Map(Reservations),
            (Network, "ipam") => Map(Ipam),
            (Ipam, "config") => Items(IpamConfig),
            (Mount, "bind") => Map(BindOptions),
            (Mount, "volume") => Map(VolumeOptions),
            (Mount, "tmpfs") => Map(TmpfsOptions),
            _ => return None,
        })
    }
}

const SERVICE: &[&str] = &[
    "attach",
    "build",
    "blkio_config",
    "cpu_count",
    "cpu_percent",
    "cpu_shares",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_runtime",
    "cpu_rt_period",
    "cpus",
    "cpuset",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "annotations",
    "external_links",
    "extra_hosts",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "uts",
    "isolation",
    "labels",
    "links",
    "logging",
    "network_mode",
    "networks",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "privileged",
    "profiles",
    "pull_policy",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "userns_mode",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// Checks the keys under `doc` (a whole Compose file): the specification's keys that change
/// nothing here are removed with one warning each; any key the specification does not have, or
/// that asks for what burrow cannot do, is an error listing every such key by its path.
pub fn prune(doc: &mut Value) -> Result<Vec<String>, String> {
    let mut found = Found::default();
    if let Value::Mapping(map) = doc {
        mapping(map, Level::Top, &mut Vec::new(), &mut found);
    }
    if found.errors.is_empty() {
        Ok(found.warnings)
    } else {
        Err(found.errors.join("\n"))
    }
}

/// What [`prune`] found.
#[derive(Default)]
struct Found {
    warnings: Vec<String>,
    errors: Vec<String>,
}

fn mapping(map: &mut Mapping, level: Level, path: &mut Vec<String>, found: &mut Found) {
    let mut removed = Vec::new();
    for (k, v) in map.iter_mut() {
        let key = key_text(k);
        let known = level.keys().contains(&key.as_str());
        let extension = key.starts_with("x-") && (level.extensions() || level == Level::Top);
        path.push(key.clone());
        if known || extension {
            if let Some(child) = level.child(&key) {
                descend(v, child, path, found);
            }
        } else {
            match level.gap(&key) {
                Some(Gap::Applied) => {}
                Some(Gap::Ignored(why)) => {
                    found
                        .warnings
                        .push(format!("{}: ignored ({why})", join(path)));
                    removed.push(k.clone());
                }
                Some(Gap::Refused(what)) => found.errors.push(format!(
                    "{}: burrow does not support {what}; remove it from the file",
                    join(path)
                )),
                None => found.errors.push(format!(
                    "{}: unknown key: the Compose specification has no {key:?} here (misspelt?); correct it, or prefix it with x- to keep it as an extension",
                    join(path)
                )),
            }
        }
        path.pop();
    }
    for k in removed {
        map.remove(&k);
    }
}

fn descend(v: &mut Value, child: Child, path: &mut Vec<String>, found: &mut Found) {
    match (child, v) {
        (Child::Map(level), Value::Mapping(m)) => mapping(m, level, path, found),
        (Child::Named(level) | Child::NamedOrList(level), Value::Mapping(m)) => {
            for (name, item) in m.iter_mut() {
                path.push(key_text(name));
                if let Value::Mapping(im) = item {
                    mapping(im, level, path, found);
                }
                path.pop();
            }
        }
        (Child::Items(level), Value::Sequence(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                if let Value::Mapping(im) = item {
                    mapping(im, level, path, found);
                }
                path.pop();
            }
        }
        _ => {}
    }
}

/// A mapping key as text (keys that are numbers or booleans too).
pub fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// A key path as Docker Compose prints it: `services.web.ports[0]`.
pub fn join(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if !out.is_empty() && !part.starts_with('[') {
            out.push('.');
        }
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_naming_every_path() {
        let mut doc: Value = serde_yaml::from_str(
            "services:\n  web:\n    image: a\n    foo: 1\n    x-mine: 2\n    ports:\n      - target: 80\n        bogus: 1\n    healthcheck:\n      test: [CMD, true]\n      nope: 1\n    depends_on:\n      db:\n        condition: service_started\n        why: 1\nx-top: 1\nwhat: 2\nnetworks:\n  n:\n    ipam:\n      config:\n        - subnet: 10.0.0.0/24\n          zzz: 1\n",
        )
        .unwrap();
        let err = prune(&mut doc).unwrap_err();
        let paths: Vec<&str> = err.lines().map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "services.web.foo",
                "services.web.ports[0].bogus",
                "services.web.healthcheck.nope",
                "services.web.depends_on.db.why",
                "what",
                "networks.n.ipam.config[0].zzz",
            ]
        );
        assert!(err.contains("no \"foo\" here (misspelt?)"), "{err}");
    }

    #[test]
    fn extension_keys_only_where_kept() {
        let mut doc: Value = serde_yaml::from_str(
            "services:\n  a:\n    extends:\n      service: b\n      x-no: 1\n    x-yes: 1\n",
        )
        .unwrap();
        let err = prune(&mut doc).unwrap_err();
        assert!(
            err.starts_with("services.a.extends.x-no: unknown key"),
            "{err}"
        );
    }

    #[test]
    fn specification_keys_the_model_lacks() {
        let mut doc: Value = serde_yaml::from_str(
            "services:\n  a:\n    image: i\n    gpus: all\n    label_file: l\n    pull_refresh_after: 1h\n    networks:\n      n:\n        gw_priority: 1\nnetworks:\n  n:\n    enable_ipv4: true\n",
        )
        .unwrap();
        let warnings = prune(&mut doc).unwrap();
        assert_eq!(
            warnings,
            [
                "services.a.pull_refresh_after: ignored (images are pulled by pull_policy)",
                "services.a.networks.n.gw_priority: ignored (the default route is the first network's)",
                "networks.n.enable_ipv4: ignored (every network has IPv4)",
            ]
        );
        let a = &doc["services"]["a"];
        assert!(a.get("gpus").is_some() && a.get("label_file").is_some());
        assert!(a.get("pull_refresh_after").is_none());
        let mut doc: Value =
            serde_yaml::from_str("services:\n  a:\n    image: i\n    provider: {type: x}\n")
                .unwrap();
        assert_eq!(
            prune(&mut doc).unwrap_err(),
            "services.a.provider: burrow does not support provider services; remove it from the file"
        );
    }
}
