//! A service's `build:` mapped onto burrow's builder ([`crate::build`]): the image named
//! `image:` or Docker Compose's `PROJECT-SERVICE`, labelled as Docker Compose labels it, built
//! when missing (or always, with `--build`), its id folded into the service's config hash.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::naming;
use super::service::{key_values, pairs, scalar, Service};
use crate::build::contexts::NamedContexts;
use crate::build::mounts::{SecretSource, Secrets, SshAgents};
use crate::build::progress::Mode;
use crate::build::{ContextSource, DockerfileSource, Options};
use crate::compose::project::Project;
use crate::compose::ComposeError;
use crate::containers::Ctx;
use crate::images::manifest::Platform;
use crate::images::reference::Reference;

/// When `up`, `create` and `run` build a service's image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Policy {
    /// Only when the image is not here (Docker Compose's default).
    #[default]
    Missing,
    /// Every time (`--build`, `compose build`).
    Always,
    /// Never (`--no-build`): a missing image is an error.
    Never,
}

/// The command line's say in a build (`compose build`'s and `up --build`'s flags).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub no_cache: bool,
    pub pull: bool,
    /// `--build-arg`: set for every service, over the file's `args:`.
    pub args: BTreeMap<String, String>,
    /// None: plain.
    pub progress: Option<Mode>,
    /// `--push`: each built image pushed to its registry.
    pub push: bool,
}

/// `build:` keys burrow's builder has no counterpart for: refused, not ignored.
const UNSUPPORTED: &[&str] = &[
    "cache_from",
    "cache_to",
    "entitlements",
    "isolation",
    "privileged",
];

/// The image a service runs: `image:`, else Docker Compose v2's `PROJECT-SERVICE` for a
/// service with `build:`.
pub fn image_name(project_name: &str, svc: &Service) -> Option<String> {
    svc.str("image").or_else(|| {
        svc.get("build")
            .map(|_| format!("{project_name}-{}", svc.name))
    })
}

