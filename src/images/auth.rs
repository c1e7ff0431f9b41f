//! Registry credentials stored as Docker stores them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`), `auths.<host>.auth` = base64("user:password"); Docker Hub's key is
//! `https://index.docker.io/v1/`. Hosts with a credential helper (`credHelpers.<host>` or
//! `credsStore`) go through `docker-credential-<name> get|store|erase` instead, as Docker does.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// The key Docker uses for Docker Hub in config.json.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or token) for one registry.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The credential file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON ({err}): fix or remove it")]
    Json {
        path: PathBuf,
        err: serde_json::Error,
    },
    #[error("{path}: the stored credentials for {host} are not base64 of user:password")]
    BadAuth { path: PathBuf, host: String },
    #[error("credential helper docker-credential-{helper} (set in {path}) {problem}")]
    Helper {
        path: PathBuf,
        helper: String,
        problem: String,
    },
    #[error("neither DOCKER_CONFIG nor HOME is set: cannot find the Docker config file")]
    NoHome,
}

/// The config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> Result<PathBuf, AuthError> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker/config.json"))
        .ok_or(AuthError::NoHome)
}

/// The config.json key for a registry host.
pub fn key_for(host: &str) -> String {
    if host == super::reference::DOCKER_HUB {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host.to_owned()
    }
}

fn read_config(path: &Path) -> Result<serde_json::Value, AuthError> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data).map_err(|err| AuthError::Json {
            path: path.to_owned(),
            err,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(source) => Err(AuthError::Io {
            op: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// The credential helper configured for a config.json key, if any.
fn helper_for(cfg: &serde_json::Value, key: &str) -> Option<String> {
    cfg.get("credHelpers")
        .and_then(|h| h.get(key))
        .or_else(|| cfg.get("credsStore"))
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; returns stdout, or None
/// when the helper says it has no credentials.
fn run_helper(
    path: &Path,
    helper: &str,
    action: &str,
    input: &str,
) -> Result<Option<String>, AuthError> {
    use std::process::{Command, Stdio};
    let err = |problem: String| AuthError::Helper {
        path: path.to_owned(),
        helper: helper.to_owned(),
        problem,
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            err(format!(
                "cannot run: {e} (install it, or remove the helper from the file)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| err(format!("{action}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("{action}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(Some(stdout));
    }
    let msg = format!(
        "{}{}",
        stdout.trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    if action != "store" && msg.contains("credentials not found") {
        return Ok(None);
    }
    Err(err(format!("{action} failed: {msg}")))
}

/// The stored credentials for `host`, if any.
pub fn lookup(path: &Path, host: &str) -> Result<Option<Credentials>, AuthError> {
    let cfg = read_config(path)?;
    let key = key_for(host);
    if let Some(helper) = helper_for(&cfg, &key) {
        let Some(out) = run_helper(path, &helper, "get", &key)? else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| AuthError::Helper {
            path: path.to_owned(),
            helper: helper.clone(),
            problem: format!("get answered something that is not JSON: {e}"),
        })?;
        let field = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let (username, password) = (field("Username"), field("Secret"));
        if password.is_empty() {
            return Ok(None);
        }
        return Ok(Some(Credentials { username, password }));
    }
    let candidates = [
        key.clone(),
        format!("https://{host}"),
        format!("http://{host}"),
    ];
    let entry = candidates
        .iter()
        .find_map(|k| cfg.get("auths").and_then(|a| a.get(k)));
    let Some(entry) = entry else {
        return Ok(None);
    };
    let bad = || AuthError::BadAuth {
        path: path.to_owned(),
        host: host.to_owned(),
    };
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (u, p) = raw.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials {
            username: u.to_owned(),
            password: p.to_owned(),
        }));
    }
    match (
        entry.get("username").and_then(|u| u.as_str()),
        entry.get("password").and_then(|p| p.as_str()),
    ) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.to_owned(),
            password: p.to_owned(),
        })),
        _ => Ok(None),
    }
}

fn write_config(path: &Path, cfg: &serde_json::Value) -> Result<(), AuthError> {
    let io = |op, source| AuthError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let mut text = serde_json::to_vec_pretty(cfg).map_err(|err| AuthError::Json {
        path: path.to_owned(),
        err,
    })?;
    text.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("write", e))?;
    f.write_all(&text).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("replace", e))
}

/// Stores credentials for `host`: through its credential helper when one is configured (the
/// file then gets an empty `auths` entry, as Docker writes), else in the file (0600, other keys
/// kept).
pub fn store(path: &Path, host: &str, creds: &Credentials) -> Result<(), AuthError> {
    let mut cfg = read_config(path)?;
    if !cfg.is_object() {
        cfg = serde_json::json!({});
    }
    let key = key_for(host);
    let entry = match helper_for(&cfg, &key) {
        Some(helper) => {
            let input = serde_json::json!({
                "ServerURL": key,
                "Username": creds.username,
                "Secret": creds.password,
            });
            run_helper(path, &helper, "store", &input.to_string())?;
            serde_json::json!({})
        }
        None => {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", creds.username, creds.password));
            serde_json::json!({ "auth": auth })
        }
    };
    let auths = cfg
        .as_object_mut()
        .map(|o| o.entry("auths").or_insert_with(|| serde_json::json!({})));
    if let Some(auths) = auths.and_then(|a| a.as_object_mut()) {
        auths.insert(key, entry);
    }
    write_config(path, &cfg)
}

/// Removes the credentials for `host` (from its helper too); false when there were none.
pub fn erase(path: &Path, host: &str) -> Result<bool, AuthError> {
    let mut cfg = read_config(path)?;
    let key = key_for(host);
    let mut removed = false;
    if let Some(helper) = helper_for(&cfg, &key) {
        removed = run_helper(path, &helper, "erase", &key)?.is_some();
    }
    let in_file = cfg
        .get_mut("auths")
        .and_then(|a| a.as_object_mut())
        .map(|a| a.remove(&key).is_some())
        .unwrap_or(false);
    if in_file {
        write_config(path, &cfg)?;
    }
    Ok(removed || in_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_lookup_erase_round_trip() {
        let dir = std::env::temp_dir().join(format!("burrow-auth-{}", std::process::id()));
        let path = dir.join("config.json");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"other":{"auth":"eDp5"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        store(&path, "127.0.0.1:5001", &c).unwrap();
        store(&path, "docker.io", &c).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["auths"]["127.0.0.1:5001"]["auth"], "dTpwOnc=");
        assert!(v["auths"][DOCKER_HUB_KEY].is_object());
        assert_eq!(v["psFormat"], "x");
        let got = lookup(&path, "127.0.0.1:5001").unwrap().unwrap();
        assert_eq!((got.username.as_str(), got.password.as_str()), ("u", "p:w"));
        assert_eq!(lookup(&path, "other").unwrap().unwrap().username, "x");
        assert!(lookup(&path, "nowhere").unwrap().is_none());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(erase(&path, "127.0.0.1:5001").unwrap());
        assert!(!erase(&path, "127.0.0.1:5001").unwrap());
        assert!(lookup(&path, "127.0.0.1:5001").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
