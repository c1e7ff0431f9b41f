//! burrow inside Slurm jobs: the job's own rootless containerd ([`job`]: detected from
//! SLURM_JOB_ID, state on node-local disk, started by the first command of the job on a node
//! and shared by its steps), its end ([`watch`]: everything stopped and deleted once the job is
//! over; containers of a step that was killed stopped, [`steps`]), the job's environment passed into containers ([`env`]), and pyxis's container
//! flags on srun ([`srun`]).

pub mod env;
pub mod job;
pub mod pmi;
pub mod srun;
pub mod steps;
pub mod watch;

pub use job::Job;

/// The user's own config dir when this process runs in a job's environment (whose
/// XDG_CONFIG_HOME is the job's): where the user's CDI specs and certs.d also are.
pub fn user_config_home() -> Option<std::path::PathBuf> {
    std::env::var_os(job::USER_CONFIG_ENV)
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The size of the node's /dev/shm, in a job: a container's /dev/shm defaults to it (not
/// Docker's 64 MiB), so MPI's shared-memory transport has the room it has outside.
pub fn node_shm_bytes() -> Option<i64> {
    Job::current()?;
    let st = nix::sys::statvfs::statvfs("/dev/shm").ok()?;
    i64::try_from(st.blocks() as u64 * st.fragment_size() as u64).ok()
}

/// The network of a container that names none: in a job, the node's own (`host`), so MPI and
/// other multi-node traffic go straight through the node's interfaces.
pub fn default_network() -> Option<&'static str> {
    Job::current().map(|_| "host")
}
