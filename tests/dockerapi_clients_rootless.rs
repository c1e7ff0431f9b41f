//! The Docker Engine API's image transfers and the clients built on the API, as the
//! unprivileged test user: `docker login` / pull with X-Registry-Auth / tag + push / pull by
//! digest / save | load / history against the local registries; a pull whose client goes away
//! leaves nothing behind; Debian's docker-compose 1.29 and testcontainers-python (from the venv
//! tests/provision.sh makes) drive burrow unchanged.

mod containers_support;
mod dockerapi_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use burrow_testsupport::{wait_for, Cleanup};
use containers_support::*;
use dockerapi_support::*;

/// The venv tests/provision.sh puts testcontainers-python in.
const VENV_PYTHON: &str = "/opt/burrow-test/venv/bin/python";

fn expect_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

#[test]
fn docker_cli_logs_in_pushes_saves_loads_and_reads_history() {
    let Some(rl) = rootless("dockerapi-images") else {
        return;
    };
    let api = service(&rl);
    let m = &rl.machine;

    // docker login checks with the registry and stores nothing on burrow's side: the client
    // keeps the credentials (in a config of its own here, so only X-Registry-Auth carries them).
    let client_config = rl.home.join("client-docker").display().to_string();
    let docker = |args: &[&str]| {
        let config = format!("DOCKER_CONFIG={client_config}");
        let mut argv = vec!["env", config.as_str(), docker_bin()];
        argv.extend_from_slice(args);
        api.run(&argv)
    };
    let wrong = docker(&["login", &m.auth_registry, "-u", &m.auth_user, "-p", "wrong"]);
    assert!(!wrong.status.success(), "{}", stdout(&wrong));
    assert!(
        stderr(&wrong).contains("refused the credentials"),
        "{}",
        stderr(&wrong)
    );
    let login = docker(&[
        "login",
        &m.auth_registry,
        "-u",
        &m.auth_user,
        "-p",
        &m.auth_password,
    ]);
    assert!(
        expect_ok(&login, "docker login").contains("Login Succeeded"),
        "{}",
        stdout(&login)
    );
    let stored = std::fs::read_to_string(Path::new(&client_config).join("config.json")).unwrap();
    assert!(stored.contains(&m.auth_registry), "{stored}");
    assert!(
        !rl.home.join(".docker/config.json").exists(),
        "the service stored credentials"
    );
    // The pull authenticates with what the client sends; without it the registry refuses.
    let private = format!("{}/burrow-test/busybox:latest", m.auth_registry);
    let refused = api.docker(&["pull", &private]);
    assert!(!refused.status.success(), "{}", stdout(&refused));
    expect_ok(
        &docker(&["pull", &private]),
        "docker pull with X-Registry-Auth",
    );
    // A header that is not base64url JSON is refused, not ignored.
    let (code, text) = api.curl_with(
        "POST",
        &format!("/v1.41/images/create?fromImage={private}"),
        None,
        &["-H", "X-Registry-Auth: !!not-base64!!"],
    );
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("X-Registry-Auth"), "{text}");

    // tag + push to the local registry, then pull back by digest.
    let busybox = image("busybox");
    let repo = format!(
        "{}/burrow-clients-{}/pushed",
        m.registry,
        std::process::id()
    );
    let tagged = format!("{repo}:v1");
    api.docker_ok(&["tag", &busybox, &tagged]);
    let pushed = api.docker_ok(&["push", &tagged]);
    assert!(
        pushed.contains(&format!("The push refers to repository [{repo}]")),
        "{pushed}"
    );
    assert!(pushed.contains("Pushed"), "{pushed}");
    let digest = pushed
        .lines()
        .find_map(|l| l.strip_prefix("v1: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line: {pushed}"))
        .to_string();
    // A second push finds every layer there.
    let again = api.docker_ok(&["push", &tagged]);
    assert!(again.contains("Layer already exists"), "{again}");
    // Pushing to the registry with auth uses the client's credentials too.
    let private_push = format!(
        "{}/burrow-clients-{}/pushed:v1",
        m.auth_registry,
        std::process::id()
    );
    api.docker_ok(&["tag", &busybox, &private_push]);
    let out = docker(&["push", &private_push]);
    assert!(
        expect_ok(&out, "docker push with X-Registry-Auth").contains("v1: digest: "),
        "{}",
        stdout(&out)
    );
    api.docker_ok(&["rmi", &tagged, &private_push]);
    let by_digest = format!("{repo}@{digest}");
    api.docker_ok(&["pull", &by_digest]);
    let id = api.docker_ok(&["inspect", "--format", "{{.Id}}", &busybox]);
    assert_eq!(
        api.docker_ok(&["inspect", "--format", "{{.Id}}", &by_digest]),
        id
    );
    // Leave the registries as they were.
    for (reg, auth) in [(&m.registry, None), (&m.auth_registry, Some(()))] {
        let url = format!(
            "http://{reg}/v2/burrow-clients-{}/pushed/manifests/{digest}",
            std::process::id()
        );
        let user = format!("{}:{}", m.auth_user, m.auth_password);
        let mut argv = vec![
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
        ];
        if auth.is_some() {
            argv.extend(["-u", &user]);
        }
        argv.push(&url);
        assert_eq!(stdout(&api.run(&argv)), "202", "delete {url}");
    }

    // save | load round trip, and history.
    let archive = rl.home.join("saved.tar").display().to_string();
    api.docker_ok(&["save", "-o", &archive, &busybox]);
    api.docker_ok(&["rmi", &busybox, &by_digest]);
    let loaded = api.docker_ok(&["load", "-i", &archive]);
    assert_eq!(
        loaded.trim(),
        format!("Loaded image: {busybox}"),
        "{loaded}"
    );
    assert_eq!(
        api.docker_ok(&["inspect", "--format", "{{.Id}}", &busybox]),
        id
    );
    let (code, body) = api.curl("GET", "/images/get?names=nosuch:1", None);
    assert_eq!(code, 404, "{body}");
    let (code, body) = api.curl("POST", "/images/load", Some("not an archive"));
    assert_eq!(code, 400, "{body}");
    let history = api.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}",
        &busybox,
    ]);
    let first = history.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("{}|", id.trim())), "{history}");
    let (code, body) = api.curl("GET", &format!("/images/{busybox}/history"), None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""Tags":[""#), "{body}");

    // docker search of a registry's catalog (REGISTRY/TERM); Docker Hub is out of reach here,
    // and the answer says so.
    let found = api.docker_ok(&[
        "search",
        "--format",
        "{{.Name}}|{{.StarCount}}|{{.IsOfficial}}",
        "127.0.0.1:5000/burrow-test/busy",
    ]);
    assert_eq!(found, "127.0.0.1:5000/burrow-test/busybox|0|\n");
    let search = api.docker(&["search", "busybox"]);
    assert!(!search.status.success());
    assert!(
        stderr(&search).contains("index.docker.io"),
        "{}",
        stderr(&search)
    );

    rmi_force_spares_a_running_containers_image(&api, &busybox, id.trim());
    a_pull_whose_client_leaves_leaves_nothing_behind(&rl, &api);
}

