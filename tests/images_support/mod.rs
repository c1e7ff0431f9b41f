//! Shared by the images integration tests: a private rootful containerd (own socket, root and
//! state under a temp dir, killed and unmounted on drop), running the real `burrow` binary against
//! it, and checking an unpacked snapshot against the test image's expected tree.

#![allow(dead_code)]

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use burrow_testsupport::{expect_success, run_with_timeout, wait_for, Cleanup};

pub const IMAGES_DIR: &str = "/var/lib/burrow-test/images";

pub fn is_root() -> bool {
    nix_like_euid() == 0
}

fn nix_like_euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The provisioned machine's settings (`/etc/burrow-test.env`), if provisioned.
pub fn test_env() -> Option<HashMap<String, String>> {
    let text = std::fs::read_to_string("/etc/burrow-test.env").ok()?;
    Some(burrow_testsupport::parse_env(&text))
}

/// A private containerd for one test.
pub struct Daemon {
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub namespace: String,
    _cleanup: Cleanup,
}

impl Daemon {
    /// Starts containerd as root on a private socket; None (with a printed reason) where this
    /// machine cannot.
    pub fn start(name: &str) -> Option<Daemon> {
        Daemon::start_with(name, None)
    }

    /// Like `start`, with containerd's root on a tmpfs of `size` (e.g. "700k"), to fill a disk.
    pub fn start_small(name: &str, size: &str) -> Option<Daemon> {
        Daemon::start_with(name, Some(size))
    }

    /// Resizes the tmpfs under containerd's root (see `start_small`).
    pub fn resize_root(&self, size: &str) {
        let mut cmd = Command::new("mount");
        cmd.arg("-o")
            .arg(format!("remount,size={size}"))
            .arg(self.dir.join("root"));
        expect_success(
            &run_with_timeout(&mut cmd, Duration::from_secs(30)),
            "remount",
        );
    }

    fn start_with(name: &str, tmpfs: Option<&str>) -> Option<Daemon> {
        if !is_root() || !Path::new("/usr/bin/containerd").exists() {
            eprintln!("SKIP: needs root and containerd (a private rootful containerd is started)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("burrow-img-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("containerd.sock");
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n[grpc]\n  address = \"{s}\"\n\
             [ttrpc]\n  address = \"{s}.ttrpc\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n",
            d = dir.display(),
            s = sock.display()
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let mut cleanup = Cleanup::new();
        cleanup.remove_dir(&dir);
        let mut umount = Command::new("sh");
        umount.arg("-c").arg(format!(
            "grep -o ' {d}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l; true",
            d = dir.display()
        ));
        cleanup.run_on_drop(umount);
        if let Some(size) = tmpfs {
            std::fs::create_dir_all(dir.join("root")).unwrap();
            let mut m = Command::new("mount");
            m.args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size},mode=0700"))
                .arg("tmpfs")
                .arg(dir.join("root"));
            expect_success(
                &run_with_timeout(&mut m, Duration::from_secs(30)),
                "mount tmpfs",
            );
        }
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(dir.join("config.toml"));
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("containerd.log")).unwrap());
        cleanup.spawn(&mut cmd);
        assert!(
            wait_for(Duration::from_secs(30), || sock.exists()),
            "containerd did not create {}",
            sock.display()
        );
        Some(Daemon {
            dir,
            sock,
            namespace: format!("burrow-img-{name}"),
            _cleanup: cleanup,
        })
    }

    /// `burrow --address SOCK -n NS args...` (as root), with a timeout.
    pub fn burrow(&self, args: &[&str]) -> Output {
        self.burrow_env(args, &[])
    }

    /// Like `burrow`, with extra environment variables.
    pub fn burrow_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_burrow"));
        cmd.arg("--address")
            .arg(&self.sock)
            .args(["-n", &self.namespace])
            .args(args)
            .env("HOME", self.dir.join("home"))
            .env_remove("DOCKER_CONFIG")
            .env_remove("BURROW_CONFIG")
            .env_remove("SSL_CERT_FILE")
            .envs(envs.iter().copied());
        run_with_timeout(&mut cmd, Duration::from_secs(300))
    }

    /// Like `burrow`, but panics unless it succeeded; returns stdout.
    pub fn burrow_ok(&self, args: &[&str]) -> String {
        expect_success(&self.burrow(args), &format!("burrow {}", args.join(" ")))
    }

    /// `ctr --address SOCK -n NS args...`; panics unless it succeeded.
    pub fn ctr(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("ctr");
        cmd.arg("-a")
            .arg(&self.sock)
            .args(["-n", &self.namespace])
            .args(args);
        expect_success(
            &run_with_timeout(&mut cmd, Duration::from_secs(120)),
            &format!("ctr {}", args.join(" ")),
        )
    }

    /// Mounts a read-only view of a committed snapshot; unmounted and removed on drop. The view
    /// is made over gRPC with a gc.root label, so containerd's GC cannot take it meanwhile.
    pub fn view(&self, chain_id: &str) -> View {
        view_on(&self.sock, &self.namespace, &self.dir, chain_id)
    }
}

