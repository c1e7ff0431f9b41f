//! burrow inside Slurm jobs, on the one-node cluster tests/provision.sh sets up, as the
//! unprivileged test user (no systemd, no login session in the job): a batch job runs a
//! container from the registry on the job's own containerd; two steps of a job share it;
//! `srun -n 2` gives each task's container its rank; two jobs at once keep apart; nothing of a
//! job is left once it ends; a later job runs an image from the shared store without a pull;
//! `--network host` (a job's default) is the node's network; the
//! pyxis-style flags of `burrow srun` (image, mounts, workdir, a named container kept between
//! steps); a CDI device from the user's spec; and a user without subordinate ids runs an image
//! whose files have several owners.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use burrow_testsupport::{wait_for, TestMachine};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The provisioned machine, when its cluster is up (provision.sh ran) for the test user.
fn machine_with_cluster() -> Option<TestMachine> {
    let m = TestMachine::get()?;
    let out = m.run_user(&["sinfo", "-h", "-o", "%T"], Duration::from_secs(20));
    let state = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() && ["idle", "mixed", "alloc"].iter().any(|s| state.contains(s)) {
        return Some(m);
    }
    eprintln!("skipping: no Slurm cluster (run tests/provision.sh as root)");
    None
}

/// A job's work dir in the user's home: scripts and output files.
struct Work {
    dir: PathBuf,
    bin_dir: PathBuf,
}

impl Work {
    fn new(m: &TestMachine, name: &str) -> Work {
        let burrow = Path::new(env!("CARGO_BIN_EXE_burrow"));
        m.install_bin(burrow.with_file_name("burrow-rootlesskit"));
        let bin = m.install_bin(burrow);
        let dir = Path::new(&m.home).join(format!("slurm-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(m.uid), Some(m.gid)).unwrap();
        Work {
            dir,
            bin_dir: bin.parent().unwrap().to_path_buf(),
        }
    }

    fn write(&self, m: &TestMachine, name: &str, body: &str, mode: u32) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&p, Some(m.uid), Some(m.gid)).unwrap();
        p
    }

    /// `sbatch --wait` of `script` as `m`'s user; returns (job id, exit ok, output file's text).
    fn sbatch(
        &self,
        m: &TestMachine,
        name: &str,
        args: &[&str],
        script: &str,
    ) -> (String, bool, String) {
        let path = self.write(
            m,
            &format!("{name}.sh"),
            &format!("#!/bin/sh\n{script}"),
            0o755,
        );
        let out_file = self.dir.join(format!("{name}.out"));
        let mut cmd = m.user_command("sbatch");
        cmd.env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin_dir.display()),
        )
        .arg("--wait")
        .arg("--parsable")
        .arg(format!("--output={}", out_file.display()))
        .args(args)
        .arg(&path);
        let out = burrow_testsupport::run_with_timeout(&mut cmd, Duration::from_secs(300));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let log = std::fs::read_to_string(&out_file).unwrap_or_default();
        (id, out.status.success(), log)
    }
}

impl Work {
    /// A job of `m`'s that squashes `img` into the store `dir`, and leaves nothing.
    fn squash_to(&self, m: &TestMachine, img: &str, dir: &Path) {
        let (id, ok, log) = self.sbatch(
            m,
            "squash",
            &[],
            &format!("burrow image squash {img} --to {}\n", dir.display()),
        );
        assert!(ok, "job {id} failed:\n{log}");
        assert_nothing_left(m.uid, &id);
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Once job `id` of user `uid` is over, its dir goes and no process or mount mentions it.
fn assert_nothing_left(uid: u32, id: &str) {
    let dir = format!("/tmp/burrow-{uid}-job{id}");
    // The job's containers carry its id in their environment (keep-id ones in user namespaces
    // of their own too).
    let job_env = format!("\0SLURM_JOB_ID={id}\0");
    let gone = wait_for(Duration::from_secs(60), || {
        !Path::new(&dir).exists()
            && processes_mentioning(&dir).is_empty()
            && processes_mentioning(&job_env).is_empty()
    });
    assert!(
        gone,
        "job {id}: left behind: dir exists={}, processes {:?} {:?}",
        Path::new(&dir).exists(),
        processes_mentioning(&dir),
        processes_mentioning(&job_env)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir),
        "job {id}: a mount is left: {mounts}"
    );
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let hay = String::from_utf8_lossy(&cmd).to_string() + &String::from_utf8_lossy(&env);
        if hay.contains(needle) {
            found.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            ));
        }
    }
    found
}

