//! Test harness shared by the workspace's integration tests: finds the provisioned test machine,
//! runs commands as its unprivileged user, serialises tests that share that user's services, and
//! cleans up what a test started.
//!
//! A machine is provisioned by `tests/provision.sh` (as root), which writes `/etc/burrow-test.env`.
//! Without it, [`TestMachine::get`] prints why and returns `None`, so a plain `cargo test` on a
//! developer's machine still runs the unit tests and skips the integration tests.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where provisioning describes the machine; `BURROW_TEST_ENV` overrides it.
pub const DEFAULT_ENV_FILE: &str = "/etc/burrow-test.env";

/// The provisioned test machine: its unprivileged user, registries and test images.
#[derive(Debug, Clone)]
pub struct TestMachine {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub xdg_runtime_dir: String,
    pub registry: String,
    pub auth_registry: String,
    pub auth_user: String,
    pub auth_password: String,
    pub image_busybox: String,
    pub image_multilayer: String,
    pub image_multiarch: String,
    pub image_tools: String,
    pub image_demo: String,
    pub images_dir: String,
    /// True when this process is the test user itself (no id switch needed).
    pub is_self: bool,
    /// The second test user, who has no subordinate ids: (name, uid, gid, home, runtime dir).
    nosubid: Option<(String, u32, u32, String, String)>,
}

/// Parses `KEY=VALUE` lines (blank lines and `#` comments ignored, optional quotes stripped).
pub fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

impl TestMachine {
    /// Builds the machine description from parsed env-file values and the caller's euid.
    pub fn from_env(env: &HashMap<String, String>, euid: u32) -> Result<TestMachine, String> {
        let get = |k: &str| {
            env.get(k)
                .cloned()
                .ok_or_else(|| format!("{k} is missing from the test env file"))
        };
        let num = |k: &str| -> Result<u32, String> {
            get(k)?.parse().map_err(|_| format!("{k} is not a number"))
        };
        let uid = num("BURROW_TEST_UID")?;
        if euid != 0 && euid != uid {
            return Err(format!(
                "integration tests run as root (they drop to the test user) or as the test user \
                 (uid {uid}); this process has euid {euid}"
            ));
        }
        Ok(TestMachine {
            user: get("BURROW_TEST_USER")?,
            uid,
            gid: num("BURROW_TEST_GID")?,
            home: get("BURROW_TEST_HOME")?,
            xdg_runtime_dir: get("BURROW_TEST_XDG_RUNTIME_DIR")?,
            registry: get("BURROW_TEST_REGISTRY")?,
            auth_registry: get("BURROW_TEST_AUTH_REGISTRY")?,
            auth_user: get("BURROW_TEST_AUTH_USER")?,
            auth_password: get("BURROW_TEST_AUTH_PASSWORD")?,
            image_busybox: get("BURROW_TEST_IMAGE_BUSYBOX")?,
            image_multilayer: get("BURROW_TEST_IMAGE_MULTILAYER")?,
            image_multiarch: get("BURROW_TEST_IMAGE_MULTIARCH")?,
            image_tools: get("BURROW_TEST_IMAGE_TOOLS")?,
            image_demo: get("BURROW_TEST_IMAGE_DEMO")?,
            images_dir: get("BURROW_TEST_IMAGES_DIR")?,
            is_self: euid == uid,
            nosubid: (|| {
                Some((
                    get("BURROW_TEST_NOSUBID_USER").ok()?,
                    num("BURROW_TEST_NOSUBID_UID").ok()?,
                    num("BURROW_TEST_NOSUBID_GID").ok()?,
                    get("BURROW_TEST_NOSUBID_HOME").ok()?,
                    get("BURROW_TEST_NOSUBID_XDG_RUNTIME_DIR").ok()?,
                ))
            })(),
        })
    }

    /// The same machine seen as its second user, who has no subordinate ids (commands then run
    /// as that user); `None`, after printing why the caller is skipped, when this process is
    /// not root or the machine was provisioned without that user.
    pub fn nosubid_user(&self) -> Option<TestMachine> {
        let name = std::thread::current().name().unwrap_or("test").to_string();
        let Some((user, uid, gid, home, rundir)) = self.nosubid.clone() else {
            eprintln!(
                "SKIP: {name}: no BURROW_TEST_NOSUBID_USER in the test env file (provision again)"
            );
            return None;
        };
        if self.is_self || !nix_is_root() {
            eprintln!("SKIP: {name}: needs root to run as {user}");
            return None;
        }
        Some(TestMachine {
            user,
            uid,
            gid,
            home,
            xdg_runtime_dir: rundir,
            nosubid: None,
            ..self.clone()
        })
    }

