//! `burrow volume create/ls/inspect/rm/prune`: named volumes as nerdctl stores them,
//! `DATA_ROOT/volumes/NS/NAME/_data` with labels in `volume.json`, changed under a lock file so
//! concurrent CLI calls do not race.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::container::{self as ctr, Ctx};
use burrow::connection::Globals;
use burrow::containers::store::private_dir;

#[derive(Debug, clap::Subcommand)]
// Each subcommand\'s arguments are built only when it runs: building all of them cost
// more than some whole commands (`ps`) take.
#[command(defer = true)]
pub enum Command {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes as JSON.
    Inspect(NamesArgs),
    /// Remove volumes.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove volumes no container uses.
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Set metadata on the volume (KEY=VALUE).
    #[arg(long = "label")]
    pub label: Vec<String>,
    pub name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only print names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table or json.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove every unused volume, named ones too (without it only anonymous volumes go).
    #[arg(short, long)]
    pub all: bool,
    /// Only volumes matching a filter: label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// The label Docker (23+) puts on the volumes it creates for `-v /path` without a name: only
/// volumes carrying it are pruned unless `volume prune --all`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// One `volume prune --filter` condition.
#[derive(Debug, PartialEq)]
enum PruneFilter {
    Label {
        key: String,
        value: Option<String>,
        present: bool,
    },
}

impl PruneFilter {
    fn parse(s: &str) -> anyhow::Result<Self> {
        let bad = || {
            anyhow::anyhow!(
                "invalid --filter {s:?}: volume prune takes label=KEY[=VALUE] or label!=KEY[=VALUE]"
            )
        };
        let (present, rest) = if let Some(r) = s.strip_prefix("label!=") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("label=") {
            (true, r)
        } else {
            return Err(bad());
        };
        if rest.is_empty() {
            return Err(bad());
        }
        let (key, value) = match rest.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (rest.to_string(), None),
        };
        Ok(PruneFilter::Label {
            key,
            value,
            present,
        })
    }

    fn matches(&self, labels: &HashMap<String, String>) -> bool {
        let PruneFilter::Label {
            key,
            value,
            present,
        } = self;
        let has = match (labels.get(key), value) {
            (Some(v), Some(want)) => v == want,
            (Some(_), None) => true,
            (None, _) => false,
        };
        has == *present
    }
}

/// Whether `volume prune` removes a volume no container uses.
fn prunable(labels: &HashMap<String, String>, all: bool, filters: &[PruneFilter]) -> bool {
    (all || labels.contains_key(ANONYMOUS_LABEL)) && filters.iter().all(|f| f.matches(labels))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    #[serde(rename = "Labels", default)]
    labels: HashMap<String, String>,
}

/// Docker's `volume inspect` shape.
#[derive(Debug, Serialize)]
struct Volume {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Driver")]
    driver: &'static str,
    #[serde(rename = "Mountpoint")]
    mountpoint: PathBuf,
    #[serde(rename = "Labels")]
    labels: HashMap<String, String>,
    #[serde(rename = "Scope")]
    scope: &'static str,
}

fn root(ctx: &Ctx) -> PathBuf {
    ctx.store.root().join("volumes").join(&ctx.ep.namespace)
}

fn lock(dir: &Path) -> anyhow::Result<Flock<std::fs::File>> {
    private_dir(dir)?;
    let path = dir.join(".lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the volume lock {}", path.display()))?;
    Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("locking {}: {e}", path.display()))
}

fn create_locked(
    dir: &Path,
    name: &str,
    labels: HashMap<String, String>,
) -> anyhow::Result<PathBuf> {
    if !burrow::network::valid_name(name) {
        anyhow::bail!("invalid volume name {name:?}: use letters, digits, '.', '_' and '-'");
    }
    let vdir = dir.join(name);
    let data = vdir.join("_data");
    if !data.exists() {
        private_dir(&vdir)?;
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let meta = serde_json::to_vec_pretty(&Meta { labels })?;
        std::fs::write(vdir.join("volume.json"), meta)?;
    }
    Ok(data)
}

/// The data dir of volume `name`, created if absent (for `run -v NAME:/path`); true when this
/// call created it.
pub fn ensure(ctx: &Ctx, name: &str) -> anyhow::Result<(PathBuf, bool)> {
    let dir = root(ctx);
    let _l = lock(&dir)?;
    let existed = dir.join(name).join("_data").is_dir();
    Ok((create_locked(&dir, name, HashMap::new())?, !existed))
}

/// A new anonymous volume (for `run -v /path`), labelled as Docker labels them.
pub fn create_anonymous(ctx: &Ctx) -> anyhow::Result<(String, PathBuf)> {
    let dir = root(ctx);
    let _l = lock(&dir)?;
    let name = burrow::containers::store::new_id();
    let labels = HashMap::from([(ANONYMOUS_LABEL.to_string(), String::new())]);
    let data = create_locked(&dir, &name, labels)?;
    Ok((name, data))
}

/// Removes volumes a removed container owned (its anonymous ones) or a failed run created
/// (best effort).
pub fn remove_anonymous(ctx: &Ctx, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let dir = root(ctx);
    let Ok(_l) = lock(&dir) else {
        return;
    };
    for n in names {
        if let Err(err) = std::fs::remove_dir_all(dir.join(n)) {
            tracing::warn!(%err, volume = %n, "removing an anonymous volume");
        }
    }
}