/// A read-only view of a committed snapshot on any containerd, mounted under `dir` (as root);
/// made over gRPC with a gc.root label so containerd's GC cannot take it meanwhile.
pub fn view_on(sock: &Path, namespace: &str, dir: &Path, chain_id: &str) -> View {
    {
        use containerd_client::services::v1::snapshots::{
            snapshots_client::SnapshotsClient, ViewSnapshotRequest,
        };
        let key = format!("view-{}", &chain_id[7..19]);
        let target = dir.join(&key);
        std::fs::create_dir_all(&target).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mounts = rt.block_on(async {
            let ch = containerd_client::connect(sock).await.unwrap();
            let mut req = tonic::Request::new(ViewSnapshotRequest {
                snapshotter: "overlayfs".into(),
                key: key.clone(),
                parent: chain_id.to_owned(),
                labels: [("containerd.io/gc.root".to_owned(), "test".to_owned())].into(),
            });
            req.metadata_mut()
                .insert("containerd-namespace", namespace.parse().unwrap());
            SnapshotsClient::new(ch)
                .view(req)
                .await
                .unwrap_or_else(|e| panic!("snapshot view of {chain_id}: {e}"))
                .into_inner()
                .mounts
        });
        let m = &mounts[0];
        let mut cmd = Command::new("mount");
        cmd.arg("-t")
            .arg(&m.r#type)
            .arg("-o")
            .arg(m.options.join(","))
            .arg(&m.source)
            .arg(&target);
        expect_success(
            &run_with_timeout(&mut cmd, Duration::from_secs(30)),
            "mounting the snapshot view",
        );
        View {
            sock: sock.to_owned(),
            namespace: namespace.to_owned(),
            key,
            target,
        }
    }
}

/// A mounted snapshot view.
pub struct View {
    sock: PathBuf,
    namespace: String,
    key: String,
    pub target: PathBuf,
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.target).status();
        let _ = Command::new("ctr")
            .arg("-a")
            .arg(&self.sock)
            .args(["-n", &self.namespace, "snapshots", "rm", &self.key])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `sha256:<hex>` of bytes.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(data);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A blob of the provisioned OCI layout, parsed.
pub fn layout_blob(digest: &str) -> serde_json::Value {
    let path = format!(
        "{IMAGES_DIR}/layout/blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The manifest digest and top chain id of a tag in the provisioned layout (first platform
/// matching `arch` for an index).
pub fn layout_image(tag: &str, arch: &str) -> (String, String) {
    let index = layout_blob_index();
    let mut desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in the layout"))
        .clone();
    let mut doc = layout_blob(desc["digest"].as_str().unwrap());
    if doc.get("manifests").is_some() {
        desc = doc["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap()
            .clone();
        doc = layout_blob(desc["digest"].as_str().unwrap());
    }
    let config = layout_blob(doc["config"]["digest"].as_str().unwrap());
    let mut chain = String::new();
    for d in config["rootfs"]["diff_ids"].as_array().unwrap() {
        let d = d.as_str().unwrap();
        chain = if chain.is_empty() {
            d.to_owned()
        } else {
            sha256(format!("{chain} {d}").as_bytes())
        };
    }
    (desc["digest"].as_str().unwrap().to_owned(), chain)
}

pub fn layout_blob_index() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(format!("{IMAGES_DIR}/layout/index.json")).unwrap())
        .unwrap()
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// How container ids appear on the host: identity rootful; through the user's maps rootless.
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    /// (host id of container 0, first subordinate id) for uids and gids; None: identity.
    maps: Option<((u32, u32), (u32, u32))>,
}

impl Ids {
    pub fn identity() -> Ids {
        Ids { maps: None }
    }

    pub fn uid(&self, id: u32) -> u32 {
        match self.maps {
            None => id,
            Some(((own, _), _)) if id == 0 => own,
            Some(((_, start), _)) => start + id - 1,
        }
    }

    pub fn gid(&self, id: u32) -> u32 {
        match self.maps {
            None => id,
            Some((_, (own, _))) if id == 0 => own,
            Some((_, (_, start))) => start + id - 1,
        }
    }
}

/// Checks an unpacked multilayer tree against `multilayer-expected.json`, owners through `ids`.
pub fn check_multilayer(root: &Path, ids: &Ids) {
    let exp: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{IMAGES_DIR}/multilayer-expected.json")).unwrap(),
    )
    .unwrap();
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    for p in exp["absent"].as_array().unwrap() {
        let p = p.as_str().unwrap();
        assert!(
            std::fs::symlink_metadata(at(p)).is_err(),
            "{p} should have been removed by a whiteout"
        );
    }
    for (p, want) in exp["files"].as_object().unwrap() {
        let md = std::fs::symlink_metadata(at(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        if let Some(c) = want.get("content") {
            assert_eq!(
                std::fs::read_to_string(at(p)).unwrap(),
                c.as_str().unwrap(),
                "{p} content"
            );
        }
        if let Some(u) = want.get("uid") {
            assert_eq!(md.uid(), ids.uid(u.as_u64().unwrap() as u32), "{p} uid");
        }
        if let Some(g) = want.get("gid") {
            assert_eq!(md.gid(), ids.gid(g.as_u64().unwrap() as u32), "{p} gid");
        }
        if let Some(m) = want.get("mode") {
            let m = u32::from_str_radix(m.as_str().unwrap(), 8).unwrap();
            assert_eq!(md.permissions().mode() & 0o7777, m, "{p} mode");
        }
        if want.get("type").and_then(|t| t.as_str()) == Some("directory") {
            assert!(md.is_dir(), "{p} should be a directory");
        }
        if let Some(other) = want.get("same_inode_as") {
            let o = std::fs::symlink_metadata(at(other.as_str().unwrap())).unwrap();
            assert_eq!(md.ino(), o.ino(), "{p} should be a hard link");
        }
    }
    for (p, target) in exp["symlinks"].as_object().unwrap() {
        assert_eq!(
            std::fs::read_link(at(p)).unwrap_or_else(|e| panic!("{p}: {e}")),
            Path::new(target.as_str().unwrap()),
            "{p} link target"
        );
    }
}

/// A private `docker-registry serve` on a free port (optionally with htpasswd auth), with test
/// images pushed into it by skopeo; stopped on drop.
pub struct TestRegistry {
    pub host: String,
    pub dir: PathBuf,
    config: PathBuf,
    auth: Option<(String, String)>,
    cleanup: Option<Cleanup>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestRegistry {
    /// Starts a registry; None (with a reason) when docker-registry or skopeo are missing.
    pub fn start(dir: &Path, auth: Option<(&str, &str)>) -> Option<TestRegistry> {
        Self::start_with(dir, auth, false)
    }

    /// Starts a registry serving HTTPS with a certificate for 127.0.0.1 from a fresh CA, whose
    /// certificate is `dir/ca.pem`.
    pub fn start_tls(dir: &Path) -> Option<TestRegistry> {
        if !Path::new("/usr/bin/openssl").exists() {
            eprintln!("SKIP: openssl is missing");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let script = "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=burrow test CA' && \
             openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 && \
             printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && \
             openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf";
        let mut sh = Command::new("sh");
        sh.arg("-c").arg(script).current_dir(dir);
        expect_success(
            &run_with_timeout(&mut sh, Duration::from_secs(60)),
            "openssl",
        );
        Self::start_with(dir, None, true)
    }

    fn start_with(dir: &Path, auth: Option<(&str, &str)>, tls: bool) -> Option<TestRegistry> {
        for tool in [
            "/usr/bin/docker-registry",
            "/usr/bin/skopeo",
            "/usr/bin/htpasswd",
        ] {
            if !Path::new(tool).exists() {
                eprintln!(
                    "SKIP: {tool} is missing (install docker-registry, skopeo, apache2-utils)"
                );
                return None;
            }
        }
        let port = free_port();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut config = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        if tls {
            config.push_str(&format!(
                "  tls: {{certificate: {}, key: {}}}\n",
                dir.join("srv.pem").display(),
                dir.join("srv.key").display()
            ));
        }
        if let Some((u, p)) = auth {
            let mut h = Command::new("htpasswd");
            h.args(["-Bbn", u, p]);
            let line = expect_success(
                &run_with_timeout(&mut h, Duration::from_secs(30)),
                "htpasswd",
            );
            std::fs::write(dir.join("htpasswd"), line).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd: {{realm: burrow-test, path: {}}}\n",
                dir.join("htpasswd").display()
            ));
        }
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut r = TestRegistry {
            host: format!("127.0.0.1:{port}"),
            dir: dir.to_owned(),
            config: config_path,
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
            cleanup: None,
        };
        r.resume();
        Some(r)
    }

    /// (Re)starts the server process on the same port and storage.
    pub fn resume(&mut self) {
        let mut cleanup = Cleanup::new();
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve")
            .arg(&self.config)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("log")).unwrap());
        cleanup.spawn(&mut cmd);
        let host = self.host.clone();
        assert!(
            wait_for(Duration::from_secs(30), || std::net::TcpStream::connect(
                &host
            )
            .is_ok()),
            "the test registry did not come up on {host}"
        );
        self.cleanup = Some(cleanup);
    }

    /// Stops the server (storage stays).
    pub fn stop(&mut self) {
        self.cleanup = None;
    }

    /// Pushes a tag of the provisioned layout as `repo:latest`.
    pub fn push(&self, tag: &str, repo: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "-q",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
        if let Some((u, p)) = &self.auth {
            cmd.arg("--dest-creds").arg(format!("{u}:{p}"));
        }
        cmd.arg(format!("oci:{IMAGES_DIR}/layout:{tag}"))
            .arg(format!("docker://{}/{repo}:latest", self.host));
        expect_success(
            &run_with_timeout(&mut cmd, Duration::from_secs(120)),
            &format!("skopeo push of {tag}"),
        );
    }
}

/// What a [`Proxy`] does to the bytes coming back from the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Pass,
    /// Cut every connection after this many bytes from upstream.
    CutAfter(u64),
    /// Flip the byte at this offset of every connection's upstream stream.
    CorruptAt(u64),
    /// Pause this many milliseconds after every 16 KiB (a slow link).
    Slow(u64),
}

