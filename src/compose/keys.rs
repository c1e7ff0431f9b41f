//! The Compose specification's known keys, level by level (as far as the `compose_spec` model
//! has them). An unknown key is removed with a warning naming its path, so the model never sees
//! it; `x-` extension keys stay where the model keeps extensions.

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

/// Removes unknown keys under `doc` (a whole Compose file), returning one warning per key.
pub fn prune(doc: &mut Value) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Value::Mapping(map) = doc {
        mapping(map, Level::Top, &mut Vec::new(), &mut warnings);
    }
    warnings
}

fn mapping(map: &mut Mapping, level: Level, path: &mut Vec<String>, warnings: &mut Vec<String>) {
    let mut unknown = Vec::new();
    for (k, v) in map.iter_mut() {
        let key = key_text(k);
        let known = level.keys().contains(&key.as_str());
        let extension = key.starts_with("x-") && (level.extensions() || level == Level::Top);
        path.push(key.clone());
        if !known && !extension {
            warnings.push(format!("{}: unknown key, ignored", join(path)));
            unknown.push(k.clone());
        } else if let Some(child) = level.child(&key) {
            descend(v, child, path, warnings);
        }
        path.pop();
    }
    for k in unknown {
        map.remove(&k);
    }
}

fn descend(v: &mut Value, child: Child, path: &mut Vec<String>, warnings: &mut Vec<String>) {
    match (child, v) {
        (Child::Map(level), Value::Mapping(m)) => mapping(m, level, path, warnings),
        (Child::Named(level) | Child::NamedOrList(level), Value::Mapping(m)) => {
            for (name, item) in m.iter_mut() {
                path.push(key_text(name));
                if let Value::Mapping(im) = item {
                    mapping(im, level, path, warnings);
                }
                path.pop();
            }
        }
        (Child::Items(level), Value::Sequence(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                if let Value::Mapping(im) = item {
                    mapping(im, level, path, warnings);
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
    fn unknown_keys_are_named_and_removed() {
        let mut doc: Value = serde_yaml::from_str(
            "services:\n  web:\n    image: a\n    foo: 1\n    x-mine: 2\n    ports:\n      - target: 80\n        bogus: 1\n    healthcheck:\n      test: [CMD, true]\n      nope: 1\n    depends_on:\n      db:\n        condition: service_started\n        why: 1\nx-top: 1\nwhat: 2\nnetworks:\n  n:\n    ipam:\n      config:\n        - subnet: 10.0.0.0/24\n          zzz: 1\n",
        )
        .unwrap();
        let warnings = prune(&mut doc);
        assert_eq!(
            warnings,
            [
                "services.web.foo: unknown key, ignored",
                "services.web.ports[0].bogus: unknown key, ignored",
                "services.web.healthcheck.nope: unknown key, ignored",
                "services.web.depends_on.db.why: unknown key, ignored",
                "what: unknown key, ignored",
                "networks.n.ipam.config[0].zzz: unknown key, ignored",
            ]
        );
        let web = &doc["services"]["web"];
        assert!(web.get("foo").is_none() && web.get("x-mine").is_some());
        assert!(doc.get("what").is_none() && doc.get("x-top").is_some());
    }

    #[test]
    fn extension_keys_only_where_kept() {
        let mut doc: Value = serde_yaml::from_str(
            "services:\n  a:\n    extends:\n      service: b\n      x-no: 1\n",
        )
        .unwrap();
        assert_eq!(
            prune(&mut doc),
            ["services.a.extends.x-no: unknown key, ignored"]
        );
    }
}
