//! `POST /build` through burrow's builder, as the unprivileged test user: Debian's docker CLI
//! (`DOCKER_BUILDKIT=0 docker build`: the classic protocol) builds with a build arg, COPY, RUN
//! and CMD from the local registry's busybox; the image runs; a rebuild is cached (same id); a
//! failing RUN fails `docker build` with its message; the Python SDK's `images.build` returns
//! the image, and builds from a URL; ADD of a URL downloads; docker-compose 1.29 builds a service; BuildKit's session answers 501; a client that
//! leaves mid-RUN leaves nothing behind; a private base image pulls with X-Registry-Config.

mod containers_support;
mod dockerapi_support;

use std::path::Path;
use std::time::Duration;

use burrow_testsupport::{kill_group, wait_for, Cleanup};

use containers_support::*;
use dockerapi_support::*;

/// A context directory in the test user's home with these files.
fn context(rl: &Rootless, name: &str, files: &[(&str, &str)]) -> String {
    let dir = rl.home.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    let _ = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", rl.machine.uid, rl.machine.gid))
        .arg(&dir)
        .status();
    dir.display().to_string()
}

/// The image id `docker inspect` reports.
fn image_id(api: &Api, name: &str) -> String {
    api.docker_ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

#[test]
fn docker_build_and_the_python_sdk_build_through_burrow() {
    let Some(rl) = rootless("dockerapi-build") else {
        return;
    };
    let _lock = rl.machine.exclusive("rootless-containerd");
    let api = service(&rl);
    let busybox = &rl.machine.image_busybox;
    let dockerfile = format!(
        "FROM {busybox}\nARG X\nCOPY greeting.txt /greeting.txt\n\
         RUN echo \"x=$X\" > /x.txt && echo ran-the-step\n\
         CMD [\"sh\", \"-c\", \"cat /greeting.txt /x.txt\"]\n"
    );
    let ctx = context(
        &rl,
        "ctx",
        &[
            ("Dockerfile", &dockerfile),
            ("greeting.txt", "hello from the build\n"),
        ],
    );
    let build = |extra: &[&str]| {
        let mut argv = vec!["env", "DOCKER_BUILDKIT=0", docker_bin(), "build"];
        argv.extend_from_slice(extra);
        api.run(&argv)
    };

    let first = build(&["-t", "built-demo", "--build-arg", "X=1", &ctx]);
    let out = stdout(&first);
    assert!(
        first.status.success(),
        "docker build: {out}\n{}",
        stderr(&first)
    );
    assert!(out.contains("Step 1/3 : FROM"), "{out}");
    assert!(out.contains("Step 3/3 : RUN"), "{out}");
    // The RUN's output is a line of its own (its instruction names it too).
    let ran_step = |out: &str| out.lines().any(|l| l == "ran-the-step");
    assert!(ran_step(&out), "the RUN's output: {out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(
        out.contains("Successfully tagged built-demo:latest"),
        "{out}"
    );
    let ran = api.docker_ok(&["run", "--rm", "built-demo"]);
    assert_eq!(ran, "hello from the build\nx=1\n");
    let id = image_id(&api, "built-demo");

    // Unchanged: every step from the cache, the same image.
    let again = build(&["-t", "built-demo", "--build-arg", "X=1", &ctx]);
    let out = stdout(&again);
    assert!(again.status.success(), "{out}\n{}", stderr(&again));
    assert!(out.contains("Using cache"), "{out}");
    assert!(!ran_step(&out), "the RUN ran again: {out}");
    assert_eq!(image_id(&api, "built-demo"), id);

    // Quiet (`-q`, the API's q=1): only the image id, and the answer ends.
    let quiet = build(&["-q", "--build-arg", "X=1", &ctx]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert_eq!(
        stdout(&quiet).trim(),
        id,
        "docker build -q printed more than the id"
    );

    // A Dockerfile from stdin (`-f -`): the CLI sends the context tar without its end blocks.
    // Its base is an image imported under a name that is no normalised reference (ctr's
    // `burrow-import:busybox`), found here as `run` finds it, not pulled from docker.io.
    let imported = image("busybox");
    let piped = api.run(&[
        "sh",
        "-c",
        &format!(
            "printf 'FROM {imported}\\nCOPY greeting.txt /g\\nCMD [\"cat\", \"/g\"]\\n' | DOCKER_BUILDKIT=0 {} build -q -t built-piped -f - {ctx}",
            docker_bin()
        ),
    ]);
    assert!(
        piped.status.success(),
        "docker build -f -: {}",
        stderr(&piped)
    );
    assert_eq!(
        api.docker_ok(&["run", "--rm", "built-piped"]),
        "hello from the build\n"
    );

    // RUN steps' --add-host, --shm-size and --ulimit, as the docker CLI sends them.
    let settings = context(
        &rl,
        "settings",
        &[(
            "Dockerfile",
            &format!(
                "FROM {busybox}\nRUN (grep -c dbhost /etc/hosts; df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2; ulimit -n) > /report\nCMD [\"cat\", \"/report\"]\n"
            ),
        )],
    );
    let built = build(&[
        "-t",
        "built-settings",
        "--add-host",
        "dbhost:10.1.2.3",
        "--shm-size",
        "64m",
        "--ulimit",
        "nofile=1100:2200",
        &settings,
    ]);
    assert!(built.status.success(), "{}", stderr(&built));
    assert_eq!(
        api.docker_ok(&["run", "--rm", "built-settings"]),
        "1\n65536\n1100\n"
    );

    // A failing RUN: docker build exits non-zero and says which step and code.
    let bad = context(
        &rl,
        "bad",
        &[(
            "Dockerfile",
            &format!("FROM {busybox}\nRUN echo about-to-fail && exit 3\n"),
        )],
    );
    let failed = build(&["-t", "built-bad", &bad]);
    let all = format!("{}{}", stdout(&failed), stderr(&failed));
    assert!(!failed.status.success(), "{all}");
    assert!(all.lines().any(|l| l == "about-to-fail"), "{all}");
    assert!(all.contains("non-zero code: 3"), "{all}");
    let leftover = api.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        leftover.trim().is_empty(),
        "step containers left: {leftover}"
    );

    a_build_whose_client_leaves_leaves_nothing_behind(&rl, &api);
    a_private_base_image_pulls_with_the_clients_credentials(&rl, &api);

    // The Python SDK parses the stream for the image.
    let py = format!(
        "import docker\n\
         c = docker.DockerClient(base_url='unix://{sock}', version='auto')\n\
         img, logs = c.images.build(path='{ctx}', tag='built-py:1', buildargs={{'X': '2'}})\n\
         assert 'built-py:1' in img.tags, img.tags\n\
         print(c.containers.run('built-py:1', remove=True).decode(), end='')\n",
        sock = api.socket.display(),
    );
    let out = api.run(&["/usr/bin/python3", "-c", &py]);
    assert_eq!(
        stdout(&out),
        "hello from the build\nx=2\n",
        "the Python SDK (python3-docker): {}",
        stderr(&out)
    );

    // A remote context: the SDK sends a URL as `remote`, and the service fetches it; a text
    // file is the Dockerfile.
    let remote_df = format!("FROM {busybox}\nRUN echo from-a-url > /u\nCMD [\"cat\", \"/u\"]\n");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut c in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{remote_df}",
                remote_df.len()
            );
        }
    });
    let py = format!(
        "import docker\n\
         c = docker.DockerClient(base_url='unix://{sock}', version='auto')\n\
         img, logs = c.images.build(path='http://127.0.0.1:{port}/Dockerfile', tag='built-remote:1')\n\
         print(c.containers.run('built-remote:1', remove=True).decode(), end='')\n",
        sock = api.socket.display(),
    );
    let out = api.run(&["/usr/bin/python3", "-c", &py]);
    assert_eq!(
        stdout(&out),
        "from-a-url\n",
        "a remote context through the Python SDK: {}",
        stderr(&out)
    );
    api.docker_ok(&["rmi", "built-remote:1"]);

    // ADD of a URL through docker build: the service downloads it into the image, named
    // after the URL's path.
    let served = burrow_testsupport::http_server(
        std::net::Ipv4Addr::LOCALHOST.into(),
        "downloaded by the build\n",
    );
    let add_ctx = context(
        &rl,
        "addurl",
        &[(
            "Dockerfile",
            &format!(
                "FROM {busybox}\nADD http://127.0.0.1:{served}/files/note.txt /srv/\nCMD [\"cat\", \"/srv/note.txt\"]\n"
            ),
        )],
    );
    let added = build(&["-t", "built-add", &add_ctx]);
    assert!(
        added.status.success(),
        "docker build with ADD URL: {}\n{}",
        stdout(&added),
        stderr(&added)
    );
    assert_eq!(
        api.docker_ok(&["run", "--rm", "built-add"]),
        "downloaded by the build\n"
    );
    api.docker_ok(&["rmi", "built-add"]);

    // docker-compose 1.29 (Debian's, on python3-docker) builds a service through the same
    // stream: it reads the image id from "Successfully built".
    if Path::new("/usr/bin/docker-compose").exists() {
        let file = rl.home.join("build-compose.yml");
        std::fs::write(
            &file,
            format!("version: \"3.8\"\nservices:\n  web:\n    build:\n      context: {ctx}\n      args: {{X: \"3\"}}\n"),
        )
        .unwrap();
        let file = file.display().to_string();
        let out = api.run(&["docker-compose", "-p", "bb", "-f", &file, "build"]);
        assert!(
            out.status.success(),
            "docker-compose build: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        let ran = api.docker_ok(&["run", "--rm", "bb_web"]);
        assert_eq!(ran, "hello from the build\nx=3\n");
        api.docker_ok(&["rmi", "bb_web"]);
    }

    // BuildKit's session is refused clearly; the cache goes with builder prune.
    let (code, body) = api.curl("POST", "/v1.41/session", None);
    assert_eq!(code, 501, "{body}");
    assert!(body.contains("DOCKER_BUILDKIT=0"), "{body}");
    let (code, body) = api.curl("POST", "/v1.41/build/prune", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("burrow.build/cache:"), "{body}");
    for name in ["built-demo", "built-py:1", "built-piped"] {
        api.docker_ok(&["rmi", name]);
    }
    assert!(Path::new(&ctx).exists());
}