fn load(dir: &Path, name: &str) -> anyhow::Result<Volume> {
    let vdir = dir.join(name);
    if !vdir.join("_data").is_dir() {
        anyhow::bail!("no such volume: {name}");
    }
    let meta: Meta = std::fs::read(vdir.join("volume.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    Ok(Volume {
        name: name.to_string(),
        driver: "local",
        mountpoint: vdir.join("_data"),
        labels: meta.labels,
        scope: "local",
    })
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("_data").is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// Volumes used by any container (by their data dir appearing as a mount source).
async fn in_use(ctx: &Ctx) -> anyhow::Result<HashMap<PathBuf, String>> {
    let mut used = HashMap::new();
    for c in ctx.client.list(vec![]).await? {
        if let Some(spec) = ctr::spec_of(&c) {
            for m in spec.mounts().iter().flatten() {
                if let Some(src) = m.source() {
                    used.insert(src.clone(), ctr::name_of(&c));
                }
            }
        }
    }
    Ok(used)
}

pub fn run(cmd: Command, g: &Globals) -> anyhow::Result<ExitCode> {
    ctr::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let dir = root(&ctx);
        match cmd {
            Command::Create(a) => {
                let name = a.name.unwrap_or_else(burrow::containers::store::new_id);
                let _l = lock(&dir)?;
                if dir.join(&name).join("_data").exists() {
                    anyhow::bail!("volume {name} already exists");
                }
                create_locked(&dir, &name, ctr::parse_labels(&a.label))?;
                println!("{name}");
            }
            Command::Ls(a) => {
                let json = super::wants_json(a.format.as_deref())?;
                let vols: Vec<Volume> = names(&dir)
                    .iter()
                    .filter_map(|n| load(&dir, n).ok())
                    .collect();
                if a.quiet {
                    for v in vols {
                        println!("{}", v.name);
                    }
                } else if json {
                    for v in vols {
                        println!("{}", serde_json::to_string(&v)?);
                    }
                } else {
                    println!("{:<16}VOLUME NAME", "DRIVER");
                    for v in vols {
                        println!("{:<16}{}", v.driver, v.name);
                    }
                }
            }
            Command::Inspect(a) => {
                let vols = a
                    .names
                    .iter()
                    .map(|n| load(&dir, n))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                println!("{}", serde_json::to_string_pretty(&vols)?);
            }
            Command::Rm(a) => {
                let used = in_use(&ctx).await?;
                let _l = lock(&dir)?;
                let mut failed = false;
                for n in &a.names {
                    let res = load(&dir, n).and_then(|v| {
                        if let Some(c) = used.get(&v.mountpoint) {
                            anyhow::bail!(
                                "volume {n} is in use by container {c}: remove the container first"
                            );
                        }
                        std::fs::remove_dir_all(dir.join(n))
                            .with_context(|| format!("removing volume {n}"))
                    });
                    match res {
                        Ok(()) => println!("{n}"),
                        Err(e) => {
                            eprintln!("burrow: {e:#}");
                            failed = true;
                        }
                    }
                }
                if failed {
                    return Ok(ExitCode::from(1));
                }
            }
            Command::Prune(a) => {
                let filters = a
                    .filter
                    .iter()
                    .map(|f| PruneFilter::parse(f))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let what = if a.all {
                    "all local volumes not used by at least one container"
                } else {
                    "anonymous local volumes not used by at least one container"
                };
                if !super::confirm("volume prune", what, a.force)? {
                    return Ok(ExitCode::SUCCESS);
                }
                let used = in_use(&ctx).await?;
                let _l = lock(&dir)?;
                println!("Deleted Volumes:");
                for n in names(&dir) {
                    let Ok(v) = load(&dir, &n) else { continue };
                    if !used.contains_key(&v.mountpoint) && prunable(&v.labels, a.all, &filters) {
                        std::fs::remove_dir_all(dir.join(&n))
                            .with_context(|| format!("removing volume {n}"))?;
                        println!("{n}");
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn prune_takes_only_anonymous_volumes_unless_all() {
        let named = labels(&[("app", "web")]);
        let anon = labels(&[(ANONYMOUS_LABEL, "")]);
        assert!(!prunable(&named, false, &[]));
        assert!(prunable(&anon, false, &[]));
        assert!(prunable(&named, true, &[]));
    }

    #[test]
    fn prune_filters_on_labels() {
        let web = labels(&[("app", "web")]);
        let f = |s: &str| PruneFilter::parse(s).unwrap();
        assert!(prunable(&web, true, &[f("label=app")]));
        assert!(prunable(&web, true, &[f("label=app=web")]));
        assert!(!prunable(&web, true, &[f("label=app=db")]));
        assert!(!prunable(&web, true, &[f("label!=app")]));
        assert!(prunable(&web, true, &[f("label!=app=db")]));
        for bad in ["dangling=true", "label=", "label!=", "name=x"] {
            let err = PruneFilter::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("label="), "{err}");
        }
    }
}
