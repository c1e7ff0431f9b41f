//! depends_on: the order of `down` (dependents first, the rest at once), and the
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

/// Runs `f` for each of `services` (in dependency order) once every service among them that
/// depends on it is done, as many at once as that allows: Docker Compose's order for `down`
/// (a service with no dependents goes at once, whatever its level). A failure holds back the
/// services its own depends on; the first failure is returned once the others are done.
pub async fn dependents_first<'a, F, Fut, E>(services: &'a [Service], f: F) -> Result<(), E>
where
    F: Fn(&'a Service) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>> + 'a,
    E: 'a,
{
    use tokio::sync::watch;
    let failures = std::cell::RefCell::new(Vec::new());
    // Per service: whether it was done well (None while under way).
    let outcome: Vec<(&str, watch::Sender<Option<bool>>)> = services
        .iter()
        .map(|s| (s.name.as_str(), watch::channel(None).0))
        .collect();
    let work = services.iter().map(|svc| {
        // What it waits for: the services among `services` that depend on it.
        let dependents: Vec<watch::Receiver<Option<bool>>> = services
            .iter()
            .filter(|d| d.dependencies().iter().any(|x| x.service == svc.name))
            .filter_map(|d| outcome.iter().find(|(n, _)| *n == d.name))
            .map(|(_, tx)| tx.subscribe())
            .collect();
        let done = outcome
            .iter()
            .find(|(n, _)| *n == svc.name)
            .map(|(_, tx)| tx);
        let (work, failures) = (f(svc), &failures);
        async move {
            let mut ok = true;
            for mut rx in dependents {
                ok &= matches!(
                    rx.wait_for(Option::is_some).await.as_deref(),
                    Ok(Some(true))
                );
            }
            if ok {
                if let Err(e) = work.await {
                    failures.borrow_mut().push(e);
                    ok = false;
                }
            }
            if let Some(tx) = done {
                tx.send_replace(Some(ok));
            }
        }
    });
    futures_util::future::join_all(work).await;
    let first = failures.borrow_mut().drain(..).next();
    first.map_or(Ok(()), Err)
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
    fn dependents_go_first_and_the_rest_at_once() {
        let p = for_tests(
            "services:\n  db: {image: x}\n  cache: {image: x}\n  api: {image: x, depends_on: [db]}\n  web: {image: x, depends_on: {api: {condition: service_healthy}, cache: {condition: service_started}}}\n  solo: {image: x}\n",
        );
        let order = p.services_for(&[]).unwrap();
        let services: Vec<Service> = order.iter().map(|n| Service::of(&p, n).unwrap()).collect();
        // Per service, the services done when it began.
        let began = std::cell::RefCell::new(Vec::<(String, Vec<String>)>::new());
        let finished = std::cell::RefCell::new(Vec::<String>::new());
        let run = |fail: Option<&str>| {
            began.borrow_mut().clear();
            finished.borrow_mut().clear();
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(dependents_first(&services, |svc| {
                let (began, finished) = (&began, &finished);
                async move {
                    let mut done = finished.borrow().clone();
                    done.sort();
                    began.borrow_mut().push((svc.name.clone(), done));
                    // Everything ready begins before anything ends.
                    tokio::task::yield_now().await;
                    finished.borrow_mut().push(svc.name.clone());
                    match fail {
                        Some(f) if f == svc.name => Err(svc.name.clone()),
                        _ => Ok(()),
                    }
                }
            }))
        };
        let began_with = |name: &str| {
            let began = began.borrow();
            began
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, d)| d.clone())
        };
        assert_eq!(run(None), Ok(()));
        assert_eq!(began_with("web"), Some(vec![]));
        assert_eq!(began_with("solo"), Some(vec![]), "no dependents: at once");
        assert_eq!(began_with("cache"), Some(vec!["solo".into(), "web".into()]));
        assert_eq!(began_with("api"), Some(vec!["solo".into(), "web".into()]));
        let db = began_with("db").unwrap();
        assert!(db.contains(&"api".to_string()), "db after api: {db:?}");
        // A failure holds back what it depends on, and is returned.
        assert_eq!(run(Some("api")), Err("api".to_string()));
        assert_eq!(began_with("db"), None, "api failed: db left");
        assert!(began_with("cache").is_some());
        // A dependency outside the set (up --no-deps) does not hold a service back.
        let web = vec![Service::of(&p, "web").unwrap()];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let n = std::cell::Cell::new(0);
        rt.block_on(dependents_first(&web, |_| {
            n.set(n.get() + 1);
            async { Ok::<(), ()>(()) }
        }))
        .unwrap();
        assert_eq!(n.get(), 1);
    }
}
