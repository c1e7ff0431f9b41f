//! `burrow compose` with `build:` end to end as the unprivileged test user on a private
//! rootless containerd: a service built from a Dockerfile in the project (a COPY and a build
//! arg) by `up -d`; a second `up -d` neither rebuilds nor recreates; a changed file and
//! `up -d --build` recreate the service on the new image; a build secret from the project; `compose build` alone (with
//! --build-arg) and `run` on the built image; `pull` skips it; with image: too, `push` and `pull` move it
//! through the registry; `down --rmi local` removes it.

mod containers_support;

use std::path::Path;
use std::time::Duration;

use burrow_testsupport::{wait_for, TestMachine};
use containers_support::*;

const DOCKERFILE: &str = r#"FROM 127.0.0.1:5000/burrow-test/busybox
ARG GREETING=unset
COPY msg.txt /msg.txt
RUN echo "greeting=$GREETING" > /greeting
RUN --mount=type=secret,id=token (test "$(cat /run/secrets/token)" = compose-secret && echo secret=ok || echo secret=missing) > /secret
RUN --mount=type=secret,id=envtoken (echo "envsecret=$(cat /run/secrets/envtoken)") > /envsecret
CMD ["sh", "-c", "cat /msg.txt /greeting /secret /envsecret; exec sleep 600"]
"#;

const COMPOSE: &str = r#"services:
  app:
    build:
      context: .
      args:
        GREETING: from-file
      labels:
        org.example.built: "yes"
      secrets: [token, envtoken]
    stop_grace_period: 1s
secrets:
  token:
    file: ./token.txt
  envtoken:
    environment: BUILD_ENV_TOKEN
"#;

/// Writes `text` to `dir/name`, owned by the test user.
fn write_user_file(rl: &Rootless, dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    for p in [&path, dir] {
        std::os::unix::fs::chown(p, Some(rl.machine.uid), Some(rl.machine.gid)).unwrap();
    }
}