#[test]
fn jobs_run_containers_on_their_own_containerd_and_leave_nothing() {
    let Some(m) = machine_with_cluster() else {
        return;
    };
    let w = Work::new(&m, "jobs");
    let img = &m.image_busybox;
    // One job, two steps and a batch-step command: the image is pulled once, a container
    // started by one step is seen by the next, each task's container has its rank, and
    // `--network host` (the default in a job) is the node's own network namespace.
    let script = format!(
        "set -e
burrow run --rm {img} grep -c root /etc/passwd
srun -n 1 burrow run -d --name keeper {img} sleep 300
srun -n 1 burrow ps --format 'seen={{{{.Names}}}}'
srun -n 2 -l burrow run --rm {img} sh -c 'echo rank=$SLURM_PROCID of=$SLURM_NTASKS'
burrow run --rm {img} readlink /proc/self/ns/net
burrow pull {img}
"
    );
    let (id, ok, log) = w.sbatch(&m, "steps", &["-n", "2"], &script);
    assert!(ok, "job {id} failed:\n{log}");
    assert!(log.contains("starting its rootless containerd"), "{log}");
    assert!(
        log.contains("seen=keeper"),
        "steps do not share the job's containerd:\n{log}"
    );
    assert!(
        log.contains("rank=0 of=2") && log.contains("rank=1 of=2"),
        "{log}"
    );
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(
        log.contains(&*host_net.to_string_lossy()),
        "--network host is not the node's network ({}):\n{log}",
        host_net.display()
    );
    assert!(log.contains("Image is up to date"), "pulled twice:\n{log}");
    // The container left running and the job's containerd go with the job.
    assert_nothing_left(m.uid, &id);

    // A job squashes the image into a shared store; a later job (a fresh containerd) runs it
    // from there without a pull.
    let store = w.dir.join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::os::unix::fs::chown(&store, Some(m.uid), Some(m.gid)).unwrap();
    let s = store.display();
    w.squash_to(&m, img, &store);
    let (id, ok, log) = w.sbatch(
        &m,
        "fromstore",
        &[],
        &format!("BURROW_IMAGE_STORE={s} burrow run --rm --pull never {img} echo from-the-store\n"),
    );
    assert!(ok && log.contains("from-the-store"), "job {id}:\n{log}");
    assert!(!log.contains("pulling"), "job {id} pulled:\n{log}");
    assert_nothing_left(m.uid, &id);

    // Two jobs of the user at once on the node keep apart.
    let both = std::thread::scope(|s| {
        let a = s.spawn(|| {
            w.sbatch(
                &m,
                "a",
                &[],
                &format!("burrow run --rm --name same {img} echo from-a"),
            )
        });
        let b = s.spawn(|| {
            w.sbatch(
                &m,
                "b",
                &[],
                &format!("burrow run --rm --name same {img} echo from-b"),
            )
        });
        [a.join().unwrap(), b.join().unwrap()]
    });
    for ((id, ok, log), want) in both.iter().zip(["from-a", "from-b"]) {
        assert!(*ok && log.contains(want), "job {id}:\n{log}");
        assert_nothing_left(m.uid, id);
    }
}

