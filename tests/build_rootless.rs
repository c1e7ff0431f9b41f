//! `burrow build` end to end as the unprivileged test user on a private rootless containerd: a
//! multi-stage build from the local registry's busybox (a compile stage making a file, a slim
//! stage copying it), a cached rebuild that runs nothing, a change to one copied file re-running
//! only the steps after it, .dockerignore, --build-arg and --target, USER and WORKDIR seen by
//! `run`, the image pushed to the local registry and read back by skopeo and podman, and
//! `builder prune`.

mod containers_support;

use std::path::Path;

use burrow_testsupport::TestMachine;
use containers_support::*;

const BASE: &str = "127.0.0.1:5000/burrow-test/busybox";

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=127.0.0.1:5000/burrow-test/busybox
FROM ${BASE} AS compile
ARG GREETING=hello
WORKDIR /src
COPY src/ ./
RUN cat a.txt b.txt > /out.txt \
 && echo "$GREETING" >> /out.txt
COPY . /ctx/
RUN test ! -e /ctx/secret.txt && test ! -e /ctx/src/junk.tmp && test -e /ctx/src/keep.tmp

FROM $BASE AS unused
RUN echo the unused stage ran; exit 3

FROM ${BASE}
COPY --from=compile --chown=1234:1234 /out.txt /app/out.txt
WORKDIR /app
RUN echo done > /app/made-by-run
USER 1234:1234
ENV MODE=slim
LABEL org.example.stage=final
CMD ["cat", "/app/out.txt"]
"#;

const EXTRA: &str = r#"FROM 127.0.0.1:5000/burrow-test/busybox
ARG NAME=world
RUN --mount=type=cache,target=/cache echo x >> /cache/runs && grep -c x /cache/runs > /runs-seen
RUN --mount=type=bind,source=src,target=/mnt cat /mnt/a.txt > /from-bind && ! touch /mnt/new 2>/dev/null
COPY <<EOF /greeting
hello $NAME
EOF
RUN <<EOF
set -e
echo heredoc-ran > /heredoc
EOF
COPY --chown=app:nogroup src/a.txt /owned
RUN stat -c %u:%g /owned > /owner
"#;

/// A web server for ADD's downloads and remote contexts: `/file.txt` (with Last-Modified),
/// `/redirect` (to it), `/pkg.tar` (a tar archive), `/Dockerfile` and `/ctx.tar` (a context),
/// 404 otherwise.
struct HttpServer {
    port: u16,
    /// How many times /file.txt was sent whole (a conditional GET that matches gets a 304).
    bodies: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HttpServer {
    fn start() -> HttpServer {
        HttpServer::start_on("127.0.0.1")
    }

    fn start_on(ip: &str) -> HttpServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut archive = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        h.set_cksum();
        archive
            .append_data(&mut h, "inner.txt", &b"inner\n"[..])
            .unwrap();
        let archive = archive.into_inner().unwrap();
        let mut ctx = tar::Builder::new(Vec::new());
        for (name, body) in [
            (
                "Dockerfile",
                format!("FROM {BASE}\nCOPY said.txt /said\nCMD [\"cat\", \"/said\"]\n"),
            ),
            ("said.txt", "from-a-tar\n".to_string()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            ctx.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        let context = ctx.into_inner().unwrap();
        let bodies = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = bodies.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&req);
                let path = req.split_whitespace().nth(1).unwrap_or("");
                let unchanged = req
                    .to_ascii_lowercase()
                    .contains("if-modified-since: wed, 21 oct 2015 07:28:00 gmt");
                let (head, body): (String, Vec<u8>) = match path {
                    "/file.txt" if unchanged => ("304 Not Modified".into(), vec![]),
                    "/file.txt" => (
                        {
                            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            "200 OK\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT".into()
                        },
                        b"downloaded\n".to_vec(),
                    ),
                    "/redirect" => ("302 Found\r\nLocation: /file.txt".into(), vec![]),
                    "/pkg.tar" => ("200 OK".into(), archive.clone()),
                    "/Dockerfile" => (
                        "200 OK\r\nContent-Type: text/plain".into(),
                        format!("FROM {BASE}\nRUN echo from-a-url > /u\nCMD [\"cat\", \"/u\"]\n")
                            .into_bytes(),
                    ),
                    "/ctx.tar" => ("200 OK".into(), context.clone()),
                    _ => ("404 Not Found".into(), b"no such file\n".to_vec()),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(&body);
            }
        });
        HttpServer { port, bodies }
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The progress of a build: every RUN/COPY/ADD step's title and whether it was CACHED.
fn steps(progress: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, String, bool)> = Vec::new();
    for l in progress.lines() {
        let Some((n, rest)) = l.strip_prefix('#').and_then(|l| l.split_once(' ')) else {
            continue;
        };
        if rest.starts_with('[') && !rest.contains(" 1/") {
            out.push((n.to_string(), rest.to_string(), false));
        } else if rest == "CACHED" {
            if let Some(s) = out.iter_mut().find(|s| s.0 == n) {
                s.2 = true;
            }
        }
    }
    out.into_iter().map(|(_, t, c)| (t, c)).collect()
}

fn build(rl: &Rootless, args: &[&str]) -> (String, String) {
    let mut argv = vec!["build", "--progress", "plain"];
    argv.extend_from_slice(args);
    let out = rl.burrow(&argv);
    assert_eq!(code(&out), 0, "burrow {argv:?}: {}", stderr(&out));
    (stdout(&out), stderr(&out))
}