/// `docker build` killed while a RUN runs: the service kills the step's command, removes its
/// container and names nothing, and goes on serving.
fn a_build_whose_client_leaves_leaves_nothing_behind(rl: &Rootless, api: &Api) {
    let ctx = context(
        rl,
        "slow",
        &[(
            "Dockerfile",
            &format!(
                "FROM {}\nRUN echo step-started && sleep 300\n",
                rl.machine.image_busybox
            ),
        )],
    );
    let log = rl.dir.join("slow-build.log");
    let mut cleanup = Cleanup::new();
    let mut cmd = api.command(&[
        "env",
        "DOCKER_BUILDKIT=0",
        docker_bin(),
        "build",
        "-t",
        "built-slow",
        &ctx,
    ]);
    cmd.stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null());
    let pid = cleanup.spawn(&mut cmd).id();
    let started = wait_for(Duration::from_secs(60), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .any(|l| l == "step-started")
    });
    assert!(
        started,
        "the RUN never started: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let running = api.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        running.contains("burrow-build-"),
        "no step container: {running}"
    );
    kill_group(pid);
    let gone = wait_for(Duration::from_secs(60), || {
        api.docker_ok(&["ps", "-a", "--format", "{{.Names}}"])
            .trim()
            .is_empty()
    });
    let log = std::fs::read_to_string(rl.dir.join("service.log")).unwrap_or_default();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("build") || l.contains("connection"))
        .collect();
    assert!(
        gone,
        "the step container stayed: {}\nthe service said:\n{}",
        api.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]),
        said.join("\n")
    );
    let images = api.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("built-slow"), "{images}");
}

