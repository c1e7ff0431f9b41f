//! `burrow build` (also `burrow image build`) and `burrow builder prune`: flags parsed into the
//! builder's options, the image id printed or written.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use burrow::build::{self, progress::Mode, ContextSource, DockerfileSource, Options, Output};
use burrow::connection::Globals;
use burrow::containers::values;
use burrow::containers::Ctx;
use burrow::images::manifest::Platform;
use burrow::images::reference::Reference;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// The build context: a directory, or `-` for a tar archive on stdin.
    pub context: String,
    /// The Dockerfile (default: PATH/Dockerfile); `-` reads it from stdin.
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<String>,
    /// Name the image (NAME[:TAG]); repeatable.
    #[arg(short, long = "tag")]
    pub tag: Vec<String>,
    /// Set a build-time variable (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long, value_name = "KEY=VALUE")]
    pub build_arg: Vec<String>,
    /// The stage to build (default: the last).
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the cache: run every step.
    #[arg(long)]
    pub no_cache: bool,
    /// Pull the base images even when they are here.
    #[arg(long)]
    pub pull: bool,
    /// Set a label on the image (KEY=VALUE).
    #[arg(long)]
    pub label: Vec<String>,
    /// Print only the image id.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image id to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Push the image to its registry after the build, under each -t name (buildx's --push,
    /// the same as -o type=registry).
    #[arg(long)]
    pub push: bool,
    /// Progress output: auto (tty on a terminal, else plain), plain, tty (a live view) or quiet.
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Network for RUN: default, none or host.
    #[arg(long, default_value = "default")]
    pub network: String,
    /// The platform to build for (only this host's is supported).
    #[arg(long)]
    pub platform: Option<String>,
    /// Write the result instead of naming an image: type=local,dest=DIR (or just DIR: the
    /// final stage's files), type=tar,dest=FILE (those files as one tar; - for stdout),
    /// type=oci|docker,dest=FILE (the image as one tar that is an OCI layout and a
    /// docker-archive, as `burrow save` writes).
    #[arg(short, long, value_name = "SPEC")]
    pub output: Vec<String>,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VARIABLE (never in
    /// the image or the cache); repeatable.
    #[arg(long, value_name = "SPEC")]
    pub secret: Vec<String>,
    /// An ssh agent for RUN --mount=type=ssh: default (or ID) for $SSH_AUTH_SOCK's agent, or
    /// ID=SOCKET; repeatable.
    #[arg(long, value_name = "ID[=SOCKET]")]
    pub ssh: Vec<String>,
    /// A named context FROM, COPY --from and RUN --mount from= can use: NAME=DIR,
    /// NAME=docker-image://IMAGE, NAME=GIT-URL or NAME=https://…/ARCHIVE.tar; repeatable.
    #[arg(long, value_name = "NAME=VALUE")]
    pub build_context: Vec<String>,
    /// Add a host to the /etc/hosts of RUN steps (NAME:IP, or NAME:host-gateway); repeatable.
    #[arg(long, value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// The size of /dev/shm in RUN steps (e.g. 256m).
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// A resource limit of RUN steps (NAME=SOFT[:HARD], e.g. nofile=1024:2048); repeatable.
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache.
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Remove all the cache (the only kind there is: accepted for Docker's command lines).
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let mut opts = options(&args)?;
    let (files, image) = exporter(&args.output)?;
    opts.output = files;
    let push = args.push || image.as_ref().is_some_and(|i| i.push);
    for name in image.iter().flat_map(|i| &i.names) {
        opts.tags.push(
            Reference::parse(name)
                .map(|r| r.to_string())
                .with_context(|| format!("-o name={name}: not an image name"))?,
        );
    }
    opts.push = push;
    let built = burrow::connection::runtime().block_on(async move {
        let ctx = Ctx::connect(g).await?;
        build::build(&ctx, &opts).await
    })?;
    for a in &built.unused_args {
        eprintln!("[Warning] One or more build-args [{a}] were not consumed");
    }
    if let Some(f) = &args.iidfile {
        std::fs::write(f, &built.id)
            .with_context(|| format!("writing --iidfile {}", f.display()))?;
    }
    for p in built.pushed.iter().filter(|_| !args.quiet) {
        println!("{}: digest: {} size: {}", p.tag, p.digest, p.size);
    }
    if args.quiet {
        println!("{}", built.id);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn builder(cmd: BuilderCommand, g: &Globals) -> anyhow::Result<ExitCode> {
    let BuilderCommand::Prune(a) = cmd;
    if !super::confirm("builder prune", "all build cache", a.force)? {
        return Ok(ExitCode::SUCCESS);
    }
    let n = burrow::connection::runtime().block_on(async move {
        let ctx = Ctx::connect(g).await?;
        build::cache::prune(&ctx).await
    })?;
    println!("Deleted build cache objects: {}", n.len());
    Ok(ExitCode::SUCCESS)
}

fn options(args: &Args) -> anyhow::Result<Options> {
    if let Some(p) = &args.platform {
        let want = Platform::parse(p).map_err(anyhow::Error::msg)?;
        let host = Platform::host();
        if !host.matches(&want) {
            anyhow::bail!("--platform {p}: burrow builds only for this host's platform ({}); cross-platform builds are not supported", host.display());
        }
    }
    let progress = match args.progress.as_str() {
        _ if args.quiet => Mode::Quiet,
        "auto" if std::io::stderr().is_terminal() => Mode::Tty,
        "auto" | "plain" => Mode::Plain,
        "tty" => Mode::Tty,
        "quiet" => Mode::Quiet,
        other => anyhow::bail!("--progress {other}: use auto, plain, tty or quiet"),
    };
    let network = match args.network.as_str() {
        "default" | "bridge" => burrow::network::DEFAULT_NETWORK.to_string(),
        "none" | "host" => args.network.clone(),
        other => anyhow::bail!("--network {other}: RUN steps take default, none or host"),
    };
    let stdin_context = args.context == "-";
    let dockerfile = match args.file.as_deref() {
        Some("-") if stdin_context => {
            anyhow::bail!("-f - and a context on stdin cannot both read stdin")
        }
        Some("-") => DockerfileSource::Text(read_stdin()?),
        Some(f) => DockerfileSource::Path(PathBuf::from(f)),
        None => DockerfileSource::Path(PathBuf::from("Dockerfile")),
    };
    let remote = ContextSource::remote(&args.context);
    let context = if let Some(r) = remote.clone() {
        r
    } else if stdin_context {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading the build context from stdin")?;
        ContextSource::Tar(data)
    } else {
        ContextSource::Dir(PathBuf::from(&args.context))
    };
    let dockerfile = match dockerfile {
        // A -f path is relative to the current directory, as Docker reads it (to the context's
        // root when the context is a tar on stdin or remote).
        DockerfileSource::Path(p) if args.file.is_some() && !stdin_context && remote.is_none() => {
            DockerfileSource::Path(std::path::absolute(&p)?)
        }
        other => other,
    };
    let tags = args
        .tag
        .iter()
        .map(|t| {
            Reference::parse(t)
                .map(|r| r.to_string())
                .with_context(|| format!("invalid tag {t:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Options {
        context,
        dockerfile,
        tags,
        build_args: key_values(&args.build_arg, true)?,
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        labels: key_values(&args.label, false)?,
        network,
        progress,
        output: None,
        events: None,
        cancel: build::cancel::Cancel::ctrl_c(),
        pull_auth: Default::default(),
        secrets: build::mounts::Secrets::parse(&args.secret).map_err(anyhow::Error::msg)?,
        ssh: build::mounts::SshAgents::parse(&args.ssh).map_err(anyhow::Error::msg)?,
        push: false,
        run: build::runstep::RunSettings {
            extra_hosts: values::parse_all("--add-host", &args.add_host)?,
            shm_size: args
                .shm_size
                .as_deref()
                .map(|s| values::parse_flag("--shm-size", s))
                .transpose()?,
            ulimits: values::parse_all("--ulimit", &args.ulimit)?,
        },
        contexts: build::contexts::NamedContexts::parse(
            &args.build_context,
            &std::env::current_dir().context("reading the current directory")?,
        )?,
    })
}

/// `-o type=image|registry`: the image named in the store (`name=` adds names, as `-t`), and
/// pushed with `push=true` (always for `registry`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageExport {
    names: Vec<String>,
    push: bool,
}

/// `-o`, as BuildKit's: files (`type=local,dest=DIR` or just `DIR`, `type=tar,dest=FILE` with
/// `-` for stdout, also `-o -`, `type=oci|docker,dest=FILE`), or the image
/// (`type=image[,name=N][,push=true]`, `type=registry[,name=N]`).
fn exporter(specs: &[String]) -> anyhow::Result<(Option<Output>, Option<ImageExport>)> {
    let spec = match specs {
        [] => return Ok((None, None)),
        [one] => one,
        _ => anyhow::bail!("only one -o/--output is supported"),
    };
    let kind = spec.split(',').find_map(|p| p.strip_prefix("type="));
    if let Some(k @ ("image" | "registry")) = kind {
        let mut export = ImageExport {
            names: Vec::new(),
            push: k == "registry",
        };
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("type", _)) => {}
                Some(("name", n)) => export.names.push(n.to_string()),
                Some(("push", v @ ("true" | "false"))) if k == "image" => export.push = v == "true",
                _ => anyhow::bail!(
                    "-o {spec}: type={k} takes name=NAME{} (other options are not supported)",
                    if k == "image" {
                        " and push=true|false"
                    } else {
                        ""
                    }
                ),
            }
        }
        return Ok((None, Some(export)));
    }
    Ok((output(spec)?, None))
}

fn output(spec: &str) -> anyhow::Result<Option<Output>> {
    if spec == "-" {
        return Ok(Some(Output::Tar("-".into())));
    }
    if !spec.contains('=') && !spec.contains(',') {
        return Ok(Some(Output::Local(spec.into())));
    }
    let (mut kind, mut dest) = (None, None);
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", t)) => kind = Some(t.to_string()),
            Some(("dest", d)) => dest = Some(PathBuf::from(d)),
            _ => anyhow::bail!("-o {spec}: use type=local,dest=DIR, type=tar,dest=FILE, type=oci,dest=FILE or type=docker,dest=FILE (other options are not supported)"),
        }
    }
    let Some(dest) = dest.filter(|d| !d.as_os_str().is_empty()) else {
        anyhow::bail!("-o {spec}: give dest=PATH");
    };
    let stdout = dest.as_os_str() == "-";
    match kind.as_deref() {
        Some("local") if !stdout => Ok(Some(Output::Local(dest))),
        Some("tar") => Ok(Some(Output::Tar(dest))),
        Some("oci" | "docker") if !stdout => Ok(Some(Output::Archive(dest))),
        Some("local" | "oci" | "docker") => {
            anyhow::bail!("-o {spec}: dest=- (stdout) is for type=tar; give a path")
        }
        Some(other) => anyhow::bail!(
            "-o type={other} is not supported: use type=local, tar, oci, docker, image or registry"
        ),
        None => anyhow::bail!("-o {spec}: name the exporter, e.g. type=local,dest=DIR"),
    }
}

fn read_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the Dockerfile from stdin")?;
    Ok(s)
}

/// `KEY=VALUE` flags; with `from_env`, a bare `KEY` takes the environment's value (skipped when unset).
fn key_values(v: &[String], from_env: bool) -> anyhow::Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for kv in v {
        match kv.split_once('=') {
            Some((k, val)) if !k.is_empty() => {
                m.insert(k.to_string(), val.to_string());
            }
            None if from_env => {
                if let Ok(val) = std::env::var(kv) {
                    m.insert(kv.clone(), val);
                }
            }
            None => {
                m.insert(kv.clone(), String::new());
            }
            _ => anyhow::bail!("invalid KEY=VALUE {kv:?}"),
        }
    }
    Ok(m)
}
