//! `RUN --mount`, BuildKit's forms: `type=cache` (a directory kept across builds, here a named
//! volume `burrow-build-cache-<id>` that `builder prune` removes), `type=bind` (files of the
//! context, a stage or an image, read-only unless `rw`; written to a temporary directory for
//! the step, so writes are discarded and `.dockerignore` holds), `type=secret` (a secret the
//! build was given, `--secret`, as a file for the step or a variable, never in the image or the
//! cache key), `type=ssh` (an ssh agent's socket the build was given, `--ssh`, with
//! `SSH_AUTH_SOCK` pointing at it) and `type=tmpfs` (an empty tmpfs for the step).

use std::path::Path;

use super::files::{Kind, Tree};

/// The prefix of the volumes cache mounts use.
pub const CACHE_VOLUME_PREFIX: &str = "burrow-build-cache-";

/// One `--mount` of a RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    Cache {
        target: String,
        /// The cache's identity (`id=`, default the target).
        id: String,
    },
    Bind {
        target: String,
        /// The path in the source (default its root).
        source: String,
        /// A stage or image (none: the context).
        from: Option<String>,
        rw: bool,
    },
    Secret {
        id: String,
        /// Where the file is (none when only `env` is asked for).
        target: Option<String>,
        /// The variable that holds the secret instead (`env=NAME`).
        env: Option<String>,
        /// A missing secret fails the step (else the mount is left out).
        required: bool,
        /// The file's mode (default 0400).
        mode: u32,
    },
    Tmpfs {
        target: String,
        /// `size=` in bytes.
        size: Option<u64>,
    },
    Ssh {
        /// The agent's id (`default` unless given).
        id: String,
        /// Where its socket is (default `/run/buildkit/ssh_agent.N`, N counting the step's
        /// ssh mounts).
        target: Option<String>,
        /// A missing agent fails the step (else the mount is left out).
        required: bool,
    },
}

impl RunMount {
    /// Parses a `--mount` value (`type=cache,target=/root/.cache`).
    pub fn parse(v: &str) -> Result<RunMount, String> {
        match v.split(',').find_map(|f| f.strip_prefix("type=")) {
            Some("secret") => return parse_secret(v),
            Some("tmpfs") => return parse_tmpfs(v),
            Some("ssh") => return parse_ssh(v),
            _ => {}
        }
        let (mut typ, mut target, mut source, mut from, mut id) =
            ("bind".to_string(), None, None, None, None);
        let mut rw = false;
        // The type first: a secret, ssh or tmpfs mount's own options must not hide that the
        // type itself is what burrow lacks.
        if let Some(t) = v
            .split(',')
            .find_map(|f| f.strip_prefix("type="))
            .filter(|t| !matches!(*t, "cache" | "bind"))
        {
            return Err(format!(
                "--mount type={t} is not supported by burrow's builder: use type=cache, bind, secret, ssh or tmpfs"
            ));
        }
        for field in v.split(',').filter(|f| !f.is_empty()) {
            let (k, val) = field.split_once('=').unwrap_or((field, ""));
            match k {
                "type" => typ = val.to_string(),
                "target" | "dst" | "destination" => target = Some(val.to_string()),
                "source" | "src" => source = Some(val.to_string()),
                "from" => from = Some(val.to_string()),
                "id" => id = Some(val.to_string()),
                "rw" | "readwrite" => rw = val.is_empty() || val == "true",
                "ro" | "readonly" => rw = !(val.is_empty() || val == "true"),
                // One build runs its steps one after another: every sharing mode behaves alike.
                "sharing" if matches!(val, "shared" | "private" | "locked") => {}
                _ => return Err(format!("unsupported --mount option {field:?} (supported: type=cache|bind, target, source, from, id, rw, sharing)")),
            }
        }
        let target = target
            .filter(|t| t.starts_with('/'))
            .ok_or_else(|| "--mount needs target=/ABSOLUTE/PATH".to_string())?;
        match typ.as_str() {
            "cache" if source.is_some() || from.is_some() => {
                Err("--mount type=cache takes no source or from here".into())
            }
            "cache" => Ok(RunMount::Cache {
                id: id.unwrap_or_else(|| target.clone()),
                target,
            }),
            "bind" => Ok(RunMount::Bind {
                target,
                source: source.unwrap_or_default(),
                from,
                rw,
            }),
            other => Err(format!(
                "--mount type={other} is not supported: use type=cache or type=bind"
            )),
        }
    }
}

