//! Running a CNI plugin chain (a conflist) as the CNI spec says: ADD in order with each
//! plugin's result fed to the next as `prevResult`, DEL in reverse; runtime config only for the
//! capabilities a plugin declares.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// A plugin of the chain failed or could not be run.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("CNI plugin {plugin:?} not found in {dirs} (install containernetworking-plugins)")]
    NotFound { plugin: String, dirs: String },
    #[error("running CNI plugin {path}: {source}")]
    Exec {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CNI plugin {plugin} ({command}) for network {network:?} failed: {message}")]
    Failed {
        plugin: String,
        command: &'static str,
        network: String,
        message: String,
    },
    #[error("network config {0}: malformed ({1})")]
    BadConfig(String, String),
}

/// Where the chain runs: the container, its network namespace and interface name.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// Directories with plugin binaries.
    pub plugin_dirs: Vec<PathBuf>,
}

/// Runtime config passed to plugins that declare the capability (`portMappings` ...).
pub type RuntimeConfig = serde_json::Map<String, Value>;

fn find_plugin(dirs: &[PathBuf], name: &str) -> Result<PathBuf, CniError> {
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| CniError::NotFound {
            plugin: name.to_string(),
            dirs: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        })
}

/// The stdin config of one plugin in the chain.
fn plugin_config(
    list: &Value,
    plugin: &Value,
    prev: Option<&Value>,
    runtime: &RuntimeConfig,
) -> Value {
    let mut conf = plugin.clone();
    if let Some(obj) = conf.as_object_mut() {
        obj.insert("name".into(), list["name"].clone());
        obj.insert("cniVersion".into(), list["cniVersion"].clone());
        if let Some(p) = prev {
            obj.insert("prevResult".into(), p.clone());
        }
        let caps = plugin["capabilities"].as_object();
        // `ips` (--ip) goes to any plugin with an IPAM section, which hands it to host-local;
        // `mac` (--mac-address) to the tuning plugin, which sets it on the interface (nerdctl's
        // conflists, and ours, list tuning without declaring the capability).
        let wanted: serde_json::Map<String, Value> = runtime
            .iter()
            .filter(|(k, _)| {
                caps.and_then(|c| c.get(*k)).and_then(Value::as_bool) == Some(true)
                    || (k.as_str() == "ips" && plugin["ipam"].is_object())
                    || (k.as_str() == "mac" && plugin["type"] == "tuning")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !wanted.is_empty() {
            obj.insert("runtimeConfig".into(), Value::Object(wanted));
        }
    }
    conf
}

fn exec(
    list: &Value,
    plugin: &Value,
    command: &'static str,
    at: &Attachment,
    stdin: &Value,
) -> Result<Option<Value>, CniError> {
    let typ = plugin["type"].as_str().unwrap_or_default();
    let path = find_plugin(&at.plugin_dirs, typ)?;
    let cni_path = std::env::join_paths(&at.plugin_dirs)
        .map(|p| p.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut child = Command::new(&path)
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &at.container_id)
        .env("CNI_NETNS", &at.netns)
        .env("CNI_IFNAME", &at.ifname)
        .env("CNI_PATH", cni_path)
        // Plugins run iptables and friends.
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CniError::Exec {
            path: path.clone(),
            source,
        })?;
    if let Some(mut si) = child.stdin.take() {
        let _ = si.write_all(stdin.to_string().as_bytes());
    }
    let out = child.wait_with_output().map_err(|source| CniError::Exec {
        path: path.clone(),
        source,
    })?;
    let parsed: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    if !out.status.success() {
        let message = parsed
            .as_ref()
            .and_then(|v| {
                let msg = v["msg"].as_str()?;
                Some(match v["details"].as_str() {
                    Some(d) if !d.is_empty() => format!("{msg}: {d}"),
                    _ => msg.to_string(),
                })
            })
            .unwrap_or_else(|| {
                let mut s = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if s.is_empty() {
                    s = format!("exited with {}", out.status);
                }
                s
            });
        return Err(CniError::Failed {
            plugin: typ.to_string(),
            command,
            network: list["name"].as_str().unwrap_or_default().to_string(),
            message,
        });
    }
    Ok(parsed)
}

/// Where the tuning plugin keeps what it changed, to put it back on DEL (its default).
const TUNING_BACKUP_DIR: &str = "/run/cni/tuning";

/// Whether running `plugin` with `command` would change nothing, so the chain may pass it by
/// (each plugin is a process of its own, and each of portmap's DELs runs iptables): portmap
/// without port mappings (its ADD passes the result on untouched; the chains its DEL looks
/// for are made only by an ADD with mappings, and ADD and DEL get the same runtime config),
/// and tuning with nothing to set (no sysctl, MAC, MTU or flags, in its config or the runtime
/// config), or on DEL with no backup of what an ADD changed. Plugins are known by type; any
/// other key in their config keeps them in.
fn passes_by(plugin: &Value, command: &str, stdin: &Value, at: &Attachment) -> bool {
    const PLAIN: [&str; 5] = ["type", "name", "cniVersion", "capabilities", "prevResult"];
    let Some(conf) = stdin.as_object() else {
        return false;
    };
    let only = |extra: &[&str]| {
        conf.keys()
            .all(|k| PLAIN.contains(&k.as_str()) || extra.contains(&k.as_str()))
    };
    match plugin["type"].as_str() {
        Some("portmap") => {
            only(&["runtimeConfig"])
                && conf
                    .get("runtimeConfig")
                    .and_then(|r| r.get("portMappings"))
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
        }
        Some("tuning") if command == "DEL" => {
            let backup = format!("{}_{}.json", at.container_id, at.ifname);
            only(&[]) && !Path::new(TUNING_BACKUP_DIR).join(backup).exists()
        }
        Some("tuning") => only(&[]),
        _ => false,
    }
}

fn plugins(list: &Value) -> Result<&Vec<Value>, CniError> {
    list["plugins"].as_array().ok_or_else(|| {
        CniError::BadConfig(
            list["name"].as_str().unwrap_or("?").to_string(),
            "no \"plugins\" array".into(),
        )
    })
}

/// ADD: runs the chain and returns the final result. On failure the plugins already run are
/// undone with DEL, so nothing is left behind.
pub fn add(list: &Value, at: &Attachment, runtime: &RuntimeConfig) -> Result<Value, CniError> {
    let chain = plugins(list)?;
    let mut prev: Option<Value> = None;
    for (i, plugin) in chain.iter().enumerate() {
        let stdin = plugin_config(list, plugin, prev.as_ref(), runtime);
        if passes_by(plugin, "ADD", &stdin, at) {
            continue;
        }
        match exec(list, plugin, "ADD", at, &stdin) {
            Ok(result) => {
                if let Some(r) = result {
                    prev = Some(r);
                }
            }
            Err(e) => {
                for undo in chain[..=i].iter().rev() {
                    let stdin = plugin_config(list, undo, prev.as_ref(), runtime);
                    if passes_by(undo, "DEL", &stdin, at) {
                        continue;
                    }
                    if let Err(err) = exec(list, undo, "DEL", at, &stdin) {
                        tracing::warn!(%err, "undoing a failed CNI ADD");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(prev.unwrap_or_else(|| json!({})))
}

/// DEL: runs the chain in reverse; every plugin runs even if one fails, the first error is returned.
pub fn del(
    list: &Value,
    at: &Attachment,
    runtime: &RuntimeConfig,
    prev: Option<&Value>,
) -> Result<(), CniError> {
    let mut first = None;
    for plugin in plugins(list)?.iter().rev() {
        let stdin = plugin_config(list, plugin, prev, runtime);
        if passes_by(plugin, "DEL", &stdin, at) {
            continue;
        }
        if let Err(e) = exec(list, plugin, "DEL", at, &stdin) {
            tracing::warn!(%e, "CNI DEL");
            first.get_or_insert(e);
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The first IPv4 address (with prefix) and its gateway in a CNI result.
pub fn first_ipv4(result: &Value) -> Option<(String, Option<String>)> {
    result["ips"].as_array()?.iter().find_map(|ip| {
        let addr = ip["address"].as_str()?;
        if addr.contains(':') {
            return None;
        }
        Some((addr.to_string(), ip["gateway"].as_str().map(str::to_string)))
    })
}

/// The MAC of the interface `ifname` inside the container, in a CNI result.
pub fn mac_of(result: &Value, ifname: &str) -> Option<String> {
    result["interfaces"]
        .as_array()?
        .iter()
        .find(|i| i["name"] == ifname && i["sandbox"].is_string())
        .and_then(|i| i["mac"].as_str())
        .map(str::to_string)
}

/// The default plugin directories: `$CNI_PATH` or the distribution's.
pub fn default_plugin_dirs() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("CNI_PATH") {
        return std::env::split_paths(&p).collect();
    }
    ["/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni"]
        .iter()
        .map(PathBuf::from)
        .filter(|p| Path::new(p).is_dir())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_config_carries_name_prev_and_only_declared_capabilities() {
        let list = json!({"cniVersion":"1.0.0","name":"n","plugins":[]});
        let mut rt = RuntimeConfig::new();
        rt.insert("portMappings".into(), json!([{"hostPort":1}]));
        let plain = plugin_config(&list, &json!({"type":"bridge"}), None, &rt);
        assert_eq!(
            plain,
            json!({"type":"bridge","name":"n","cniVersion":"1.0.0"})
        );
        let pm = json!({"type":"portmap","capabilities":{"portMappings":true}});
        let prev = json!({"ips":[]});
        let c = plugin_config(&list, &pm, Some(&prev), &rt);
        assert_eq!(c["runtimeConfig"]["portMappings"][0]["hostPort"], 1);
        assert_eq!(c["prevResult"], prev);
    }

    #[test]
    fn only_plugins_with_nothing_to_do_are_passed_by() {
        let list = json!({"cniVersion":"1.0.0","name":"n","plugins":[]});
        let at = Attachment {
            container_id: "no-such-container".into(),
            netns: String::new(),
            ifname: "eth0".into(),
            plugin_dirs: vec![],
        };
        let prev = json!({"ips":[]});
        let pm = json!({"type":"portmap","capabilities":{"portMappings":true}});
        let tuning = json!({"type":"tuning"});
        let none = RuntimeConfig::new();
        let mut ports = RuntimeConfig::new();
        ports.insert(
            "portMappings".into(),
            json!([{"hostPort":8080,"containerPort":80}]),
        );
        let mut mac = RuntimeConfig::new();
        mac.insert("mac".into(), json!("02:00:00:00:00:01"));
        let by = |plugin: &Value, cmd: &str, rt: &RuntimeConfig| {
            passes_by(
                plugin,
                cmd,
                &plugin_config(&list, plugin, Some(&prev), rt),
                &at,
            )
        };
        for cmd in ["ADD", "DEL"] {
            assert!(by(&pm, cmd, &none), "portmap {cmd} without ports");
            assert!(!by(&pm, cmd, &ports), "portmap {cmd} with ports");
            assert!(by(&tuning, cmd, &none), "tuning {cmd} with nothing to set");
            assert!(!by(&tuning, cmd, &mac), "tuning {cmd} with a MAC");
            let sysctl = json!({"type":"tuning","sysctl":{"net.ipv4.ip_forward":"1"}});
            assert!(!by(&sysctl, cmd, &none), "tuning {cmd} with a sysctl");
            let snat = json!({"type":"portmap","snat":false});
            assert!(!by(&snat, cmd, &none), "portmap {cmd} with its own options");
            assert!(!by(&json!({"type":"bridge"}), cmd, &none));
            assert!(!by(&json!({"type":"firewall"}), cmd, &none));
        }
    }

    #[test]
    fn ipv4_from_result() {
        let r = json!({"ips":[{"address":"fd00::2/64"},{"address":"10.4.0.7/24","gateway":"10.4.0.1"}]});
        assert_eq!(
            first_ipv4(&r),
            Some(("10.4.0.7/24".to_string(), Some("10.4.0.1".to_string())))
        );
    }
}
