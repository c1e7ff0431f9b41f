//! The job's environment in its containers: a task's SLURM_*, PMI_* and PMIX_* variables
//! (rank, node list, the PMI server's address) reach the container it runs, as pyxis and
//! podman-hpc pass them, so MPI inside finds its peers (PMI_FD as the port of a relay to it,
//! [`super::pmi`]).

/// The prefixes of the variables passed.
const PREFIXES: [&str; 3] = ["SLURM_", "PMI_", "PMIX_"];

/// `KEY=VALUE` of this process's job variables, in job mode ([`super::Job::current`]); none
/// outside a job.
pub fn job_environment() -> Vec<String> {
    if super::Job::current().is_none() {
        return Vec::new();
    }
    let mut vars: Vec<String> = std::env::vars()
        .filter(|(k, _)| PREFIXES.iter().any(|p| k.starts_with(p)))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    vars.sort();
    // PMI_FD is an fd of the task's, which the container does not have: the relay's port.
    super::pmi::rewrite(&mut vars);
    vars
}

/// [`job_environment`] for an exec of a task's (a `burrow srun --container-name` task): with
/// srun's own `PMI_FD` too, which the exec relays ([`super::pmi::relay_exec_env`]).
pub fn task_environment() -> Vec<String> {
    let mut env = job_environment();
    if let Ok(fd) = std::env::var("PMI_FD") {
        env.push(format!("PMI_FD={fd}"));
    }
    env
}

/// `passed` under `explicit`: a variable the request sets itself (`-e`, `environment:`) wins.
pub fn merged(passed: Vec<String>, explicit: &[String]) -> Vec<String> {
    let key = |kv: &str| kv.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = passed
        .into_iter()
        .filter(|p| !explicit.iter().any(|e| key(e) == key(p)))
        .collect();
    out.extend(explicit.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_variables_win() {
        let passed = vec!["SLURM_PROCID=3".into(), "PMI_RANK=3".into()];
        let explicit = vec!["PMI_RANK=0".into(), "A=b".into()];
        assert_eq!(
            merged(passed, &explicit),
            vec!["SLURM_PROCID=3", "PMI_RANK=0", "A=b"]
        );
    }
}
