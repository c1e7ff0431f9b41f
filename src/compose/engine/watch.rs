//! `compose watch` (a service's `develop.watch` rules): the watched paths polled for changes,
//! and each batch of changes acted on as Docker Compose acts: `sync` copies the changed files
//! into the service's running containers under `target` (and deletes there what was deleted
//! here), `sync+restart` then restarts them, `sync+exec` then runs the rule's `exec` command in
//! them, `rebuild` builds the image again and recreates the service; `initial_sync` syncs the
//! whole path when watching starts. Polling (not inotify) works the same on local disks and on
//! the network file systems of cluster login nodes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::build::{Flags, Policy};
use super::service::{scalar, Service};
use super::state::ProjectState;
use super::up::{Report, UpOptions};
use crate::build::ignore::Ignore;
use crate::compose::project::Project;
use crate::compose::ComposeError;
use crate::containers::capture::{self, End};
use crate::containers::exec::ExecRequest;
use crate::containers::health::state::LimitedOutput;
use crate::containers::{start, Ctx};

/// What a rule does with the changes it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Sync,
    SyncRestart,
    SyncExec,
    Rebuild,
}

/// One `develop.watch` entry of a service.
#[derive(Debug, Clone)]
pub struct Rule {
    pub service: String,
    pub action: Action,
    /// Absolute (relative ones are taken from the project's directory).
    pub path: PathBuf,
    /// Where synced files go in the container.
    pub target: Option<String>,
    /// `sync+exec`'s command.
    pub exec: Option<ExecRequest>,
    /// Sync the whole path when watching starts (`initial_sync`).
    pub initial_sync: bool,
    ignore: Ignore,
}

/// Editors' and version control's files, never acted on (as Docker Compose skips them).
const DEFAULT_IGNORE: &[&str] = &[
    ".git",
    "**/.git",
    "*~",
    "**/*~",
    "**/.*.swp",
    "**/.*.swx",
    "**/4913",
];

/// The watch rules of `services` (all when empty); a service without any is skipped, and
/// none at all is an error.
pub fn rules(project: &Project, services: &[String]) -> Result<Vec<Rule>, ComposeError> {
    let mut out = Vec::new();
    for name in project.services_for(services)? {
        let svc = Service::of(project, &name)?;
        let bad = |m: String| ComposeError::service(&name, format!("develop.watch: {m}"));
        let watch = svc
            .get("develop")
            .and_then(|d| d.get("watch"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, w) in watch.iter().enumerate() {
            // `sync+exec` is held beside the model's `sync` (see normalize::WATCH_GAPS).
            let action = w
                .get("x-burrow-action")
                .or_else(|| w.get("action"))
                .map(scalar);
            let action = match action.as_deref() {
                Some("sync") => Action::Sync,
                Some("sync+restart") => Action::SyncRestart,
                Some("sync+exec") => Action::SyncExec,
                Some("rebuild") => Action::Rebuild,
                other => {
                    return Err(bad(format!(
                    "[{i}].action {other:?}: burrow takes sync, sync+restart, sync+exec or rebuild"
                )))
                }
            };
            let exec = match (w.get("x-burrow-exec").filter(|e| !e.is_null()), action) {
                (Some(e), Action::SyncExec) => Some(super::hooks::request(
                    &name,
                    &format!("develop.watch[{i}].exec"),
                    e,
                )?),
                (None, Action::SyncExec) => {
                    return Err(bad(format!("[{i}]: sync+exec needs exec: with a command")))
                }
                (Some(_), _) => {
                    return Err(bad(format!(
                        "[{i}].exec: only the sync+exec action runs a command"
                    )))
                }
                (None, _) => None,
            };
            let initial_sync = match w.get("x-burrow-initial-sync") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(bad(format!(
                        "[{i}].initial_sync: {other}: give true or false"
                    )))
                }
            };
            let path = w.get("path").map(scalar).unwrap_or_default();
            if path.is_empty() {
                return Err(bad(format!("[{i}]: a path is required")));
            }
            let path = project.working_dir.join(path);
            let target = w.get("target").filter(|t| !t.is_null()).map(scalar);
            if action != Action::Rebuild && target.is_none() {
                return Err(bad(format!(
                    "[{i}]: {} needs a target",
                    scalar(&w["action"])
                )));
            }
            if action == Action::Rebuild && svc.get("build").is_none() {
                return Err(bad(format!(
                    "[{i}]: rebuild needs the service to have build:"
                )));
            }
            let mut patterns: Vec<String> = DEFAULT_IGNORE.iter().map(|p| p.to_string()).collect();
            for p in w
                .get("ignore")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let p = scalar(p);
                patterns.push(p.clone());
                patterns.push(format!("{}/**", p.trim_end_matches('/')));
            }
            let ignore =
                Ignore::from_patterns(&patterns).map_err(|e| bad(format!("[{i}].ignore: {e}")))?;
            out.push(Rule {
                service: name.clone(),
                action,
                path,
                target,
                exec,
                initial_sync: initial_sync && action != Action::Rebuild,
                ignore,
            });
        }
    }
    if out.is_empty() {
        return Err(ComposeError::Load(
            "none of the services has develop.watch rules: nothing to watch (add develop: watch: to a service)".into(),
        ));
    }
    Ok(out)
}

