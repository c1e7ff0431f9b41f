//! burrow inside Slurm jobs: the job's own rootless containerd ([`job`]: detected from
//! SLURM_JOB_ID, state on node-local disk, started by the first command of the job on a node
//! and shared by its steps), its end ([`watch`]: everything stopped and deleted once the job is
//! over), and the job's environment passed into containers ([`env`]).

pub mod env;
pub mod job;
pub mod watch;

pub use job::Job;