/// `type=secret,id=ID[,target=PATH][,env=NAME][,required][,mode=0400][,uid=0][,gid=0]`: the
/// id defaults to the target's file name, the target to /run/secrets/ID (unless only `env`).
fn parse_secret(v: &str) -> Result<RunMount, String> {
    let (mut id, mut target, mut env, mut required, mut mode) = (None, None, None, false, 0o400);
    for field in v.split(',').filter(|f| !f.is_empty()) {
        let (k, val) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {}
            "id" => id = Some(val.to_string()),
            "target" | "dst" | "destination" => target = Some(val.to_string()),
            "env" => env = Some(val.to_string()),
            "required" => required = val.is_empty() || val == "true",
            "mode" => {
                mode = u32::from_str_radix(val.trim_start_matches("0o"), 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| format!("--mount type=secret: mode={val} is not an octal mode"))?
            }
            // The step's root is the builder's user: a file it owns is root's inside.
            "uid" | "gid" if val == "0" => {}
            "uid" | "gid" => {
                return Err(format!(
                    "--mount type=secret: {field} is not supported (the file is root's, uid 0; give it a mode others can read, mode=0444)"
                ))
            }
            _ => return Err(format!("unsupported --mount option {field:?} for type=secret (supported: id, target, env, required, mode, uid=0, gid=0)")),
        }
    }
    if let Some(t) = target.as_ref().filter(|t| !t.starts_with('/')) {
        return Err(format!(
            "--mount type=secret: target={t} is not an absolute path"
        ));
    }
    let id = match (id, &target) {
        (Some(id), _) if !id.is_empty() => id,
        (_, Some(t)) => t.rsplit('/').next().unwrap_or_default().to_string(),
        _ => return Err("--mount type=secret needs id=ID (or a target to name it)".into()),
    };
    if env.is_none() && target.is_none() {
        target = Some(format!("/run/secrets/{id}"));
    }
    Ok(RunMount::Secret {
        id,
        target,
        env,
        required,
        mode,
    })
}

/// `type=ssh[,id=ID][,target=PATH][,required][,mode=0600][,uid=0][,gid=0]`.
fn parse_ssh(v: &str) -> Result<RunMount, String> {
    let (mut id, mut target, mut required) = ("default".to_string(), None, false);
    for field in v.split(',').filter(|f| !f.is_empty()) {
        let (k, val) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {}
            "id" if !val.is_empty() => id = val.to_string(),
            "target" | "dst" | "destination" if val.starts_with('/') => {
                target = Some(val.to_string())
            }
            "required" => required = val.is_empty() || val == "true",
            // The socket is the agent's own file: it keeps its owner (you, uid 0 inside) and mode.
            "mode" if val.trim_start_matches('0') == "600" => {}
            "uid" | "gid" if val == "0" => {}
            _ => {
                return Err(format!(
                    "unsupported --mount option {field:?} for type=ssh (supported: id, target=/ABSOLUTE/PATH, required, mode=0600, uid=0, gid=0)"
                ))
            }
        }
    }
    Ok(RunMount::Ssh {
        id,
        target,
        required,
    })
}

/// Where a build's ssh agents are (`burrow build --ssh ID[=SOCKET]`), by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshAgents(pub std::collections::BTreeMap<String, std::path::PathBuf>);

impl SshAgents {
    /// Parses `--ssh` values as Docker's: `default` (the agent of `$SSH_AUTH_SOCK`), `ID`
    /// likewise, or `ID=SOCKET`. Key files (which BuildKit also takes) are refused.
    pub fn parse(specs: &[String]) -> Result<SshAgents, String> {
        let mut out = std::collections::BTreeMap::new();
        for spec in specs {
            let (id, path) = match spec.split_once('=') {
                Some((id, p)) => (id.to_string(), std::path::PathBuf::from(p)),
                None => {
                    let sock = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty());
                    let sock = sock.ok_or_else(|| {
                        format!("--ssh {spec}: SSH_AUTH_SOCK is not set: start an agent (eval $(ssh-agent); ssh-add) or give --ssh {spec}=SOCKET")
                    })?;
                    (spec.clone(), std::path::PathBuf::from(sock))
                }
            };
            if id.is_empty() || path.as_os_str().is_empty() || path.to_string_lossy().contains(',')
            {
                return Err(format!(
                    "--ssh {spec}: give ID, or ID=SOCKET (one agent socket; key files are not supported)"
                ));
            }
            let meta = std::fs::metadata(&path)
                .map_err(|e| format!("--ssh {spec}: {}: {e}", path.display()))?;
            if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
                return Err(format!(
                    "--ssh {spec}: {} is not an agent's socket (key files are not supported: add the key to an agent with ssh-add and give its socket)",
                    path.display()
                ));
            }
            out.insert(id, path);
        }
        Ok(SshAgents(out))
    }
}