/// `burrow compose -f FILE -p cb ARGS` as the test user, failing the test unless it succeeds;
/// returns (stdout, stderr).
fn compose_ok(rl: &Rootless, file: &Path, args: &[&str]) -> (String, String) {
    let mut argv = vec!["compose", "-f", file.to_str().unwrap(), "-p", "cb"];
    argv.extend_from_slice(args);
    let out = rl.burrow(&argv);
    assert_eq!(
        code(&out),
        0,
        "burrow compose {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    (stdout(&out), stderr(&out))
}

fn burrow_ok(rl: &Rootless, args: &[&str]) -> String {
    let out = rl.burrow(args);
    assert_eq!(code(&out), 0, "burrow {args:?}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// The id of the built image `cb-app`.
fn image_id(rl: &Rootless) -> String {
    burrow_ok(rl, &["image", "inspect", "-f", "{{.Id}}", "cb-app"])
}

/// The id of the service's container.
fn container_id(rl: &Rootless, file: &Path) -> String {
    let (out, _) = compose_ok(rl, file, &["ps", "-q", "app"]);
    let ids: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(ids.len(), 1, "one container: {out}");
    ids[0].to_string()
}

/// Waits until the service's logs contain `want`; returns them.
fn logs_with(rl: &Rootless, file: &Path, want: &str) -> String {
    let mut last = String::new();
    let seen = wait_for(Duration::from_secs(30), || {
        last = compose_ok(rl, file, &["logs", "--no-color", "app"]).0;
        last.contains(want)
    });
    assert!(seen, "logs never showed {want:?}: {last}");
    last
}

#[test]
fn rootless_compose_builds_services() {
    let Some(m) = TestMachine::get() else { return };
    let _lock = m.exclusive("rootless-containerd");
    let Some(rl) = rootless("compose-build") else {
        return;
    };
    let dir = rl.home.join("cb");
    write_user_file(&rl, &dir, "Dockerfile", DOCKERFILE);
    write_user_file(&rl, &dir, "msg.txt", "msg=v1\n");
    write_user_file(&rl, &dir, "compose.yaml", COMPOSE);
    write_user_file(&rl, &dir, "token.txt", "compose-secret\n");
    // A secret of `environment:` whose variable only the project's .env sets.
    write_user_file(&rl, &dir, ".env", "BUILD_ENV_TOKEN=dotenv-secret\n");
    let file = dir.join("compose.yaml");

    // up -d builds the missing image (named PROJECT-SERVICE, labelled) and runs it.
    let (_, err) = compose_ok(&rl, &file, &["up", "-d"]);
    assert!(err.contains("Service app  Built"), "{err}");
    let logs = logs_with(&rl, &file, "greeting=from-file");
    assert!(
        logs.contains("msg=v1")
            && logs.contains("secret=ok")
            && logs.contains("envsecret=dotenv-secret"),
        "{logs}"
    );
    let labels = burrow_ok(
        &rl,
        &[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Labels}}",
            "cb-app",
        ],
    );
    for want in [
        r#""com.docker.compose.project":"cb""#,
        r#""com.docker.compose.service":"app""#,
        r#""org.example.built":"yes""#,
    ] {
        assert!(labels.contains(want), "{want} in {labels}");
    }
    let (image1, container1) = (image_id(&rl), container_id(&rl, &file));

    // A second up -d neither builds nor recreates.
    let (_, err) = compose_ok(&rl, &file, &["up", "-d"]);
    assert!(!err.contains("Building"), "{err}");
    assert_eq!(image_id(&rl), image1, "not rebuilt");
    assert_eq!(container_id(&rl, &file), container1, "not recreated");

    // A changed file and up -d --build: a new image and the service recreated on it.
    write_user_file(&rl, &dir, "msg.txt", "msg=v2\n");
    let (_, err) = compose_ok(&rl, &file, &["up", "-d", "--build"]);
    assert!(err.contains("Recreated"), "{err}");
    let image2 = image_id(&rl);
    assert_ne!(image2, image1, "rebuilt");
    assert_ne!(container_id(&rl, &file), container1, "recreated");
    logs_with(&rl, &file, "msg=v2");

    // compose build alone, with --build-arg over the file's arg; run uses the new image.
    compose_ok(
        &rl,
        &file,
        &[
            "build",
            "--progress",
            "plain",
            "--build-arg",
            "GREETING=from-flag",
            "app",
        ],
    );
    assert_ne!(image_id(&rl), image2, "built again");
    let (out, _) = compose_ok(
        &rl,
        &file,
        &["run", "--rm", "-T", "app", "cat", "/greeting"],
    );
    assert!(out.contains("greeting=from-flag"), "{out}");

    // pull skips a service that is built.
    let (_, err) = compose_ok(&rl, &file, &["pull"]);
    assert!(err.contains("Service app  Skipped"), "{err}");

    // With image: and build:, push sends the built image to its registry and pull fetches
    // it back (the service is not skipped).
    let pushed = format!(
        "127.0.0.1:5000/burrow-compose-push-{}/app:v1",
        std::process::id()
    );
    let named = dir.join("named.yaml");
    write_user_file(
        &rl,
        &dir,
        "named.yaml",
        &format!("services:\n  app:\n    image: {pushed}\n    build: .\n"),
    );
    compose_ok(&rl, &named, &["build", "--progress", "plain"]);
    let (out, _) = compose_ok(&rl, &named, &["push"]);
    assert!(out.contains(&format!("{pushed} Pushed (sha256:")), "{out}");
    burrow_ok(&rl, &["image", "rm", &pushed]);
    let (out, _) = compose_ok(&rl, &named, &["pull"]);
    assert!(out.contains(&format!("{pushed} Pulled")), "{out}");
    burrow_ok(&rl, &["image", "inspect", "-f", "{{.Id}}", &pushed]);
    burrow_ok(&rl, &["image", "rm", &pushed]);

    // additional_contexts: another service's image (built first, whatever the order) as a
    // FROM name and a directory for COPY --from; the build's extra_hosts, shm_size, ulimits.
    write_user_file(
        &rl,
        &dir.join("ctxbase"),
        "Dockerfile",
        "FROM 127.0.0.1:5000/burrow-test/busybox\nRUN echo from-base > /base.txt\n",
    );
    write_user_file(&rl, &dir.join("extra"), "e.txt", "from-extra\n");
    write_user_file(
        &rl,
        &dir.join("ctxapp"),
        "Dockerfile",
        "FROM base\nCOPY --from=extra e.txt /e.txt\nRUN (cat /base.txt /e.txt; grep -c dbhost /etc/hosts; ulimit -n) > /report\nCMD [\"cat\", \"/report\"]\n",
    );
    write_user_file(
        &rl,
        &dir,
        "contexts.yaml",
        "services:\n  capp:\n    build:\n      context: ctxapp\n      additional_contexts:\n        base: service:cbase\n        extra: ./extra\n      extra_hosts: [\"dbhost:10.1.2.3\"]\n      shm_size: 64m\n      ulimits:\n        nofile: {soft: 1100, hard: 2200}\n  cbase:\n    build: ctxbase\n",
    );
    let contexts = dir.join("contexts.yaml");
    let (_, err) = compose_ok(&rl, &contexts, &["build", "--progress", "plain"]);
    let (b, a) = (
        err.find("Service cbase  Built").unwrap_or(usize::MAX),
        err.find("Service capp  Built").unwrap_or(0),
    );
    assert!(b < a, "base is built before app: {err}");
    let (out, _) = compose_ok(&rl, &contexts, &["run", "--rm", "capp"]);
    assert_eq!(out, "from-base\nfrom-extra\n1\n1100\n");
    burrow_ok(&rl, &["image", "rm", "cb-capp", "cb-cbase"]);

    // down --rmi local removes the built image (and the base image stays).
    let (_, err) = compose_ok(&rl, &file, &["down", "--rmi", "local", "-t", "1"]);
    assert!(err.contains("Image cb-app  Removed"), "{err}");
    let gone = rl.burrow(&["image", "inspect", "cb-app"]);
    assert_ne!(code(&gone), 0, "cb-app is removed");
    burrow_ok(
        &rl,
        &[
            "image",
            "inspect",
            "-f",
            "{{.Id}}",
            "127.0.0.1:5000/burrow-test/busybox",
        ],
    );
    assert_eq!(
        burrow_ok(&rl, &["ps", "-aq"]),
        "",
        "down leaves no container"
    );
}
