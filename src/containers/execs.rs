//! Exec instances between their create, start and inspect (Docker's API keeps them by id; a
//! long-lived process such as the API's service holds them in memory), and starting an exec's
//! process in containerd, detached or attached in a session (the CLI's `exec` and the API's
//! exec start).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use oci_spec::runtime::Process;

use super::lifecycle::{LifecycleError, Stdio};
use super::Ctx;
use crate::session::{self, Endpoints, Exit, Session, SessionError, Target};

/// One exec instance, as Docker's exec inspect shows it.
#[derive(Debug, Clone)]
pub struct ExecInstance {
    /// Docker's id (64 hex digits).
    pub id: String,
    pub container_id: String,
    /// The process it runs (built by [`super::exec::process`]).
    pub process: Process,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    pub user: String,
    /// `--detach-keys` for its session (None: Docker's default).
    pub detach_keys: Option<String>,
    /// The pty's size to give it once started (Docker's ConsoleSize: height, width).
    pub console_size: Option<(u16, u16)>,
    /// Started (once only).
    pub started: bool,
    pub running: bool,
    pub pid: u32,
    pub exit_code: Option<u32>,
}

impl ExecInstance {
    /// The id of its process in containerd (shorter than Docker's: it names its FIFO dir).
    pub fn process_id(&self) -> String {
        format!("exec-{}", &self.id[..12.min(self.id.len())])
    }

    /// The containerd process of this exec.
    pub fn target(&self, ctx: &Ctx) -> Target {
        Target::exec(ctx.client.clone(), &self.container_id, &self.process_id())
    }
}

/// An exec instance is not there, or not in a state for what is asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExecError {
    #[error("No such exec instance: {0}")]
    NotFound(String),
    #[error("Error: Exec command {0} has already run")]
    AlreadyStarted(String),
}

fn registry() -> &'static Mutex<HashMap<String, ExecInstance>> {
    static REG: OnceLock<Mutex<HashMap<String, ExecInstance>>> = OnceLock::new();
    REG.get_or_init(Mutex::default)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, ExecInstance>> {
    registry().lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps a new instance; returns its id.
pub fn insert(e: ExecInstance) -> String {
    let id = e.id.clone();
    lock().insert(id.clone(), e);
    id
}

/// The instance `id` (a unique prefix works too, as Docker's).
pub fn get(id: &str) -> Result<ExecInstance, ExecError> {
    let all = lock();
    if let Some(e) = all.get(id) {
        return Ok(e.clone());
    }
    let mut found = all
        .values()
        .filter(|e| !id.is_empty() && e.id.starts_with(id));
    match (found.next(), found.next()) {
        (Some(e), None) => Ok(e.clone()),
        _ => Err(ExecError::NotFound(id.to_string())),
    }
}

/// Changes instance `id` with `f`.
pub fn update(id: &str, f: impl FnOnce(&mut ExecInstance)) {
    if let Some(e) = lock().get_mut(id) {
        f(e);
    }
}

/// Marks instance `id` started; an error when it was already.
pub fn claim_start(id: &str) -> Result<ExecInstance, ExecError> {
    let mut all = lock();
    let e = all
        .get_mut(id)
        .ok_or_else(|| ExecError::NotFound(id.to_string()))?;
    if e.started {
        return Err(ExecError::AlreadyStarted(id.to_string()));
    }
    e.started = true;
    Ok(e.clone())
}

/// Forgets the instances of containers that `exists` says are gone.
pub fn forget_gone(exists: impl Fn(&str) -> bool) {
    lock().retain(|_, e| exists(&e.container_id));
}

/// An exec could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
}

/// Starts `process` as exec `target` without stdio (`exec -d`); returns its pid.
pub async fn start_detached(
    ctx: &Ctx,
    target: &Target,
    process: &Process,
) -> Result<u32, LifecycleError> {
    let (id, exec_id) = (target.id(), target.exec_id());
    ctx.client
        .exec(id, exec_id, process, &Stdio::default())
        .await?;
    match ctx.client.start_exec(id, exec_id).await {
        Ok(pid) => Ok(pid),
        Err(e) => {
            let _ = ctx.client.delete_exec(id, exec_id).await;
            Err(e)
        }
    }
}

/// An exec started in a session.
pub struct Attached {
    pub session: Session,
    pub exit: Exit,
    pub pid: u32,
}

/// Starts `process` as exec `target` with its stdio as FIFOs joined to `ends` in a session
/// (attend it with [`Session::attend`]); on failure nothing of it is left.
pub async fn start_attached(
    ctx: &Ctx,
    target: &Target,
    process: &Process,
    opts: session::Options,
    ends: Endpoints,
) -> Result<Attached, StartError> {
    let (id, exec_id) = (target.id(), target.exec_id());
    let fifo_dir = session::fifo::dir(&ctx.store.container_dir(id), exec_id);
    let mut session = Session::fifos(&fifo_dir, opts, ends)?;
    ctx.client
        .exec(id, exec_id, process, &session.stdio())
        .await?;
    // Waiting before the start: a fast exit is not missed.
    let exit = session.watch(target).await;
    match ctx.client.start_exec(id, exec_id).await {
        Ok(pid) => Ok(Attached { session, exit, pid }),
        Err(e) => {
            drop((exit, session));
            let _ = ctx.client.delete_exec(id, exec_id).await;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, container: &str) -> ExecInstance {
        ExecInstance {
            id: id.into(),
            container_id: container.into(),
            process: Process::default(),
            tty: false,
            attach_stdin: false,
            attach_stdout: true,
            attach_stderr: true,
            privileged: false,
            user: String::new(),
            detach_keys: None,
            console_size: None,
            started: false,
            running: false,
            pid: 0,
            exit_code: None,
        }
    }

    #[test]
    fn instances_are_found_by_prefix_and_start_once() {
        insert(instance("aaaa1111", "c-one"));
        insert(instance("aaaa2222", "c-one"));
        insert(instance("bbbb3333", "c-two"));
        assert_eq!(get("bbbb").unwrap().id, "bbbb3333");
        assert_eq!(
            get("aaaa").unwrap_err(),
            ExecError::NotFound("aaaa".into()),
            "an ambiguous prefix finds nothing"
        );
        assert_eq!(get("aaaa1111").unwrap().process_id(), "exec-aaaa1111");
        assert!(claim_start("aaaa1111").is_ok());
        assert_eq!(
            claim_start("aaaa1111").unwrap_err(),
            ExecError::AlreadyStarted("aaaa1111".into())
        );
        update("aaaa1111", |e| e.exit_code = Some(3));
        assert_eq!(get("aaaa1111").unwrap().exit_code, Some(3));
        forget_gone(|c| c != "c-one");
        assert!(get("aaaa1111").is_err());
        assert!(get("bbbb3333").is_ok());
    }
}
