//! `burrow compose` end to end as the unprivileged test user on a private rootless containerd:
//! a web + database + cache application (local test images) with a health-gated depends_on
//! that really waits, a named volume that outlives `down`, a network alias resolved from
//! another service, a published port, idempotent `up`, a config change recreating only its
//! service, `ps`/`ls`/`logs`, a one-off `run --rm`, two projects at once, `down -v` removing
//! exactly what `up` made; and Usernetes' docker-compose.yaml shape coming up.

mod containers_support;

use std::path::Path;
use std::time::Duration;

use burrow_testsupport::{run_with_timeout, wait_for};
use containers_support::*;

/// Writes `text` to `path` owned by the test user.
fn write_user_file(rl: &Rootless, path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    for p in [path, path.parent().unwrap()] {
        std::os::unix::fs::chown(p, Some(rl.machine.uid), Some(rl.machine.gid)).unwrap();
    }
}

/// `burrow compose -f FILE -p PROJECT ARGS` as the test user.
fn compose(rl: &Rootless, file: &Path, project: &str, args: &[&str]) -> std::process::Output {
    let mut argv = vec!["compose", "-f", file.to_str().unwrap(), "-p", project];
    argv.extend_from_slice(args);
    rl.burrow(&argv)
}

/// Like [`compose`], failing the test on a non-zero exit; returns stdout.
fn compose_ok(rl: &Rootless, file: &Path, project: &str, args: &[&str]) -> String {
    let out = compose(rl, file, project, args);
    assert_eq!(
        code(&out),
        0,
        "burrow compose {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn burrow_ok(rl: &Rootless, args: &[&str]) -> String {
    let out = rl.burrow(args);
    assert_eq!(code(&out), 0, "burrow {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Sorted lines of output.
fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

/// The app: db becomes healthy only once it wrote its ready file (seconds after start); web
/// (the demo httpd) depends on db being healthy and records its own start after db's line in
/// a shared volume; cache sits on a second network where web has an alias.
fn app_yaml(port: u16, db_mode: &str) -> String {
    let bb = image("busybox");
    let demo = image("demo");
    format!(
        r#"services:
  db:
    image: {bb}
    command: ["sh", "-c", "echo db-starting; sleep 4; echo db-ready >> /shared/order; touch /tmp/ready; echo db-ready; exec sleep 600"]
    stop_grace_period: 1s
    environment:
      DB_MODE: {db_mode}
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      retries: 30
    volumes:
      - dbdata:/var/lib/db
      - shared:/shared
  web:
    image: {demo}
    command: ["sh", "-c", "echo web-start >> /shared/order; mkdir -p /www; echo hello-compose > /www/index.html; exec httpd -f -v -p 80 -h /www"]
    stop_grace_period: 1s
    depends_on:
      db:
        condition: service_healthy
        restart: true
    ports:
      - "127.0.0.1:{port}:80"
    volumes:
      - shared:/shared
    networks:
      default: {{}}
      back:
        aliases: [webalias]
  cache:
    image: {bb}
    command: ["sleep", "600"]
    stop_grace_period: 1s
    environment:
      CACHE_MODE: lru
    networks: [back]
networks:
  back: {{}}
volumes:
  dbdata: {{}}
  shared: {{}}
"#
    )
}

#[test]
fn rootless_compose_application_end_to_end() {
    let Some(rl) = rootless("compose") else {
        return;
    };
    let _lock = rl.machine.exclusive("rootless-containerd");
    let dir = rl.home.join("app");
    let file = dir.join("compose.yaml");
    let port = free_port();
    write_user_file(&rl, &file, &app_yaml(port, "primary"));
    let before = (
        lines(&burrow_ok(&rl, &["ps", "-a", "-q", "--no-trunc"])),
        lines(&burrow_ok(&rl, &["network", "ls", "--format", "{{.Name}}"])),
        lines(&burrow_ok(&rl, &["volume", "ls", "-q"])),
    );

    compose_ok(&rl, &file, "app", &["up", "-d"]);
    // web started only after db was healthy: its line follows db's in the shared volume.
    // (web's shell writes its line just after its start: read until it is there.)
    let order = |rl: &Rootless, lines: usize| {
        let mut text = String::new();
        wait_for(std::time::Duration::from_secs(60), || {
            text = compose_ok(
                rl,
                &file,
                "app",
                &["exec", "-T", "db", "cat", "/shared/order"],
            );
            text.lines().count() >= lines
        });
        text
    };
    assert_eq!(order(&rl, 2), "db-ready\nweb-start\n", "start order");
    // The published port answers.
    let body = http_get(&format!("127.0.0.1:{port}")).expect("web answers on its port");
    assert!(body.contains("hello-compose"), "{body}");
    // web's alias on the back network resolves from cache.
    let via_alias = compose_ok(
        &rl,
        &file,
        "app",
        &["exec", "-T", "cache", "wget", "-qO-", "http://webalias/"],
    );
    assert!(via_alias.contains("hello-compose"), "{via_alias}");

    // ps, labels, networks and volumes are named as Docker Compose names them.
    let ps = compose_ok(
        &rl,
        &file,
        "app",
        &["ps", "--format", "{{.Name}} {{.Service}} {{.State}}"],
    );
    assert_eq!(
        lines(&ps),
        [
            "app-cache-1 cache running",
            "app-db-1 db running",
            "app-web-1 web running"
        ]
    );
    let table = compose_ok(&rl, &file, "app", &["ps"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("(healthy)"), "{table}");
    let labels = burrow_ok(
        &rl,
        &[
            "inspect",
            "app-web-1",
            "--format",
            "{{json .Config.Labels}}",
        ],
    );
    for l in [
        "\"com.docker.compose.project\":\"app\"",
        "\"com.docker.compose.service\":\"web\"",
        "\"com.docker.compose.container-number\":\"1\"",
        "\"com.docker.compose.oneoff\":\"False\"",
        "\"com.docker.compose.depends_on\":\"db:service_healthy:true\"",
        "com.docker.compose.config-hash",
    ] {
        assert!(labels.contains(l), "{l} in {labels}");
    }
    let nets = burrow_ok(&rl, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        nets.contains("app_default") && nets.contains("app_back"),
        "{nets}"
    );
    let vols = burrow_ok(&rl, &["volume", "ls", "-q"]);
    assert!(
        vols.contains("app_dbdata") && vols.contains("app_shared"),
        "{vols}"
    );

    // logs with the service prefix; ls lists the project.
    let logs = compose_ok(&rl, &file, "app", &["logs", "--no-color", "db"]);
    assert!(logs.contains("app-db-1  | db-ready"), "{logs}");
    let bare = compose_ok(&rl, &file, "app", &["logs", "--no-log-prefix", "db"]);
    assert!(bare.lines().any(|l| l.starts_with("db-ready")), "{bare}");
    let ls = compose_ok(&rl, &file, "app", &["ls"]);
    assert!(ls.contains("app") && ls.contains("running(3)"), "{ls}");

    // A second up changes nothing; a config change recreates only that service (web, which
    // depends on db with restart: true, is restarted once the new db is healthy).
    let ids = |rl: &Rootless| {
        let out = compose_ok(
            rl,
            &file,
            "app",
            &["ps", "--format", "{{.Service}} {{.ID}}"],
        );
        lines(&out)
    };
    let first = ids(&rl);
    compose_ok(&rl, &file, "app", &["up", "-d"]);
    assert_eq!(ids(&rl), first, "a second up keeps every container");
    write_user_file(&rl, &file, &app_yaml(port, "replica"));
    compose_ok(&rl, &file, "app", &["up", "-d"]);
    let second = ids(&rl);
    assert_eq!(second.len(), 3);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a == b, !a.starts_with("db "), "{a} / {b}");
    }
    assert_eq!(
        order(&rl, 4),
        "db-ready\nweb-start\ndb-ready\nweb-start\n",
        "restart order"
    );

    // A one-off run, removed after.
    let run = compose_ok(
        &rl,
        &file,
        "app",
        &["run", "--rm", "-T", "cache", "echo", "oneoff-ok"],
    );
    assert!(run.contains("oneoff-ok"), "{run}");
    let all = burrow_ok(&rl, &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!all.contains("-run-"), "{all}");

    // A second project at the same time.
    let other = rl.home.join("other/compose.yaml");
    write_user_file(
        &rl,
        &other,
        &format!(
            "services:\n  solo:\n    image: {}\n    command: [\"sleep\", \"600\"]\n    stop_grace_period: 1s\n",
            image("busybox")
        ),
    );
    compose_ok(&rl, &other, "other", &["up", "-d"]);
    let ls = compose_ok(&rl, &file, "app", &["ls", "--format", "json"]);
    assert!(
        ls.contains("\"Name\":\"app\"") && ls.contains("\"Name\":\"other\""),
        "{ls}"
    );
    compose_ok(&rl, &other, "other", &["down"]);

    // The named volume outlives down (without -v).
    compose_ok(
        &rl,
        &file,
        "app",
        &[
            "exec",
            "-T",
            "db",
            "sh",
            "-c",
            "echo persisted > /var/lib/db/marker",
        ],
    );
    // A container of no project on one of its networks: down takes the project's containers
    // and its other network, and leaves that one, saying why.
    burrow_ok(
        &rl,
        &[
            "run",
            "-d",
            "--name",
            "outsider",
            "--network",
            "app_back",
            &image("busybox"),
            "sleep",
            "600",
        ],
    );
    let out = compose(&rl, &file, "app", &["down"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains("Network app_default  Removed") && said.contains("warning: network app_back"),
        "{said}"
    );
    let nets = burrow_ok(&rl, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        nets.contains("app_back") && !nets.contains("app_default"),
        "{nets}"
    );
    burrow_ok(&rl, &["rm", "-f", "outsider"]);
    burrow_ok(&rl, &["network", "rm", "app_back"]);
    assert_eq!(compose_ok(&rl, &file, "app", &["ps", "-a", "-q"]), "");
    compose_ok(&rl, &file, "app", &["up", "-d"]);
    let marker = compose_ok(
        &rl,
        &file,
        "app",
        &["exec", "-T", "db", "cat", "/var/lib/db/marker"],
    );
    assert_eq!(marker, "persisted\n");

    // down -v leaves exactly what there was before.
    compose_ok(&rl, &file, "app", &["down", "-v"]);
    let after = (
        lines(&burrow_ok(&rl, &["ps", "-a", "-q", "--no-trunc"])),
        lines(&burrow_ok(&rl, &["network", "ls", "--format", "{{.Name}}"])),
        lines(&burrow_ok(&rl, &["volume", "ls", "-q"])),
    );
    assert_eq!(after, before, "down -v removes what up made");
}

/// Usernetes' docker-compose.yaml (rootless-containers/usernetes) with its `build:` replaced
/// by a test image and its `${U7S_...}` variables set in the project's .env, as its Makefile
/// exports them: a privileged node with a fixed address on a custom
/// subnet, 8472/udp published, sysctls, tmpfs mounts, named volumes, restart: always.
#[test]
fn rootless_compose_usernetes_shape_comes_up() {
    let Some(rl) = rootless("compose-u7s") else {
        return;
    };
    let _lock = rl.machine.exclusive("rootless-containerd");
    let dir = rl.home.join("usernetes");
    let file = dir.join("docker-compose.yaml");
    let (etcd, api, kubelet) = (free_port(), free_port(), free_port());
    // The host paths it binds read-only; a machine without them (containers, CI) gets
    // stand-ins, as a bind of a missing source cannot be created rootless.
    let host_dir = |p: &str| {
        if Path::new(p).is_dir() {
            p.to_string()
        } else {
            let d = rl.home.join(format!("host{}", p.replace('/', "-")));
            write_user_file(&rl, &d.join("README"), "stand-in\n");
            d.display().to_string()
        }
    };
    let (boot, modules) = (host_dir("/boot"), host_dir("/lib/modules"));
    let yaml = format!(
        r#"services:
  node:
    image: {image}
    command: ["sleep", "600"]
    hostname: ${{U7S_NODE_NAME}}
    privileged: true
    restart: always
    networks:
      default:
        ipv4_address: ${{U7S_NODE_IP}}
    ports:
      - {etcd}:2379
      - {api}:6443
      - {kubelet}:10250
      - 8472:8472/udp
    volumes:
      - .:/usernetes:ro
      - {boot}:/boot:ro
      - {modules}:/lib/modules:ro
      - node-var:/var
      - node-opt:/opt
      - node-etc:/etc
      - type: tmpfs
        target: /run
      - type: tmpfs
        target: /tmp
    working_dir: /usernetes
    environment:
      KUBECONFIG: /etc/kubernetes/admin.conf
      U7S_HOST_IP: ${{U7S_HOST_IP}}
    sysctls:
      - net.ipv4.ip_forward=1
    annotations:
      "nerdctl/bypass4netns": "${{U7S_B4NN:-false}}"
      "nerdctl/bypass4netns-ignore-bind": "true"
      "nerdctl/bypass4netns-ignore-subnets": "${{U7S_B4NN_IGNORE_SUBNETS:-}}"
networks:
  default:
    ipam:
      config:
        - subnet: ${{U7S_NODE_SUBNET}}
volumes:
  node-var: {{}}
  node-opt: {{}}
  node-etc: {{}}
"#,
        image = image("busybox")
    );
    write_user_file(&rl, &file, &yaml);
    write_user_file(
        &rl,
        &dir.join(".env"),
        "U7S_NODE_NAME=u7s-test-node\nU7S_NODE_IP=10.100.201.100\n\
         U7S_NODE_SUBNET=10.100.201.0/24\nU7S_HOST_IP=127.0.0.1\n",
    );
    compose_ok(&rl, &file, "u7s", &["up", "-d"]);
    let ex = |cmd: &[&str]| {
        let mut args = vec!["exec", "-T", "node"];
        args.extend_from_slice(cmd);
        compose_ok(&rl, &file, "u7s", &args)
    };
    assert!(ex(&["ip", "addr"]).contains("10.100.201.100"));
    assert_eq!(ex(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(), "1");
    assert_eq!(ex(&["hostname"]).trim(), "u7s-test-node");
    assert_eq!(ex(&["sh", "-c", "echo $U7S_HOST_IP"]).trim(), "127.0.0.1");
    assert_eq!(ex(&["pwd"]).trim(), "/usernetes");
    let mounts = ex(&["cat", "/proc/mounts"]);
    assert!(
        mounts.contains("tmpfs /run ") && mounts.contains("tmpfs /tmp "),
        "{mounts}"
    );
    let ports = compose_ok(
        &rl,
        &file,
        "u7s",
        &["port", "--protocol", "udp", "node", "8472"],
    );
    assert!(ports.contains(":8472"), "{ports}");
    let vols = burrow_ok(&rl, &["volume", "ls", "-q"]);
    assert!(vols.contains("u7s_node-etc"), "{vols}");
    compose_ok(
        &rl,
        &file,
        "u7s",
        &["down", "-v", "--rmi", "all", "-t", "1"],
    );
    assert_eq!(compose_ok(&rl, &file, "u7s", &["ps", "-a", "-q"]), "");
    let images = burrow_ok(&rl, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!images.contains(&image("busybox")), "--rmi all: {images}");
}

/// Jobs and replicas: a one-shot job another service waits to complete successfully, an
/// attached `up --exit-code-from` (the output prefixed, the exit code the worker's, the rest
/// stopped after), `--scale`, `--wait`, and the per-service commands (stop, start, restart,
/// kill, pause, unpause, top, cp, port-less ps filters).
#[test]
fn rootless_compose_jobs_replicas_and_service_commands() {
    let Some(rl) = rootless("compose-jobs") else {
        return;
    };
    let _lock = rl.machine.exclusive("rootless-containerd");
    let file = rl.home.join("jobs/compose.yaml");
    let bb = image("busybox");
    write_user_file(
        &rl,
        &file,
        &format!(
            r#"services:
  migrate:
    image: {bb}
    command: ["sh", "-c", "echo migrated > /shared/m"]
    volumes: [shared:/shared]
  worker:
    image: {bb}
    command: ["sh", "-c", "cat /shared/m; echo worker-done; exit 3"]
    depends_on:
      migrate:
        condition: service_completed_successfully
      ghost:
        condition: service_started
        required: false
    volumes: [shared:/shared]
  idle:
    image: {bb}
    command: ["sleep", "600"]
    stop_grace_period: 1s
    scale: 2
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
volumes:
  shared: {{}}
"#
        ),
    );
    let out = compose(
        &rl,
        &file,
        "jobs",
        &["up", "--no-color", "--exit-code-from", "worker"],
    );
    let text = stdout(&out);
    assert_eq!(code(&out), 3, "{text}{}", stderr(&out));
    // A dependency that is not required and not there only warns.
    assert!(
        stderr(&out).contains("optional dependency ghost"),
        "{}",
        stderr(&out)
    );
    // Prefixes are padded to the longest container name shown, as Docker Compose's.
    let line = |want: &str| {
        text.lines()
            .any(|l| l.starts_with("jobs-worker-1 ") && l.ends_with(&format!(" | {want}")))
    };
    assert!(line("migrated") && line("worker-done"), "{text}");
    let ps = compose_ok(
        &rl,
        &file,
        "jobs",
        &["ps", "-a", "--format", "{{.Name}} {{.State}}"],
    );
    assert_eq!(
        lines(&ps),
        [
            "jobs-idle-1 exited",
            "jobs-idle-2 exited",
            "jobs-migrate-1 exited",
            "jobs-worker-1 exited"
        ]
    );

    compose_ok(
        &rl,
        &file,
        "jobs",
        &["up", "-d", "--wait", "--scale", "idle=3", "idle"],
    );
    let running = compose_ok(&rl, &file, "jobs", &["ps", "--services"]);
    assert!(running.contains("idle"), "{running}");
    let ps = compose_ok(&rl, &file, "jobs", &["ps", "--format", "{{.Name}}", "idle"]);
    assert_eq!(lines(&ps), ["jobs-idle-1", "jobs-idle-2", "jobs-idle-3"]);

    compose_ok(&rl, &file, "jobs", &["stop", "-t", "1", "idle"]);
    assert_eq!(compose_ok(&rl, &file, "jobs", &["ps", "-q", "idle"]), "");
    compose_ok(&rl, &file, "jobs", &["start", "idle"]);
    assert_eq!(
        lines(&compose_ok(&rl, &file, "jobs", &["ps", "-q", "idle"])).len(),
        3
    );
    // Pausing needs the freezer cgroup: where rootless containers have none (cgroup v1),
    // the error says so.
    let pause = compose(&rl, &file, "jobs", &["pause", "idle"]);
    if code(&pause) == 0 {
        let paused = compose_ok(
            &rl,
            &file,
            "jobs",
            &["ps", "--format", "{{.State}}", "idle"],
        );
        assert!(paused.lines().all(|l| l == "paused"), "{paused}");
        compose_ok(&rl, &file, "jobs", &["unpause", "idle"]);
    } else {
        assert!(stderr(&pause).contains("freezer"), "{}", stderr(&pause));
    }
    let top = compose_ok(&rl, &file, "jobs", &["top", "idle"]);
    assert!(
        top.contains("jobs-idle-1") && top.contains("sleep 600"),
        "{top}"
    );
    let local = rl.home.join("jobs/copied");
    compose_ok(
        &rl,
        &file,
        "jobs",
        &["cp", "idle:/etc/hostname", local.to_str().unwrap()],
    );
    assert!(local.exists());
    compose_ok(&rl, &file, "jobs", &["restart", "-t", "1", "idle"]);
    compose_ok(&rl, &file, "jobs", &["kill", "idle"]);
    // kill does not wait; wait does, printing each container's exit code.
    let codes = compose_ok(&rl, &file, "jobs", &["wait", "idle"]);
    assert_eq!(lines(&codes), ["137", "137", "137"]);
    assert_eq!(compose_ok(&rl, &file, "jobs", &["ps", "-q", "idle"]), "");
    compose_ok(&rl, &file, "jobs", &["rm", "-f", "idle"]);
    let left = compose_ok(
        &rl,
        &file,
        "jobs",
        &["ps", "-a", "--format", "{{.Service}}"],
    );
    assert!(!left.contains("idle"), "{left}");

    // A service gone from the file leaves an orphan: warned about, removed on request.
    let text = std::fs::read_to_string(&file).unwrap();
    write_user_file(
        &rl,
        &file,
        &text
            .replace("  worker:", "  renamed:")
            .replace("cat /shared/m; echo worker-done; exit 3", "true"),
    );
    let out = compose(&rl, &file, "jobs", &["up", "-d", "migrate"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("orphan containers (jobs-worker-1)"),
        "{}",
        stderr(&out)
    );
    compose_ok(
        &rl,
        &file,
        "jobs",
        &["up", "-d", "--remove-orphans", "migrate"],
    );
    let left = compose_ok(
        &rl,
        &file,
        "jobs",
        &["ps", "-a", "--format", "{{.Service}}"],
    );
    assert!(!left.contains("worker"), "{left}");
    compose_ok(&rl, &file, "jobs", &["down", "-v"]);
    assert_eq!(compose_ok(&rl, &file, "jobs", &["ps", "-a", "-q"]), "");

    // `run` as a project's first command: its network is made, and a dependency's condition
    // is met before the one-off starts (as Docker Compose's run).
    let oneoff = rl.home.join("oneoff/compose.yaml");
    write_user_file(
        &rl,
        &oneoff,
        &format!(
            r#"services:
  lone:
    image: {bb}
  db:
    image: {bb}
    command: ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 600"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
  app:
    image: {bb}
    depends_on:
      db:
        condition: service_healthy
"#
        ),
    );
    let out = compose_ok(
        &rl,
        &oneoff,
        "oneoff",
        &["run", "--rm", "-T", "lone", "echo", "lone-ok"],
    );
    assert_eq!(out, "lone-ok\n");
    let out = compose_ok(
        &rl,
        &oneoff,
        "oneoff",
        &["run", "--rm", "-T", "app", "echo", "app-ok"],
    );
    assert!(out.ends_with("app-ok\n"), "{out}");
    let db = compose_ok(
        &rl,
        &oneoff,
        "oneoff",
        &["ps", "--format", "{{.Status}}", "db"],
    );
    assert!(db.contains("(healthy)"), "{db}");
    compose_ok(&rl, &oneoff, "oneoff", &["down"]);

    // volumes_from: the other service's volumes, that service made first (no depends_on).
    let vf = rl.home.join("vf/compose.yaml");
    write_user_file(
        &rl,
        &vf,
        &format!(
            r#"services:
  app:
    image: {bb}
    command: ["sleep", "600"]
    stop_grace_period: 1s
    volumes_from: ["data:ro"]
  data:
    image: {bb}
    command: ["sh", "-c", "echo shared > /shared/f; exec sleep 600"]
    stop_grace_period: 1s
    volumes: ["/shared"]
"#
        ),
    );
    compose_ok(&rl, &vf, "vf", &["up", "-d"]);
    let read = || compose(&rl, &vf, "vf", &["exec", "-T", "app", "cat", "/shared/f"]);
    assert!(
        wait_for(Duration::from_secs(10), || stdout(&read()) == "shared\n"),
        "{}",
        stderr(&read())
    );
    let out = compose(&rl, &vf, "vf", &["exec", "-T", "app", "touch", "/shared/g"]);
    assert_ne!(code(&out), 0, "volumes_from :ro is read-only");
    compose_ok(&rl, &vf, "vf", &["down", "-v"]);

    recreate_keeps_anonymous_volumes_and_follows_the_image(&rl);

    // deploy.resources.limits are cgroup limits: where the user has no cgroup of its own the
    // service is refused with the reason, not run without its limits.
    let limits = rl.home.join("limits/compose.yaml");
    write_user_file(
        &rl,
        &limits,
        &format!(
            "services:\n  capped:\n    image: {bb}\n    command: [\"sleep\", \"600\"]\n    stop_grace_period: 1s\n    deploy:\n      resources:\n        limits:\n          memory: 64M\n"
        ),
    );
    let out = compose(&rl, &limits, "limits", &["up", "-d"]);
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!(
            "note: cgroup v2 here: the limit may be applied ({})",
            code(&out)
        );
    } else {
        assert_ne!(code(&out), 0, "{}", stdout(&out));
        assert!(stderr(&out).contains("cgroup v1"), "{}", stderr(&out));
    }
    compose_ok(&rl, &limits, "limits", &["down"]);
    assert_eq!(compose_ok(&rl, &limits, "limits", &["ps", "-a", "-q"]), "");

    attached_up_stops_on_interrupt(&rl, &bb);
    lifecycle_hooks(&rl, &bb);
    cdi_device_requests(&rl, &bb);
    bind_volume_from_driver_opts(&rl, &bb);
    internal_network(&rl, &bb);
    written_secrets_and_configs(&rl, &bb);
    observing_and_service_image_commands(&rl, &bb);
    watch_rules(&rl);
}

/// `compose watch`: a sync rule copies changed files in (and deletes removed ones, ignoring
/// what `ignore` names), sync+restart also restarts; then `up --watch`: `initial_sync` copies
/// what changed while nothing watched, sync+exec runs its command, rebuild builds and
/// recreates, and the attached output follows the new container.
fn watch_rules(rl: &Rootless) {
    let dir = rl.home.join("watch");
    let file = dir.join("compose.yaml");
    write_user_file(
        rl,
        &dir.join("Dockerfile"),
        "FROM 127.0.0.1:5000/burrow-test/busybox\nCOPY version /version\nCMD [\"sh\", \"-c\", \"echo running $(cat /version); exec sleep 600\"]\n",
    );
    write_user_file(rl, &dir.join("version"), "v1\n");
    for d in ["src", "conf", "hooks", "init"] {
        write_user_file(rl, &dir.join(d).join("keep"), "");
    }
    write_user_file(
        rl,
        &file,
        "services:\n  app:\n    build: .\n    stop_grace_period: 1s\n    develop:\n      watch:\n        - {action: sync, path: ./src, target: /app, ignore: [\"*.tmp\"]}\n        - {action: sync+restart, path: ./conf, target: /conf}\n        - action: sync+exec\n          path: ./hooks\n          target: /hooks\n          exec:\n            command: [\"sh\", \"-c\", \"cat /hooks/*.txt > /exec.out; echo $$MARK >> /exec.out\"]\n            environment: {MARK: from-exec}\n        - {action: sync, path: ./init, target: /init, initial_sync: true}\n        - {action: rebuild, path: ./version}\n",
    );
    // compose config gives the rules back as written.
    let config = compose_ok(rl, &file, "watch", &["config"]);
    assert!(
        config.contains("action: sync+exec") && config.contains("initial_sync: true"),
        "{config}"
    );
    let spawn = |args: &[&str], out: &str| {
        let mut cleanup = burrow_testsupport::Cleanup::new();
        let mut cmd = rl.machine.user_command(&rl.burrow);
        cmd.env("XDG_RUNTIME_DIR", &rl.runtime_dir)
            .env("HOME", &rl.home)
            .args(["compose", "-f", file.to_str().unwrap(), "-p", "watch"])
            .args(args)
            .stdout(std::fs::File::create(dir.join(format!("{out}.out"))).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{out}.log"))).unwrap());
        cleanup.spawn(&mut cmd);
        cleanup
    };
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let exec = |script: &str| {
        let out = compose(
            rl,
            &file,
            "watch",
            &["exec", "-T", "app", "sh", "-c", script],
        );
        stdout(&out)
    };
    let until = |what: &str, f: &dyn Fn() -> bool| {
        assert!(
            burrow_testsupport::wait_for(std::time::Duration::from_secs(60), f),
            "{what}: compose said: {}{}",
            read("watch.log"),
            read("up.log")
        );
    };
    let watching = spawn(&["watch"], "watch");
    until("the service runs", &|| exec("echo up") == "up\n");
    write_user_file(rl, &dir.join("src/a.txt"), "A\n");
    write_user_file(rl, &dir.join("src/skip.tmp"), "no\n");
    until("a.txt is synced", &|| {
        exec("cat /app/a.txt 2>/dev/null") == "A\n"
    });
    assert_eq!(
        exec("test -e /app/skip.tmp && echo there || echo ignored"),
        "ignored\n"
    );
    std::fs::remove_file(dir.join("src/a.txt")).unwrap();
    until("a.txt is deleted", &|| {
        exec("test -e /app/a.txt && echo there || echo gone") == "gone\n"
    });
    let started = || {
        burrow_ok(
            rl,
            &["inspect", "-f", "{{.State.StartedAt}}", "watch-app-1"],
        )
    };
    let before = started();
    write_user_file(rl, &dir.join("conf/c.conf"), "k=v\n");
    until("c.conf is synced and the container restarted", &|| {
        exec("cat /conf/c.conf 2>/dev/null") == "k=v\n" && started() != before
    });
    drop(watching);

    // up --watch: -d is refused with it; attached, it watches.
    let out = compose(rl, &file, "watch", &["up", "-d", "--watch"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("--watch"), "{}", stderr(&out));
    write_user_file(rl, &dir.join("init/i.txt"), "early\n");
    let up = spawn(&["up", "--watch"], "up");
    until("initial_sync copies what changed before", &|| {
        exec("cat /init/i.txt 2>/dev/null") == "early\n"
    });
    write_user_file(rl, &dir.join("hooks/h.txt"), "H\n");
    until("sync+exec runs its command after the sync", &|| {
        exec("cat /exec.out 2>/dev/null") == "H\nfrom-exec\n"
    });
    assert!(read("up.out").contains("running v1"), "{}", read("up.out"));
    write_user_file(rl, &dir.join("version"), "v2\n");
    until(
        "the image is rebuilt, the service recreated and followed",
        &|| exec("cat /version") == "v2\n" && read("up.out").contains("running v2"),
    );
    drop(up);
    compose_ok(rl, &file, "watch", &["down", "--rmi", "local", "-t", "1"]);
}

/// `compose events`, `scale`, `volumes`, `attach`, `stats`, `commit` and `export`.
fn observing_and_service_image_commands(rl: &Rootless, bb: &str) {
    let file = rl.home.join("obs/compose.yaml");
    write_user_file(
        rl,
        &file,
        &format!(
            "services:\n  ticker:\n    image: {bb}\n    command: [\"sh\", \"-c\", \"echo made > /data/mark; while :; do echo tick; sleep 0.2; done\"]\n    stop_grace_period: 1s\n    volumes: [\"data:/data\"]\nvolumes:\n  data: {{}}\n"
        ),
    );
    let user_burrow = |args: &[&str]| {
        let mut c = rl.machine.user_command(&rl.burrow);
        c.env("XDG_RUNTIME_DIR", &rl.runtime_dir)
            .env("HOME", &rl.home)
            .args(["compose", "-f", file.to_str().unwrap(), "-p", "obs"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    };
    let mut cleanup = burrow_testsupport::Cleanup::new();
    let ev = cleanup.spawn(&mut user_burrow(&["events", "--json"]));
    let events = ev.id();
    let mut ev_out = ev.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut ev_out, &mut text);
        text
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    compose_ok(rl, &file, "obs", &["up", "-d"]);
    compose_ok(rl, &file, "obs", &["scale", "ticker=2"]);
    assert_eq!(
        compose_ok(rl, &file, "obs", &["ps", "-q", "ticker"])
            .lines()
            .count(),
        2,
        "scale runs two"
    );
    // attach: the service's output as it comes.
    let mut attach = user_burrow(&["attach", "--no-stdin", "ticker"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = attach.kill();
    let attached = attach.wait_with_output().unwrap();
    assert!(
        stdout(&attached).contains("tick\n"),
        "{}",
        stderr(&attached)
    );
    // volumes: the project's, and those a service mounts.
    assert_eq!(
        compose_ok(rl, &file, "obs", &["volumes", "-q"]),
        "obs_data\n"
    );
    assert_eq!(
        compose_ok(
            rl,
            &file,
            "obs",
            &["volumes", "--format", "{{.Name}}", "ticker"]
        ),
        "obs_data\n"
    );
    // stats: rootless on this cgroup-v1 host there are no cgroups to read, and it says so.
    let out = compose(rl, &file, "obs", &["stats", "--no-stream"]);
    if code(&out) == 0 {
        assert!(stdout(&out).contains("obs-ticker-1"), "{}", stdout(&out));
    } else {
        assert!(stderr(&out).contains("cgroup"), "{}", stderr(&out));
    }
    // commit and export of a service's container.
    let tag = format!("obs-commit:{}", std::process::id());
    compose_ok(
        rl,
        &file,
        "obs",
        &["commit", "--pause=false", "ticker", &tag],
    );
    assert_eq!(
        burrow_ok(
            rl,
            &[
                "run",
                "--rm",
                &tag,
                "sh",
                "-c",
                "test -e /data/mark && echo has || echo none"
            ]
        ),
        "none\n",
        "a volume is not part of the image"
    );
    let tar = rl.home.join("obs/export.tar");
    compose_ok(
        rl,
        &file,
        "obs",
        &["export", "-o", tar.to_str().unwrap(), "ticker"],
    );
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        stdout(&listed).contains("bin/busybox"),
        "{}",
        stderr(&listed)
    );
    let _ = burrow_ok(rl, &["rmi", "-f", &tag]);
    compose_ok(rl, &file, "obs", &["down", "-v", "-t", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(events as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    drop(cleanup);
    let seen = reader.join().unwrap();
    let starts: Vec<serde_json::Value> = seen
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["action"] == "start")
        .collect();
    assert!(starts.len() >= 2, "a start per container: {seen}");
    assert!(
        starts
            .iter()
            .all(|e| e["service"] == "ticker" && e["type"] == "container"),
        "{seen}"
    );
}

/// Secrets of `environment:` and configs of `content:` are written into the container before
/// it starts, with the entry's uid, gid and mode (0444 by default).
fn written_secrets_and_configs(rl: &Rootless, bb: &str) {
    let file = rl.home.join("written/compose.yaml");
    write_user_file(
        rl,
        &file,
        &format!(
            "services:\n  app:\n    image: {bb}\n    command: [\"sleep\", \"600\"]\n    stop_grace_period: 1s\n    secrets: [home_secret, dotenv_secret]\n    configs:\n      - {{source: conf, target: /etc/app.conf, uid: \"100\", gid: \"101\", mode: 0440}}\nsecrets:\n  home_secret:\n    environment: HOME\n  dotenv_secret:\n    environment: ONLY_IN_DOTENV\nconfigs:\n  conf:\n    content: key=value\n"
        ),
    );
    // A variable the project's .env sets (and the environment does not), as Docker Compose
    // reads it.
    write_user_file(
        rl,
        &rl.home.join("written/.env"),
        "ONLY_IN_DOTENV=from-dotenv\n",
    );
    compose_ok(rl, &file, "written", &["up", "-d"]);
    let out = compose_ok(
        rl,
        &file,
        "written",
        &[
            "exec",
            "-T",
            "app",
            "sh",
            "-c",
            "cat /run/secrets/home_secret; echo; cat /run/secrets/dotenv_secret; echo; cat /etc/app.conf; echo; stat -c '%a %u %g' /etc/app.conf /run/secrets/home_secret",
        ],
    );
    assert_eq!(
        out,
        format!(
            "{}\nfrom-dotenv\nkey=value\n440 100 101\n444 0 0\n",
            rl.home.display()
        )
    );
    compose_ok(rl, &file, "written", &["down", "-t", "1"]);
}

/// `gpus:` and `deploy.resources.reservations.devices` with driver cdi reach the container
/// through a CDI spec of the user's (`~/.config/cdi`): its device node and environment.
fn cdi_device_requests(rl: &Rootless, bb: &str) {
    let kind = format!("compose{}.example.com/dev", std::process::id());
    write_user_file(
        rl,
        &rl.home.join(".config/cdi/compose-test.yaml"),
        &format!(
            "cdiVersion: \"0.6.0\"\nkind: {kind}\ndevices:\n  - name: a\n    containerEdits:\n      env: [DEV_A=seen]\n      deviceNodes:\n        - path: /dev/fake-a\n          hostPath: /dev/null\n  - name: b\n    containerEdits:\n      env: [DEV_B=seen]\n      deviceNodes:\n        - path: /dev/fake-b\n          hostPath: /dev/zero\n"
        ),
    );
    let file = rl.home.join("cdi/compose.yaml");
    write_user_file(
        rl,
        &file,
        &format!(
            r#"services:
  reserved:
    image: {bb}
    command: ["sh", "-c", "echo $$DEV_A; ls /dev/fake-a"]
    deploy:
      resources:
        reservations:
          devices:
            - driver: cdi
              device_ids: ["{kind}=a"]
              capabilities: [gpu]
  gpus:
    image: {bb}
    command: ["sh", "-c", "echo $$DEV_B; ls /dev/fake-b"]
    gpus:
      - driver: cdi
        device_ids: ["{kind}=b"]
"#
        ),
    );
    for (svc, want) in [
        ("reserved", "seen\n/dev/fake-a\n"),
        ("gpus", "seen\n/dev/fake-b\n"),
    ] {
        let out = compose_ok(rl, &file, "cdi", &["run", "--rm", "-T", svc]);
        assert_eq!(out, want, "{svc}");
    }
    compose_ok(rl, &file, "cdi", &["down"]);
    let _ = std::fs::remove_file(rl.home.join(".config/cdi/compose-test.yaml"));
}

/// post_start and pre_stop hooks run as execs after every start and before every stop (up,
/// restart, stop, start, run, down), with their user, working_dir and environment; a failing
/// hook fails the command with its status and output; `config` prints the hooks as written.
/// `internal: true`: the services reach each other by name, and have no default route.
fn internal_network(rl: &Rootless, bb: &str) {
    let file = rl.home.join("internal/compose.yaml");
    write_user_file(
        rl,
        &file,
        &format!(
            "services:\n  srv:\n    image: {bb}\n    command: [\"httpd\", \"-f\", \"-p\", \"80\"]\n    networks: [back]\n  cli:\n    image: {bb}\n    command: [\"sleep\", \"600\"]\n    networks: [back]\nnetworks:\n  back:\n    internal: true\n"
        ),
    );
    compose_ok(rl, &file, "internal", &["up", "-d"]);
    assert_eq!(
        burrow_ok(
            rl,
            &["network", "inspect", "-f", "{{.Internal}}", "internal_back"]
        )
        .trim(),
        "true"
    );
    let out = compose_ok(
        rl,
        &file,
        "internal",
        &[
            "exec",
            "-T",
            "cli",
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 srv 80 | head -1 | grep -q HTTP && break; sleep 0.5; done; echo peer=$i; ip route | grep -c default; true",
        ],
    );
    assert!(out.contains("peer=") && !out.contains("peer=10"), "{out}");
    assert!(out.trim_end().ends_with('0'), "a default route: {out}");
    compose_ok(rl, &file, "internal", &["down", "-t", "1"]);
}

/// A top-level volume with the local driver's bind options (type: none, o: bind, device:):
/// the service's writes land in the user's directory, which `down -v` leaves alone.
fn bind_volume_from_driver_opts(rl: &Rootless, bb: &str) {
    let dir = rl.home.join("bindvol");
    let host = dir.join("on-host");
    write_user_file(rl, &host.join(".keep"), "");
    let file = dir.join("compose.yaml");
    write_user_file(
        rl,
        &file,
        &format!(
            "services:\n  writer:\n    image: {bb}\n    command: [\"sh\", \"-c\", \"echo written > /data/out\"]\n    volumes: [\"data:/data\"]\nvolumes:\n  data:\n    driver_opts: {{type: none, o: bind, device: {}}}\n",
            host.display()
        ),
    );
    compose_ok(rl, &file, "bindvol", &["up"]);
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "written\n"
    );
    let inspect = burrow_ok(
        rl,
        &[
            "volume",
            "inspect",
            "-f",
            "{{.Options.device}}",
            "bindvol_data",
        ],
    );
    assert_eq!(inspect.trim(), host.display().to_string());
    compose_ok(rl, &file, "bindvol", &["down", "-v"]);
    assert!(
        host.join("out").exists(),
        "down -v removed the bound directory's files"
    );
    // bind.recursive: disabled shows the directory under a mount of the source's (made here
    // as root, in the launcher's mount namespace, where the runtime binds it), enabled the
    // mount itself.
    let sub = host.join("sub");
    write_user_file(rl, &sub.join("under"), "under\n");
    let child = std::fs::read_to_string(rl.runtime_dir.join("containerd-rootless/child_pid"))
        .unwrap()
        .trim()
        .to_string();
    let in_launcher = |script: &str| {
        let st = std::process::Command::new("nsenter")
            .args(["-t", &child, "-m", "sh", "-c", script])
            .status()
            .unwrap();
        assert!(st.success(), "{script}");
    };
    let sub_path = sub.display().to_string();
    in_launcher(&format!(
        "mount -t tmpfs tmpfs {sub_path} && echo over > {sub_path}/over"
    ));
    write_user_file(
        rl,
        &file,
        &format!(
            "services:\n  flat:\n    image: {bb}\n    command: [\"ls\", \"/h/sub\"]\n    volumes:\n      - {{type: bind, source: {h}, target: /h, bind: {{recursive: disabled}}}}\n  deep:\n    image: {bb}\n    command: [\"ls\", \"/h/sub\"]\n    volumes:\n      - {{type: bind, source: {h}, target: /h, bind: {{recursive: enabled}}}}\n",
            h = host.display()
        ),
    );
    compose_ok(rl, &file, "bindrec", &["up"]);
    let flat = compose_ok(rl, &file, "bindrec", &["logs", "--no-log-prefix", "flat"]);
    let deep = compose_ok(rl, &file, "bindrec", &["logs", "--no-log-prefix", "deep"]);
    in_launcher(&format!("umount {sub_path}"));
    assert_eq!(
        (flat.trim(), deep.trim()),
        ("under", "over"),
        "{}",
        burrow_ok(rl, &["inspect", "-f", "{{json .Mounts}}", "bindrec-flat-1"])
    );
    compose_ok(rl, &file, "bindrec", &["down"]);
    // driver_opts of a tmpfs: the services share one tmpfs; down -v removes (unmounts) it.
    write_user_file(
        rl,
        &file,
        &format!(
            "services:\n  writer:\n    image: {bb}\n    command: [\"sh\", \"-c\", \"echo from-writer > /data/f; sleep 600\"]\n    stop_grace_period: 1s\n    volumes: [\"data:/data\"]\n  reader:\n    image: {bb}\n    command: [\"sleep\", \"600\"]\n    stop_grace_period: 1s\n    volumes: [\"data:/data\"]\nvolumes:\n  data:\n    driver_opts: {{type: tmpfs, device: tmpfs, o: \"size=4m\"}}\n"
        ),
    );
    compose_ok(rl, &file, "tmpvol", &["up", "-d"]);
    let mut seen = String::new();
    for _ in 0..50 {
        seen = compose_ok(
            rl,
            &file,
            "tmpvol",
            &[
                "exec",
                "-T",
                "reader",
                "sh",
                "-c",
                "cat /data/f 2>/dev/null; grep ' /data ' /proc/mounts | cut -d' ' -f3",
            ],
        );
        if seen.starts_with("from-writer") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(seen, "from-writer\ntmpfs\n");
    // volume.subpath: a directory of the shared volume, mounted alone.
    compose_ok(
        rl,
        &file,
        "tmpvol",
        &[
            "exec",
            "-T",
            "writer",
            "sh",
            "-c",
            "mkdir -p /data/sub && echo in-sub > /data/sub/g",
        ],
    );
    write_user_file(
        rl,
        &rl.home.join("bindvol/sub.yaml"),
        &format!(
            "services:\n  part:\n    image: {bb}\n    command: [\"ls\", \"/only\"]\n    volumes:\n      - {{type: volume, source: data, target: /only, volume: {{subpath: sub}}}}\nvolumes:\n  data:\n    external: true\n    name: tmpvol_data\n"
        ),
    );
    let sub = compose_ok(
        rl,
        &rl.home.join("bindvol/sub.yaml"),
        "subp",
        &["run", "--rm", "part"],
    );
    assert_eq!(sub, "g\n");
    compose_ok(rl, &file, "tmpvol", &["down", "-v", "-t", "1"]);
    assert!(
        !burrow_ok(rl, &["volume", "ls", "-q"]).contains("tmpvol_data"),
        "down -v removes it"
    );
    // Filesystems a user namespace cannot mount are refused by name.
    write_user_file(
        rl,
        &file,
        &format!(
            "services:\n  writer:\n    image: {bb}\n    volumes: [\"data:/data\"]\nvolumes:\n  data:\n    driver_opts: {{type: nfs, o: \"addr=127.0.0.1\", device: \":/x\"}}\n"
        ),
    );
    let out = compose(rl, &file, "bindvol", &["up", "-d"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("type=nfs"), "{}", stderr(&out));
    compose_ok(rl, &file, "bindvol", &["down", "-v"]);
}

fn lifecycle_hooks(rl: &Rootless, bb: &str) {
    let file = rl.home.join("hooks/compose.yaml");
    let out = rl.home.join("hooks/out");
    write_user_file(rl, &out.join("log"), "");
    write_user_file(
        rl,
        &file,
        &format!(
            r#"services:
  web:
    image: {bb}
    command: ["sleep", "600"]
    stop_grace_period: 1s
    volumes: ["./out:/out"]
    post_start:
      - command: sh -c 'echo "post $$HOOK $$(id -u) $$(pwd)" >> /out/log'
        working_dir: /tmp
        environment:
          HOOK: one
      - command: ["sh", "-c", "id -u > /tmp/hook-user"]
        user: "65534"
    pre_stop:
      - command: ["sh", "-c", "echo pre >> /out/log"]
  bad:
    image: {bb}
    command: ["sleep", "600"]
    stop_grace_period: 1s
    profiles: [bad]
    post_start:
      - command: ["sh", "-c", "echo oops >&2; exit 3"]
"#
        ),
    );
    let log = || std::fs::read_to_string(out.join("log")).unwrap();
    compose_ok(rl, &file, "hooks", &["up", "-d"]);
    assert_eq!(log(), "post one 0 /tmp\n");
    assert_eq!(
        compose_ok(
            rl,
            &file,
            "hooks",
            &["exec", "-T", "web", "cat", "/tmp/hook-user"]
        ),
        "65534\n"
    );
    compose_ok(rl, &file, "hooks", &["restart"]);
    compose_ok(rl, &file, "hooks", &["stop"]);
    compose_ok(rl, &file, "hooks", &["start"]);
    assert_eq!(
        log(),
        "post one 0 /tmp\npre\npost one 0 /tmp\npre\npost one 0 /tmp\n"
    );
    let id = compose_ok(rl, &file, "hooks", &["run", "-d", "--no-deps", "web"]);
    assert!(!id.trim().is_empty());
    assert!(log().ends_with("/tmp\npost one 0 /tmp\n"), "{}", log());
    // An attached run: the hooks run beside it once its task runs.
    let waited = compose_ok(
        rl,
        &file,
        "hooks",
        &[
            "run",
            "--rm",
            "-T",
            "--no-deps",
            "web",
            "sh",
            "-c",
            "i=0; while [ ! -s /tmp/hook-user ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; cat /tmp/hook-user",
        ],
    );
    assert_eq!(waited, "65534\n");
    let config = compose_ok(rl, &file, "hooks", &["config"]);
    assert!(
        config.contains("post_start:")
            && config.contains("pre_stop:")
            && !config.contains("x-burrow"),
        "{config}"
    );
    let failed = compose(rl, &file, "hooks", &["--profile", "bad", "up", "-d", "bad"]);
    assert_eq!(code(&failed), 1, "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("post_start hook exited with status 3: oops"),
        "{}",
        stderr(&failed)
    );
    compose_ok(
        rl,
        &file,
        "hooks",
        &["--profile", "bad", "down", "--remove-orphans"],
    );
    assert!(log().ends_with("pre\npre\n"), "{}", log());
    assert_eq!(compose_ok(rl, &file, "hooks", &["ps", "-a", "-q"]), "");
}

/// An image's VOLUME is an anonymous volume filled from the image; a recreate (config changed,
/// or the image's tag now names another image) keeps its data, `-V` gives a new one; `down -v`
/// removes it.
fn recreate_keeps_anonymous_volumes_and_follows_the_image(rl: &Rootless) {
    let dir = rl.home.join("keep");
    write_user_file(
        rl,
        &dir.join("Dockerfile"),
        &format!(
            "FROM {}\nRUN mkdir /data && echo seed > /data/seed\nVOLUME /data\n",
            rl.machine.image_busybox
        ),
    );
    let file = dir.join("compose.yaml");
    let yaml = |v: &str| {
        format!(
            "services:\n  keeper:\n    build: .\n    image: keep-img:1\n    command: [\"sleep\", \"600\"]\n    stop_grace_period: 1s\n    environment: [V={v}]\n"
        )
    };
    write_user_file(rl, &file, &yaml("1"));
    compose_ok(rl, &file, "keep", &["up", "-d"]);
    let inspect = |f: &str| burrow_ok(rl, &["inspect", "-f", f, "keep-keeper-1"]);
    assert_eq!(
        inspect("{{json .Config.Volumes}}").trim(),
        r#"{"/data":{}}"#
    );
    let volume = inspect("{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}");
    let (kind, rest) = volume.trim().split_once(' ').unwrap();
    assert_eq!(
        (kind, rest.ends_with(" /data")),
        ("volume", true),
        "{volume}"
    );
    let exec = |cmd: &str| {
        compose_ok(
            rl,
            &file,
            "keep",
            &["exec", "-T", "keeper", "sh", "-c", cmd],
        )
    };
    assert_eq!(exec("cat /data/seed; echo kept > /data/k"), "seed\n");

    // A changed config recreates the container, which keeps the data.
    write_user_file(rl, &file, &yaml("2"));
    let out = compose(rl, &file, "keep", &["up", "-d"]);
    assert!(stderr(&out).contains("Recreated"), "{}", stderr(&out));
    assert_eq!(exec("cat /data/k; echo $V"), "kept\n2\n");
    assert_eq!(
        inspect("{{range .Mounts}}{{.Name}}{{end}}"),
        volume.split(' ').nth(1).unwrap().to_string() + "\n"
    );

    // The tag now names another image: recreated from it, without a config change, and with
    // the volume still (Docker Compose carries a replaced container's anonymous volumes over).
    let before = inspect("{{.Image}}");
    burrow_ok(rl, &["tag", &image("tools"), "keep-img:1"]);
    let out = compose(rl, &file, "keep", &["up", "-d", "--no-build"]);
    assert!(stderr(&out).contains("Recreated"), "{}", stderr(&out));
    assert_ne!(inspect("{{.Image}}"), before);
    assert_eq!(exec("cat /data/k"), "kept\n");
    let out = compose(rl, &file, "keep", &["up", "-d", "--no-build"]);
    assert!(!stderr(&out).contains("Recreated"), "{}", stderr(&out));

    // -V: new anonymous volumes; the image now (tools) has no VOLUME, so none at all. The old
    // one is left, not in use, as Docker Compose leaves it.
    let name = volume.split(' ').nth(1).unwrap();
    compose_ok(
        rl,
        &file,
        "keep",
        &["up", "-d", "--no-build", "--force-recreate", "-V"],
    );
    assert_eq!(inspect("{{len .Config.Volumes}}").trim(), "0");
    burrow_ok(rl, &["volume", "rm", name]);

    // down -v removes the anonymous volumes of the project's containers, carried over or not.
    burrow_ok(rl, &["tag", "keep-img:1", "keep-tools:1"]);
    compose_ok(rl, &file, "keep", &["build"]);
    compose_ok(rl, &file, "keep", &["up", "-d", "--no-build"]);
    let first = inspect("{{range .Mounts}}{{.Name}}{{end}}");
    burrow_ok(rl, &["tag", "keep-tools:1", "keep-img:1"]);
    compose_ok(rl, &file, "keep", &["up", "-d", "--no-build"]);
    assert_eq!(inspect("{{range .Mounts}}{{.Name}}{{end}}"), first);
    compose_ok(rl, &file, "keep", &["down", "-v"]);
    let left = burrow_ok(rl, &["volume", "ls", "-q"]);
    assert!(!left.lines().any(|l| l == first.trim()), "{left}");
    burrow_ok(rl, &["rmi", "keep-img:1", "keep-tools:1"]);

    // build --push: the service's image built, then in the registry (read back by skopeo).
    let pushed = "127.0.0.1:5000/burrow-compose-test/keep:pushed";
    let push_file = dir.join("push.yaml");
    write_user_file(
        rl,
        &push_file,
        &format!("services:\n  keeper:\n    build: .\n    image: {pushed}\n"),
    );
    let out = compose(rl, &push_file, "keeppush", &["build", "--push"]);
    assert!(
        stderr(&out).contains(&format!("Pushed {pushed} (digest sha256:")),
        "{}",
        stderr(&out)
    );
    let inspect = ok(&rl.user(&[
        "skopeo",
        "inspect",
        "--tls-verify=false",
        &format!("docker://{pushed}"),
    ]));
    assert!(inspect.contains("\"Digest\""), "{inspect}");
    burrow_ok(rl, &["rmi", pushed]);
}

/// Kills the attached `compose up` if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An attached `up` prints the prefixed output and, on Ctrl-C (SIGINT), stops the containers
/// and exits.
fn attached_up_stops_on_interrupt(rl: &Rootless, bb: &str) {
    use std::io::BufRead;
    let file = rl.home.join("attached/compose.yaml");
    write_user_file(
        rl,
        &file,
        &format!(
            "services:\n  talker:\n    image: {bb}\n    command: [\"sh\", \"-c\", \"sleep 1; echo talker-up; exec sleep 600\"]\n    stop_grace_period: 1s\n  quiet:\n    image: {bb}\n    attach: false\n    command: [\"sh\", \"-c\", \"echo quiet-up; exec sleep 600\"]\n    stop_grace_period: 1s\n  muted:\n    image: {bb}\n    command: [\"sh\", \"-c\", \"echo muted-up; exec sleep 600\"]\n    stop_grace_period: 1s\n"
        ),
    );
    let mut cmd = rl.machine.user_command(&rl.burrow);
    cmd.env("XDG_RUNTIME_DIR", &rl.runtime_dir)
        .env("HOME", &rl.home)
        .current_dir(&rl.home)
        .args([
            "compose",
            "-f",
            file.to_str().unwrap(),
            "-p",
            "attached",
            "up",
            "--no-color",
            "--timestamps",
            "--no-attach",
            "muted",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = KillOnDrop(cmd.spawn().expect("compose up starts"));
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the attached up prints the container's output");
    // --timestamps: the time before the line.
    assert!(
        line.starts_with("attached-talker-1  | 20") && line.ends_with(" talker-up"),
        "{line}"
    );
    let pid = child.0.id().to_string();
    let mut kill = std::process::Command::new("kill");
    kill.args(["-INT", &pid]);
    assert!(
        run_with_timeout(&mut kill, std::time::Duration::from_secs(10))
            .status
            .success()
    );
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = child.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = status.expect("compose up exits after SIGINT");
    assert!(status.success(), "{status:?}");
    // `attach: false` and --no-attach: those services' output is not shown.
    let rest: Vec<String> =
        std::iter::from_fn(|| rx.recv_timeout(std::time::Duration::from_secs(2)).ok()).collect();
    assert!(
        !rest
            .iter()
            .any(|l| l.contains("quiet-up") || l.contains("muted-up")),
        "{rest:?}"
    );
    let ps = compose_ok(
        rl,
        &file,
        "attached",
        &["ps", "-a", "--format", "{{.State}}"],
    );
    assert_eq!(ps, "exited\nexited\nexited\n");
    compose_ok(rl, &file, "attached", &["down"]);
}