#[test]
fn burrow_srun_takes_pyxis_flags() {
    let Some(m) = machine_with_cluster() else {
        return;
    };
    let w = Work::new(&m, "srun");
    w.write(&m, "data.txt", "shared-input\n", 0o644);
    // A CDI device from the user's own ~/.config/cdi reaches a job's container.
    let kind = format!("slurm{}.example.com/dev", std::process::id());
    let cdi = Path::new(&m.home).join(".config/cdi");
    std::fs::create_dir_all(&cdi).unwrap();
    let spec = cdi.join(format!("slurm-{}.yaml", std::process::id()));
    let spec_text = format!(
        "cdiVersion: \"0.6.0\"\nkind: {kind}\ndevices:\n  - name: gpu0\n    containerEdits:\n      env: [SLURM_CDI=gpu0-visible]\n      deviceNodes:\n        - path: /dev/fakegpu0\n          hostPath: /dev/null\n"
    );
    std::fs::write(&spec, spec_text).unwrap();
    for p in [cdi.parent().unwrap(), &cdi, &spec] {
        std::os::unix::fs::chown(p, Some(m.uid), Some(m.gid)).unwrap();
    }
    struct RemoveSpec(PathBuf);
    impl Drop for RemoveSpec {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _spec = RemoveSpec(spec);
    let img = &m.image_busybox;
    // The same image in enroot's URI form, as pyxis users write it (REGISTRY#IMAGE).
    let enroot = format!("docker://{}", img.replacen('/', "#", 1));
    let data = w.dir.display();
    let script = format!(
        "set -e
burrow srun -n 2 --container-image={img} --container-mounts={data}:/in:ro --container-workdir=/in sh -c 'echo task=$SLURM_PROCID $(cat data.txt) $(pwd)'
burrow srun --container-image='{enroot}' sh -c 'echo enroot-form-ran'
burrow srun --container-name=work --container-image={img} sh -c 'echo kept > /tmp/mark'
burrow srun --container-name=work --container-image={img} cat /tmp/mark
burrow run --name mk-nosleep {img} rm /bin/sleep
burrow commit mk-nosleep burrow-test/nosleep:1 >/dev/null
burrow rm mk-nosleep >/dev/null
burrow run --rm burrow-test/nosleep:1 sleep 1 || echo image-has-no-sleep
burrow srun --container-name=bare --container-image=burrow-test/nosleep:1 sh -c 'echo bare-kept > /tmp/mark'
burrow srun --container-name=bare --container-image=burrow-test/nosleep:1 cat /tmp/mark
burrow srun --container-image={img} --container-mounts={data}:/in:ro sh -c 'touch /in/x' || echo read-only-refused
burrow run --rm --device {kind}=gpu0 {img} sh -c 'echo $SLURM_CDI; ls /dev/fakegpu0'
burrow srun --container-image={img} --container-mounts={data}:/out --no-container-remap-root sh -c 'echo own=$(id -u):$(id -g) > /out/own.txt; cat /out/own.txt'
burrow srun --container-name=ownnamed --container-image={img} --no-container-remap-root sh -c 'echo named-own=$(id -u)'
burrow srun --container-image={img} --container-remap-root sh -c 'echo remapped=$(id -u)'
"
    );
    let (id, ok, log) = w.sbatch(&m, "pyxis", &["-n", "2"], &script);
    assert!(ok, "job {id} failed:\n{log}");
    for t in ["task=0 shared-input /in", "task=1 shared-input /in"] {
        assert!(log.contains(t), "missing {t:?}:\n{log}");
    }
    assert!(
        log.contains("kept"),
        "the named container was not reused:\n{log}"
    );
    assert!(
        log.contains("enroot-form-ran"),
        "docker://REGISTRY#IMAGE did not run:\n{log}"
    );
    // A named container needs nothing from its image to stay up (pyxis needs nothing either).
    assert!(log.contains("image-has-no-sleep"), "{log}");
    assert!(
        log.contains("bare-kept"),
        "a named container of an image without sleep:\n{log}"
    );
    assert!(
        log.contains("gpu0-visible") && log.contains("/dev/fakegpu0"),
        "the CDI device did not reach the container:\n{log}"
    );
    assert!(
        log.contains("read-only-refused"),
        ":ro mount was writable:\n{log}"
    );
    // --no-container-remap-root: the user's own ids inside, and the user's files outside.
    for t in [
        format!("own={}:{}", m.uid, m.gid),
        format!("named-own={}", m.uid),
        "remapped=0".to_string(),
    ] {
        assert!(log.contains(&t), "missing {t:?}:\n{log}");
    }
    let own = std::fs::metadata(w.dir.join("own.txt")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&own), m.uid);
    assert_nothing_left(m.uid, &id);

    // A flag pyxis has and burrow does not is refused, saying which.
    let mut cmd = m.user_command(w.bin_dir.join("burrow"));
    cmd.args([
        "srun",
        "--container-image",
        img,
        "--container-save=/tmp/x.sqsh",
        "true",
    ]);
    let out = burrow_testsupport::run_with_timeout(&mut cmd, Duration::from_secs(30));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("--container-save"), "{}", text(&out));
}