/// A TCP proxy in front of a registry that counts, cuts or corrupts what the registry sends.
pub struct Proxy {
    pub host: String,
    mode: std::sync::Arc<std::sync::Mutex<ProxyMode>>,
    /// Bytes sent from upstream to clients so far.
    pub bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Bumped to break every open connection (the network path to the registry dies).
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Proxy {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let mode = Arc::new(Mutex::new(ProxyMode::Pass));
        let bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let gen = generation.clone();
        let (m, b, s, up) = (
            mode.clone(),
            bytes.clone(),
            stop.clone(),
            upstream.to_owned(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = std::net::TcpStream::connect(&up) else {
                    continue;
                };
                let mode = *m.lock().unwrap();
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let b = b.clone();
                let gen = gen.clone();
                let born = gen.load(Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut seen: u64 = 0;
                    let mut buf = vec![0u8; 16384];
                    loop {
                        let n = match s_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if gen.load(Ordering::SeqCst) != born {
                            let _ = c_write.shutdown(std::net::Shutdown::Both);
                            let _ = s_read.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                        let chunk = &mut buf[..n];
                        let mut cut = false;
                        let mut len = n;
                        match mode {
                            ProxyMode::CutAfter(limit) if seen + n as u64 > limit => {
                                len = (limit - seen.min(limit)) as usize;
                                cut = true;
                            }
                            ProxyMode::CorruptAt(at) if seen <= at && at < seen + n as u64 => {
                                chunk[(at - seen) as usize] ^= 0xff;
                            }
                            ProxyMode::Slow(ms) => {
                                std::thread::sleep(Duration::from_millis(ms));
                            }
                            _ => {}
                        }
                        if c_write.write_all(&chunk[..len]).is_err() {
                            break;
                        }
                        seen += len as u64;
                        b.fetch_add(len as u64, Ordering::SeqCst);
                        if cut {
                            let _ = c_write.shutdown(std::net::Shutdown::Both);
                            let _ = s_read.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Proxy {
            host,
            mode,
            bytes,
            stop,
            generation,
        }
    }

    /// Breaks every open connection mid-transfer.
    pub fn break_connections(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Applies to connections opened from now on.
    pub fn set_mode(&self, m: ProxyMode) {
        *self.mode.lock().unwrap() = m;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(&self.host);
    }
}

/// A rootless containerd for the test user under Debian's RootlessKit (nerdctl's layout), with
/// a private XDG_RUNTIME_DIR and HOME, so it never touches the user's real one; the CLI runs as
/// the test user against it.
pub struct Rootless {
    pub machine: burrow_testsupport::TestMachine,
    pub dir: PathBuf,
    pub runtime_dir: PathBuf,
    pub home: PathBuf,
    pub sock: PathBuf,
    burrow: PathBuf,
    _lock: burrow_testsupport::ExclusiveGuard,
    _cleanup: Cleanup,
}

impl Rootless {
    pub fn start(name: &str) -> Option<Rootless> {
        let machine = burrow_testsupport::TestMachine::get()?;
        if !is_root() || !Path::new("/usr/bin/rootlesskit").exists() {
            eprintln!("SKIP: needs root (to prepare the test user's dirs) and rootlesskit");
            return None;
        }
        let lock = machine.exclusive("rootless-containerd");
        let dir = PathBuf::from(format!("/tmp/burrow-img-rl-{name}-{}", std::process::id()));
        let runtime_dir = dir.join("rt");
        let home = dir.join("home");
        std::fs::create_dir_all(&runtime_dir).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let config = format!(
            "version = 2\nroot = \"{h}/.local/share/containerd\"\nstate = \"{r}/containerd-state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{r}/containerd/containerd.sock\"\n[ttrpc]\n  address = \"{r}/containerd/containerd.sock.ttrpc\"\n",
            h = home.display(),
            r = runtime_dir.display()
        );
        std::fs::write(home.join("containerd.toml"), config).unwrap();
        let mut chown = Command::new("chown");
        chown
            .arg("-R")
            .arg(format!("{}:{}", machine.uid, machine.gid))
            .arg(&dir);
        expect_success(
            &run_with_timeout(&mut chown, Duration::from_secs(30)),
            "chown",
        );
        std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let burrow = machine.install_bin(env!("CARGO_BIN_EXE_burrow"));
        let mut cleanup = Cleanup::new();
        cleanup.remove_dir(&dir);
        let mut umount = Command::new("sh");
        umount.arg("-c").arg(format!(
            "grep -o ' {d}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l; true",
            d = dir.display()
        ));
        cleanup.run_on_drop(umount);
        let child = format!(
            "mkdir -p {r}/containerd && rm -f /run/containerd && mkdir -p /run/containerd && \
             mount --bind {r}/containerd /run/containerd && exec containerd --config {h}/containerd.toml",
            h = home.display(),
            r = runtime_dir.display()
        );
        let mut cmd = machine.user_command("rootlesskit");
        cmd.env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("HOME", &home)
            .arg(format!(
                "--state-dir={}/containerd-rootless",
                runtime_dir.display()
            ))
            .args([
                "--net=slirp4netns",
                "--mtu=65520",
                "--disable-host-loopback",
                "--copy-up=/etc",
                "--copy-up=/run",
                "--copy-up=/var/lib",
                "--propagation=rslave",
                "sh",
                "-c",
            ])
            .arg(child)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("rootlesskit.log")).unwrap());
        cleanup.spawn(&mut cmd);
        let sock = runtime_dir.join("containerd/containerd.sock");
        assert!(
            wait_for(Duration::from_secs(30), || sock.exists()
                && runtime_dir.join("containerd-rootless/child_pid").exists()),
            "rootless containerd did not start under rootlesskit in {}",
            runtime_dir.display()
        );
        Some(Rootless {
            machine,
            dir,
            runtime_dir,
            home,
            sock,
            burrow,
            _lock: lock,
            _cleanup: cleanup,
        })
    }

    /// Runs burrow as the test user (rootless detection through XDG_RUNTIME_DIR, no --address).
    pub fn burrow(&self, args: &[&str]) -> Output {
        let mut cmd = self.machine.user_command(&self.burrow);
        cmd.args(args)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env("HOME", &self.home)
            .current_dir(&self.home);
        run_with_timeout(&mut cmd, Duration::from_secs(300))
    }

    pub fn burrow_ok(&self, args: &[&str]) -> String {
        expect_success(
            &self.burrow(args),
            &format!("burrow {} (rootless)", args.join(" ")),
        )
    }

    /// Host ids of the container's ids 0.. as the user namespace maps them (uid 0 is the user,
    /// 1.. the first subordinate ids onward).
    pub fn ids(&self) -> Ids {
        let start = |file: &str| -> u32 {
            std::fs::read_to_string(file)
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(u, _)| *u == self.machine.user || *u == self.machine.uid.to_string())
                .and_then(|(_, r)| r.split(':').next().and_then(|s| s.parse().ok()))
                .unwrap_or_else(|| panic!("no {file} entry for the test user"))
        };
        Ids {
            maps: Some((
                (self.machine.uid, start("/etc/subuid")),
                (self.machine.gid, start("/etc/subgid")),
            )),
        }
    }
}

/// Writes an OCI layout at `dir` holding the multilayer image with its first layer uncompressed,
/// its second zstd-compressed (by the zstd tool) and its third gzip as built; tag `mixed`.
pub fn mixed_compression_layout(dir: &Path) {
    use std::io::Read;
    let (manifest_digest, _) = layout_image("multilayer", host_arch());
    let mut manifest = layout_blob(&manifest_digest);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (String, usize) {
        let d = sha256(data);
        std::fs::write(blobs.join(&d[7..]), data).unwrap();
        (d, data.len())
    };
    let src = |digest: &str| {
        std::fs::read(format!(
            "{IMAGES_DIR}/layout/blobs/sha256/{}",
            digest.trim_start_matches("sha256:")
        ))
        .unwrap()
    };
    let layers = manifest["layers"].as_array_mut().unwrap();
    for (i, layer) in layers.iter_mut().enumerate() {
        let gz = src(layer["digest"].as_str().unwrap());
        let (data, media) = match i {
            0 => {
                let mut raw = Vec::new();
                flate2::read::GzDecoder::new(&gz[..])
                    .read_to_end(&mut raw)
                    .unwrap();
                (raw, "application/vnd.oci.image.layer.v1.tar")
            }
            1 => {
                let mut raw = Vec::new();
                flate2::read::GzDecoder::new(&gz[..])
                    .read_to_end(&mut raw)
                    .unwrap();
                let tmp = dir.join("layer.tar");
                std::fs::write(&tmp, &raw).unwrap();
                let mut z = Command::new("zstd");
                z.arg("-q")
                    .arg("-f")
                    .arg(&tmp)
                    .arg("-o")
                    .arg(dir.join("layer.tar.zst"));
                expect_success(&run_with_timeout(&mut z, Duration::from_secs(60)), "zstd");
                let data = std::fs::read(dir.join("layer.tar.zst")).unwrap();
                std::fs::remove_file(&tmp).unwrap();
                std::fs::remove_file(dir.join("layer.tar.zst")).unwrap();
                (data, "application/vnd.oci.image.layer.v1.tar+zstd")
            }
            _ => (gz, "application/vnd.oci.image.layer.v1.tar+gzip"),
        };
        let (d, size) = put(&data);
        layer["digest"] = d.into();
        layer["size"] = size.into();
        layer["mediaType"] = media.into();
    }
    let config = src(manifest["config"]["digest"].as_str().unwrap());
    put(&config);
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    let (md, msize) = put(&mbytes);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": msize,
            "annotations": {"org.opencontainers.image.ref.name": "mixed"}
        }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

impl TestRegistry {
    /// Pushes an OCI layout's tag as `repo:latest`, digests preserved.
    pub fn push_layout(&self, layout: &Path, tag: &str, repo: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "-q",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{}/{repo}:latest", self.host));
        expect_success(
            &run_with_timeout(&mut cmd, Duration::from_secs(120)),
            "skopeo push of a layout",
        );
    }
}

/// One file of an unpacked tree, as compared between unpackers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// sha256 for files, target for symlinks, device numbers for devices.
    pub data: String,
    /// For the second and later names of a hard-linked file: the first name.
    pub link_of: Option<String>,
}

/// Walks `root` (without following symlinks) into path → entry.
pub fn tree(root: &Path) -> std::collections::BTreeMap<String, TreeEntry> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = std::collections::BTreeMap::new();
    let mut inodes: HashMap<u64, String> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let (kind, data) = if ft.is_dir() {
                stack.push(p.clone());
                ("dir", String::new())
            } else if ft.is_symlink() {
                (
                    "symlink",
                    std::fs::read_link(&p)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                )
            } else if ft.is_file() {
                ("file", sha256(&std::fs::read(&p).unwrap()))
            } else if ft.is_char_device() || ft.is_block_device() {
                ("device", format!("{}", md.rdev()))
            } else {
                ("other", String::new())
            };
            let link_of = if kind == "file" && md.nlink() > 1 {
                match inodes.get(&md.ino()) {
                    Some(first) => Some(first.clone()),
                    None => {
                        inodes.insert(md.ino(), rel.clone());
                        None
                    }
                }
            } else {
                None
            };
            out.insert(
                rel,
                TreeEntry {
                    kind,
                    mode: md.permissions().mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    data,
                    link_of,
                },
            );
        }
    }
    out
}

