//! Exit codes as Docker gives them: a process's exit status as the CLI's code (a process that
//! could not be started: `containers::lifecycle::StartFailure`).

/// The CLI's exit code for a process's exit status (its low 8 bits).
pub fn code(status: u32) -> u8 {
    (status & 0xff) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_as_docker() {
        assert_eq!(code(256 + 3), 3);
    }
}
