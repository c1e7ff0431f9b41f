//! `burrow srun`: pyxis's container flags on srun. The wrapper takes `--container-image`,
//! `--container-mounts`, `--container-workdir` and `--container-name` out of an srun command
//! line, runs srun with the rest, and each task runs its command in a container of the image
//! (named containers are kept for the job on each node and reused by its later steps).

use std::path::{Path, PathBuf};

/// Set by the wrapper for the tasks srun starts: `burrow srun` inside a task runs the container.
pub const TASK_ENV: &str = "BURROW_SRUN_TASK";

/// An srun command line that the wrapper cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrunError {
    #[error("--container-image is missing: `burrow srun` runs each task in a container of that image (e.g. burrow srun -n 2 --container-image=ubuntu:22.04 hostname)")]
    NoImage,
    #[error("{flag} needs a value")]
    NoValue { flag: String },
    #[error("{0} is not one of burrow srun's container flags (--container-image, --container-mounts, --container-workdir, --container-name); pyxis's other flags are not supported")]
    Unknown(String),
    #[error("--container-mounts {0:?}: each mount is SRC[:DST[:FLAGS]], separated by commas; FLAGS joined by + from ro, rw, rbind, bind, rprivate, private")]
    BadMount(String),
}

/// The srun options that take a value in a separate word (`-n 2`, `--ntasks 2`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueOptions {
    short: Vec<char>,
    long: Vec<String>,
}

impl ValueOptions {
    /// Read from `srun --help`: an option written `-n, --ntasks=ntasks` takes a value, one
    /// written `--compress[=library]` takes it only attached. srun's `--container` (an OCI
    /// bundle) takes one though its help does not say so.
    pub fn from_help(help: &str) -> ValueOptions {
        let mut o = ValueOptions {
            short: Vec::new(),
            long: vec!["container".into()],
        };
        for line in help.lines() {
            let spec = line.trim_start();
            if !spec.starts_with('-') {
                continue;
            }
            let spec = spec.split("  ").next().unwrap_or("");
            let (short, long) = match spec.split_once(", ") {
                Some((s, l)) if s.len() == 2 => (s.chars().nth(1), l),
                _ => (None, spec),
            };
            let Some(long) = long.strip_prefix("--") else {
                continue;
            };
            let Some((name, _)) = long.split_once('=') else {
                continue;
            };
            if name.ends_with('[') {
                continue;
            }
            o.long.push(name.to_string());
            if let Some(c) = short {
                o.short.push(c);
            }
        }
        o
    }
}

/// One of `--container-mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// The container flags of one `burrow srun`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFlags {
    pub image: String,
    pub mounts: Vec<MountSpec>,
    pub workdir: Option<String>,
    pub name: Option<String>,
    /// `--container-mount-home`: the user's home bound at the same path.
    pub mount_home: bool,
    /// `--no-container-remap-root`: the task runs as the user's own uid and gid inside
    /// (`--userns=keep-id:own`), not as root (`--container-remap-root`, the default).
    pub own_ids: bool,
}

/// An image as pyxis takes it, in enroot's URI form (`[docker://][USER@][REGISTRY#]IMAGE[:TAG]`),
/// as a Docker reference: `nvcr.io#nvidia/pytorch:24.01` is `nvcr.io/nvidia/pytorch:24.01`.
/// (`USER@` names registry credentials for enroot; `burrow login` keeps them here.)
pub fn enroot_image(v: &str) -> String {
    let v = v.strip_prefix("docker://").unwrap_or(v);
    let v = match v.split_once('@') {
        // USER@... (not a digest, which follows the name: NAME@sha256:...).
        Some((user, rest)) if !user.contains('/') && !rest.starts_with("sha256:") => rest,
        _ => v,
    };
    match v.split_once('#') {
        Some((registry, image)) => format!("{registry}/{image}"),
        None => v.to_string(),
    }
}

/// A `burrow srun` command line taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// srun's own options, as given.
    pub srun: Vec<String>,
    pub container: ContainerFlags,
    /// The command each task runs (empty: the image's own).
    pub command: Vec<String>,
}

