//! Exit codes as Docker gives them: a process's exit status as the CLI's code, and the code of
//! a process that could not be started.

/// The CLI's exit code for a process's exit status (its low 8 bits).
pub fn code(status: u32) -> u8 {
    (status & 0xff) as u8
}

/// Docker's exit code for a process that could not be started: 127 when the command does not
/// exist, 126 when it cannot be executed, else 125.
pub fn start_failure_code(message: &str) -> u8 {
    let m = message.to_ascii_lowercase();
    let exec = m.contains("exec:") || m.contains("starting container process");
    if m.contains("executable file not found") || (exec && m.contains("no such file or directory"))
    {
        127
    } else if exec && (m.contains("permission denied") || m.contains("exec format error")) {
        126
    } else {
        125
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_as_docker() {
        assert_eq!(
            start_failure_code(
                r#"OCI runtime create failed: runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown"#
            ),
            127
        );
        assert_eq!(
            start_failure_code(
                r#"unable to start container process: exec: "/etc": permission denied"#
            ),
            126
        );
        assert_eq!(
            start_failure_code(
                r#"unable to start container process: exec: "/x": stat /x: no such file or directory"#
            ),
            127
        );
        assert_eq!(
            start_failure_code("failed to mount: no such file or directory"),
            125
        );
        assert_eq!(code(256 + 3), 3);
    }
}
