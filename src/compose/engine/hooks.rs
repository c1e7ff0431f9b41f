//! Lifecycle hooks (`post_start:`, `pre_stop:`): commands run in a service's container as
//! execs right after each start of it and before each stop (`up`, `start`, `restart`, `run`,
//! `stop`, `down`), as Docker Compose runs them; a hook that fails fails the operation (a
//! failed `pre_stop` leaves the container running).

use std::sync::{Arc, Mutex};

use containerd_client::services::v1::Container;
use serde_json::Value;

use super::service::{key_values, scalar, words, Service};
use super::state::Member;
use crate::compose::project::Project;
use crate::compose::ComposeError;
use crate::containers::capture::{self, End};
use crate::containers::exec::ExecRequest;
use crate::containers::health::state::LimitedOutput;
use crate::containers::record::{self, State};
use crate::containers::{ops, Ctx};

/// Extension key holding `post_start:` (the Compose model has no such key).
pub const POST_START: &str = "x-burrow-post-start";
/// Extension key holding `pre_stop:`.
pub const PRE_STOP: &str = "x-burrow-pre-stop";

/// Which hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    PostStart,
    PreStop,
}

impl When {
    fn key(self) -> &'static str {
        match self {
            When::PostStart => POST_START,
            When::PreStop => PRE_STOP,
        }
    }

    /// The key as the Compose file spells it.
    pub fn name(self) -> &'static str {
        match self {
            When::PostStart => "post_start",
            When::PreStop => "pre_stop",
        }
    }
}