/// Takes the container flags out of `args` (srun's options, then the command).
pub fn split(args: &[String], opts: &ValueOptions) -> Result<Split, SrunError> {
    let mut srun = Vec::new();
    let mut c = ContainerFlags::default();
    let mut image = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        // pyxis's home and remap flags take no value.
        if a == "--container-mount-home" || a == "--no-container-mount-home" {
            c.mount_home = a == "--container-mount-home";
            i += 1;
            continue;
        }
        if a == "--container-remap-root" || a == "--no-container-remap-root" {
            c.own_ids = a == "--no-container-remap-root";
            i += 1;
            continue;
        }
        if let Some(flag) = a.strip_prefix("--container-") {
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n, v.to_string()),
                None => {
                    i += 1;
                    let v = args.get(i).ok_or_else(|| SrunError::NoValue {
                        flag: format!("--container-{flag}"),
                    })?;
                    (flag, v.clone())
                }
            };
            match name {
                "image" => image = Some(enroot_image(&value)),
                "mounts" => c.mounts.extend(parse_mounts(&value)?),
                "workdir" => c.workdir = Some(value),
                "name" => c.name = Some(value),
                _ => return Err(SrunError::Unknown(format!("--container-{name}"))),
            }
            i += 1;
            continue;
        }
        srun.push(a.clone());
        if takes_separate_value(a, opts) {
            if let Some(v) = args.get(i + 1) {
                srun.push(v.clone());
                i += 1;
            }
        }
        i += 1;
    }
    c.image = image.ok_or(SrunError::NoImage)?;
    Ok(Split {
        srun,
        container: c,
        command: args[i.min(args.len())..].to_vec(),
    })
}

/// Whether srun option word `a` is followed by its value as the next word.
fn takes_separate_value(a: &str, opts: &ValueOptions) -> bool {
    if let Some(long) = a.strip_prefix("--") {
        return !long.contains('=') && opts.long.iter().any(|l| l == long);
    }
    // `-n2` carries its value; `-n` alone takes the next word (also as the last of `-ln`).
    let shorts: Vec<char> = a[1..].chars().collect();
    match shorts.as_slice() {
        [] => false,
        [.., last] => {
            let before = &shorts[..shorts.len() - 1];
            opts.short.contains(last) && !before.iter().any(|c| opts.short.contains(c))
        }
    }
}

/// `SRC[:DST[:FLAGS]]`, comma-separated (pyxis's form); DST defaults to SRC.
pub fn parse_mounts(value: &str) -> Result<Vec<MountSpec>, SrunError> {
    value
        .split(',')
        .filter(|m| !m.is_empty())
        .map(|m| {
            let parts: Vec<&str> = m.split(':').collect();
            let (source, target, flags) = match parts.as_slice() {
                [s] => (*s, *s, ""),
                [s, d] => (*s, *d, ""),
                [s, d, f] => (*s, *d, *f),
                _ => return Err(SrunError::BadMount(m.to_string())),
            };
            // enroot's mount flags, joined by +: ro/rw, and the binding and propagation a
            // bind mount has anyway.
            let mut read_only = false;
            for f in flags.split('+').filter(|f| !f.is_empty()) {
                match f {
                    "ro" => read_only = true,
                    "rw" => read_only = false,
                    "rbind" | "bind" | "rprivate" | "private" => {}
                    _ => return Err(SrunError::BadMount(m.to_string())),
                }
            }
            if source.is_empty() || !target.starts_with('/') {
                return Err(SrunError::BadMount(m.to_string()));
            }
            Ok(MountSpec {
                source: source.to_string(),
                target: target.to_string(),
                read_only,
            })
        })
        .collect()
}

/// The command line srun runs: srun's options, then this very `burrow srun` again with only
/// the container flags and the command (it sees [`TASK_ENV`] in each task and runs the
/// container there).
pub fn srun_argv(burrow: &Path, split: &Split) -> Vec<String> {
    let c = &split.container;
    let mut argv = vec!["srun".to_string()];
    argv.extend(split.srun.iter().cloned());
    argv.push(burrow.display().to_string());
    argv.push("srun".into());
    argv.push(format!("--container-image={}", c.image));
    if !c.mounts.is_empty() {
        let mounts: Vec<String> = c
            .mounts
            .iter()
            .map(|m| {
                let ro = if m.read_only { ":ro" } else { "" };
                format!("{}:{}{ro}", m.source, m.target)
            })
            .collect();
        argv.push(format!("--container-mounts={}", mounts.join(",")));
    }
    if let Some(w) = &c.workdir {
        argv.push(format!("--container-workdir={w}"));
    }
    if let Some(n) = &c.name {
        argv.push(format!("--container-name={n}"));
    }
    if c.mount_home {
        argv.push("--container-mount-home".into());
    }
    if c.own_ids {
        argv.push("--no-container-remap-root".into());
    }
    argv.push("--".into());
    argv.extend(split.command.iter().cloned());
    argv
}