/// What a watched path holds: each entry's kind, size and modification time, by its path
/// relative to the watched path ("" for a watched file itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<String, (bool, u64, i128)>);

impl Snapshot {
    /// Every entry as a change (what `initial_sync` copies).
    pub fn everything(&self) -> Vec<Change> {
        self.0
            .keys()
            .map(|rel| Change {
                rel: rel.clone(),
                removed: false,
            })
            .collect()
    }
}

/// A path that changed under a rule's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub rel: String,
    pub removed: bool,
}

impl Rule {
    /// What the rule's path holds now (ignored entries left out).
    pub fn scan(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.is_dir() => self.walk(&self.path, "", &mut snap),
            Ok(m) => {
                snap.0.insert(String::new(), stamp(&m));
            }
            Err(_) => {}
        }
        snap
    }

    fn walk(&self, dir: &Path, rel: &str, snap: &mut Snapshot) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if self.ignore.excludes(&r) {
                continue;
            }
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            snap.0.insert(r.clone(), stamp(&m));
            if m.is_dir() {
                self.walk(&e.path(), &r, snap);
            }
        }
    }
}

fn stamp(m: &std::fs::Metadata) -> (bool, u64, i128) {
    let t = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    (m.is_dir(), if m.is_dir() { 0 } else { m.len() }, t)
}

/// The entries added, changed or removed from `old` to `new` (a removed directory once, not
/// each entry under it).
pub fn changes(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut out: Vec<Change> = new
        .0
        .iter()
        .filter(|(k, v)| old.0.get(*k) != Some(v) && !(v.0 && old.0.contains_key(*k)))
        .map(|(k, _)| Change {
            rel: k.clone(),
            removed: false,
        })
        .collect();
    let mut removed: Vec<&String> = old.0.keys().filter(|k| !new.0.contains_key(*k)).collect();
    removed.sort();
    let mut gone: Vec<String> = Vec::new();
    for k in removed {
        if gone.iter().any(|g| k.starts_with(&format!("{g}/"))) {
            continue;
        }
        gone.push(k.clone());
    }
    out.extend(gone.into_iter().map(|rel| Change { rel, removed: true }));
    out
}

