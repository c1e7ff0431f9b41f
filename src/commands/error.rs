//! The CLI's error boundary: an error with the exit code Docker would give, classified from the
//! library's typed errors (a process the runtime could not start: 126 or 127) and otherwise
//! 125, `docker run`'s and `docker create`'s code for a failure of the CLI or the daemon; every
//! other command exits 1 then ([`Failure::outside_run`]), as Docker's and nerdctl's do.

use burrow::containers::lifecycle::start_failure_of;

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
    /// The failure of a command other than `run` and `create`: Docker's CLI exits 1 for any
    /// error of those (125 is run's and create's), keeping 126/127 for a process that could
    /// not start.
    pub fn outside_run(self) -> Failure {
        Failure {
            code: if self.code == 125 { 1 } else { self.code },
            err: self.err,
        }
    }

    /// Says the error on stderr as burrow says errors; the code to exit with.
    pub fn report(self) -> std::process::ExitCode {
        say(&self.err);
        std::process::ExitCode::from(self.code)
    }
}

/// Says `err` on stderr: `burrow: ` and its chain of causes.
pub fn say(err: &anyhow::Error) {
    eprintln!("burrow: {}", text(err));
}

/// An error and its causes on one line, each said once ([`burrow::errors::text`]).
pub fn text(err: &anyhow::Error) -> String {
    burrow::errors::text(err)
}

/// Docker's exit code for `err`: 127 or 126 when the runtime could not start the process
/// (anywhere in the error's chain), else 125.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    start_failure_of(err).map(|f| f.exit_code()).unwrap_or(125)
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
    fn commands_other_than_run_exit_1_but_keep_a_start_failures_code() {
        assert_eq!(
            Failure::from(anyhow::anyhow!("no such container"))
                .outside_run()
                .code,
            1
        );
        let f = Failure {
            code: 127,
            err: anyhow::anyhow!("not found"),
        };
        assert_eq!(f.outside_run().code, 127);
    }

    #[test]
    fn causes_are_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let vol = burrow::containers::volumes::VolumeError::Remove {
            name: "v".into(),
            source: io,
        };
        let err = anyhow::Error::from(vol).context("volume rm");
        assert_eq!(text(&err), "volume rm: removing volume v: No such file");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(text(&plain), "outer: inner");
    }

    #[test]
    fn context_keeps_the_cause() {
        let inner: anyhow::Result<()> = Err(anyhow::anyhow!("x"));
        let err = inner.context("outer").unwrap_err();
        assert_eq!(exit_code(&err), 125);
    }
}