/// The `burrow run` arguments of a task's container (unnamed: removed when the task ends).
pub fn run_args(c: &ContainerFlags, command: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = vec!["run".into(), "--rm".into()];
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        argv.push("-it".into());
    } else {
        argv.push("-i".into());
    }
    argv.extend(volume_args(c));
    if let Some(w) = &c.workdir {
        argv.extend(["-w".into(), w.clone()]);
    }
    argv.push(c.image.clone());
    argv.extend(command.iter().cloned());
    argv
}

/// `-v SRC:DST[:ro]` for each mount (and the user namespace of `--no-container-remap-root`).
fn volume_args(c: &ContainerFlags) -> Vec<String> {
    let mut out: Vec<String> = c
        .mounts
        .iter()
        .flat_map(|m| {
            let ro = if m.read_only { ":ro" } else { "" };
            ["-v".to_string(), format!("{}:{}{ro}", m.source, m.target)]
        })
        .collect();
    if c.mount_home {
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            let home = home.to_string_lossy().into_owned();
            out.extend(["-v".to_string(), format!("{home}:{home}")]);
        }
    }
    if c.own_ids {
        out.push("--userns=keep-id:own".into());
    }
    out
}

/// Where a named container's keep-alive program is mounted inside it.
const KEEPALIVE_PATH: &str = "/.burrow-keepalive";

/// The host's catatonit (statically linked; `-P` makes it a pause process with no program to
/// run), which keeps a named container running whatever its image holds, as pyxis needs nothing
/// from the image. None when the host has none: then the image's `sleep infinity`.
pub fn keepalive_binary() -> Option<PathBuf> {
    crate::setup::programs::which_in("catatonit", &["/usr/libexec/podman"])
        .and_then(|p| p.canonicalize().ok())
}

/// The `burrow run -d` that makes a named container: kept running for the job on this node
/// (by `keepalive`, mounted read-only, else the image's `sleep infinity`), so each step's tasks
/// `exec` in it and see what earlier steps left.
pub fn named_run_args(c: &ContainerFlags, name: &str, keepalive: Option<&Path>) -> Vec<String> {
    let mut argv: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.into()];
    argv.extend(volume_args(c));
    match keepalive {
        Some(bin) => argv.extend([
            "-v".into(),
            format!("{}:{KEEPALIVE_PATH}:ro", bin.display()),
            "--entrypoint".into(),
            KEEPALIVE_PATH.into(),
            c.image.clone(),
            "-P".into(),
        ]),
        None => argv.extend([
            "--entrypoint".into(),
            "sleep".into(),
            c.image.clone(),
            "infinity".into(),
        ]),
    }
    argv
}