#[test]
fn a_user_without_subordinate_ids_runs_a_multi_owner_image_in_a_job() {
    let Some(m) = machine_with_cluster() else {
        return;
    };
    let Some(nosub) = m.nosubid_user() else {
        return;
    };
    let w = Work::new(&nosub, "nosub");
    let img = &m.image_multilayer;
    let (id, ok, log) = w.sbatch(
        &nosub,
        "nosub",
        &[],
        &format!("burrow run --rm {img} sh -c 'ls -ln / | wc -l; id -u'\n"),
    );
    assert!(ok, "job {id} failed:\n{log}");
    assert!(
        log.contains("no subordinate ids"),
        "the squash is not said:\n{log}"
    );
    assert_nothing_left(nosub.uid, &id);

    // The same image from a shared store squashed by a user with subordinate ids: its files
    // of other owners are the user's too (not unmapped ids root inside could not write).
    let w2 = Work::new(&m, "nosub-store");
    let store = tempfile::Builder::new()
        .prefix("burrow-store-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::os::unix::fs::chown(store.path(), Some(m.uid), Some(m.gid)).unwrap();
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = store.path().display();
    w2.squash_to(&m, img, store.path());
    let (id, ok, log) = w.sbatch(
        &nosub,
        "nosub-store",
        &[],
        &format!(
            "BURROW_IMAGE_STORE={s} burrow run --rm --pull never {img} sh -c 'stat -c owner=%u /data/owned/user1000; touch /home/app/x && echo home-writable'\n"
        ),
    );
    assert!(ok, "job {id} failed:\n{log}");
    assert!(!log.contains("pulling"), "job {id} pulled:\n{log}");
    assert!(
        log.contains("owner=0") && log.contains("home-writable"),
        "a store image's owners for a user without subordinate ids:\n{log}"
    );
    assert_nothing_left(nosub.uid, &id);
}

#[test]
fn a_cancelled_step_takes_its_containers_but_not_the_jobs_containerd() {
    let Some(m) = machine_with_cluster() else {
        return;
    };
    let w = Work::new(&m, "cancel");
    // The user's own burrow.toml counts in a job, but for where it points at a containerd.
    let cfg = w.dir.join("cfg/burrow");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("burrow.toml"),
        "env = [\"BURROW_JOBTEST_*\"]\naddress = \"/nonexistent/containerd.sock\"\ndata_root = \"/nonexistent\"\n",
    )
    .unwrap();
    for p in [cfg.parent().unwrap(), &cfg, &cfg.join("burrow.toml")] {
        std::os::unix::fs::chown(p, Some(m.uid), Some(m.gid)).unwrap();
    }
    let img = &m.image_busybox;
    let d = w.dir.display();
    // Step 0's task starts the job's containerd and runs a container in the foreground; the
    // step is cancelled while it runs. The job's containerd stays (no second start), the
    // container goes (it was run with --rm), and everything goes with the job.
    let script = format!(
        "export XDG_CONFIG_HOME={d}/cfg
dir=/tmp/burrow-$(id -u)-job$SLURM_JOB_ID
srun -n 1 burrow run --rm --name victim {img} sleep 300 &
for i in $(seq 300); do [ -e $dir/start.lock ] && break; sleep 0.2; done
for i in $(seq 120); do burrow ps --format '{{{{.Names}}}}' | grep -q victim && break; sleep 0.5; done
burrow ps --format 'running={{{{.Names}}}}'
scancel $SLURM_JOB_ID.0
wait
for i in $(seq 60); do burrow ps -a --format '{{{{.Names}}}}' | grep -q victim || break; sleep 0.5; done
burrow ps -a --format 'left={{{{.Names}}}}'
echo checked
BURROW_JOBTEST_X=from-user-config burrow run --rm {img} sh -c 'echo got=$BURROW_JOBTEST_X'
burrow run -d --name orphan {img} sleep 4243 >/dev/null
sup=$(cat $dir/run/burrow/supervise.pid)
pkill -9 -P $sup; kill -9 $sup
echo killed-the-service
"
    );
    // What a job whose watcher was killed left (under proctrack/cgroup) goes once a later job
    // of the user starts on the node.
    let stale = PathBuf::from(format!(
        "/tmp/burrow-{}-job{}999",
        m.uid,
        std::process::id()
    ));
    std::fs::create_dir_all(stale.join("run/burrow")).unwrap();
    for p in [&stale, &stale.join("run"), &stale.join("run/burrow")] {
        std::os::unix::fs::chown(p, Some(m.uid), Some(m.gid)).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let (id, ok, log) = w.sbatch(&m, "cancel", &["-n", "1"], &script);
    assert!(ok, "job {id} failed:\n{log}");
    assert!(log.contains("running=victim"), "{log}");
    assert_eq!(
        log.matches("starting its rootless containerd").count(),
        1,
        "the job's containerd went with the cancelled step:\n{log}"
    );
    assert!(
        log.contains("checked") && !log.contains("left=victim"),
        "the cancelled step's container is left:\n{log}"
    );
    assert!(
        log.contains("got=from-user-config"),
        "the user's burrow.toml does not count in a job:\n{log}"
    );
    assert!(log.contains("killed-the-service"), "{log}");
    // A container whose containerd was killed under it goes with the job too.
    assert_nothing_left(m.uid, &id);
    let orphan = wait_for(Duration::from_secs(30), || {
        processes_mentioning("sleep\x004243").is_empty()
    });
    assert!(orphan, "{:?}", processes_mentioning("sleep\x004243"));
    let swept = wait_for(Duration::from_secs(30), || !stale.exists());
    if !swept {
        let _ = std::fs::remove_dir_all(&stale);
    }
    assert!(swept, "an ended job's dir was not swept");
}

#[test]
fn a_pmi2_step_reaches_slurms_pmi_server_from_its_containers() {
    let Some(m) = machine_with_cluster() else {
        return;
    };
    let w = Work::new(&m, "pmi2");
    let img = &m.image_busybox;
    // Each task's container speaks PMI-2's wire protocol to the port it was given in place of
    // srun's PMI_FD (as MPICH's and Slurm's libpmi2 clients do): init, then fullinit, whose
    // answer from slurmstepd carries the task's rank and the step's size. Once plainly
    // (`srun burrow run`), once through `burrow srun` and its named container (an exec).
    let client = w.write(
        &m,
        "pmi2-client.sh",
        "#!/bin/sh\nmsg=\"cmd=fullinit;pmijobid=$PMI_JOBID;pmirank=$PMI_RANK;threaded=FALSE;\"\n\
         { printf 'cmd=init pmi_version=2 pmi_subversion=0\\n'; sleep 1; printf '%6d%s' ${#msg} \"$msg\"; sleep 1; } |\
         timeout 4 nc 127.0.0.1 ${PMI_PORT#*:} | tr ';' '\\n' | grep -E '^(rank|size|rc)=' | tr '\\n' ' '\n\
         echo \"fd=${PMI_FD:-none}\"\n",
        0o755,
    );
    let d = w.dir.display();
    let c = client.display();
    let script = format!(
        "set -e
burrow srun -n 2 --mpi=pmi2 -l --container-name=mpi --container-image={img} --container-mounts={d}:{d}:ro sh {c}
srun -n 2 --mpi=pmi2 -l burrow run --rm -v {d}:{d}:ro {img} sh {c}
"
    );
    let (id, ok, log) = w.sbatch(&m, "pmi2", &["-n", "2"], &script);
    assert!(ok, "job {id} failed:\n{log}");
    // A named container's task that starts the job's containerd says so.
    assert!(log.contains("starting its rootless containerd"), "{log}");
    for rank in ["0", "1"] {
        let want = format!("{rank}: rc=0 rank={rank} size=2 fd=none");
        assert_eq!(
            log.matches(&want).count(),
            2,
            "task {rank} did not reach the PMI server ({want:?}):\n{log}"
        );
    }
    assert_nothing_left(m.uid, &id);
}
