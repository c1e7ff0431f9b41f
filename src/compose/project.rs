//! The project a compose command works on: [`LoadOptions`] (the command's global flags) in,
//! [`Project`] (name, directory, files, the loaded model, warnings) out.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::error::ComposeError;
use super::interpolate::Lookup;
use super::{envfile, extends, files, interpolate, keys, merge, normalize, profiles, references};

/// What to load: the compose command group's global flags.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// -f, in order; empty = the defaults.
    pub files: Vec<PathBuf>,
    /// -p
    pub project_name: Option<String>,
    /// --project-directory
    pub project_directory: Option<PathBuf>,
    /// --env-file
    pub env_files: Vec<PathBuf>,
    /// --profile
    pub profiles: Vec<String>,
}

/// A loaded Compose project.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    /// Absolute.
    pub working_dir: PathBuf,
    /// Absolute, for the com.docker.compose.project.config_files label.
    pub config_files: Vec<PathBuf>,
    /// Interpolated, merged, extended, normalised (all services, any profile).
    pub compose: compose_spec::Compose,
    /// Printed to stderr by commands.
    pub warnings: Vec<String>,
    /// The enabled profiles: --profile, else COMPOSE_PROFILES.
    pub profiles: Vec<String>,
    /// The env files' variables (.env, or --env-file), under the process environment's.
    env_files: std::collections::HashMap<String, String>,
}

/// Variables for interpolation: the process environment over the env files.
#[derive(Debug, Default, Clone)]
struct Vars {
    files: std::collections::HashMap<String, String>,
}

impl Lookup for Vars {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.files.get(name).cloned())
    }
}

impl Project {
    /// Reads, interpolates, merges, extends, checks and normalises the project's files.
    pub fn load(opts: &LoadOptions) -> Result<Project, ComposeError> {
        let cwd = std::env::current_dir().map_err(|source| ComposeError::Read {
            path: ".".into(),
            source,
        })?;
        let given_dir = opts.project_directory.as_ref().map(|d| cwd.join(d));
        let search = given_dir.as_deref().unwrap_or(&cwd);
        let config_files = files::choose(&opts.files, &cwd, search, given_dir.is_none())?;
        let working_dir = given_dir.unwrap_or_else(|| first_dir(&config_files, &cwd));
        let vars = vars(opts, &cwd, &working_dir)?;
        let mut warnings = Vec::new();
        let mut doc = merged(&config_files, &vars, &mut warnings)?;
        normalize::paths(&mut doc, &working_dir);
        normalize::environment(&mut doc, &vars, &file_list(&config_files))?;
        let name = project_name(opts, &vars, &doc, &working_dir)?;
        if doc.remove("version").is_some() {
            warnings.push("version: obsolete (the Compose specification has none), ignored".into());
        }
        doc.insert(Value::from("name"), Value::from(name.clone()));
        references::check(&doc).map_err(|(key, message)| invalid(&config_files, key, message))?;
        normalize::model_gaps(&mut doc);
        let compose = model(doc, &config_files)?;
        Ok(Project {
            name,
            working_dir,
            config_files,
            compose,
            warnings,
            profiles: enabled_profiles(opts, &vars),
            env_files: vars.files,
        })
    }

    /// A variable as the project sees it: the process environment's, else the env files'
    /// (what secrets and configs of `environment:` read, as Docker Compose's project
    /// environment).
    pub fn variable(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.env_files.get(name).cloned())
    }

    /// The project as one Compose document, as its files say it (`compose config`).
    pub fn document(&self) -> Result<Value, serde_yaml::Error> {
        let mut doc = serde_yaml::to_value(&self.compose)?;
        normalize::restore_gaps(&mut doc);
        Ok(doc)
    }

    /// Active services in dependency order (depends_on first) for these command-line names
    /// (empty = every service whose profiles are enabled).
    pub fn services_for(&self, names: &[String]) -> Result<Vec<String>, ComposeError> {
        profiles::select(&self.compose, names, &self.profiles)
    }
}