/// The service's hooks of one kind, as exec requests; a malformed entry is an error naming it.
pub fn of(svc: &Service, when: When) -> Result<Vec<ExecRequest>, ComposeError> {
    let what = when.name();
    let bad = |m: String| ComposeError::service(&svc.name, m);
    let Some(v) = svc.get(when.key()) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = v else {
        return Err(bad(format!(
            "{what}: give a list of hooks, each with command: (and user:, privileged:, working_dir:, environment:)"
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| request(&svc.name, &format!("{what}[{i}]"), item))
        .collect()
}

/// One command to run in a service's containers, as hooks and `develop.watch`'s `exec` give
/// it (`command`, `user`, `privileged`, `working_dir`, `environment`); `what` names the entry
/// in errors.
pub fn request(service: &str, what: &str, item: &Value) -> Result<ExecRequest, ComposeError> {
    let bad = |m: String| ComposeError::service(service, m);
    let Value::Object(h) = item else {
        return Err(bad(format!(
            "{what}: give a mapping with command: (and user:, privileged:, working_dir:, environment:)"
        )));
    };
    if let Some(k) = h.keys().find(|k| {
        !matches!(
            k.as_str(),
            "command" | "user" | "privileged" | "working_dir" | "environment"
        ) && !k.starts_with("x-")
    }) {
        return Err(bad(format!(
            "{what}.{k}: not a key here (command, user, privileged, working_dir, environment)"
        )));
    }
    let cmd = words(h.get("command")).unwrap_or_default();
    if cmd.is_empty() {
        return Err(bad(format!("{what}: command is required")));
    }
    let env = match h.get("environment") {
        None | Some(Value::Null) => Vec::new(),
        v @ Some(Value::Array(_) | Value::Object(_)) => key_values(v),
        Some(other) => {
            return Err(bad(format!(
                "{what}.environment: {other}: give a mapping or a list of KEY=VALUE"
            )))
        }
    };
    let privileged = match h.get("privileged") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(bad(format!(
                "{what}.privileged: {other}: give true or false"
            )))
        }
    };
    let text = |k: &str| h.get(k).filter(|v| !v.is_null()).map(scalar);
    Ok(ExecRequest {
        cmd,
        tty: false,
        env,
        user: text("user"),
        working_dir: text("working_dir"),
        privileged,
    })
}

/// Runs the service's hooks of one kind in container `c`, one after another; the first that
/// cannot run or exits non-zero is the error (with the end of its output).
pub async fn run(ctx: &Ctx, svc: &Service, c: &Container, when: When) -> Result<(), ComposeError> {
    let what = when.name();
    for req in of(svc, when)? {
        let output = Arc::new(Mutex::new(LimitedOutput::default()));
        let prefix = what.replace('_', "");
        let end = capture::run(ctx, c, &req, &prefix, None, output.clone())
            .await
            .map_err(|e| ComposeError::service(&svc.name, format!("{what} hook: {e:#}")))?;
        let code = match end {
            End::Exited(0) => continue,
            End::Exited(code) => code,
            End::TimedOut => u32::MAX,
        };
        let text = output.lock().map(|o| o.text()).unwrap_or_default();
        let lines: Vec<&str> = text.trim_end().lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        let mut message = format!("{what} hook exited with status {code}");
        if !tail.is_empty() {
            message = format!("{message}: {tail}");
        }
        return Err(ComposeError::service(&svc.name, message));
    }
    Ok(())
}

/// Runs the post_start hooks of the service of `m` (none for a service the project lacks).
pub async fn started(ctx: &Ctx, project: &Project, m: &Member) -> Result<(), ComposeError> {
    match Service::of(project, &m.service) {
        Ok(svc) => {
            let c = ctx.find(m.id()).await?;
            run(ctx, &svc, &c, When::PostStart).await
        }
        Err(_) => Ok(()),
    }
}

/// Runs the post_start hooks of container `id` once its task runs, for a start made elsewhere
/// (an attached `compose run`, whose start attaches the terminal first); nothing when the
/// container ended before it was seen running, or did not start within a minute.
pub async fn when_running(ctx: &Ctx, svc: &Service, id: &str) -> Result<(), ComposeError> {
    if of(svc, When::PostStart)?.is_empty() {
        return Ok(());
    }
    for _ in 0..600 {
        match record::state(ctx, id).await? {
            State::Created => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            State::Running { .. } => {
                let c = ctx.find(id).await?;
                return run(ctx, svc, &c, When::PostStart).await;
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// [`when_running`] on a thread of its own with its own connection, for a caller about to
/// block on an attached start; a hook's failure is said on stderr, as the start goes on.
pub fn spawn_when_running(globals: &crate::connection::Globals, svc: Service, id: String) {
    let globals = globals.clone();
    std::thread::spawn(move || {
        let done = crate::connection::runtime().block_on(async {
            let ctx = Ctx::connect(&globals).await?;
            when_running(&ctx, &svc, &id).await?;
            Ok::<_, anyhow::Error>(())
        });
        if let Err(e) = done {
            eprintln!("burrow: {e:#}");
        }
    });
}

/// Stops a running container of the project: its service's pre_stop hooks first (a failing
/// hook stops nothing), then the stop itself.
pub async fn stop(
    ctx: &Ctx,
    project: &Project,
    m: &Member,
    timeout: Option<u64>,
) -> Result<(), ComposeError> {
    if let Ok(svc) = Service::of(project, &m.service) {
        run(ctx, &svc, &m.container, When::PreStop).await?;
    }
    ops::stop(ctx, &m.container, timeout).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(v: serde_json::Value) -> Service {
        Service {
            name: "web".into(),
            v,
            project: "p".into(),
            image_id: None,
        }
    }

    #[test]
    fn hooks_become_exec_requests() {
        let s = svc(serde_json::json!({
            POST_START: [
                {"command": "sh -c 'echo hi > /x'", "user": "root", "privileged": true,
                 "working_dir": "/tmp", "environment": {"A": "1", "B": null}},
                {"command": ["touch", "/y"], "environment": ["C=3"]}
            ]
        }));
        let hooks = of(&s, When::PostStart).unwrap();
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].cmd, ["sh", "-c", "echo hi > /x"]);
        assert_eq!(hooks[0].user.as_deref(), Some("root"));
        assert!(hooks[0].privileged);
        assert_eq!(hooks[0].working_dir.as_deref(), Some("/tmp"));
        assert_eq!(hooks[0].env, ["A=1", "B"]);
        assert_eq!(hooks[1].cmd, ["touch", "/y"]);
        assert_eq!(hooks[1].env, ["C=3"]);
        assert!(of(&s, When::PreStop).unwrap().is_empty());
    }

    #[test]
    fn malformed_hooks_name_their_entry() {
        for (v, want) in [
            (
                serde_json::json!({PRE_STOP: "echo"}),
                "pre_stop: give a list",
            ),
            (
                serde_json::json!({PRE_STOP: [{"user": "x"}]}),
                "pre_stop[0]: command is required",
            ),
            (
                serde_json::json!({PRE_STOP: [{"command": "x", "cmd": 1}]}),
                "pre_stop[0].cmd: not a key here",
            ),
            (
                serde_json::json!({PRE_STOP: [{"command": "x", "privileged": "yes"}]}),
                "pre_stop[0].privileged",
            ),
        ] {
            let err = of(&svc(v), When::PreStop).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