/// The `burrow exec` of one task in a named container, with the task's job variables.
pub fn named_exec_args(
    c: &ContainerFlags,
    name: &str,
    job_env: &[String],
    command: &[String],
) -> Vec<String> {
    let mut argv: Vec<String> = vec!["exec".into(), "-i".into()];
    for kv in job_env {
        argv.extend(["-e".into(), kv.clone()]);
    }
    if let Some(w) = &c.workdir {
        argv.extend(["-w".into(), w.clone()]);
    }
    argv.push(name.into());
    argv.extend(command.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP: &str = "Usage: srun [OPTIONS(0)... [executable(0) [args(0)...]]]\n\nParallel run options:\n  -A, --account=name          charge job to specified account\n      --compress[=library]    data compression library used with --bcast\n  -n, --ntasks=ntasks         number of tasks to run\n  -l, --label                 prepend task number to lines of stdout/err\n      --mpi=type              type of MPI being used\n";

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn help_says_which_options_take_values() {
        let o = ValueOptions::from_help(HELP);
        assert!(o.short.contains(&'n') && o.short.contains(&'A'));
        assert!(!o.short.contains(&'l'));
        assert!(o.long.contains(&"mpi".to_string()));
        assert!(!o.long.contains(&"compress".to_string()));
    }

    #[test]
    fn container_flags_come_out_and_the_command_stays() {
        let o = ValueOptions::from_help(HELP);
        let s = split(
            &words("-n 2 -l --container-image=busybox --container-mounts /data:/in:ro,/scratch --mpi pmi2 --container-workdir=/in sh -c -n"),
            &o,
        )
        .unwrap();
        assert_eq!(s.srun, words("-n 2 -l --mpi pmi2"));
        assert_eq!(s.container.image, "busybox");
        assert_eq!(s.container.workdir.as_deref(), Some("/in"));
        assert_eq!(s.container.mounts.len(), 2);
        assert!(s.container.mounts[0].read_only);
        assert_eq!(s.container.mounts[1].target, "/scratch");
        assert_eq!(s.command, words("sh -c -n"));
        let s = split(&words("-ln 2 --container-image x -- -weird"), &o).unwrap();
        assert_eq!(s.srun, words("-ln 2"));
        assert_eq!(s.command, words("-weird"));
    }

    #[test]
    fn bad_lines_are_refused() {
        let o = ValueOptions::default();
        assert_eq!(split(&words("-n2 hostname"), &o), Err(SrunError::NoImage));
        assert!(matches!(
            split(
                &words("--container-image=x --container-save=/x.sqsh true"),
                &o
            ),
            Err(SrunError::Unknown(_))
        ));
        assert!(parse_mounts("/a:relative").is_err());
        assert!(parse_mounts("/a:/b:xx").is_err());
        assert!(parse_mounts("/a:/b:ro+rshared").is_err());
        assert!(parse_mounts("/a:/b:ro+rprivate").unwrap()[0].read_only);
    }

    #[test]
    fn pyxis_forms_of_images_and_home() {
        assert_eq!(
            enroot_image("nvcr.io#nvidia/pytorch:24.01"),
            "nvcr.io/nvidia/pytorch:24.01"
        );
        assert_eq!(
            enroot_image("docker://me@reg.lan:5000#app:1"),
            "reg.lan:5000/app:1"
        );
        assert_eq!(enroot_image("ubuntu:22.04"), "ubuntu:22.04");
        assert_eq!(enroot_image("busybox@sha256:ab"), "busybox@sha256:ab");
        let o = ValueOptions::from_help(HELP);
        let s = split(
            &words("-n 1 --no-container-mount-home --container-image=reg#img --container-mount-home --no-container-remap-root true"),
            &o,
        )
        .unwrap();
        assert!(s.container.mount_home);
        assert!(s.container.own_ids);
        assert!(run_args(&s.container, &[]).contains(&"--userns=keep-id:own".to_string()));
        assert_eq!(s.container.image, "reg/img");
        assert_eq!(s.command, ["true"]);
        let argv = srun_argv(Path::new("/b/burrow"), &s);
        let inner = split(&argv[5..], &ValueOptions::default()).unwrap();
        assert_eq!(inner.container, s.container);
    }

    #[test]
    fn tasks_get_the_container_flags_only() {
        let o = ValueOptions::from_help(HELP);
        let s = split(
            &words("-n 2 --container-image=img --container-mounts=/a --container-name=x ls -l"),
            &o,
        )
        .unwrap();
        let argv = srun_argv(Path::new("/b/burrow"), &s);
        assert_eq!(
            argv,
            words("srun -n 2 /b/burrow srun --container-image=img --container-mounts=/a:/a --container-name=x -- ls -l")
        );
        let inner = split(&argv[5..], &ValueOptions::default()).unwrap();
        assert_eq!(inner.container, s.container);
        assert_eq!(inner.command, s.command);
        assert!(inner.srun.is_empty());
    }

    #[test]
    fn task_commands() {
        let c = ContainerFlags {
            image: "img".into(),
            mounts: parse_mounts("/d:/in:ro").unwrap(),
            workdir: Some("/in".into()),
            name: Some("pre".into()),
            mount_home: false,
            own_ids: false,
        };
        let exec = named_exec_args(&c, "pre", &["SLURM_PROCID=1".into()], &words("ls"));
        assert_eq!(exec, words("exec -i -e SLURM_PROCID=1 -w /in pre ls"));
        let run = named_run_args(&c, "pre", None);
        assert_eq!(
            run,
            words("run -d --name pre -v /d:/in:ro --entrypoint sleep img infinity")
        );
        let run = named_run_args(&c, "pre", Some(Path::new("/usr/bin/catatonit")));
        assert_eq!(
            run,
            words("run -d --name pre -v /d:/in:ro -v /usr/bin/catatonit:/.burrow-keepalive:ro --entrypoint /.burrow-keepalive img -P")
        );
    }
}