/// The builder's options for `svc`, or None when it has no `build:`.
pub fn options(
    project: &Project,
    svc: &Service,
    flags: &Flags,
) -> Result<Option<Options>, ComposeError> {
    let Some(b) = svc.get("build") else {
        return Ok(None);
    };
    let bad = |m: String| ComposeError::service(&svc.name, format!("build: {m}"));
    let empty = serde_json::Map::new();
    let (context, long) = match b {
        Value::String(s) => (s.clone(), &empty),
        Value::Object(m) => (
            m.get("context")
                .map(scalar)
                .unwrap_or_else(|| project.working_dir.display().to_string()),
            m,
        ),
        other => return Err(bad(format!("expected a path or a mapping, got {other}"))),
    };
    if let Some(k) = long.keys().find(|k| UNSUPPORTED.contains(&k.as_str())) {
        return Err(bad(format!(
            "{k} is not supported by burrow's builder; remove it or build the image with another tool and give it with `image:`"
        )));
    }
    let remote = ContextSource::remote(&context);
    if remote.is_none() && (context.contains("://") || context.starts_with("git@")) {
        return Err(bad(format!(
            "context {context}: give a directory, a Git repository or an http(s) URL"
        )));
    }
    let get = |k: &str| long.get(k).filter(|v| !v.is_null());
    let dockerfile = match (get("dockerfile"), get("dockerfile_inline")) {
        (Some(_), Some(_)) => {
            return Err(bad("give dockerfile or dockerfile_inline, not both".into()))
        }
        (_, Some(t)) => DockerfileSource::Text(scalar(t)),
        (Some(p), None) => DockerfileSource::Path(PathBuf::from(scalar(p))),
        (None, None) => DockerfileSource::Path(PathBuf::from("Dockerfile")),
    };
    platforms(get("platforms")).map_err(bad)?;
    let mut tags = vec![image_name(&project.name, svc).unwrap_or_default()];
    for t in get("tags").and_then(Value::as_array).into_iter().flatten() {
        tags.push(scalar(t));
    }
    let tags = tags
        .iter()
        .map(|t| {
            Reference::parse(t)
                .map(|r| r.to_string())
                .map_err(|e| bad(format!("invalid image name {t:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let mut build_args = BTreeMap::new();
    for (k, v) in pairs(get("args")) {
        // A bare KEY takes the environment's value, skipped when unset (as Compose does).
        if let Some(v) = v.or_else(|| std::env::var(&k).ok()) {
            build_args.insert(k, v);
        }
    }
    build_args.extend(flags.args.clone());
    Ok(Some(Options {
        context: remote.unwrap_or_else(|| ContextSource::Dir(PathBuf::from(&context))),
        dockerfile,
        tags,
        build_args,
        target: get("target").map(scalar),
        no_cache: flags.no_cache || get("no_cache").and_then(Value::as_bool) == Some(true),
        pull: flags.pull || get("pull").and_then(Value::as_bool) == Some(true),
        labels: labels(project, svc, get("labels")),
        network: network(get("network")).map_err(bad)?,
        progress: flags.progress.unwrap_or(Mode::Plain),
        output: None,
        events: None,
        cancel: crate::build::cancel::Cancel::ctrl_c(),
        pull_auth: Default::default(),
        secrets: secrets(project, get("secrets")).map_err(bad)?,
        ssh: ssh(get("ssh")).map_err(bad)?,
        push: flags.push,
        run: crate::build::runstep::RunSettings {
            extra_hosts: super::convert::extra_hosts(get("extra_hosts"))
                .map_err(|e| bad(format!("extra_hosts: {e}")))?,
            shm_size: get("shm_size")
                .map(super::convert::byte_size)
                .transpose()
                .map_err(|e| bad(format!("shm_size: {e}")))?,
            ulimits: super::convert::ulimits(get("ulimits"))
                .map_err(|e| bad(format!("ulimits: {e}")))?,
        },
        contexts: additional_contexts(project, get("additional_contexts")).map_err(bad)?,
    }))
}

/// `build.additional_contexts`: named contexts as `--build-context` takes them, directories
/// relative to the project's directory; `service:NAME` is that service's image (built first).
fn additional_contexts(project: &Project, v: Option<&Value>) -> Result<NamedContexts, String> {
    let mut out = NamedContexts::default();
    for (name, value) in pairs(v) {
        let value = value.unwrap_or_default();
        let value = match value.strip_prefix("service:") {
            Some(other) => {
                let svc = Service::of(project, other).map_err(|_| {
                    format!("additional_contexts: {name}: service:{other}: no such service")
                })?;
                match svc.get("build").and(image_name(&project.name, &svc)) {
                    Some(image) => format!("docker-image://{image}"),
                    None => {
                        return Err(format!(
                            "additional_contexts: {name}: service:{other} has no build: name its image with docker-image://"
                        ))
                    }
                }
            }
            None => value,
        };
        out.insert(&name, &value, &project.working_dir)
            .map_err(|e| format!("additional_contexts: {name}: {e}"))?;
    }
    Ok(out)
}

/// The services `svc`'s `additional_contexts` name with `service:`.
fn context_services(svc: &Service) -> Vec<String> {
    let build = svc.get("build");
    pairs(build.and_then(|b| b.get("additional_contexts")))
        .into_iter()
        .filter_map(|(_, v)| v?.strip_prefix("service:").map(str::to_string))
        .collect()
}

/// `build.ssh`: agents as `--ssh` takes them (`default`, `ID`, `ID=SOCKET`), in a list or a
/// mapping of ID to socket.
fn ssh(v: Option<&Value>) -> Result<SshAgents, String> {
    let specs = match v {
        None | Some(Value::Array(_) | Value::Object(_)) => key_values(v),
        Some(other) => return Err(format!("ssh: {other}: give a list such as [default]")),
    };
    SshAgents::parse(&specs).map_err(|e| format!("ssh: {e}"))
}

/// `build.secrets`: names of top-level secrets (`file:` or `environment:`), each under its
/// `target` when given (the id RUN --mount=type=secret names), else its own name.
fn secrets(project: &Project, v: Option<&Value>) -> Result<Secrets, String> {
    let top = super::convert::top(project, "secrets");
    let mut out = BTreeMap::new();
    for item in v.and_then(Value::as_array).into_iter().flatten() {
        let (name, id) = match item {
            Value::Object(o) => {
                let name = o.get("source").map(scalar).unwrap_or_default();
                let id = o.get("target").map(scalar).unwrap_or_else(|| name.clone());
                (name, id)
            }
            other => (scalar(other), scalar(other)),
        };
        let def = top.get(&name).filter(|d| !d.is_null());
        let source = match (
            def.and_then(|d| d.get("file")).filter(|f| !f.is_null()),
            def.and_then(|d| d.get("environment"))
                .filter(|e| !e.is_null()),
        ) {
            (Some(f), _) => {
                SecretSource::File(super::mounts::absolute(&project.working_dir, &scalar(f)).into())
            }
            // A variable only the env files set is passed as its value (the builder reads
            // its own environment).
            (None, Some(e)) => match (std::env::var_os(scalar(e)), project.variable(&scalar(e))) {
                (None, Some(v)) => SecretSource::Value(v.into_bytes()),
                _ => SecretSource::Env(scalar(e)),
            },
            (None, None) => {
                return Err(format!(
                    "secrets: {name:?} is not a top-level secret with `file:` or `environment:`"
                ))
            }
        };
        out.insert(id, source);
    }
    Ok(Secrets(out))
}

/// `build.platforms`: only this host's.
fn platforms(v: Option<&Value>) -> Result<(), String> {
    let host = Platform::host();
    for p in v.and_then(Value::as_array).into_iter().flatten() {
        let p = scalar(p);
        let want = Platform::parse(&p).map_err(|e| format!("platforms: {p}: {e}"))?;
        if !host.matches(&want) {
            return Err(format!(
                "platforms: {p}: burrow builds only for this host's platform ({}); cross-platform builds are not supported",
                host.display()
            ));
        }
    }
    Ok(())
}

/// `build.network`: the RUN steps' network.
fn network(v: Option<&Value>) -> Result<String, String> {
    match v.map(scalar).as_deref() {
        None | Some("default" | "bridge") => Ok(crate::network::DEFAULT_NETWORK.to_string()),
        Some(n @ ("none" | "host")) => Ok(n.to_string()),
        Some(other) => Err(format!(
            "network {other}: RUN steps take default, none or host"
        )),
    }
}

/// The image's labels: the file's, then Docker Compose's project, service and version.
fn labels(project: &Project, svc: &Service, own: Option<&Value>) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = pairs(own)
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    m.insert(naming::PROJECT.into(), project.name.clone());
    m.insert(naming::SERVICE.into(), svc.name.clone());
    m.insert(naming::VERSION.into(), naming::COMPOSE_VERSION.into());
    m
}

/// Whether `pull_policy: build` asks for a build every time.
fn always_builds(svc: &Service) -> bool {
    svc.str("pull_policy").as_deref() == Some("build")
}

/// The id of the local image `name`, None when it is not here.
pub async fn image_id(ctx: &Ctx, name: &str) -> Result<Option<String>, ComposeError> {
    let Ok(r) = Reference::parse(name) else {
        return Ok(None);
    };
    let store = crate::images::open_store(&ctx.ep)
        .await
        .map_err(anyhow::Error::from)?;
    let Some(img) = store
        .image(&r.to_string())
        .await
        .map_err(anyhow::Error::from)?
    else {
        return Ok(None);
    };
    match crate::images::local::resolve(&store, &img, &Platform::host()).await {
        Ok(l) => Ok(Some(l.id().to_string())),
        Err(_) => Ok(None),
    }
}

/// Builds the images of `services` that have `build:` as `policy` says, and records each
/// one's image id in it (so a rebuilt image changes the config hash and recreates).
pub async fn ensure(
    ctx: &Ctx,
    project: &Project,
    services: &mut [Service],
    policy: Policy,
    flags: &Flags,
    report: super::up::Report<'_>,
) -> Result<(), ComposeError> {
    for i in build_order(services)? {
        // A service: context outside those built here must have been built before.
        for dep in context_services(&services[i]) {
            if services.iter().any(|s| s.name == dep) {
                continue;
            }
            let other = Service::of(project, &dep)?;
            let image = image_name(&project.name, &other).unwrap_or_default();
            if image_id(ctx, &image).await?.is_none() {
                return Err(ComposeError::service(
                    &services[i].name,
                    format!("build: additional_contexts: service:{dep}: its image {image} is not built: run `burrow compose build {dep}` first"),
                ));
            }
        }
        let svc = &mut services[i];
        let Some(opts) = options(project, svc, flags)? else {
            continue;
        };
        let name = image_name(&project.name, svc).unwrap_or_default();
        let present = image_id(ctx, &name).await?;
        let build = match policy {
            Policy::Always => true,
            Policy::Never => false,
            Policy::Missing => present.is_none() || always_builds(svc),
        };
        svc.image_id = if build {
            Some(run(ctx, svc, &name, &opts, report).await?)
        } else if present.is_none() {
            return Err(ComposeError::service(
                &svc.name,
                format!("image {name} is not built: run `burrow compose build {}` or leave out --no-build", svc.name),
            ));
        } else {
            present
        };
    }
    Ok(())
}

/// The order to build `services` in: one whose `additional_contexts` name another with
/// `service:` after that one; otherwise as given.
fn build_order(services: &[Service]) -> Result<Vec<usize>, ComposeError> {
    let mut order: Vec<usize> = Vec::new();
    let mut left: Vec<usize> = (0..services.len()).collect();
    while !left.is_empty() {
        let ready = left.iter().position(|&i| {
            context_services(&services[i])
                .iter()
                .all(|dep| !left.iter().any(|&j| j != i && services[j].name == *dep))
        });
        let Some(k) = ready else {
            let names: Vec<&str> = left.iter().map(|&i| services[i].name.as_str()).collect();
            return Err(ComposeError::service(
                names[0],
                format!(
                    "build: additional_contexts: services {} name each other with service:",
                    names.join(", ")
                ),
            ));
        };
        order.push(left.remove(k));
    }
    Ok(order)
}

/// Builds one service's image; returns its id.
pub async fn run(
    ctx: &Ctx,
    svc: &Service,
    name: &str,
    opts: &Options,
    report: super::up::Report<'_>,
) -> Result<String, ComposeError> {
    report(format!("Service {}  Building", svc.name));
    let built = crate::build::build(ctx, opts)
        .await
        .map_err(|e| ComposeError::service(&svc.name, format!("building {name}: {e:#}")))?;
    for a in &built.unused_args {
        report(format!(
            "warning: service {}: build arg {a} was not consumed by the Dockerfile",
            svc.name
        ));
    }
    report(format!("Service {}  Built", svc.name));
    for (tag, p) in opts.tags.iter().zip(&built.pushed) {
        report(format!(
            "Service {}  Pushed {tag} (digest {})",
            svc.name, p.digest
        ));
    }
    Ok(built.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        crate::compose::project::for_tests(yaml)
    }

    fn opts(yaml: &str, flags: &Flags) -> Result<Option<Options>, ComposeError> {
        let p = project(yaml);
        let svc = Service::of(&p, "web").unwrap();
        options(&p, &svc, flags)
    }

    #[test]
    fn the_short_form_builds_project_service_from_the_context() {
        let o = opts(
            "services:\n  web:\n    build: /srv/app/web\n",
            &Flags::default(),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(&o.context, ContextSource::Dir(d) if d == &PathBuf::from("/srv/app/web")));
        assert!(
            matches!(&o.dockerfile, DockerfileSource::Path(p) if p == &PathBuf::from("Dockerfile"))
        );
        assert_eq!(o.tags, vec!["docker.io/library/app-web:latest".to_string()]);
        assert_eq!(o.labels[naming::PROJECT], "app");
        assert_eq!(o.labels[naming::SERVICE], "web");
        assert_eq!(o.network, crate::network::DEFAULT_NETWORK);
        assert!(!o.no_cache && !o.pull);
    }

    #[test]
    fn the_long_form_maps_every_supported_key() {
        let y = "services:\n  web:\n    image: reg.example/web:1\n    build:\n      context: /c\n      dockerfile: other.Dockerfile\n      args: {A: '1', B: null}\n      target: final\n      labels: [x=y]\n      network: none\n      pull: true\n      no_cache: true\n      tags: [reg.example/web:extra]\n";
        let flags = Flags {
            args: [("C".to_string(), "3".to_string())].into(),
            ..Flags::default()
        };
        let o = opts(y, &flags).unwrap().unwrap();
        assert!(
            matches!(&o.dockerfile, DockerfileSource::Path(p) if p == &PathBuf::from("other.Dockerfile"))
        );
        assert_eq!(
            o.tags,
            vec![
                "reg.example/web:1".to_string(),
                "reg.example/web:extra".to_string()
            ]
        );
        assert_eq!(o.build_args.get("A").map(String::as_str), Some("1"));
        assert_eq!(o.build_args.get("C").map(String::as_str), Some("3"));
        assert_eq!(o.target.as_deref(), Some("final"));
        assert_eq!(o.labels["x"], "y");
        assert_eq!(o.network, "none");
        assert!(o.pull && o.no_cache);
    }

    #[test]
    fn an_inline_dockerfile_is_its_text() {
        let y = "services:\n  web:\n    build:\n      context: /c\n      dockerfile_inline: |\n        FROM scratch\n";
        let o = opts(y, &Flags::default()).unwrap().unwrap();
        assert!(
            matches!(&o.dockerfile, DockerfileSource::Text(t) if t.starts_with("FROM scratch"))
        );
    }

    #[test]
    fn what_the_builder_cannot_do_is_refused_by_name() {
        for (key, want) in [
            ("ssh: [\"x=/etc/passwd\"]", "not an agent's socket"),
            ("cache_from: [x]", "cache_from is not supported"),
            ("network: mynet", "network mynet"),
            (
                "platforms: [linux/s390x]",
                "cross-platform builds are not supported",
            ),
        ] {
            let y = format!("services:\n  web:\n    build:\n      context: /c\n      {key}\nsecrets:\n  s:\n    file: /x\n");
            let e = opts(&y, &Flags::default()).unwrap_err().to_string();
            assert!(
                e.contains("service web: build:") && e.contains(want),
                "{key}: {e}"
            );
        }
    }

    #[test]
    fn run_settings_and_additional_contexts_map_to_the_builder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("extra")).unwrap();
        let y = format!(
            "services:\n  base:\n    build: /b\n  web:\n    build:\n      context: /c\n      extra_hosts: [\"db:10.0.0.9\"]\n      shm_size: 128m\n      ulimits: {{nofile: {{soft: 1024, hard: 2048}}}}\n      additional_contexts:\n        extra: {}\n        img: docker-image://busybox:1\n        up: service:base\n",
            dir.path().join("extra").display()
        );
        let o = opts(&y, &Flags::default()).unwrap().unwrap();
        assert_eq!(o.run.extra_hosts[0].to_string(), "db:10.0.0.9");
        assert_eq!(o.run.shm_size.map(|b| b.0), Some(128 << 20));
        assert_eq!(o.run.ulimits[0].to_string(), "nofile=1024:2048");
        use crate::build::contexts::NamedContext;
        assert_eq!(
            o.contexts.get("extra"),
            Some(&NamedContext::Dir(dir.path().join("extra")))
        );
        assert_eq!(
            o.contexts.get("up"),
            Some(&NamedContext::Image("app-base".into()))
        );
        let p = project(&y);
        let services: Vec<Service> = ["web", "base"]
            .iter()
            .map(|n| Service::of(&p, n).unwrap())
            .collect();
        assert_eq!(
            build_order(&services).unwrap(),
            [1, 0],
            "base is built first"
        );
        let e = opts(
            "services:\n  web:\n    build:\n      context: /c\n      additional_contexts: [x=service:nope]\n",
            &Flags::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no such service"), "{e}");
    }

    #[test]
    fn build_secrets_come_from_the_projects_secrets() {
        let y = "services:\n  web:\n    build:\n      context: /c\n      secrets: [f, {source: e, target: token}]\nsecrets:\n  f:\n    file: /run/f.txt\n  e:\n    environment: MY_TOKEN\n";
        let o = opts(y, &Flags::default()).unwrap().unwrap();
        assert_eq!(o.secrets.0["f"], SecretSource::File("/run/f.txt".into()));
        assert_eq!(o.secrets.0["token"], SecretSource::Env("MY_TOKEN".into()));
    }

    #[test]
    fn a_service_without_build_has_no_build_and_keeps_its_image() {
        let p = project("services:\n  web:\n    image: busybox\n");
        let svc = Service::of(&p, "web").unwrap();
        assert!(options(&p, &svc, &Flags::default()).unwrap().is_none());
        assert_eq!(image_name("app", &svc).as_deref(), Some("busybox"));
        assert!(!svc.builds_only());
    }

    #[test]
    fn the_built_image_id_changes_the_config_hash() {
        let p = project("services:\n  web:\n    build: /c\n");
        let mut svc = Service::of(&p, "web").unwrap();
        let plain = svc.config_hash();
        svc.image_id = Some("sha256:aa".into());
        let a = svc.config_hash();
        svc.image_id = Some("sha256:bb".into());
        assert_ne!(plain, a);
        assert_ne!(a, svc.config_hash());
    }
}
