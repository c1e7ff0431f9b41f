//! A project's state, read from containerd's labels alone: its containers (by service and
//! number), which `up`, `down`, `ps` and the other commands act on.

use containerd_client::services::v1::Container;

use super::naming;
use crate::containers::record::{self, State};
use crate::containers::Ctx;

/// One container of a project.
#[derive(Debug, Clone)]
pub struct Member {
    pub container: Container,
    pub name: String,
    pub service: String,
    pub number: u32,
    pub oneoff: bool,
}

impl Member {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.container.labels.get(key).map(String::as_str)
    }

    pub fn id(&self) -> &str {
        &self.container.id
    }

    /// The names of the volumes the container mounts.
    pub fn volumes(&self, ctx: &Ctx) -> Vec<String> {
        let dir = ctx.store.container_dir(self.id());
        crate::containers::mounts::MountRecord::read(&dir, None)
            .volume_names()
            .map(str::to_string)
            .collect()
    }

    pub async fn state(&self, ctx: &Ctx) -> anyhow::Result<State> {
        record::state(ctx, &self.container.id).await
    }
}

/// The containers of a project, sorted by service and number.
#[derive(Debug, Clone, Default)]
pub struct ProjectState {
    pub members: Vec<Member>,
}

impl ProjectState {
    /// Reads the containers labelled with project `name`.
    pub async fn read(ctx: &Ctx, name: &str) -> anyhow::Result<ProjectState> {
        let all = ctx.client.list(vec![]).await?;
        let mut members: Vec<Member> = all
            .into_iter()
            .filter(|c| c.labels.get(naming::PROJECT).map(String::as_str) == Some(name))
            .map(member)
            .collect();
        members.sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
        Ok(ProjectState { members })
    }

    /// The service containers (not one-off runs) of `service`.
    pub fn of_service<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Member> + 'a {
        self.members
            .iter()
            .filter(move |m| m.service == service && !m.oneoff)
    }

    /// Members of these services (all when empty), one-off runs left out unless `oneoff`.
    pub fn selected(&self, services: &[String], oneoff: bool) -> Vec<&Member> {
        self.members
            .iter()
            .filter(|m| oneoff || !m.oneoff)
            .filter(|m| services.is_empty() || services.contains(&m.service))
            .collect()
    }
}

fn member(c: Container) -> Member {
    let l = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
    Member {
        name: record::name_of(&c),
        service: l(naming::SERVICE),
        number: l(naming::NUMBER).parse().unwrap_or(0),
        oneoff: l(naming::ONEOFF) == "True",
        container: c,
    }
}

/// Every project there is (from the labels): name, containers' states, config files.
#[derive(Debug, Clone)]
pub struct ProjectSummary {
    pub name: String,
    /// Docker Compose's status: `running(2), exited(1)`.
    pub status: String,
    pub config_files: String,
    pub running: bool,
}

/// The projects of every labelled container.
pub async fn projects(ctx: &Ctx) -> anyhow::Result<Vec<ProjectSummary>> {
    let mut by: std::collections::BTreeMap<String, (Vec<&'static str>, String)> =
        Default::default();
    for c in ctx.client.list(vec![]).await? {
        let Some(p) = c.labels.get(naming::PROJECT) else {
            continue;
        };
        let st = record::state(ctx, &c.id).await?.word();
        let e = by.entry(p.clone()).or_default();
        e.0.push(st);
        e.1 = c
            .labels
            .get(naming::CONFIG_FILES)
            .cloned()
            .unwrap_or_default();
    }
    Ok(by
        .into_iter()
        .map(|(name, (states, config_files))| {
            let mut counts: Vec<(&str, usize)> = Vec::new();
            for s in states {
                match counts.iter_mut().find(|(k, _)| *k == s) {
                    Some(e) => e.1 += 1,
                    None => counts.push((s, 1)),
                }
            }
            counts.sort();
            let status = counts
                .iter()
                .map(|(s, n)| format!("{s}({n})"))
                .collect::<Vec<_>>()
                .join(", ");
            ProjectSummary {
                running: counts.iter().any(|(s, _)| *s == "running"),
                name,
                status,
                config_files,
            }
        })
        .collect())
}