/// Acts on `changes` seen under `rule`'s path.
pub async fn apply(
    ctx: &Ctx,
    project: &Project,
    rule: &Rule,
    changes: &[Change],
    report: Report<'_>,
) -> Result<(), ComposeError> {
    let svc = &rule.service;
    let fail = |e: anyhow::Error| ComposeError::service(svc, format!("watch: {e:#}"));
    if rule.action == Action::Rebuild {
        report(format!(
            "Rebuilding service {svc} after changes were detected"
        ));
        let mut services = vec![Service::of(project, svc)?];
        super::build::ensure(
            ctx,
            project,
            &mut services,
            Policy::Always,
            &Flags::default(),
            report,
        )
        .await?;
        let opts = UpOptions {
            services: vec![svc.clone()],
            no_deps: true,
            build: Policy::Never,
            ..Default::default()
        };
        super::up::up(ctx, project, &opts, report).await?;
        return Ok(());
    }
    let target = rule.target.clone().unwrap_or_default();
    let in_target = |rel: &str| match rel {
        "" => target.clone(),
        r => format!("{}/{r}", target.trim_end_matches('/')),
    };
    let state = ProjectState::read(ctx, &project.name).await.map_err(fail)?;
    let members: Vec<_> = state
        .selected(std::slice::from_ref(svc), false)
        .into_iter()
        .cloned()
        .collect();
    report(format!(
        "Syncing service {svc} after {} changes were detected",
        changes.len()
    ));
    let tar = sync_tar(&rule.path, changes, &in_target).map_err(|e| fail(e.into()))?;
    let removed: Vec<String> = changes
        .iter()
        .filter(|c| c.removed)
        .map(|c| in_target(&c.rel))
        .collect();
    for m in &members {
        if !m.state(ctx).await.map_err(fail)?.is_running() {
            continue;
        }
        if let Some(tar) = &tar {
            let fs = crate::containers::copy::transfer::ContainerFs::open(ctx, m.id())
                .await
                .map_err(fail)?;
            let data = tar.clone();
            tokio::task::spawn_blocking(move || fs.put_tar(&data, "/", false, false))
                .await
                .map_err(|e| fail(e.into()))?
                .map_err(|e| fail(e.into()))?;
        }
        if !removed.is_empty() {
            let mut cmd = vec!["rm".to_string(), "-rf".into(), "--".into()];
            cmd.extend(removed.iter().cloned());
            let req = ExecRequest {
                cmd,
                tty: false,
                env: Vec::new(),
                user: Some("0".into()),
                working_dir: None,
                privileged: false,
            };
            let output = Arc::new(Mutex::new(LimitedOutput::default()));
            let end = capture::run(
                ctx,
                &m.container,
                &req,
                "watch",
                Some(Duration::from_secs(30)),
                output.clone(),
            )
            .await
            .map_err(fail)?;
            if end != End::Exited(0) {
                let text = output.lock().map(|o| o.text()).unwrap_or_default();
                report(format!(
                    "warning: service {svc}: removing {} in {}: {}",
                    removed.join(" "),
                    m.name,
                    text.trim()
                ));
            }
        }
        if rule.action == Action::SyncRestart {
            crate::containers::ops::stop(ctx, &m.container, None)
                .await
                .map_err(fail)?;
            let c = ctx.find(m.id()).await.map_err(fail)?;
            start::start_background(ctx, &c).await.map_err(fail)?;
            report(format!("Container {}  Restarted", m.name));
        }
        if let Some(req) = &rule.exec {
            let output = Arc::new(Mutex::new(LimitedOutput::default()));
            let end = capture::run(ctx, &m.container, req, "watch", None, output.clone())
                .await
                .map_err(fail)?;
            let text = output.lock().map(|o| o.text()).unwrap_or_default();
            match end {
                End::Exited(0) => {}
                End::Exited(code) => report(format!(
                    "warning: service {svc}: the exec command exited with status {code} in {}: {}",
                    m.name,
                    text.trim()
                )),
                End::TimedOut => report(format!(
                    "warning: service {svc}: the exec command did not end in {}",
                    m.name
                )),
            }
        }
    }
    Ok(())
}

/// The tar that puts the changed (not removed) files of `root` at their place in the
/// container (entries named by `in_target`, without the leading `/`); None when only
/// removals are left.
fn sync_tar(
    root: &Path,
    changes: &[Change],
    in_target: &dyn Fn(&str) -> String,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let mut any = false;
    for c in changes.iter().filter(|c| !c.removed) {
        let src = if c.rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&c.rel)
        };
        let name = in_target(&c.rel);
        let name = name.trim_start_matches('/');
        match std::fs::symlink_metadata(&src) {
            Ok(m) if m.is_dir() => b.append_dir(name, &src)?,
            Ok(_) => b.append_path_with_name(&src, name)?,
            // Gone again since it was seen: the next scan says so.
            Err(_) => continue,
        }
        any = true;
    }
    any.then(|| b.into_inner()).transpose()
}