/// `type=tmpfs,target=PATH[,size=BYTES]`.
fn parse_tmpfs(v: &str) -> Result<RunMount, String> {
    let (mut target, mut size) = (None, None);
    for field in v.split(',').filter(|f| !f.is_empty()) {
        let (k, val) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {}
            "target" | "dst" | "destination" => target = Some(val.to_string()),
            "size" => {
                size = Some(val.parse::<u64>().map_err(|_| {
                    format!("--mount type=tmpfs: size={val} is not a number of bytes")
                })?)
            }
            _ => {
                return Err(format!(
                    "unsupported --mount option {field:?} for type=tmpfs (supported: target, size)"
                ))
            }
        }
    }
    let target = target
        .filter(|t| t.starts_with('/'))
        .ok_or_else(|| "--mount type=tmpfs needs target=/ABSOLUTE/PATH".to_string())?;
    Ok(RunMount::Tmpfs { target, size })
}

/// Where a build's secrets come from (`burrow build --secret`, Compose's build secrets), by id.
/// Their values are read when a step mounts them and are never shown (Debug lists the ids).
#[derive(Clone, Default)]
pub struct Secrets(pub std::collections::BTreeMap<String, SecretSource>);

/// One secret's source (where it is; a value given as such is never shown by Debug).
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(std::path::PathBuf),
    /// An environment variable of the builder's.
    Env(String),
    /// The value itself (Compose: a variable of the project's .env file).
    Value(Vec<u8>),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(p) => f.debug_tuple("File").field(p).finish(),
            SecretSource::Env(v) => f.debug_tuple("Env").field(v).finish(),
            SecretSource::Value(_) => f.write_str("Value(..)"),
        }
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    /// Parses `--secret` values as Docker's: `id=ID[,src=FILE|source=FILE][,env=VAR]
    /// [,type=file|env]`; with neither, the variable ID if it is set, else the file ID.
    pub fn parse(specs: &[String]) -> Result<Secrets, String> {
        let mut out = std::collections::BTreeMap::new();
        for spec in specs {
            let (mut id, mut src, mut env, mut typ) = (None, None, None, None);
            for field in spec.split(',').filter(|f| !f.is_empty()) {
                match field.split_once('=') {
                    Some(("id", v)) => id = Some(v.to_string()),
                    Some(("src" | "source", v)) => src = Some(v.to_string()),
                    Some(("env", v)) => env = Some(v.to_string()),
                    Some(("type", v @ ("file" | "env"))) => typ = Some(v.to_string()),
                    _ => {
                        return Err(format!(
                            "--secret {spec}: use id=ID,src=FILE or id=ID,env=VARIABLE"
                        ))
                    }
                }
            }
            let id = id
                .filter(|i| !i.is_empty())
                .ok_or_else(|| format!("--secret {spec}: id=ID is missing"))?;
            let source = match (typ.as_deref(), src, env) {
                (Some("env"), Some(v), None) | (_, None, Some(v)) => SecretSource::Env(v),
                (Some("env"), None, None) => SecretSource::Env(id.clone()),
                (_, Some(f), None) => SecretSource::File(f.into()),
                (_, None, None) if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
                (_, None, None) => SecretSource::File(id.clone().into()),
                (_, Some(_), Some(_)) => {
                    return Err(format!("--secret {spec}: give src or env, not both"))
                }
            };
            out.insert(id, source);
        }
        Ok(Secrets(out))
    }

    /// The value of secret `id`: None when the build was not given it; an error names what
    /// could not be read.
    pub fn value(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
        match self.0.get(id) {
            None => Ok(None),
            Some(SecretSource::File(p)) => std::fs::read(p)
                .map(Some)
                .map_err(|e| format!("secret {id}: reading {}: {e}", p.display())),
            Some(SecretSource::Env(v)) => std::env::var_os(v)
                .map(|x| Some(std::os::unix::ffi::OsStrExt::as_bytes(x.as_os_str()).to_vec()))
                .ok_or_else(|| format!("secret {id}: the variable {v} is not set")),
            Some(SecretSource::Value(v)) => Ok(Some(v.clone())),
        }
    }
}

/// The volume a cache mount of `id` uses.
pub fn cache_volume(id: &str) -> String {
    let digest = crate::images::manifest::sha256(id.as_bytes());
    format!("{CACHE_VOLUME_PREFIX}{}", &digest["sha256:".len()..][..16])
}