#[test]
fn rootless_build_multi_stage_cache_and_registry_round_trip() {
    let Some(m) = TestMachine::get() else { return };
    let _lock = m.exclusive("rootless-containerd");
    let Some(rl) = rootless("build") else { return };
    let ctx = rl.dir.join("ctx");
    write(&ctx, "Dockerfile", DOCKERFILE);
    write(&ctx, "src/a.txt", "a\n");
    write(&ctx, "src/b.txt", "b\n");
    write(&ctx, "src/junk.tmp", "junk\n");
    write(&ctx, "src/keep.tmp", "keep\n");
    write(&ctx, "secret.txt", "secret\n");
    write(
        &ctx,
        ".dockerignore",
        "secret.txt\nsrc/*.tmp\n!src/keep.tmp\n",
    );
    write(
        &ctx,
        "Dockerfile.secret",
        "FROM scratch\nCOPY secret.txt /\n",
    );
    let c = ctx.to_str().unwrap();
    let tag = format!(
        "127.0.0.1:5000/burrow-build-test/app:{}",
        std::process::id()
    );
    let iid = rl.dir.join("iid");
    std::fs::write(&iid, "").unwrap();
    let _ = std::process::Command::new("chown")
        .arg(format!("{}:{}", rl.machine.uid, rl.machine.gid))
        .arg(&iid)
        .status();

    // Cold build: the target needs compile and itself, not the unused stage.
    let (_, progress) = build(&rl, &["-t", &tag, "--iidfile", iid.to_str().unwrap(), c]);
    assert!(!progress.contains("unused stage ran"), "{progress}");
    let cold = steps(&progress);
    assert_eq!(cold.len(), 6, "{progress}");
    assert!(cold.iter().all(|(_, cached)| !cached), "{progress}");
    let id1 = std::fs::read_to_string(&iid).unwrap();
    assert!(id1.starts_with("sha256:"), "{id1}");

    // The image runs: the compile stage's file, USER and WORKDIR.
    let out = ok(&rl.burrow(&["run", "--rm", &tag]));
    assert_eq!(out, "a\nb\nhello\n");
    let out = ok(&rl.burrow(&[
        "run",
        "--rm",
        &tag,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $MODE; cat made-by-run",
    ]));
    assert_eq!(out, "1234\n1234\n/app\nslim\ndone\n");
    let labels = ok(&rl.burrow(&["image", "inspect", "-f", "{{json .Config.Labels}}", &tag]));
    assert!(labels.contains("org.example.stage"), "{labels}");

    // The cache's records are not images of the user's: `images` and `image prune -a` skip them.
    let listed = ok(&rl.burrow(&["images", "--format", "{{.Repository}}"]));
    assert!(!listed.contains("burrow.build"), "{listed}");
    ok(&rl.burrow(&["image", "prune", "-a", "-f"]));

    // A rebuild runs nothing and makes the same image.
    let (_, progress) = build(&rl, &["-t", &tag, "--iidfile", iid.to_str().unwrap(), c]);
    let warm = steps(&progress);
    assert_eq!(warm.len(), 6, "{progress}");
    assert!(warm.iter().all(|(_, cached)| *cached), "{progress}");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id1);

    // One copied file changed: its COPY and what follows re-run, the steps before stay cached.
    write(&ctx, "src/b.txt", "B\n");
    let (_, progress) = build(&rl, &["-t", &tag, "--iidfile", iid.to_str().unwrap(), c]);
    let changed = steps(&progress);
    let cached: Vec<bool> = changed.iter().map(|s| s.1).collect();
    // compile: COPY src (changed), RUN cat, COPY . (context changed), RUN test;
    // final: COPY --from (content changed), RUN echo.
    assert_eq!(
        cached,
        [false, false, false, false, false, false],
        "{progress}"
    );
    assert_ne!(std::fs::read_to_string(&iid).unwrap(), id1);
    assert_eq!(ok(&rl.burrow(&["run", "--rm", &tag])), "a\nB\nhello\n");
    // A change only the final stage sees: the compile stage stays cached.
    let (_, progress) = build(&rl, &["-t", &tag, "--label", "extra=1", c]);
    let relabeled = steps(&progress);
    assert!(relabeled.iter().all(|(_, cached)| *cached), "{progress}");

    // The context as a tar on stdin.
    let stdin_tag = format!("{tag}-stdin");
    let script = format!(
        "tar -C {c} -c . | {} build -q -t {stdin_tag} -",
        rl.burrow.display()
    );
    let id = ok(&rl.user(&["sh", "-c", &script]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        ok(&rl.burrow(&["run", "--rm", &stdin_tag])),
        "a\nB\nhello\n"
    );

    // The live view (asked for without a terminal) redraws in place and ends with every step.
    let out = rl.burrow(&["build", "--progress", "tty", "-t", &tag, c]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let live = stderr(&out);
    assert!(live.contains("\x1b[") && live.contains("CACHED"), "{live}");

    // --build-arg and --target: only the compile stage, with the new greeting.
    let compile_tag = format!("{tag}-compile");
    build(
        &rl,
        &[
            "-t",
            &compile_tag,
            "--target",
            "compile",
            "--build-arg",
            "GREETING=bonjour",
            c,
        ],
    );
    assert_eq!(
        ok(&rl.burrow(&["run", "--rm", &compile_tag, "cat", "/out.txt"])),
        "a\nB\nbonjour\n"
    );

    // RUN --mount=type=cache keeps its directory across builds (even --no-cache ones), a bind
    // mount shows context files read-only, and heredocs feed COPY and RUN.
    write(&ctx, "Dockerfile.extra", EXTRA);
    let extra_tag = format!("{tag}-extra");
    let extra = ["-t", &extra_tag, "-f", &format!("{c}/Dockerfile.extra"), c];
    build(&rl, &extra);
    let show = [
        "run",
        "--rm",
        &extra_tag,
        "cat",
        "/runs-seen",
        "/from-bind",
        "/greeting",
        "/heredoc",
        "/owner",
    ];
    assert_eq!(
        ok(&rl.burrow(&show)),
        "1\na\nhello world\nheredoc-ran\n1000:65534\n"
    );
    let mut again = vec!["--no-cache"];
    again.extend_from_slice(&extra);
    build(&rl, &again);
    assert_eq!(
        ok(&rl.burrow(&show)),
        "2\na\nhello world\nheredoc-ran\n1000:65534\n"
    );

    // RUN --mount=type=secret shows a secret given with --secret as a file or a variable, for
    // the step only: the image holds neither; type=tmpfs gives a step an empty tmpfs.
    let sec = rl.dir.join("secret");
    write(&sec, "token.txt", "s3cr3t-value\n");
    write(
        &sec,
        "Dockerfile",
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=secret,id=token test \"$(cat /run/secrets/token)\" = s3cr3t-value && echo file-seen > /seen\n\
             RUN --mount=type=secret,id=token,env=TOKEN test \"$TOKEN\" = s3cr3t-value && echo env-seen >> /seen\n\
             RUN --mount=type=secret,id=absent echo optional-skipped >> /seen\n\
             RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/f && grep -q ' /scratch tmpfs ' /proc/mounts && echo tmpfs-seen >> /seen\n"
        ),
    );
    let sec_tag = format!("{tag}-secret");
    let token = format!("id=token,src={}", sec.join("token.txt").display());
    build(
        &rl,
        &["-t", &sec_tag, "--secret", &token, sec.to_str().unwrap()],
    );
    assert_eq!(
        ok(&rl.burrow(&[
            "run",
            "--rm",
            &sec_tag,
            "sh",
            "-c",
            "cat /seen; test ! -e /run/secrets/token && test ! -e /scratch && echo no-stubs"
        ])),
        "file-seen\nenv-seen\noptional-skipped\ntmpfs-seen\nno-stubs\n"
    );
    ok(&rl.burrow(&["create", "--name", "secret-check", &sec_tag]));
    let exported = rl.dir.join("secret-check.tar");
    ok(&rl.burrow(&["export", "-o", exported.to_str().unwrap(), "secret-check"]));
    ok(&rl.burrow(&["rm", "secret-check"]));
    let tar = std::fs::read(&exported).unwrap();
    assert!(
        !tar.windows(12).any(|w| w == b"s3cr3t-value"),
        "the secret's value is in the image"
    );
    // A required secret the build was not given fails its step, naming it.
    write(
        &sec,
        "Dockerfile.required",
        &format!("FROM {BASE}\nRUN --mount=type=secret,id=npmrc,required true\n"),
    );
    let f = sec.join("Dockerfile.required");
    let out = rl.burrow(&["build", "-f", f.to_str().unwrap(), sec.to_str().unwrap()]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("secret npmrc is required"),
        "{}",
        stderr(&out)
    );

    // ONBUILD triggers are recorded, and run in a build FROM the image.
    let parent = rl.dir.join("onbuild");
    let parent_tag = format!("{tag}-onbuild");
    write(
        &parent,
        "Dockerfile",
        &format!("FROM {BASE}\nONBUILD RUN echo triggered > /onbuild\n"),
    );
    build(&rl, &["-t", &parent_tag, parent.to_str().unwrap()]);
    let child = rl.dir.join("onbuild-child");
    let child_tag = format!("{tag}-onbuild-child");
    write(
        &child,
        "Dockerfile",
        &format!("FROM {parent_tag}\nCMD [\"cat\", \"/onbuild\"]\n"),
    );
    build(&rl, &["-t", &child_tag, child.to_str().unwrap()]);
    assert_eq!(ok(&rl.burrow(&["run", "--rm", &child_tag])), "triggered\n");
    assert_ne!(
        code(&rl.burrow(&["run", "--rm", &parent_tag, "cat", "/onbuild"])),
        0
    );

    // Variables as Docker's builder expands them: global ARG defaults are words (quotes
    // removed, earlier ARGs expanded); FROM --platform; a child stage inherits its parent's
    // ARGs; an ARG without a value is unset; one ENV's pairs all see the environment from
    // before it; every ${...} form; a proxy --build-arg reaches RUN without an ARG; a RUN
    // --mount from= a stage builds that stage; WORKDIR makes its directory (with spaces, owned
    // by USER) in the image even when no RUN uses it; a file copied to a directory the image
    // has goes into it; a symlink source is copied as its target; --chown owns the directories
    // a COPY makes.
    let vars = rl.dir.join("vars");
    let vars_tag = format!("{tag}-vars");
    write(
        &vars,
        "Dockerfile",
        r#"ARG TAG="latest"
ARG IMG=${REG:-127.0.0.1:5000}/burrow-test/busybox
FROM --platform=$BUILDPLATFORM ${IMG}:${TAG} AS parent
ARG INHERITED=from-parent
ENV A=old
FROM parent AS child
ARG NOVAL
ARG P=/usr/local/bin/tool.tar.gz
ENV A=new B=$A X="${P##*/}|${P%%.*}|${P//o/0}|${P#*/}|${NOVAL-unset}|${INHERITED:?must be inherited}"
RUN echo "$X|$B|$A|${HTTP_PROXY:-none}|${NOVAL+set}" > /vars
FROM ${IMG}:${TAG} AS wd
USER nobody
WORKDIR /work/sub dir
RUN touch made && stat -c %u . > owner
WORKDIR /empty/made
FROM ${IMG}:${TAG}
RUN --mount=type=bind,from=child,source=/vars,target=/v cp /v /vars
COPY --from=wd ["/work/sub dir/owner", "/owner"]
COPY --from=wd /empty /empty
COPY tool.sh /bin
COPY link.txt /link-copy
COPY --chown=65534:65534 dir /owned/sub
RUN test -f /bin/tool.sh
CMD ["sh", "-c", "cat /vars /owner /link-copy && test -d /empty/made && echo made && stat -c %u /owned /owned/sub /owned/sub/x"]
"#,
    );
    write(&vars, "tool.sh", "echo tool\n");
    write(&vars, "top.txt", "linked\n");
    write(&vars, "dir/x", "x\n");
    std::os::unix::fs::symlink("top.txt", vars.join("link.txt")).unwrap();
    build(
        &rl,
        &[
            "-t",
            &vars_tag,
            "--build-arg",
            "HTTP_PROXY=http://proxy.invalid:3128",
            vars.to_str().unwrap(),
        ],
    );
    assert_eq!(
        ok(&rl.burrow(&["run", "--rm", &vars_tag])),
        "tool.tar.gz|/usr/local/bin/tool|/usr/l0cal/bin/t00l.tar.gz|usr/local/bin/tool.tar.gz|unset|from-parent|old|new|http://proxy.invalid:3128|\n65534\nlinked\nmade\n65534\n65534\n65534\n"
    );
    let env = ok(&rl.burrow(&["image", "inspect", "-f", "{{json .Config.Env}}", &vars_tag]));
    assert!(
        !env.contains("proxy.invalid"),
        "a proxy arg went into the image: {env}"
    );

    // An untagged build's image is removed by its ID (the build cache's own records of it stay
    // hidden, not "other repositories").
    let untagged = rl.dir.join("untagged");
    write(
        &untagged,
        "Dockerfile",
        &format!("FROM {BASE}\nRUN echo untagged > /u\n"),
    );
    let out = rl.burrow(&["build", "-q", untagged.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let gone = rl.burrow(&["rmi", &id]);
    assert_eq!(code(&gone), 0, "rmi {id}: {}", stderr(&gone));

    // A COPY of what .dockerignore excludes says so, with the line.
    let out = rl.burrow(&[
        "build",
        "--progress",
        "plain",
        "-f",
        &format!("{c}/Dockerfile.secret"),
        c,
    ]);
    assert_ne!(code(&out), 0);
    let err = stderr(&out);
    assert!(
        err.contains("line 2") && err.contains("excluded by .dockerignore"),
        "{err}"
    );

    // A failing RUN prints its output, exit code and line.
    let bad = rl.dir.join("bad");
    write(
        &bad,
        "Dockerfile",
        &format!("FROM {BASE}\nRUN echo about to fail; exit 7\n"),
    );
    let out = rl.burrow(&["build", "-q", bad.to_str().unwrap()]);
    assert_ne!(code(&out), 0);
    let err = stderr(&out);
    assert!(
        err.contains("line 2") && err.contains("code 7") && err.contains("about to fail"),
        "{err}"
    );

    // build --push and -o type=image,name=..,push=true name the image and push it (buildx's);
    // read back by skopeo. --push without a name says what to add.
    let pushed_tag = format!("{tag}-pushed");
    let (out, _) = build(
        &rl,
        &["--push", "-t", &pushed_tag, &untagged.display().to_string()],
    );
    assert!(out.contains("digest: sha256:"), "{out}");
    let also = format!("{tag}-exported");
    build(
        &rl,
        &[
            "-o",
            &format!("type=image,name={also},push=true"),
            &untagged.display().to_string(),
        ],
    );
    for t in [&pushed_tag, &also] {
        let inspect = ok(&rl.user(&[
            "skopeo",
            "inspect",
            "--tls-verify=false",
            &format!("docker://{t}"),
        ]));
        assert!(inspect.contains("\"Digest\""), "{inspect}");
        let _ = rl.burrow(&["rmi", t]);
    }
    let out = rl.burrow(&["build", "--push", &untagged.display().to_string()]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("add -t"), "{}", stderr(&out));

    // Pushed to the registry, read back by skopeo, pulled and run by rootless podman.
    ok(&rl.burrow(&["push", &tag]));
    let inspect = ok(&rl.user(&[
        "skopeo",
        "inspect",
        "--tls-verify=false",
        &format!("docker://{tag}"),
    ]));
    assert!(inspect.contains("org.example.stage"), "{inspect}");
    let pulled = rl.user(&["podman", "pull", "-q", "--tls-verify=false", &tag]);
    // Podman's defaults here (crun, systemd cgroups) refuse cgroup v1 hybrid hosts.
    let ran = rl.user(&[
        "podman",
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        "run",
        "--rm",
        "--net=none",
        &tag,
    ]);
    let _ = rl.user(&["podman", "rmi", "-f", &tag]);
    // Rootless podman keeps a pause process holding its namespaces: end it.
    let pause = rl.runtime_dir.join("libpod/tmp/pause.pid");
    if let Ok(pid) = std::fs::read_to_string(&pause) {
        let _ = rl.user(&["kill", "-9", pid.trim()]);
    }
    ok(&pulled);
    assert_eq!(ok(&ran), "a\nB\nhello\n");

    // -o type=oci: an archive umoci unpacks (as the test user), nothing named in the store.
    let archive = rl.home.join("app-oci.tar");
    let oci_name = format!("{tag}-oci");
    build(
        &rl,
        &[
            "-t",
            &oci_name,
            "-o",
            &format!("type=oci,dest={}", archive.display()),
            c,
        ],
    );
    let layout = rl.home.join("layout");
    let bundle = rl.home.join("bundle");
    let (l, b) = (layout.to_str().unwrap(), bundle.to_str().unwrap());
    ok(&rl.user(&["mkdir", l]));
    ok(&rl.user(&["tar", "-xf", archive.to_str().unwrap(), "-C", l]));
    let image = format!("{l}:{}", oci_name.rsplit(':').next().unwrap());
    ok(&rl.user(&["umoci", "unpack", "--rootless", "--image", &image, b]));
    let unpacked = std::fs::read_to_string(bundle.join("rootfs/app/out.txt")).unwrap();
    assert_eq!(unpacked, "a\nB\nhello\n");
    let config = std::fs::read_to_string(bundle.join("config.json")).unwrap();
    assert!(
        config.contains("\"cwd\": \"/app\"") || config.contains("\"cwd\":\"/app\""),
        "{config}"
    );
    assert_ne!(
        code(&rl.burrow(&["image", "inspect", &oci_name])),
        0,
        "-o also named the image"
    );

    // -o DIR (type=local): the final stage's files in a directory of the user's; type=tar:
    // the same files as one tar; neither names an image.
    let files = rl.home.join("files-out");
    build(&rl, &["-o", files.to_str().unwrap(), c]);
    assert_eq!(
        std::fs::read_to_string(files.join("app/out.txt")).unwrap(),
        "a\nB\nhello\n"
    );
    let owner =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(files.join("app/out.txt")).unwrap());
    assert_eq!(
        owner, rl.machine.uid,
        "the local exporter's files are the user's"
    );
    let files_tar = rl.home.join("files.tar");
    build(
        &rl,
        &["-o", &format!("type=tar,dest={}", files_tar.display()), c],
    );
    let listing = ok(&rl.user(&["tar", "-tf", files_tar.to_str().unwrap()]));
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "app/out.txt"),
        "{listing}"
    );

    // ADD of URLs: downloaded by the build (a redirect followed), named from the URL's path,
    // mode 0600 and dated by Last-Modified, unpacked only with --unpack=true (a local archive
    // kept whole with --unpack=false); --checksum verified; a failed
    // download, a wrong checksum and COPY of a URL say what went wrong and where.
    let server = HttpServer::start();
    let url = |p: &str| format!("http://127.0.0.1:{}/{p}", server.port);
    let body = "downloaded\n";
    let sum = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(body))
    };
    let add = rl.dir.join("add");
    let add_tag = format!("{tag}-add");
    write(
        &add,
        "Dockerfile",
        &format!(
            "FROM {BASE}\nADD {} /dl/\nADD {} /dl/renamed.txt\nADD --chmod=644 --checksum=sha256:{sum} {} /dl/checked\nADD {} /dl/\nADD --unpack=true {} /unpacked/\nADD --unpack=false kept.tar /kept/\nCMD [\"sh\", \"-c\", \"cd /dl && stat -c '%n %a %Y' file.txt checked && cat renamed.txt checked && tar -tf pkg.tar && cat /unpacked/inner.txt && ls /kept\"]\n",
            url("file.txt"),
            url("redirect"),
            url("file.txt"),
            url("pkg.tar"),
            url("pkg.tar"),
        ),
    );
    // A local archive that --unpack=false keeps as it is.
    let mut kept = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_cksum();
    kept.append_data(&mut h, "k.txt", &b"kept\n"[..]).unwrap();
    std::fs::write(add.join("kept.tar"), kept.into_inner().unwrap()).unwrap();
    let (_, progress) = build(&rl, &["-t", &add_tag, add.to_str().unwrap()]);
    assert_eq!(steps(&progress).len(), 6, "{progress}");
    assert_eq!(
        ok(&rl.burrow(&["run", "--rm", &add_tag])),
        "file.txt 600 1445412480\nchecked 644 1445412480\ndownloaded\ndownloaded\ninner.txt\ninner\nkept.tar\n"
    );
    // Built again: each URL revalidated (a conditional GET, answered 304) or, with --checksum
    // naming what is cached, not asked at all; the steps cached.
    let sent = server.bodies.load(std::sync::atomic::Ordering::SeqCst);
    let (_, progress) = build(&rl, &["-t", &add_tag, add.to_str().unwrap()]);
    assert!(steps(&progress).iter().all(|(_, c)| *c), "{progress}");
    assert_eq!(
        server.bodies.load(std::sync::atomic::Ordering::SeqCst),
        sent,
        "file.txt was sent again instead of revalidated"
    );

    let _ = rl.burrow(&["rmi", "-f", &add_tag]);
    for (dockerfile, want) in [
        (
            format!("ADD {} /x\n", url("missing")),
            "answered 404".to_string(),
        ),
        (
            format!(
                "ADD --checksum=sha256:{} {} /x\n",
                "0".repeat(64),
                url("file.txt")
            ),
            format!("has checksum sha256:{sum}"),
        ),
        (
            format!("COPY {} /x\n", url("file.txt")),
            "use ADD".to_string(),
        ),
        (
            format!(
                "ADD --checksum=sha256:{} https://example.invalid/r.git /x\n",
                "0".repeat(64)
            ),
            "is a Git repository".to_string(),
        ),
    ] {
        write(
            &add,
            "Dockerfile.bad",
            &format!("FROM {BASE}\n{dockerfile}"),
        );
        let out = rl.burrow(&[
            "build",
            "-f",
            add.join("Dockerfile.bad").to_str().unwrap(),
            add.to_str().unwrap(),
        ]);
        assert_ne!(code(&out), 0, "{dockerfile}");
        let err = stderr(&out);
        assert!(
            err.contains(&want) && err.contains("line 2"),
            "{dockerfile}: {err}"
        );
    }

    // COPY --exclude (Dockerfile 1.19): a name, a glob and `**` under a directory left out,
    // an exception kept; a wildcard source's matches filtered.
    let ex = rl.dir.join("exclude");
    for (f, t) in [
        ("app/main.txt", "m\n"),
        ("app/notes.md", "n\n"),
        ("app/node_modules/x/i.js", "j\n"),
        ("app/docs/a.md", "a\n"),
        ("app/docs/keep.md", "k\n"),
        ("homea.txt", "ha\n"),
        ("homeb.rs", "hb\n"),
    ] {
        write(&ex, f, t);
    }
    write(
        &ex,
        "Dockerfile",
        &format!(
            "FROM {BASE}\nCOPY --exclude=node_modules --exclude=*.md --exclude=docs/** --exclude=!docs/keep.md app /app/\nCOPY --exclude=*.txt home* /h/\nCMD [\"sh\", \"-c\", \"find /app /h | sort\"]\n"
        ),
    );
    let ex_tag = format!("{tag}-exclude");
    build(&rl, &["-t", &ex_tag, ex.to_str().unwrap()]);
    assert_eq!(
        ok(&rl.burrow(&["run", "--rm", &ex_tag])),
        "/app\n/app/docs\n/app/docs/keep.md\n/app/main.txt\n/h\n/h/homeb.rs\n"
    );
    let _ = rl.burrow(&["rmi", "-f", &ex_tag]);

    // ADD of a Git repository (git daemon as the test user): a tag's subdirectory into a
    // directory, the default branch with .git kept (--keep-git-dir), a missing ref refused.
    let repo = rl.dir.join("repos/app.git");
    let gitport = free_port();
    let setup = format!(
        "set -e; git init -q -b main {r}; cd {r}; git config user.email t@e; git config user.name t; \
         mkdir sub; echo v1 > sub/file; echo top > top.txt; git add -A; git commit -qm one; git tag v1; \
         echo v2 > sub/file; printf 'FROM {BASE}\\nCOPY file /from-git\\nCMD [\"cat\", \"/from-git\"]\\n' > sub/Dockerfile; \
         git add -A; git commit -qm two",
        r = repo.display()
    );
    ok(&rl.user(&["sh", "-c", &setup]));
    // git-daemon itself (not `git daemon`, which would leave it behind when killed).
    let exec_path = std::process::Command::new("git")
        .arg("--exec-path")
        .output()
        .unwrap();
    let git_daemon =
        Path::new(String::from_utf8_lossy(&exec_path.stdout).trim()).join("git-daemon");
    // Stopped with its process group when the test ends, passed or not.
    let mut git_cleanup = burrow_testsupport::Cleanup::new();
    let mut git_cmd = rl.machine.user_command(&git_daemon);
    git_cmd
        .args([
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            &format!("--port={gitport}"),
            &format!("--base-path={}", rl.dir.join("repos").display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    git_cleanup.spawn(&mut git_cmd);
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", gitport)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let git_url = format!("git://127.0.0.1:{gitport}/app.git");
    write(
        &add,
        "Dockerfile.git",
        &format!(
            "FROM {BASE}\nADD {git_url}#v1:sub /g/\nADD --keep-git-dir=true {git_url} /full\nCMD [\"sh\", \"-c\", \"cat /g/file /full/sub/file /full/top.txt; ls /g; test -d /full/.git && echo has-git\"]\n"
        ),
    );
    let git_tag = format!("{tag}-git");
    let out = rl.burrow(&[
        "build",
        "-t",
        &git_tag,
        "-f",
        add.join("Dockerfile.git").to_str().unwrap(),
        add.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        ok(&rl.burrow(&["run", "--rm", &git_tag])),
        "v1\nv2\ntop\nfile\nhas-git\n"
    );
    let _ = rl.burrow(&["rmi", "-f", &git_tag]);
    write(
        &add,
        "Dockerfile.git",
        &format!("FROM {BASE}\nADD {git_url}#no-such-ref /x/\n"),
    );
    let out = rl.burrow(&[
        "build",
        "-f",
        add.join("Dockerfile.git").to_str().unwrap(),
        add.to_str().unwrap(),
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("cannot check out") && stderr(&out).contains("no-such-ref"),
        "{}",
        stderr(&out)
    );
    // The repository as the build's context (`burrow build URL#REF:DIR`), and a URL of a
    // Dockerfile and of a tar archive.
    let remote_tag = format!("{tag}-remote");
    build(&rl, &["-t", &remote_tag, &format!("{git_url}#main:sub")]);
    assert_eq!(ok(&rl.burrow(&["run", "--rm", &remote_tag])), "v2\n");
    build(&rl, &["-t", &remote_tag, &url("Dockerfile")]);
    assert_eq!(
        ok(&rl.burrow(&["run", "--rm", &remote_tag])),
        "from-a-url\n"
    );
    build(&rl, &["-t", &remote_tag, &url("ctx.tar")]);
    assert_eq!(
        ok(&rl.burrow(&["run", "--rm", &remote_tag])),
        "from-a-tar\n"
    );
    let _ = rl.burrow(&["rmi", "-f", &remote_tag]);

    // Named contexts (--build-context): an image standing in for a FROM name, a directory
    // (with its own .dockerignore) for COPY --from, RUN --mount from= and as a FROM base, a
    // Git repository; RUN steps get --add-host, --shm-size and --ulimit.
    let named = rl.dir.join("named");
    let extra = rl.dir.join("named-extra");
    write(&extra, "data.txt", "extra-data\n");
    write(&extra, "private.txt", "private\n");
    write(&extra, ".dockerignore", "private.txt\n");
    write(
        &named,
        "Dockerfile",
        "FROM mybase\n\
         COPY --from=extra data.txt /from-extra.txt\n\
         COPY --from=repo file /from-repo.txt\n\
         RUN --mount=from=extra,target=/mnt/extra cp /mnt/extra/data.txt /mounted.txt\n\
         RUN grep dbhost /etc/hosts | tr -s ' \\t' ' ' > /hosts.txt; df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2 > /shm.txt; ulimit -n > /nofile.txt\n\
         FROM extra AS files\n\
         FROM scratch\n\
         COPY --from=0 /from-extra.txt /from-repo.txt /mounted.txt /hosts.txt /shm.txt /nofile.txt /\n\
         COPY --from=files / /dircontext/\n",
    );
    let out_dir = rl.dir.join("named-out");
    let mybase = format!("mybase=docker-image://{BASE}");
    let extra_ctx = format!("extra={}", extra.display());
    let repo_ctx = format!("repo={git_url}#v1:sub");
    let named_args = [
        "--build-context",
        mybase.as_str(),
        "--build-context",
        extra_ctx.as_str(),
        "--build-context",
        repo_ctx.as_str(),
        "--add-host",
        "dbhost:10.1.2.3",
        "--shm-size",
        "96m",
        "--ulimit",
        "nofile=1000:2000",
        "-o",
    ];
    let dest = format!("type=local,dest={}", out_dir.display());
    let mut argv: Vec<&str> = named_args.to_vec();
    argv.extend([dest.as_str(), named.to_str().unwrap()]);
    build(&rl, &argv);
    let read = |f: &str| std::fs::read_to_string(out_dir.join(f)).unwrap_or_default();
    assert_eq!(read("from-extra.txt"), "extra-data\n");
    assert_eq!(read("mounted.txt"), "extra-data\n");
    assert_eq!(read("from-repo.txt"), "v1\n");
    assert_eq!(read("hosts.txt"), "10.1.2.3 dbhost\n");
    assert_eq!(read("shm.txt"), "98304\n");
    assert_eq!(read("nofile.txt"), "1000\n");
    assert_eq!(read("dircontext/data.txt"), "extra-data\n");
    assert!(
        !out_dir.join("dircontext/private.txt").exists(),
        "the named context's .dockerignore applies"
    );
    // Another host is another RUN: its cache key includes the settings.
    argv[7] = "dbhost:10.9.9.9";
    let (_, progress) = build(&rl, &argv);
    assert_eq!(read("hosts.txt"), "10.9.9.9 dbhost\n", "{progress}");
    let out = rl.burrow(&[
        "build",
        "--build-context",
        "nothing",
        named.to_str().unwrap(),
    ]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("NAME=VALUE"), "{}", stderr(&out));
    let out = rl.burrow(&[
        "build",
        "--build-context",
        "x=oci-layout:///l",
        named.to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("burrow load"), "{}", stderr(&out));
    drop(git_cleanup);

    // RUN --mount=type=ssh reaches the agent --ssh names (the host's ssh-add, with its
    // libraries, run from a bind mount of the context lists the agent's key); a step without
    // the mount has no SSH_AUTH_SOCK.
    if Path::new("/usr/bin/ssh-agent").exists() {
        let sshctx = rl.dir.join("sshctx");
        write(&sshctx, "placeholder", "");
        let hostbin = sshctx.join("hostbin");
        std::fs::create_dir_all(&hostbin).unwrap();
        std::fs::copy("/usr/bin/ssh-add", hostbin.join("ssh-add")).unwrap();
        let ldd = std::process::Command::new("ldd")
            .arg("/usr/bin/ssh-add")
            .output()
            .unwrap();
        for lib in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            let name = Path::new(lib).file_name().unwrap();
            std::fs::copy(lib, hostbin.join(name)).unwrap();
        }
        let _ = std::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", rl.machine.uid, rl.machine.gid))
            .arg(&sshctx)
            .status();
        let agent = rl.home.join("agent.sock");
        let key = rl.home.join("id_test");
        let key_s = key.display().to_string();
        ok(&rl.user(&[
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "burrow-ssh-test",
            "-f",
            &key_s,
        ]));
        let mut agent_proc = rl
            .machine
            .user_command("ssh-agent")
            .args(["-D", "-a", agent.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..50 {
            if agent.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let sock_env = format!("SSH_AUTH_SOCK={}", agent.display());
        ok(&rl.user(&["env", &sock_env, "ssh-add", "-q", &key_s]));
        write(
            &sshctx,
            "Dockerfile",
            &format!(
                "FROM {BASE}\nRUN --mount=type=ssh --mount=type=bind,source=hostbin,target=/h /h/ld-linux-x86-64.so.2 --library-path /h /h/ssh-add -l > /keys; echo \"$SSH_AUTH_SOCK\" > /sock\nRUN echo \"[$SSH_AUTH_SOCK]\" > /after\nCMD [\"sh\", \"-c\", \"cat /sock /after; grep -c burrow-ssh-test /keys\"]\n"
            ),
        );
        let ssh_tag = format!("{tag}-ssh");
        let burrow = rl.burrow.to_str().unwrap();
        let out = rl.user(&[
            "env",
            &sock_env,
            burrow,
            "build",
            "--ssh",
            "default",
            "-t",
            &ssh_tag,
            sshctx.to_str().unwrap(),
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(
            ok(&rl.burrow(&["run", "--rm", &ssh_tag])),
            "/run/buildkit/ssh_agent.0\n[]\n1\n"
        );
        let _ = rl.burrow(&["rmi", "-f", &ssh_tag]);
        // required, without --ssh: refused with what to give.
        write(
            &sshctx,
            "Dockerfile",
            &format!("FROM {BASE}\nRUN --mount=type=ssh,required true\n"),
        );
        let out = rl.burrow(&["build", sshctx.to_str().unwrap()]);
        assert_ne!(code(&out), 0);
        assert!(stderr(&out).contains("--ssh default"), "{}", stderr(&out));
        let _ = agent_proc.kill();
        let _ = agent_proc.wait();
    }

    // Through the proxy the environment names (tinyproxy as the test user): plain HTTP as
    // absolute-form requests, HTTPS through a CONNECT tunnel, loopback addresses directly.
    match (host_ip(), Path::new("/usr/bin/tinyproxy").exists()) {
        (Some(ip), true) => {
            let far = HttpServer::start_on(&ip);
            let pport = free_port();
            let log = rl.dir.join("tinyproxy.log");
            write(&rl.dir, "tinyproxy.conf", &format!(
                "Port {pport}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Info\nMaxClients 20\nAllow 127.0.0.1\n",
                log.display()
            ));
            ok(&rl.user(&["touch", log.to_str().unwrap()]));
            let conf = rl.dir.join("tinyproxy.conf");
            let mut proxy = rl
                .machine
                .user_command("tinyproxy")
                .args(["-d", "-c", conf.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            for _ in 0..50 {
                if std::net::TcpStream::connect(("127.0.0.1", pport)).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let far_url = format!("http://{ip}:{}/file.txt", far.port);
            write(&add, "Dockerfile.proxy", &format!(
                "FROM {BASE}\nADD {far_url} /far.txt\nADD {} /near.txt\nRUN cat /far.txt /near.txt\n",
                url("file.txt")
            ));
            let via = format!("HTTP_PROXY=http://127.0.0.1:{pport}");
            let df = add.join("Dockerfile.proxy");
            let burrow = rl.burrow.to_str().unwrap();
            let out = rl.user(&[
                "env",
                &via,
                burrow,
                "build",
                "--no-cache",
                "-f",
                df.to_str().unwrap(),
                add.to_str().unwrap(),
            ]);
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            let seen = std::fs::read_to_string(&log).unwrap();
            assert!(seen.contains(&format!("GET {far_url}")), "{seen}");
            assert!(
                !seen.contains("127.0.0.1:"),
                "a loopback download went through the proxy: {seen}"
            );
            // HTTPS goes through CONNECT; the test server speaks no TLS, so the handshake fails
            // after the tunnel is made, and the error names the URL.
            write(
                &add,
                "Dockerfile.proxy",
                &format!(
                    "FROM {BASE}\nADD https://{ip}:{}/file.txt /far.txt\n",
                    far.port
                ),
            );
            let via = format!("HTTPS_PROXY=http://127.0.0.1:{pport}");
            let out = rl.user(&[
                "env",
                &via,
                burrow,
                "build",
                "-f",
                df.to_str().unwrap(),
                add.to_str().unwrap(),
            ]);
            assert_ne!(code(&out), 0);
            assert!(
                stderr(&out).contains(&format!(
                    "cannot download https://{ip}:{}/file.txt",
                    far.port
                )),
                "{}",
                stderr(&out)
            );
            let seen = std::fs::read_to_string(&log).unwrap();
            assert!(
                seen.contains(&format!("CONNECT {ip}:{}", far.port)),
                "{seen}"
            );
            let _ = proxy.kill();
            let _ = proxy.wait();
        }
        _ => eprintln!(
            "note: no non-loopback address or no tinyproxy: ADD through a proxy not tested"
        ),
    }

    // builder prune empties the cache (ADD's kept downloads too): the next build runs its
    // steps again.
    let out = ok(&rl.burrow(&["builder", "prune", "-f"]));
    assert!(out.contains("Deleted build cache objects"), "{out}");
    let sent = server.bodies.load(std::sync::atomic::Ordering::SeqCst);
    build(&rl, &[add.to_str().unwrap()]);
    assert!(
        server.bodies.load(std::sync::atomic::Ordering::SeqCst) > sent,
        "builder prune left ADD's downloads"
    );
    let out = ok(&rl.burrow(&["builder", "prune", "-f"]));
    assert!(out.contains("Deleted build cache objects"), "{out}");
    let (_, progress) = build(&rl, &["-t", &tag, c]);
    assert!(
        steps(&progress).iter().all(|(_, cached)| !cached),
        "{progress}"
    );

    // system prune takes the build cache too (as Docker's): the rebuild's records go.
    let out = ok(&rl.burrow(&["system", "prune", "-f"]));
    assert!(
        out.contains("Deleted build cache objects:") && out.contains("burrow.build/cache:"),
        "{out}"
    );

    let volumes = ok(&rl.burrow(&["volume", "ls", "-q"]));
    assert!(!volumes.contains("burrow-build-cache-"), "{volumes}");

    for t in [
        &tag,
        &compile_tag,
        &extra_tag,
        &stdin_tag,
        &parent_tag,
        &child_tag,
        &vars_tag,
    ] {
        let _ = rl.burrow(&["rmi", "-f", t]);
    }
    assert!(
        rl.ctr(&["c", "ls", "-q"]).trim().is_empty(),
        "build containers are left"
    );
}
