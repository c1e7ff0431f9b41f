//! A Compose project loaded from its files: name, working directory and the model.
// TEMPORARY: replaced by the compose-model branch (single file, no interpolation, merge of
// several files, extends or profiles; services_for = dependency order of all services).

use std::path::PathBuf;

use super::ComposeError;

/// What `burrow compose` was asked to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
}

/// A loaded project.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    pub compose: compose_spec::Compose,
    pub warnings: Vec<String>,
}

const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

impl Project {
    /// Loads the project `opts` names.
    pub fn load(opts: &LoadOptions) -> Result<Project, ComposeError> {
        if opts.files.len() > 1 || !opts.env_files.is_empty() || !opts.profiles.is_empty() {
            return Err(ComposeError::Load(
                "several -f files, --env-file and --profile need the Compose loader, which has not landed in this build yet".into(),
            ));
        }
        let cwd = std::env::current_dir().map_err(|e| ComposeError::Load(e.to_string()))?;
        let file = match opts.files.first() {
            Some(f) => cwd.join(f),
            None => {
                let dir = opts
                    .project_directory
                    .clone()
                    .unwrap_or_else(|| cwd.clone());
                DEFAULT_FILES
                    .iter()
                    .map(|f| dir.join(f))
                    .find(|p| p.exists())
                    .ok_or_else(|| {
                        ComposeError::Load(format!(
                            "no compose.yaml or docker-compose.yml in {}: give one with -f",
                            dir.display()
                        ))
                    })?
            }
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| ComposeError::Load(format!("reading {}: {e}", file.display())))?;
        let compose = compose_spec::Compose::options()
            .apply_merge(true)
            .from_yaml_str(&text)
            .map_err(|e| ComposeError::Load(format!("{}: {e}", file.display())))?;
        if let Some((name, _)) = compose.services.iter().find(|(_, s)| s.env_file.is_some()) {
            return Err(ComposeError::Load(format!(
                "service {name}: env_file needs the Compose loader, which has not landed in this build yet"
            )));
        }
        let working_dir = opts
            .project_directory
            .clone()
            .map(|d| cwd.join(d))
            .or_else(|| file.parent().map(PathBuf::from))
            .unwrap_or(cwd);
        let name = opts
            .project_name
            .clone()
            .or_else(|| compose.name.as_ref().map(|n| n.to_string()))
            .unwrap_or_else(|| dir_name(&working_dir));
        Ok(Project {
            name,
            working_dir,
            config_files: vec![file],
            compose,
            warnings: Vec::new(),
        })
    }

    /// Active services in dependency order for these names (empty = all).
    pub fn services_for(&self, names: &[String]) -> Result<Vec<String>, ComposeError> {
        for n in names {
            if !self.compose.services.keys().any(|k| k.as_str() == n) {
                return Err(ComposeError::NoService(n.clone()));
            }
        }
        let mut order = Vec::new();
        let wanted: Vec<String> = if names.is_empty() {
            self.compose
                .services
                .keys()
                .map(|k| k.to_string())
                .collect()
        } else {
            names.to_vec()
        };
        for n in &wanted {
            self.visit(n, &mut order, &mut Vec::new())?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        name: &str,
        order: &mut Vec<String>,
        path: &mut Vec<String>,
    ) -> Result<(), ComposeError> {
        if order.iter().any(|o| o == name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            return Err(ComposeError::Load(format!(
                "dependency cycle: {} -> {name}",
                path.join(" -> ")
            )));
        }
        let Some((_, svc)) = self
            .compose
            .services
            .iter()
            .find(|(k, _)| k.as_str() == name)
        else {
            return Err(ComposeError::NoService(name.to_string()));
        };
        path.push(name.to_string());
        for dep in super::engine::service::dependencies(svc) {
            let known = self
                .compose
                .services
                .keys()
                .any(|k| k.as_str() == dep.service);
            if known || dep.required {
                self.visit(&dep.service, order, path)?;
            }
        }
        path.pop();
        order.push(name.to_string());
        Ok(())
    }
}

/// Docker Compose's project name from a directory: lowercase letters, digits, - and _.
fn dir_name(dir: &std::path::Path) -> String {
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if name.is_empty() {
        "default".into()
    } else {
        name
    }
}