/// `docker rmi -f`: by ID, a running container's image is a conflict that force cannot pass
/// (Docker's "cannot be forced"); by name, it untags and the image stays for the container.
fn rmi_force_spares_a_running_containers_image(api: &Api, busybox: &str, id: &str) {
    let name = "rmi-running:1";
    api.docker_ok(&["tag", busybox, name]);
    api.docker_ok(&["run", "-d", "--name", "rmi-running", name, "sleep", "300"]);
    let out = api.docker(&["rmi", "-f", id]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("(cannot be forced) - image is being used by running container"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        api.docker_ok(&["inspect", "--format", "{{.Id}}", name])
            .trim(),
        id
    );
    let untagged = api.docker_ok(&["rmi", "-f", name]);
    assert!(
        untagged.contains(&format!("Untagged: {name}")),
        "{untagged}"
    );
    assert!(!untagged.contains("Deleted"), "{untagged}");
    assert_eq!(
        api.docker_ok(&[
            "inspect",
            "--format",
            "{{.State.Running}}|{{.Image}}",
            "rmi-running"
        ]),
        format!("true|{id}\n")
    );
    api.docker_ok(&["rm", "-f", "rmi-running"]);
    assert_eq!(
        api.docker_ok(&["inspect", "--format", "{{.Id}}", busybox])
            .trim(),
        id
    );
}

/// A TCP proxy to `upstream` that sends the answers at about 320 KB/s, so a pull through it
/// lasts long enough to walk away from.
fn slow_proxy(upstream: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 || c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = c_out.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

fn a_pull_whose_client_leaves_leaves_nothing_behind(rl: &Rootless, api: &Api) {
    // The store must lack the image's big layer (the test images are imported at setup).
    api.docker_ok(&["rmi", &image("tools")]);
    let manifest = api.run(&[
        "curl",
        "-s",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!(
            "http://{}/v2/burrow-test/tools/manifests/latest",
            rl.machine.registry
        ),
    ]);
    let manifest: serde_json::Value = serde_json::from_str(&stdout(&manifest)).unwrap();
    let layers = manifest["layers"]
        .as_array()
        .expect("the tools image's layers");
    let big = layers
        .iter()
        .max_by_key(|l| l["size"].as_i64())
        .and_then(|l| l["digest"].as_str())
        .unwrap();
    rl.ctr(&["content", "rm", big]);
    let port = slow_proxy(rl.machine.registry.clone());
    let slow = format!("127.0.0.1:{port}/burrow-test/tools:latest");
    let mut cleanup = Cleanup::new();
    let mut cmd = rl.machine.user_command("curl");
    cmd.args(["-s", "-N", "-X", "POST", "--unix-socket"])
        .arg(&api.socket)
        .arg(format!(
            "http://docker/v1.43/images/create?fromImage={slow}"
        ))
        .env("XDG_RUNTIME_DIR", &rl.runtime_dir)
        .stdout(std::process::Stdio::null());
    let client = cleanup.spawn(&mut cmd);
    let active = || rl.ctr(&["content", "active"]);
    assert!(
        wait_for(Duration::from_secs(30), || active().contains("sha256:")),
        "the pull never got under way: {}",
        active()
    );
    let _ = client.kill();
    let _ = client.wait();
    let leases = || rl.ctr(&["leases", "ls"]);
    assert!(
        wait_for(Duration::from_secs(15), || !active().contains("sha256:")
            && !leases().contains("burrow-pull")),
        "the abandoned pull left: {}\n{}",
        active(),
        leases()
    );
    let images = api.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains(&format!("127.0.0.1:{port}")), "{images}");
    // The service goes on serving, and the same pull, left to finish, works.
    let (code, _) = api.curl("GET", "/_ping", None);
    assert_eq!(code, 200);
    api.docker_ok(&[
        "pull",
        &format!("{}/burrow-test/tools:latest", rl.machine.registry),
    ]);
}

#[test]
fn compose_and_testcontainers_drive_burrow() {
    let Some(rl) = rootless("dockerapi-compose") else {
        return;
    };
    if !Path::new("/usr/bin/docker-compose").exists() || !Path::new(VENV_PYTHON).exists() {
        eprintln!("SKIP: needs docker-compose and {VENV_PYTHON} (run tests/provision.sh)");
        return;
    }
    let api = service(&rl);
    let m = &rl.machine;

    // Two services on a named network, one publishing HTTP and using a named volume, the other
    // reaching it by service name.
    let port = free_port();
    let project = rl.home.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let compose = format!(
        "version: \"3.8\"\n\
         services:\n\
         \x20 web:\n\
         \x20   image: {demo}\n\
         \x20   ports: [\"{port}:80\"]\n\
         \x20   networks: [front]\n\
         \x20   volumes: [\"data:/data\"]\n\
         \x20 client:\n\
         \x20   image: {busybox}\n\
         \x20   command: [\"sh\", \"-c\", \"while sleep 0.5; do wget -q -O /dev/null http://web/ && echo reached-web; done\"]\n\
         \x20   networks: [front]\n\
         \x20   depends_on: [web]\n\
         \x20 reader:\n\
         \x20   image: {busybox}\n\
         \x20   command: [\"sh\", \"-c\", \"ls -d /data; cat /sys/class/net/eth0/address; ls /dev/zz; cat /run/secrets/token; sleep 300\"]\n\
         \x20   networks: [front]\n\
         \x20   volumes_from: [web]\n\
         \x20   devices: [\"/dev/zero:/dev/zz\"]\n\
         \x20   mac_address: 02:42:ac:11:00:42\n\
         \x20   tmpfs: [/run]\n\
         \x20   secrets: [token]\n\
         networks:\n\
         \x20 front:\n\
         \x20   driver_opts: {{com.docker.network.driver.mtu: \"1400\"}}\n\
         \x20   ipam: {{config: [{{subnet: 10.78.0.0/24}}]}}\n\
         volumes:\n\
         \x20 data: {{}}\n\
         secrets:\n\
         \x20 token: {{file: ./token.txt}}\n",
        demo = m.image_demo,
        busybox = m.image_busybox,
    );
    std::fs::write(project.join("docker-compose.yml"), compose).unwrap();
    std::fs::write(project.join("token.txt"), "token-value\n").unwrap();
    let _ = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", m.uid, m.gid))
        .arg(&project)
        .status();
    let file = project.join("docker-compose.yml").display().to_string();
    let dc = |args: &[&str]| {
        let mut argv = vec!["docker-compose", "-p", "bc", "-f", &file];
        argv.extend_from_slice(args);
        api.run(&argv)
    };
    expect_ok(&dc(&["up", "-d"]), "docker-compose up -d");
    let body = http_get(&format!("127.0.0.1:{port}")).expect("the published port answers");
    assert!(body.contains("Hello"), "{body}");
    let ps = expect_ok(&dc(&["ps"]), "docker-compose ps");
    assert!(ps.contains("bc_web_1") && ps.contains("Up"), "{ps}");
    assert!(ps.contains("bc_client_1"), "{ps}");
    assert!(
        wait_for(Duration::from_secs(30), || stdout(&dc(&["logs", "client"]))
            .contains("reached-web")),
        "the client never reached web by name: {:?}\n{:?}\n{}",
        dc(&["logs", "--no-color", "client"]),
        api.docker(&["logs", "bc_client_1"]),
        api.docker_ok(&[
            "inspect",
            "--format",
            "{{json .NetworkSettings.Networks}}",
            "bc_client_1",
            "bc_web_1"
        ])
    );
    // volumes_from, devices and mac_address reach the container (HostConfig.VolumesFrom,
    // Devices, Config.MacAddress); the secret's bind shows over the tmpfs at /run (mounts go
    // parents first, as Docker orders them).
    assert!(
        wait_for(Duration::from_secs(30), || stdout(&dc(&[
            "logs",
            "--no-color",
            "reader"
        ]))
        .contains("token")),
        "{:?}",
        dc(&["logs", "--no-color", "reader"])
    );
    let logs = stdout(&dc(&["logs", "--no-color", "reader"]));
    assert!(
        logs.contains("| /data")
            && logs.contains("| 02:42:ac:11:00:42")
            && logs.contains("| token-value"),
        "{logs}"
    );
    let nets = api.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.lines().any(|l| l == "bc_front"), "{nets}");
    // Commands after `up` reuse the project's network: docker-compose compares its
    // driver_opts and IPAM with the network's inspect and refuses one that differs.
    let ran = expect_ok(
        &dc(&[
            "run",
            "--rm",
            "--no-deps",
            "client",
            "cat",
            "/sys/class/net/eth0/mtu",
        ]),
        "docker-compose run --rm after up",
    );
    assert_eq!(ran.trim(), "1400", "{ran}");
    // Without the docker CLI (COMPOSE_INTERACTIVE_NO_CLI) run attaches through dockerpty,
    // one socket per stream the container's inspect says it attaches.
    let mut argv = vec!["env", "COMPOSE_INTERACTIVE_NO_CLI=1", "docker-compose"];
    argv.extend(["-p", "bc", "-f", &file, "run", "--rm", "-T", "--no-deps"]);
    argv.extend(["client", "sh", "-c", "echo no-cli; exit 3"]);
    let nocli = api.run(&argv);
    assert_eq!(
        (nocli.status.code(), stdout(&nocli).trim()),
        (Some(3), "no-cli"),
        "{nocli:?}"
    );
    let again = dc(&["up", "-d"]);
    expect_ok(&again, "a second docker-compose up -d");
    assert!(
        stderr(&again).contains("bc_web_1 is up-to-date"),
        "{again:?}"
    );
    // Recreating reads the image's (deprecated) ContainerConfig.Volumes.
    let recreated = dc(&["up", "-d", "--force-recreate", "--no-deps", "reader"]);
    expect_ok(&recreated, "docker-compose up --force-recreate");
    assert!(
        stderr(&recreated).contains("Recreating bc_reader_1"),
        "{recreated:?}"
    );
    let vols = api.docker_ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(vols.lines().any(|l| l == "bc_data"), "{vols}");
    // -t 1: sh and httpd as PID 1 ignore SIGTERM; no need to wait 10 s for the SIGKILL.
    expect_ok(&dc(&["down", "-v", "-t", "1"]), "docker-compose down -v");
    assert_eq!(api.docker_ok(&["ps", "-aq"]).trim(), "");
    let nets = api.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("bc_front"), "{nets}");
    let vols = api.docker_ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(!vols.contains("bc_data"), "{vols}");

    // testcontainers-python: a container from the local registry, its log line awaited, stopped.
    let py = format!(
        "import os\n\
         os.environ['TESTCONTAINERS_RYUK_DISABLED'] = 'true'\n\
         from testcontainers.core.container import DockerContainer\n\
         from testcontainers.core.waiting_utils import wait_for_logs\n\
         c = DockerContainer('{busybox}').with_command(['sh', '-c', 'echo tc-ready; sleep 300'])\n\
         with c:\n\
         \x20   wait_for_logs(c, 'tc-ready', timeout=30)\n\
         \x20   print('saw', c.get_wrapped_container().short_id)\n",
        busybox = m.image_busybox
    );
    let out = api.run(&[VENV_PYTHON, "-c", &py]);
    let text = expect_ok(&out, "testcontainers");
    assert!(text.starts_with("saw "), "{text}\n{}", stderr(&out));
    assert_eq!(
        api.docker_ok(&["ps", "-aq"]).trim(),
        "",
        "testcontainers left a container"
    );
}
