//! The job-scoped rootless containerd: where a job's state lives on the node, the process
//! environment that points every burrow part there, and starting it once per job and node.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::connection::Globals;
use crate::setup::install::{self, InstallOptions};
use crate::setup::layout::{Layout, NetDriver};
use crate::setup::service;

/// Set in the environment of every process of a job's burrow (the service, containerd, hooks):
/// the job's dir, so nested burrow commands agree on it.
pub const JOB_DIR_ENV: &str = "BURROW_JOB_DIR";
/// The user's own config dir (XDG_CONFIG_HOME or ~/.config) outside the job: CDI specs and
/// registry settings (certs.d) there still count in a job.
pub const USER_CONFIG_ENV: &str = "BURROW_USER_CONFIG_HOME";
/// `off` (or `0`) turns job mode off: burrow inside a job then uses the user's own setup.
pub const SLURM_ENV: &str = "BURROW_SLURM";

/// Why the job's containerd is not there.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job {job}: {} is not a private directory of yours ({why}); remove it or set TMPDIR to a node-local directory of yours", dir.display())]
    NotPrivate {
        job: String,
        dir: PathBuf,
        why: String,
    },
    #[error("job {job}: cannot prepare {}: {source}", dir.display())]
    Dir {
        job: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("job {job}: starting its rootless containerd (state in {}): {source:#}", dir.display())]
    Start {
        job: String,
        dir: PathBuf,
        source: anyhow::Error,
    },
}

/// A Slurm job on this node, as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    /// Node-local, private: the runtime dir, containerd's data, configs and the log.
    pub dir: PathBuf,
}

impl Job {
    /// The job this process runs in, unless job mode is off, the user is root (rootful
    /// containerd serves root), or there is no job.
    pub fn current() -> Option<Job> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let off = var(SLURM_ENV).is_some_and(|v| matches!(v.as_str(), "off" | "0" | "false"));
        let uid = nix::unistd::geteuid().as_raw();
        if off || uid == 0 {
            return None;
        }
        let id = var("SLURM_JOB_ID")?;
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let dir = match var(JOB_DIR_ENV) {
            Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
            _ => Job::default_dir(&id, uid, var("TMPDIR").as_deref()),
        };
        Some(Job { id, dir })
    }

    /// `$TMPDIR/burrow-UID-jobID` (TMPDIR when absolute, else /tmp).
    pub fn default_dir(id: &str, uid: u32, tmpdir: Option<&str>) -> PathBuf {
        let base = tmpdir
            .filter(|t| Path::new(t).is_absolute())
            .unwrap_or("/tmp");
        Path::new(base).join(format!("burrow-{uid}-job{id}"))
    }

    /// The XDG dirs every part of burrow finds its setup by, all under the job's dir.
    pub fn environment(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("XDG_RUNTIME_DIR", self.dir.join("run")),
            ("XDG_CONFIG_HOME", self.dir.join("config")),
            ("XDG_DATA_HOME", self.dir.join("data")),
            ("XDG_STATE_HOME", self.dir.join("state")),
            (JOB_DIR_ENV, self.dir.clone()),
        ]
    }

    /// Makes the job's dir (private) and points this process, and everything it starts, at
    /// it. Called before anything reads the environment or starts a thread.
    pub fn enter(&self) -> Result<(), JobError> {
        self.private_dir()?;
        if std::env::var_os(USER_CONFIG_ENV).is_none() {
            let own = crate::connection::UserEnv::current().config_home;
            if let Some(c) = own.filter(|c| !c.starts_with(&self.dir)) {
                std::env::set_var(USER_CONFIG_ENV, c);
            }
        }
        for (k, v) in self.environment() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&v)
                .map_err(|source| self.dir_error(source))?;
            std::env::set_var(k, v);
        }
        // No login session here: nothing must reach for the user's systemd manager.
        std::env::remove_var("DBUS_SESSION_BUS_ADDRESS");
        Ok(())
    }

    fn dir_error(&self, source: std::io::Error) -> JobError {
        JobError::Dir {
            job: self.id.clone(),
            dir: self.dir.clone(),
            source,
        }
    }

    /// The job's dir exists, is a directory (not a link), is ours and is 0700.
    fn private_dir(&self) -> Result<(), JobError> {
        match std::fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(self.dir_error(e)),
        }
        let m = std::fs::symlink_metadata(&self.dir).map_err(|e| self.dir_error(e))?;
        let uid = nix::unistd::geteuid().as_raw();
        let why = if !m.is_dir() {
            Some("not a directory".to_string())
        } else if m.uid() != uid {
            Some(format!("owned by uid {}", m.uid()))
        } else if m.permissions().mode() & 0o077 != 0 {
            Some(format!("mode {:o}", m.permissions().mode() & 0o777))
        } else {
            None
        };
        match why {
            Some(why) => Err(JobError::NotPrivate {
                job: self.id.clone(),
                dir: self.dir.clone(),
                why,
            }),
            None => Ok(()),
        }
    }

    /// Starts the job's containerd unless it answers already: one command of the job at a
    /// time (an flock of the job's dir), so N tasks starting together start it once. Also
    /// starts the watcher that ends it with the job. `say` hears one line when it starts.
    pub fn ensure_running(&self, g: &Globals, say: &dyn Fn(String)) -> Result<(), JobError> {
        let start_err = |source: anyhow::Error| JobError::Start {
            job: self.id.clone(),
            dir: self.dir.clone(),
            source,
        };
        let layout = Layout::current(g).map_err(|e| start_err(e.into()))?;
        if service::server_version(&layout.socket).is_ok() {
            return Ok(());
        }
        let lock =
            std::fs::File::create(self.dir.join("start.lock")).map_err(|e| self.dir_error(e))?;
        let _held = Flock::lock(lock, FlockArg::LockExclusive)
            .map_err(|(_, errno)| self.dir_error(errno.into()))?;
        if service::server_version(&layout.socket).is_ok() {
            return Ok(());
        }
        say(format!(
            "burrow: job {}: starting its rootless containerd on {} (state in {}; removed when the job ends)",
            self.id,
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            self.dir.display()
        ));
        super::watch::spawn(self).map_err(|e| start_err(e.into()))?;
        super::watch::sweep(self);
        let opts = InstallOptions {
            no_systemd: true,
            force: false,
            launcher: None,
            net: NetDriver::Builtin,
            host_loopback: false,
            // `--network host` (a job's default) is the node's own network, for MPI.
            detach_netns: true,
            bypass: false,
            bypass_binary: None,
            docker_api: false,
            timeout: Duration::from_secs(120),
        };
        install::install(g, &opts, &mut |_| {}).map_err(|e| start_err(e.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_dir_is_node_local_and_per_user_and_job() {
        assert_eq!(
            Job::default_dir("42", 1001, Some("/local/scratch")),
            Path::new("/local/scratch/burrow-1001-job42")
        );
        assert_eq!(
            Job::default_dir("42", 1001, Some("relative")),
            Path::new("/tmp/burrow-1001-job42")
        );
        assert_eq!(
            Job::default_dir("7", 5, None),
            Path::new("/tmp/burrow-5-job7")
        );
    }

    #[test]
    fn environment_points_every_dir_into_the_job() {
        let j = Job {
            id: "9".into(),
            dir: "/tmp/burrow-1-job9".into(),
        };
        let env = j.environment();
        assert!(env.iter().all(|(_, v)| v.starts_with("/tmp/burrow-1-job9")));
        assert!(env.iter().any(|(k, _)| *k == "XDG_RUNTIME_DIR"));
    }
}
