//! The CLI's error boundary: an error with the exit code Docker would give, classified from the
//! library's typed errors (a process the runtime could not start: 126 or 127) and otherwise
//! 125, Docker's code for a failure of the CLI or the daemon.

use burrow::containers::lifecycle::LifecycleError;

/// A failed command and its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub err: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        let err = e.into();
        Failure {
            code: exit_code(&err),
            err,
        }
    }
}

impl Failure {
    /// Says the error on stderr as burrow says errors; the code to exit with.
    pub fn report(self) -> std::process::ExitCode {
        eprintln!("burrow: {:#}", self.err);
        std::process::ExitCode::from(self.code)
    }
}

/// Docker's exit code for `err`: 127 or 126 when the runtime could not start the process
/// (anywhere in the error's chain), else 125.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<LifecycleError>()?.start_failure())
        .map(|f| f.exit_code())
        .unwrap_or(125)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_come_from_typed_errors_through_context() {
        assert_eq!(exit_code(&anyhow::anyhow!("anything")), 125);
        let vol = burrow::containers::volumes::VolumeError::NotFound("v".into());
        assert_eq!(Failure::from(vol).code, 125);
    }

    #[test]
    fn context_keeps_the_cause() {
        let inner: anyhow::Result<()> = Err(anyhow::anyhow!("x"));
        let err = inner.context("outer").unwrap_err();
        assert_eq!(exit_code(&err), 125);
    }
}