/// The multilayer image unpacked by umoci (as root) into `dir/bundle/rootfs`; None when umoci
/// is missing.
pub fn umoci_rootfs(dir: &Path, tag: &str) -> Option<PathBuf> {
    if !Path::new("/usr/bin/umoci").exists() {
        eprintln!("SKIP: umoci is missing");
        return None;
    }
    let layout = dir.join("umoci-layout");
    let mut cp = Command::new("cp");
    cp.arg("-a")
        .arg(format!("{IMAGES_DIR}/layout"))
        .arg(&layout);
    expect_success(
        &run_with_timeout(&mut cp, Duration::from_secs(60)),
        "cp layout",
    );
    let bundle = dir.join("umoci-bundle");
    let mut u = Command::new("umoci");
    u.arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle);
    expect_success(
        &run_with_timeout(&mut u, Duration::from_secs(120)),
        "umoci unpack",
    );
    Some(bundle.join("rootfs"))
}

/// Asserts two trees are the same, listing every difference.
pub fn assert_same_tree(ours: &Path, theirs: &Path) {
    assert_same_tree_mapped(ours, theirs, &Ids::identity())
}

/// Like `assert_same_tree`, with `theirs`' owners passed through an id map first.
pub fn assert_same_tree_mapped(ours: &Path, theirs: &Path, ids: &Ids) {
    let a = tree(ours);
    let mut b = tree(theirs);
    for e in b.values_mut() {
        e.uid = ids.uid(e.uid);
        e.gid = ids.gid(e.gid);
    }
    let mut diffs = Vec::new();
    for (p, e) in &a {
        match b.get(p) {
            None => diffs.push(format!("only ours: {p} {e:?}")),
            Some(f) if f != e => diffs.push(format!("{p}: ours {e:?} theirs {f:?}")),
            _ => {}
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        diffs.push(format!("only umoci's: {p}"));
    }
    assert!(
        diffs.is_empty(),
        "unpacked trees differ:\n{}",
        diffs.join("\n")
    );
}