/// Writes `tree` under `dir` (files, directories, symlinks with their modes; owners are the
/// caller's).
pub fn materialize(tree: &Tree, dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in tree.values() {
        let p = dir.join(&e.path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match &e.kind {
            Kind::Dir => std::fs::create_dir_all(&p)?,
            Kind::File(d) => {
                std::io::copy(&mut d.reader()?, &mut std::fs::File::create(&p)?)?;
            }
            Kind::Symlink(t) => {
                std::os::unix::fs::symlink(t, &p)?;
                continue;
            }
        }
        // Directories stay searchable by the step.
        let mode = if e.kind == Kind::Dir {
            e.mode | 0o700
        } else {
            e.mode
        };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildkit_forms() {
        assert_eq!(
            RunMount::parse("type=cache,target=/root/.cache").unwrap(),
            RunMount::Cache {
                target: "/root/.cache".into(),
                id: "/root/.cache".into()
            }
        );
        assert_eq!(
            RunMount::parse("target=/src,source=app,from=build,rw").unwrap(),
            RunMount::Bind {
                target: "/src".into(),
                source: "app".into(),
                from: Some("build".into()),
                rw: true
            }
        );
        assert_eq!(
            RunMount::parse("type=secret,id=npm,required").unwrap(),
            RunMount::Secret {
                id: "npm".into(),
                target: Some("/run/secrets/npm".into()),
                env: None,
                required: true,
                mode: 0o400
            }
        );
        assert_eq!(
            RunMount::parse("type=secret,target=/root/.npmrc,mode=0444").unwrap(),
            RunMount::Secret {
                id: ".npmrc".into(),
                target: Some("/root/.npmrc".into()),
                env: None,
                required: false,
                mode: 0o444
            }
        );
        assert!(matches!(
            RunMount::parse("type=secret,id=t,env=TOKEN").unwrap(),
            RunMount::Secret { target: None, .. }
        ));
        assert!(RunMount::parse("type=secret,id=t,uid=1000").is_err());
        assert_eq!(
            RunMount::parse("type=tmpfs,target=/scratch,size=1048576").unwrap(),
            RunMount::Tmpfs {
                target: "/scratch".into(),
                size: Some(1 << 20)
            }
        );
        assert_eq!(
            RunMount::parse("type=ssh").unwrap(),
            RunMount::Ssh {
                id: "default".into(),
                target: None,
                required: false
            }
        );
        assert_eq!(
            RunMount::parse("type=ssh,id=gh,target=/agent,required,mode=0600").unwrap(),
            RunMount::Ssh {
                id: "gh".into(),
                target: Some("/agent".into()),
                required: true
            }
        );
        assert!(RunMount::parse("type=ssh,uid=1000").is_err());
        assert!(RunMount::parse("type=ssh,target=rel").is_err());
        let err = SshAgents::parse(&["x=/etc/passwd".into()]).unwrap_err();
        assert!(err.contains("not an agent's socket"), "{err}");
        assert!(RunMount::parse("type=cache").is_err());
        assert!(RunMount::parse("type=cache,target=/c,uid=1000").is_err());
        assert_ne!(cache_volume("/a"), cache_volume("/b"));
        assert!(cache_volume("/a").starts_with(CACHE_VOLUME_PREFIX));
    }

    #[test]
    fn secrets_come_from_files_and_variables() {
        let s = Secrets::parse(&[
            "id=a,src=/tmp/a".into(),
            "id=b,env=B_VAR".into(),
            "type=env,id=c".into(),
        ])
        .unwrap();
        assert_eq!(s.0["a"], SecretSource::File("/tmp/a".into()));
        assert_eq!(s.0["b"], SecretSource::Env("B_VAR".into()));
        assert_eq!(s.0["c"], SecretSource::Env("c".into()));
        assert!(!format!("{s:?}").contains("/tmp/a"));
        assert!(Secrets::parse(&["src=/x".into()]).is_err());
        assert_eq!(s.value("missing"), Ok(None));
        std::env::set_var("BURROW_SECRET_TEST_B", "hush");
        let s = Secrets::parse(&["id=b,env=BURROW_SECRET_TEST_B".into()]).unwrap();
        assert_eq!(s.value("b"), Ok(Some(b"hush".to_vec())));
    }

    #[test]
    fn materializes_trees() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tree::new();
        for (p, k) in [
            ("d", Kind::Dir),
            ("d/f", Kind::File(b"x".to_vec().into())),
            ("l", Kind::Symlink("d/f".into())),
        ] {
            t.insert(
                p.into(),
                super::super::files::Entry {
                    path: p.into(),
                    kind: k,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                },
            );
        }
        materialize(&t, dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("l")).unwrap(), "x");
    }
}
