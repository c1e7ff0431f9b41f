//! The Docker API test harness: `burrow system service` started as the test user on its
//! rootless containerd, and the clients (docker CLI, curl, any argv) run against its socket.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::containers_support::*;
use burrow_testsupport::{run_with_timeout, wait_for, Cleanup};

/// Debian's docker client when installed (tests/provision.sh), else the one on PATH.
pub fn docker_bin() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

pub struct Api<'a> {
    pub rl: &'a Rootless,
    pub socket: PathBuf,
    _service: Cleanup,
}

impl Api<'_> {
    /// argv as the test user with DOCKER_HOST on burrow's socket (to run or spawn).
    pub fn command(&self, argv: &[&str]) -> std::process::Command {
        let mut cmd = self.rl.machine.user_command(argv[0]);
        cmd.args(&argv[1..])
            .env("XDG_RUNTIME_DIR", &self.rl.runtime_dir)
            .env("HOME", &self.rl.home)
            .env("DOCKER_CONFIG", self.rl.home.join(".docker"))
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .current_dir(&self.rl.home);
        cmd
    }

    /// Runs argv as the test user with DOCKER_HOST on burrow's socket.
    pub fn run(&self, argv: &[&str]) -> Output {
        run_with_timeout(&mut self.command(argv), Duration::from_secs(120))
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        let mut argv = vec![docker_bin()];
        argv.extend_from_slice(args);
        self.run(&argv)
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// curl on the socket: (status, body).
    pub fn curl(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.curl_with(method, path, body, &[])
    }

    /// curl on the socket with more arguments (headers: `["-H", "Name: value"]`).
    pub fn curl_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        extra: &[&str],
    ) -> (u16, String) {
        let sock = self.socket.display().to_string();
        let url = format!("http://docker{path}");
        let mut argv = vec![
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
            &sock,
            "-X",
            method,
        ];
        if let Some(b) = body {
            argv.extend(["-H", "Content-Type: application/json", "-d", b]);
        }
        argv.extend_from_slice(extra);
        argv.push(&url);
        let out = self.run(&argv);
        let text = stdout(&out);
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Api<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.rl.dir.join("service.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("the service's log (last lines):");
            tail.iter().rev().for_each(|l| eprintln!("{l}"));
        }
    }
}

/// Starts `burrow system service` as the test user on a socket in its runtime dir.
pub fn service(rl: &Rootless) -> Api<'_> {
    let socket = rl.runtime_dir.join("burrow/docker.sock");
    let mut cleanup = Cleanup::new();
    let mut cmd = rl.machine.user_command(&rl.burrow);
    let log = std::fs::File::create(rl.dir.join("service.log")).unwrap();
    cmd.args(["--debug", "system", "service", "--listen"])
        .arg(format!("unix://{}", socket.display()))
        .env("XDG_RUNTIME_DIR", &rl.runtime_dir)
        .env("HOME", &rl.home)
        .stdout(std::process::Stdio::null())
        .stderr(log);
    cleanup.spawn(&mut cmd);
    assert!(
        wait_for(Duration::from_secs(20), || socket.exists()),
        "the service did not create {}",
        socket.display()
    );
    Api {
        rl,
        socket,
        _service: cleanup,
    }
}
