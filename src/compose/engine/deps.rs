//! depends_on: the services' dependency levels (what may start side by side), and the
//! conditions awaited before a service starts: started, healthy (its healthcheck really
//! passing) or completed successfully (exit 0); a dependency with `required: false` only warns.

use std::time::Duration;

use super::service::{Condition, Dependency, Service};
use super::state::{Member, ProjectState};
use super::up::Report;
use crate::compose::project::Project;
use crate::compose::ComposeError;
use crate::containers::health::{self, HealthStatus};
use crate::containers::record::State;
use crate::containers::{ops, Ctx};

/// How long a dependency may take to become healthy or complete.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(600);

/// `services` (in dependency order) grouped by level: a service's level is one more than its
/// deepest dependency among `services` (none: level 0), so each level needs only earlier ones.
pub fn levels(services: &[Service]) -> Vec<Vec<&Service>> {
    let mut level_of: std::collections::HashMap<&str, usize> = Default::default();
    let mut levels: Vec<Vec<&Service>> = Vec::new();
    for svc in services {
        let level = svc
            .dependencies()
            .iter()
            .filter_map(|d| level_of.get(d.service.as_str()))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        level_of.insert(&svc.name, level);
        if levels.len() <= level {
            levels.resize_with(level + 1, Vec::new);
        }
        levels[level].push(svc);
    }
    levels
}

/// `names` and, transitively, the services that depend on one of them with `restart: true`
/// (which a `compose restart` of that dependency restarts too, as Docker Compose's). No names
/// means every service, returned as no names.
pub fn with_restart_dependents(
    project: &Project,
    names: &[String],
) -> Result<Vec<String>, ComposeError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let all = project.services_for(&[])?;
    let mut out: Vec<String> = names.to_vec();
    loop {
        let mut added = false;
        for name in &all {
            if out.contains(name) {
                continue;
            }
            let svc = Service::of(project, name)?;
            if svc
                .dependencies()
                .iter()
                .any(|d| d.restart && out.contains(&d.service))
            {
                out.push(name.clone());
                added = true;
            }
        }
        if !added {
            return Ok(out);
        }
    }
}

/// Waits for `dep` of `svc` as its condition says; a dependency that is not required only
/// warns when it is missing or fails.
pub async fn await_dependency(
    ctx: &Ctx,
    project: &Project,
    svc: &Service,
    dep: &Dependency,
    report: Report<'_>,
) -> Result<(), ComposeError> {
    match wait_condition(ctx, project, dep, report).await {
        Ok(()) => Ok(()),
        Err(why) if !dep.required => {
            report(format!(
                "warning: service {}: optional dependency {} {why}; starting anyway",
                svc.name, dep.service
            ));
            Ok(())
        }
        Err(why) => Err(ComposeError::Dependency {
            service: svc.name.clone(),
            dependency: dep.service.clone(),
            why,
        }),
    }
}

async fn wait_condition(
    ctx: &Ctx,
    project: &Project,
    dep: &Dependency,
    report: Report<'_>,
) -> Result<(), String> {
    let state = ProjectState::read(ctx, &project.name)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let members: Vec<&Member> = state.of_service(&dep.service).collect();
    if members.is_empty() {
        return Err("has no container (is it in another profile?)".into());
    }
    for m in members {
        match dep.condition {
            Condition::Started => {}
            Condition::Healthy => {
                report(format!("Container {}  Waiting", m.name));
                health::wait_for(ctx, m.id(), HealthStatus::Healthy, DEPENDENCY_TIMEOUT)
                    .await
                    .map_err(|e| format!("did not become healthy: {e}"))?;
                report(format!("Container {}  Healthy", m.name));
            }
            Condition::CompletedSuccessfully => {
                report(format!("Container {}  Waiting", m.name));
                let code = exit_code(ctx, m).await.map_err(|e| format!("{e:#}"))?;
                if code != 0 {
                    return Err(format!("did not complete successfully: exit {code}"));
                }
                report(format!("Container {}  Exited", m.name));
            }
        }
    }
    Ok(())
}

/// The container's exit code, waiting for it to exit.
async fn exit_code(ctx: &Ctx, m: &Member) -> anyhow::Result<u32> {
    match m.state(ctx).await? {
        State::Exited { code, .. } => Ok(code),
        State::Created => anyhow::bail!("container {} was never started", m.name),
        _ => ops::wait(ctx, &m.container).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::project::for_tests;

    #[test]
    fn a_restart_takes_the_dependents_that_ask_for_it() {
        let p = for_tests(
            r#"
services:
  db: {image: busybox}
  app:
    image: busybox
    depends_on: {db: {condition: service_started, restart: true}}
  worker:
    image: busybox
    depends_on: {app: {condition: service_started, restart: true}}
  cron:
    image: busybox
    depends_on: [db]
"#,
        );
        let mut got = with_restart_dependents(&p, &["db".into()]).unwrap();
        got.sort();
        assert_eq!(got, ["app", "db", "worker"]);
        assert!(with_restart_dependents(&p, &[]).unwrap().is_empty());
    }

    #[test]
    fn levels_group_services_whose_dependencies_came_before() {
        let p = for_tests(
            "services:\n  db: {image: x}\n  cache: {image: x}\n  api: {image: x, depends_on: [db]}\n  web: {image: x, depends_on: {api: {condition: service_healthy}, cache: {condition: service_started}}}\n  solo: {image: x}\n",
        );
        let order = p.services_for(&[]).unwrap();
        let services: Vec<Service> = order.iter().map(|n| Service::of(&p, n).unwrap()).collect();
        let names: Vec<Vec<&str>> = levels(&services)
            .iter()
            .map(|l| {
                let mut n: Vec<&str> = l.iter().map(|s| s.name.as_str()).collect();
                n.sort();
                n
            })
            .collect();
        assert_eq!(
            names,
            vec![vec!["cache", "db", "solo"], vec!["api"], vec!["web"]]
        );
        // A dependency outside the set (up --no-deps) does not hold a service back.
        let web = vec![Service::of(&p, "web").unwrap()];
        assert_eq!(levels(&web).len(), 1);
    }
}