/// -p, else COMPOSE_PROJECT_NAME (environment or .env), else `name:`, else the directory's.
fn project_name(
    opts: &LoadOptions,
    vars: &Vars,
    doc: &Mapping,
    dir: &Path,
) -> Result<String, ComposeError> {
    let top = doc.get("name").and_then(Value::as_str);
    let env = vars.get("COMPOSE_PROJECT_NAME");
    normalize::project_name(opts.project_name.as_deref(), env.as_deref(), top, dir)
}

/// The directory of the first file (stdin: the current directory).
fn first_dir(files: &[PathBuf], cwd: &Path) -> PathBuf {
    files
        .first()
        .filter(|f| f.as_path() != Path::new("-"))
        .and_then(|f| f.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cwd.to_path_buf())
}

/// --env-file (relative to the current directory), else the project directory's `.env`.
fn vars(opts: &LoadOptions, cwd: &Path, dir: &Path) -> Result<Vars, ComposeError> {
    let paths: Vec<PathBuf> = if opts.env_files.is_empty() {
        let dotenv = dir.join(".env");
        dotenv.is_file().then_some(dotenv).into_iter().collect()
    } else {
        opts.env_files.iter().map(|p| cwd.join(p)).collect()
    };
    let mut vars = Vars::default();
    for path in paths {
        for (k, v) in envfile::read(&path, &vars)? {
            if let Some(v) = v.or_else(|| std::env::var(&k).ok()) {
                vars.files.insert(k, v);
            }
        }
    }
    Ok(vars)
}