/// A base image on the registry with Basic auth: the docker CLI's login stays in its own config
/// and comes with the build as `X-Registry-Config`; the pull uses it.
fn a_private_base_image_pulls_with_the_clients_credentials(rl: &Rootless, api: &Api) {
    let m = &rl.machine;
    let config = format!("DOCKER_CONFIG={}", rl.home.join("client-docker").display());
    let docker = |args: &[&str]| {
        let mut argv = vec!["env", config.as_str(), "DOCKER_BUILDKIT=0", docker_bin()];
        argv.extend_from_slice(args);
        api.run(&argv)
    };
    let private = format!("{}/burrow-test/busybox:latest", m.auth_registry);
    let ctx = context(
        rl,
        "private",
        &[(
            "Dockerfile",
            &format!("FROM {private}\nRUN echo from-private\n"),
        )],
    );
    let anonymous = api.run(&["env", "DOCKER_BUILDKIT=0", docker_bin(), "build", &ctx]);
    assert!(!anonymous.status.success(), "{}", stdout(&anonymous));
    let login = docker(&[
        "login",
        &m.auth_registry,
        "-u",
        &m.auth_user,
        "-p",
        &m.auth_password,
    ]);
    assert!(login.status.success(), "docker login: {}", stderr(&login));
    let built = docker(&["build", "-t", "built-private", &ctx]);
    let out = stdout(&built);
    assert!(built.status.success(), "{out}\n{}", stderr(&built));
    assert!(out.lines().any(|l| l == "from-private"), "{out}");
    api.docker_ok(&["rmi", "built-private"]);
}