    /// Why integration tests cannot run here, or `None` when they can.
    pub fn skip_reason() -> Option<String> {
        Self::load().err()
    }

    fn load() -> Result<TestMachine, String> {
        let path = std::env::var("BURROW_TEST_ENV").unwrap_or_else(|_| DEFAULT_ENV_FILE.into());
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!("{path}: {e}; the machine is not provisioned (run `bash tests/provision.sh` as root)")
        })?;
        let euid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(u32::MAX);
        Self::from_env(&parse_env(&text), euid)
    }

    /// The provisioned machine, or `None` after printing why the caller's test is skipped.
    pub fn get() -> Option<TestMachine> {
        match Self::load() {
            Ok(m) => Some(m),
            Err(reason) => {
                let name = std::thread::current().name().unwrap_or("test").to_string();
                eprintln!("SKIP: {name}: {reason}");
                None
            }
        }
    }

    /// A command that runs as the test user with a clean login-like environment and its home
    /// as the working directory.
    pub fn user_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("USER", &self.user)
            .env("LOGNAME", &self.user)
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("XDG_RUNTIME_DIR", &self.xdg_runtime_dir)
            .current_dir(&self.home);
        if !self.is_self {
            // std clears the supplementary groups when root switches uid.
            cmd.uid(self.uid).gid(self.gid);
        }
        cmd
    }

    /// Copies a built binary into a directory every user can execute from (the checkout may
    /// live where the test user cannot traverse) and returns the copy's path.
    pub fn install_bin(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        // One dir per build tree, so checkouts tested side by side never run each other's
        // binaries.
        let tree = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            path.parent().unwrap_or(path).hash(&mut h);
            h.finish() & 0xffff_ffff
        };
        let dir =
            std::env::temp_dir().join(format!("burrow-test-bin-{}-{tree:08x}", self.euid_tag()));
        std::fs::create_dir_all(&dir).expect("create the test bin dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the test bin dir");
        let name = path.file_name().expect("binary path has a file name");
        let dest = dir.join(name);
        let src_meta = std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e} (was it built?)", path.display()));
        // One installer at a time, across threads and test processes: replacing a binary that
        // another test has just started would leave that process without its executable.
        static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _in_process = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
        let _machine_wide = self.exclusive("install-bin");
        let fresh = std::fs::metadata(&dest)
            .map(|d| d.len() == src_meta.len() && d.mtime() >= src_meta.mtime())
            .unwrap_or(false);
        if !fresh {
            // Unique per process and call: tests in one binary run on several threads.
            static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = dir.join(format!(
                ".{}.{}.{seq}",
                name.to_string_lossy(),
                std::process::id()
            ));
            std::fs::copy(path, &tmp).expect("copy the binary");
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                .expect("chmod the binary");
            std::fs::rename(&tmp, &dest).expect("move the binary into place");
        }
        dest
    }

    fn euid_tag(&self) -> String {
        if self.is_self {
            self.uid.to_string()
        } else {
            "root".into()
        }
    }

    /// Holds an exclusive lock shared by every test process on this machine, so tests that
    /// install or use the test user's per-user services run one at a time.
    pub fn exclusive(&self, name: &str) -> ExclusiveGuard {
        let path = std::env::temp_dir().join(format!("burrow-test-{name}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666));
        file.lock()
            .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
        ExclusiveGuard { _file: file }
    }

    /// Runs a command as the test user to completion (with a timeout) and returns its output.
    pub fn run_user(&self, argv: &[&str], timeout: Duration) -> Output {
        let mut cmd = self.user_command(argv[0]);
        cmd.args(&argv[1..]);
        run_with_timeout(&mut cmd, timeout)
    }
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
        == 0
}

/// An exclusive machine-wide lock, released on drop.
#[derive(Debug)]
pub struct ExclusiveGuard {
    _file: File,
}

/// Runs `cmd` with stdout and stderr captured; kills it and panics with what it printed when
/// it runs longer than `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a timeout kills what it started too.
    cmd.process_group(0);
    let what = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for a child") {
            break Some(st);
        }
        if start.elapsed() > timeout {
            kill_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    match status {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{what} ran longer than {}s and was killed\nstdout:\n{}\nstderr:\n{}",
            timeout.as_secs(),
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// Spawns `cmd`, retrying while exec fails with ETXTBSY: a binary just copied by
/// [`TestMachine::install_bin`] can be briefly held open for writing by a process another test
/// thread forked at that moment (the fd lives until that child execs).
pub fn spawn_retrying(cmd: &mut Command) -> std::io::Result<Child> {
    const ETXTBSY: i32 = 26;
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Panics with the command's output unless it exited 0; returns its stdout as text.
pub fn expect_success(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// SIGKILLs a whole process group.
pub fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// Things a test started, undone when the test ends (also when it panics).
#[derive(Debug, Default)]
pub struct Cleanup {
    children: Vec<Child>,
    groups: Vec<u32>,
    dirs: Vec<PathBuf>,
    commands: Vec<Command>,
}

impl Cleanup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `cmd` in its own process group; the whole group is killed on drop.
    pub fn spawn(&mut self, cmd: &mut Command) -> &mut Child {
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        self.groups.push(child.id());
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
    }

    /// Removes `dir` (recursively) on drop.
    pub fn remove_dir(&mut self, dir: impl Into<PathBuf>) {
        self.dirs.push(dir.into());
    }

    /// Runs `cmd` on drop (for example a `systemctl --user stop`), ignoring its result.
    pub fn run_on_drop(&mut self, cmd: Command) {
        self.commands.push(cmd);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for cmd in self.commands.iter_mut().rev() {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = cmd.status();
        }
        for pgid in &self.groups {
            kill_group(*pgid);
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Returns the provisioned machine or skips (returns from) the calling test with a reason.
#[macro_export]
macro_rules! machine_or_skip {
    () => {
        match $crate::TestMachine::get() {
            Some(m) => m,
            None => return,
        }
    };
}

/// Waits until `cond` holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A background HTTP/1.0 server on `ip` (port chosen by the kernel) answering every request
/// with `body`; returns its port.
pub fn http_server(ip: std::net::IpAddr, body: &'static str) -> u16 {
    use std::io::Write as _;
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind the test HTTP server");
    let port = l.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            // The whole request head first: a close with unread bytes would reset the answer.
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                c,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = c.shutdown(std::net::Shutdown::Write);
        }
    });
    port
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# written by provision.sh
BURROW_TEST_USER=burrowtest
BURROW_TEST_UID=1001
BURROW_TEST_GID=1001
BURROW_TEST_HOME=\"/home/burrowtest\"
BURROW_TEST_XDG_RUNTIME_DIR=/run/user/1001
BURROW_TEST_REGISTRY=127.0.0.1:5000
BURROW_TEST_AUTH_REGISTRY=127.0.0.1:5001
BURROW_TEST_AUTH_USER=burrow
BURROW_TEST_AUTH_PASSWORD='pw=with=equals'
BURROW_TEST_IMAGE_BUSYBOX=127.0.0.1:5000/burrow-test/busybox:latest
BURROW_TEST_IMAGE_MULTILAYER=m
BURROW_TEST_IMAGE_MULTIARCH=a
BURROW_TEST_IMAGE_TOOLS=t
BURROW_TEST_IMAGE_DEMO=d
BURROW_TEST_IMAGES_DIR=/var/lib/burrow-test/images
";

    #[test]
    fn parses_env_file_with_quotes_comments_and_equals() {
        let env = parse_env(SAMPLE);
        assert_eq!(env["BURROW_TEST_HOME"], "/home/burrowtest");
        assert_eq!(env["BURROW_TEST_AUTH_PASSWORD"], "pw=with=equals");
        assert!(!env.contains_key("# written by provision.sh"));
    }

    #[test]
    fn root_drops_to_the_user_and_the_user_runs_as_itself() {
        let env = parse_env(SAMPLE);
        let as_root = TestMachine::from_env(&env, 0).unwrap();
        assert!(!as_root.is_self);
        assert_eq!(as_root.uid, 1001);
        let as_user = TestMachine::from_env(&env, 1001).unwrap();
        assert!(as_user.is_self);
    }

    #[test]
    fn other_users_and_incomplete_files_are_refused_with_a_reason() {
        let env = parse_env(SAMPLE);
        let err = TestMachine::from_env(&env, 4242).unwrap_err();
        assert!(err.contains("euid 4242"), "{err}");
        let partial = parse_env("BURROW_TEST_UID=1001\n");
        let err = TestMachine::from_env(&partial, 0).unwrap_err();
        assert!(err.contains("is missing"), "{err}");
    }

    #[test]
    fn timeout_kills_and_reports() {
        let r = std::panic::catch_unwind(|| {
            run_with_timeout(Command::new("sleep").arg("5"), Duration::from_millis(200))
        });
        let msg = r.unwrap_err();
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("ran longer than"), "{msg}");
        let out = run_with_timeout(
            Command::new("sh").args(["-c", "echo hi; exit 3"]),
            Duration::from_secs(5),
        );
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    }
}