fn enabled_profiles(opts: &LoadOptions, vars: &Vars) -> Vec<String> {
    if !opts.profiles.is_empty() {
        return opts.profiles.clone();
    }
    vars.get("COMPOSE_PROFILES")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Every file read, interpolated, pruned and extended, then merged in order.
fn merged(
    config_files: &[PathBuf],
    vars: &Vars,
    warnings: &mut Vec<String>,
) -> Result<Mapping, ComposeError> {
    let notes = RefCell::new(Vec::new());
    let unset = RefCell::new(BTreeSet::new());
    let load = |path: &Path| -> Result<Value, ComposeError> {
        let mut doc = files::read(path)?;
        interpolate::value(
            &mut doc,
            &mut Vec::new(),
            path,
            vars,
            &mut unset.borrow_mut(),
        )?;
        let name = path.display();
        let warnings = keys::prune(&mut doc).map_err(|errors| {
            ComposeError::Load(
                errors
                    .lines()
                    .map(|e| format!("{name}: {e}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        notes
            .borrow_mut()
            .extend(warnings.into_iter().map(|w| format!("{name}: {w}")));
        Ok(doc)
    };
    let mut out = Mapping::new();
    for path in config_files {
        let Value::Mapping(mut doc) = load(path)? else {
            continue;
        };
        let included_files = includes(&mut doc, path, &mut notes.borrow_mut());
        for included in included_files {
            let Value::Mapping(mut inc) = load(&included)? else {
                continue;
            };
            extends::resolve(&mut inc, &included, &load)?;
            normalize::paths(&mut inc, included.parent().unwrap_or(Path::new("/")));
            merge::file(&mut out, inc);
        }
        extends::resolve(&mut doc, path, &load)?;
        merge::file(&mut out, doc);
    }
    for var in unset.into_inner() {
        warnings.push(format!(
            "the {var} variable is not set: defaulting to a blank string"
        ));
    }
    warnings.extend(notes.into_inner());
    Ok(out)
}

/// Takes `include:` out of `doc` (read from `file`): the included files' paths, absolute.
/// Its `project_directory` and `env_file` are not supported: warned about and ignored.
fn includes(doc: &mut Mapping, file: &Path, warnings: &mut Vec<String>) -> Vec<PathBuf> {
    let dir = file.parent().unwrap_or(Path::new("/"));
    let items = match doc.remove("include") {
        Some(Value::Sequence(items)) => items,
        Some(other) => vec![other],
        None => return Vec::new(),
    };
    items
        .iter()
        .filter_map(|i| match i {
            Value::String(s) => Some(dir.join(s)),
            Value::Mapping(m) => {
                for key in ["project_directory", "env_file"] {
                    if m.contains_key(key) {
                        warnings.push(format!(
                            "{}: include.{key}: not supported yet, ignored",
                            file.display()
                        ));
                    }
                }
                m.get("path").and_then(Value::as_str).map(|s| dir.join(s))
            }
            _ => None,
        })
        .collect()
}

/// The merged document as the `compose_spec` model; errors name the files, the key path and,
/// where one file alone shows the same error, its line.
fn model(doc: Mapping, config_files: &[PathBuf]) -> Result<compose_spec::Compose, ComposeError> {
    let value = Value::Mapping(doc);
    let Err(err) = compose_spec::Compose::options().from_yaml_value(value.clone()) else {
        return compose_spec::Compose::options()
            .from_yaml_value(value)
            .map_err(|e| invalid(config_files, "(top level)".into(), e.to_string()));
    };
    // Deserialising from text makes serde_yaml track the key path.
    let text = serde_yaml::to_string(&value).unwrap_or_default();
    let (key, message) = match serde_yaml::from_str::<compose_spec::Compose>(&text) {
        Err(e) => split_path(&e),
        Ok(_) => ("(top level)".to_string(), err.to_string()),
    };
    for file in config_files {
        if let Some(line) = line_in(file, &key) {
            return Err(ComposeError::Invalid {
                files: file.display().to_string(),
                line: Some(line),
                key,
                message,
            });
        }
    }
    Err(invalid(config_files, key, message))
}

fn invalid(files: &[PathBuf], key: String, message: String) -> ComposeError {
    ComposeError::Invalid {
        files: file_list(files),
        line: None,
        key,
        message,
    }
}

/// The files, for an error: `a.yaml, b.yaml`.
fn file_list(files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    names.join(", ")
}

/// `services.web.ports[0]: invalid type ... at line 3 column 5` → (path, message).
fn split_path(e: &serde_yaml::Error) -> (String, String) {
    let full = e.to_string();
    let full = match full.rfind(" at line ") {
        Some(i) if e.location().is_some() => full[..i].to_string(),
        _ => full,
    };
    match full.split_once(": ") {
        Some((p, m)) if !p.contains(' ') => (p.to_string(), m.to_string()),
        _ => ("(top level)".into(), full),
    }
}

/// The line of `file` where deserialising it alone fails at the same key path, if it does.
fn line_in(file: &Path, key: &str) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    let err = serde_yaml::from_str::<compose_spec::Compose>(&text).err()?;
    (split_path(&err).0 == key).then(|| err.location().map(|l| l.line()))?
}

/// A project of one YAML text at /srv/app, as unit tests of the engine build it.
#[cfg(test)]
pub fn for_tests(yaml: &str) -> Project {
    Project {
        name: "app".into(),
        working_dir: "/srv/app".into(),
        config_files: vec!["/srv/app/compose.yaml".into()],
        compose: {
            let mut doc: Mapping = serde_yaml::from_str(yaml).unwrap();
            normalize::model_gaps(&mut doc);
            compose_spec::Compose::options()
                .from_yaml_value(Value::Mapping(doc))
                .unwrap()
        },
        warnings: Vec::new(),
        profiles: Vec::new(),
        env_files: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn opts(files: Vec<PathBuf>) -> LoadOptions {
        LoadOptions {
            files,
            ..Default::default()
        }
    }

    #[test]
    fn invalid_file_names_file_key_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "compose.yaml",
            "services:\n  web:\n    image: a\n    ports:\n      - target: 80\n        published: [1]\n",
        );
        let err = Project::load(&opts(vec![f.clone()]))
            .unwrap_err()
            .to_string();
        let want = format!("{} line 6: services.web.ports[0]", f.display());
        assert!(err.starts_with(&want), "{err}");
    }

    #[test]
    fn include_loads_files_with_their_own_paths() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        write(
            d,
            "db/compose.yaml",
            "services:\n  db:\n    image: d\n    volumes: ['./data:/data']\n",
        );
        let main = write(
            d,
            "compose.yaml",
            "include: [{path: db/compose.yaml, env_file: x}]\nservices:\n  web:\n    image: w\n    depends_on: [db]\n",
        );
        let p = Project::load(&opts(vec![main])).unwrap();
        assert_eq!(p.services_for(&[]).unwrap(), ["db", "web"]);
        let y = serde_yaml::to_string(&p.compose.services["db"].volumes).unwrap();
        assert!(y.contains(&format!("{}/db/data:/data", d.display())), "{y}");
        assert!(p.warnings[0].ends_with("include.env_file: not supported yet, ignored"));
    }

    /// A node file shaped like Usernetes' (see docs/scale.md), its variables from --env-file.
    #[test]
    fn a_usernetes_shaped_node_loads() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let env = write(d, "u7s.env", "U7S_NODE_NAME=u7s-a\nU7S_NODE_SUBNET=10.100.7.0/24\nU7S_NODE_IP=10.100.7.100\nU7S_HOST_IP=192.0.2.7\n");
        let file = write(
            d,
            "compose.yaml",
            "services:\n  node:\n    image: burrow-test/busybox\n    hostname: ${U7S_NODE_NAME}\n    privileged: true\n    restart: always\n    networks:\n      default:\n        ipv4_address: ${U7S_NODE_IP}\n    ports: ['6443:6443', '8472:8472/udp']\n    volumes:\n      - .:/usernetes:ro\n      - node-etc:/etc\n      - {type: tmpfs, target: /run}\n    working_dir: /usernetes\n    environment:\n      U7S_HOST_IP: ${U7S_HOST_IP}\n    sysctls: [net.ipv4.ip_forward=1]\nnetworks:\n  default:\n    ipam:\n      config:\n        - subnet: ${U7S_NODE_SUBNET}\nvolumes:\n  node-etc: {}\n",
        );
        let p = Project::load(&LoadOptions {
            files: vec![file],
            env_files: vec![env],
            ..Default::default()
        })
        .unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let text = serde_yaml::to_string(&p.compose).unwrap();
        for want in [
            "hostname: u7s-a",
            "privileged: true",
            "restart: always",
            "ipv4_address: 10.100.7.100",
            "8472:8472/udp",
            "subnet: 10.100.7.0/24",
            "U7S_HOST_IP: 192.0.2.7",
            "net.ipv4.ip_forward=1",
            "type: tmpfs",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        assert!(
            text.contains(&format!("{}:/usernetes:ro", d.display())),
            "{text}"
        );
        assert_eq!(p.compose.volumes.len(), 1);
    }

    #[test]
    fn loads_a_project() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, ".env", "TAG=1.2\nCOMPOSE_PROFILES=dev\n");
        let a = write(
            d,
            "a.yaml",
            "version: '3.8'\nname: demo\nservices:\n  web:\n    image: img:${TAG}\n    volumes: ['./data:/data']\n    pull_refresh_after: 1h\n  dbg:\n    image: x\n    profiles: [dev]\n",
        );
        let b = write(
            d,
            "b.yaml",
            "services:\n  web:\n    environment: [A=$UNSET_FOR_TEST]\n",
        );
        let p = Project::load(&opts(vec![a.clone(), b.clone()])).unwrap();
        assert_eq!(p.name, "demo");
        assert_eq!(p.working_dir, d);
        assert_eq!(p.config_files, [a.clone(), b]);
        let web = &p.compose.services["web"];
        assert_eq!(web.image.as_ref().unwrap().as_str(), "img:1.2");
        assert_eq!(p.services_for(&[]).unwrap(), ["web", "dbg"]);
        let a_name = a.display();
        assert_eq!(
            p.warnings,
            [
                "the UNSET_FOR_TEST variable is not set: defaulting to a blank string".to_string(),
                format!("{a_name}: services.web.pull_refresh_after: ignored (images are pulled by pull_policy)"),
                "version: obsolete (the Compose specification has none), ignored".to_string(),
            ]
        );
    }
}