/// Watches `rules` until the future ends (the caller stops it): each rule's path polled every
/// `every`, a batch of changes acted on once the path has been still for one more poll.
/// `rebuilt` hears of each service recreated by a rebuild (`up --watch` then follows the new
/// containers' output).
pub async fn run(
    ctx: &Ctx,
    project: &Project,
    rules: &[Rule],
    every: Duration,
    report: Report<'_>,
    rebuilt: Option<&tokio::sync::Notify>,
) -> Result<(), ComposeError> {
    let mut seen: Vec<Snapshot> = rules.iter().map(Rule::scan).collect();
    for (rule, snap) in rules.iter().zip(&seen) {
        if !rule.initial_sync {
            continue;
        }
        if let Err(e) = apply(ctx, project, rule, &snap.everything(), report).await {
            report(format!("warning: {e}"));
        }
    }
    let mut pending: Vec<Vec<Change>> = vec![Vec::new(); rules.len()];
    loop {
        tokio::time::sleep(every).await;
        for (i, rule) in rules.iter().enumerate() {
            let now = rule.scan();
            let found = changes(&seen[i], &now);
            seen[i] = now;
            if !found.is_empty() {
                // Still changing: wait for a quiet poll (an editor's save is several writes).
                for c in found {
                    pending[i].retain(|p| p.rel != c.rel);
                    pending[i].push(c);
                }
                continue;
            }
            if pending[i].is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut pending[i]);
            match apply(ctx, project, rule, &batch, report).await {
                Err(e) => report(format!("warning: {e}")),
                Ok(()) if rule.action == Action::Rebuild => {
                    if let Some(n) = rebuilt {
                        n.notify_one();
                    }
                }
                Ok(()) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &Path, ignore: &[&str]) -> Rule {
        let mut p: Vec<String> = DEFAULT_IGNORE.iter().map(|p| p.to_string()).collect();
        p.extend(ignore.iter().map(|s| s.to_string()));
        Rule {
            service: "web".into(),
            action: Action::Sync,
            path: path.to_path_buf(),
            target: Some("/app".into()),
            exec: None,
            initial_sync: false,
            ignore: Ignore::from_patterns(&p).unwrap(),
        }
    }

    #[test]
    fn sync_exec_and_initial_sync_rules_are_read() {
        let p = crate::compose::project::for_tests(
            "services:\n  web:\n    image: x\n    develop:\n      watch:\n        - action: sync+exec\n          path: ./src\n          target: /app\n          initial_sync: true\n          exec:\n            command: reload --now\n            user: root\n        - {action: sync, path: ./s, target: /s}\n",
        );
        let r = rules(&p, &[]).unwrap();
        assert_eq!(r[0].action, Action::SyncExec);
        assert!(r[0].initial_sync && !r[1].initial_sync);
        let exec = r[0].exec.as_ref().unwrap();
        assert_eq!(exec.cmd, ["reload", "--now"]);
        assert_eq!(exec.user.as_deref(), Some("root"));
        assert_eq!(r[1].action, Action::Sync);
        assert!(r[1].exec.is_none());
        for (yaml, what) in [
            ("{action: sync+exec, path: ./s, target: /s}", "needs exec"),
            (
                "{action: sync, path: ./s, target: /s, exec: {command: x}}",
                "only the sync+exec",
            ),
            (
                "{action: sync+exec, path: ./s, target: /s, exec: {cmd: x}}",
                "exec.cmd",
            ),
        ] {
            let p = crate::compose::project::for_tests(&format!(
                "services:\n  web:\n    image: x\n    develop:\n      watch:\n        - {yaml}\n"
            ));
            let e = rules(&p, &[]).unwrap_err().to_string();
            assert!(e.contains(what), "{yaml}: {e}");
        }
        // compose config prints the rule as written.
        let doc = serde_yaml::to_string(&p.document().unwrap()).unwrap();
        assert!(
            doc.contains("action: sync+exec") && doc.contains("initial_sync: true"),
            "{doc}"
        );
        assert!(!doc.contains("x-burrow"), "{doc}");
    }

    #[test]
    fn changes_are_what_was_added_changed_or_removed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub/deep")).unwrap();
        std::fs::write(d.path().join("a.txt"), "1").unwrap();
        std::fs::write(d.path().join("sub/deep/b.txt"), "2").unwrap();
        std::fs::create_dir_all(d.path().join(".git")).unwrap();
        std::fs::write(d.path().join(".git/HEAD"), "x").unwrap();
        std::fs::write(d.path().join("skip.log"), "x").unwrap();
        let r = rule(d.path(), &["*.log"]);
        let before = r.scan();
        assert!(
            !before
                .0
                .keys()
                .any(|k| k.starts_with(".git") || k == "skip.log"),
            "{before:?}"
        );
        std::fs::write(d.path().join("a.txt"), "changed").unwrap();
        std::fs::write(d.path().join("new.txt"), "n").unwrap();
        std::fs::remove_dir_all(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("other.log"), "ignored").unwrap();
        let after = r.scan();
        let mut got = changes(&before, &after);
        got.sort_by(|a, b| a.rel.cmp(&b.rel));
        assert_eq!(
            got,
            [
                Change {
                    rel: "a.txt".into(),
                    removed: false
                },
                Change {
                    rel: "new.txt".into(),
                    removed: false
                },
                Change {
                    rel: "sub".into(),
                    removed: true
                },
            ]
        );
        let tar = sync_tar(d.path(), &got, &|r| format!("/app/{r}"))
            .unwrap()
            .unwrap();
        let mut a = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["app/a.txt", "app/new.txt"]);
    }
}
