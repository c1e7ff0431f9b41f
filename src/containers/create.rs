//! Creating a container from a [`ContainerRequest`]: everything that can be refused is checked
//! before anything is made; then the image is resolved (or pulled), the state dir written
//! (resolv.conf, hosts, hostname, network hook config), volumes and mounts prepared, the spec
//! built, and the record and snapshot created in containerd. A failure at any step removes what
//! the steps before it made. With `ahead` (`run`), the container's networks are attached by a
//! helper while the rest is made, in a namespace the task then joins.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use oci_spec::runtime::{HookBuilder, HooksBuilder, Mount, MountBuilder, PosixRlimit, Spec};

use super::lifecycle::NewContainer;
use super::logdriver::{self, LogOpts};
use super::mounts::{MountError, MountPoint, MountRecord};
use super::request::{ContainerRequest, RequestError};
use super::spec::{self, Cgroups, Limits, NetNs, Options, Seccomp};
use super::values::{
    HostAddr, MountSpec, PullPolicy, RestartPolicy, SecurityOpt, VolumeSource, VolumeSpec,
};
use super::volumes::{VolumeError, Volumes};
use super::{labels, store, Ctx};
use crate::images::runnable::{Image, ImageError};
use crate::network::ports::PortMapping;
use crate::network::{files, hook, prepare};
use crate::selfexec::Helper;

/// Where `--init` puts the host's init binary inside the container (Docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// What `create` tells its caller along the way (the CLI prints these on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The image is being pulled.
    Pulling(String),
    /// The pull unpacked layers with every file given to the single mapped id.
    SquashedOwners,
    /// Published ports were dropped: the container has no network of its own.
    PortsDiscarded { network: String },
    /// `--userns=keep-id`: the image's remapped snapshot is being made (once per image and map).
    RemappingOwners,
    /// The image is for another platform this host cannot run (the warning's text).
    ForeignPlatform(String),
    /// A limit this host's cgroups cannot take was dropped, as Docker drops it (why).
    LimitDiscarded(String),
    /// The container's user runs as uid 0: the launcher maps a single id.
    SingleIdUser { user: String, uid: u32, gid: u32 },
}

/// How to create.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Attach the networks ahead of the task (`run`, which starts the task at once).
    pub ahead: bool,
    /// (container path, volume name): anonymous volumes of a container this one replaces,
    /// mounted again where this one would get a new anonymous volume at the same path
    /// (Compose's recreate keeps their data, as Docker Compose's does).
    pub reuse_anonymous: Vec<(String, String)>,
    /// Without burrow.toml's container defaults and a Slurm job's variables (the builder's
    /// RUN steps: a build does not depend on where it runs).
    pub bare: bool,
}

impl CreateOptions {
    /// Options attaching the networks ahead of the task when `ahead` (a start follows at once).
    pub fn attach_ahead(ahead: bool) -> CreateOptions {
        CreateOptions {
            ahead,
            ..CreateOptions::default()
        }
    }
}

/// A container that cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Endpoint(#[from] super::endpoints::EndpointError),
    #[error(transparent)]
    Device(#[from] crate::devices::DeviceError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What `create` made, for starting it.
pub struct Created {
    pub id: String,
    pub name: String,
    pub rootfs: Vec<containerd_client::types::Mount>,
    /// The ahead-of-time network attach, settled once the task holds the namespace.
    pub net: Option<AheadNet>,
    /// Named volumes this create made (a `run` that then fails removes them again).
    pub created_volumes: Vec<String>,
}

/// A network namespace attached while the container was created (see
/// [`crate::network::prepare`]), and the spec to store once the task has joined it.
pub struct AheadNet {
    pub(super) helper: prepare::Prepared,
    pub(super) spec_after: Spec,
}

impl AheadNet {
    /// The task has joined the namespace: later starts get a fresh one (the path goes away),
    /// and the helper unmounts it. Returns the helper, to wait for before the state dir goes.
    pub async fn settle(self, ctx: &Ctx, id: &str) -> prepare::Prepared {
        if let Err(err) = ctx.client.update_spec(id, &self.spec_after).await {
            eprintln!(
                "burrow: warning: container {id}: {err:#}; its next start may fail to find its \
                 network namespace (remove it and run it again)"
            );
        }
        let mut helper = self.helper;
        helper.done();
        helper
    }

    /// The run failed: the helper finishes, unmounts and exits.
    pub fn abandon(self) {
        self.helper.release(true);
    }

    /// The start failed but the container stays (Compose's up): its stored spec goes back to
    /// a fresh namespace, attached by its next start, and the helper ends.
    pub async fn restore(self, ctx: &Ctx, id: &str) {
        if let Err(err) = ctx.client.update_spec(id, &self.spec_after).await {
            tracing::warn!(%err, "container {id}: restoring its spec after a failed start; if its next start cannot find its network namespace, remove it and create it again");
        }
        let helper = self.helper;
        let _ = tokio::task::spawn_blocking(move || helper.release(true)).await;
    }
}

/// Creates the container `req` asks for, without a task.
pub async fn create(
    ctx: &Ctx,
    req: &ContainerRequest,
    opts: CreateOptions,
    notify: &(dyn Fn(Note) + Sync),
) -> Result<Created, CreateError> {
    let with_defaults;
    let req = match opts.bare {
        true => req,
        false => {
            with_defaults = super::defaults::apply(req, &crate::config::defaults())?;
            &with_defaults
        }
    };
    req.validate(req.host_config.auto_remove)?;
    let mut checked = Checked::new(ctx, req)?;
    checked.limits.check_host().map_err(RequestError::from)?;
    for w in checked.limits.discard_unsupported() {
        notify(Note::LimitDiscarded(w));
    }
    checked.inherited = super::mounts::volumes_from(ctx, &req.host_config.volumes_from).await?;
    check_propagation(ctx, &checked)?;
    // Networks that cannot be combined fail before any pull.
    super::endpoints::net_mode(req)?;
    tracing::debug!("create: checked the request");
    let mut image = resolve_image(ctx, req, notify).await?;
    tracing::debug!("create: resolved the image");
    checked.add_anonymous_volumes(&image.volumes, &opts.reuse_anonymous);
    if let Some(w) = super::platform::foreign_warning(&image.platform) {
        notify(Note::ForeignPlatform(w));
    }
    let id = store::new_id();
    let name = match &req.name {
        Some(n) => n.clone(),
        None => free_default_name(&ctx.store, &image.name, &id),
    };
    let nets = super::endpoints::resolve(ctx, req).await?;
    // `--link`: the linked containers' addresses and variables, read now.
    let linked;
    let mut links = Vec::new();
    let req = match req.host_config.links.is_empty() {
        true => req,
        false => {
            let joined: Vec<String> = nets.confs.iter().map(|(n, _)| n.clone()).collect();
            let made = super::links::apply(ctx, req, &name, &joined)
                .await
                .map_err(CreateError::Other)?;
            links = made.links;
            linked = made.req;
            &linked
        }
    };
    let mut plan = NetPlan::new(ctx, req, &image, nets, notify)?;
    plan.links = links;
    let mut undo = Undo::new(ctx, &id);
    let mut net = None;
    let made = make(
        ctx,
        req,
        &checked,
        &mut image,
        &plan,
        (&id, &name),
        opts,
        notify,
        &mut undo,
        &mut net,
    )
    .await;
    match made {
        Ok(rootfs) => {
            for v in undo.anonymous.iter().chain(&undo.created_named) {
                super::notify::volume(ctx, "create", v).await;
            }
            Ok(Created {
                id,
                name,
                rootfs,
                net,
                created_volumes: undo.created_named.clone(),
            })
        }
        Err(err) => {
            if let Some(n) = net {
                n.abandon();
            }
            undo.run().await;
            Err(err)
        }
    }
}

/// `image-1a2b3`: the image's last path element and the first `digits` of the id.
fn default_name(image: &str, id: &str, digits: usize) -> String {
    let base = image
        .rsplit('/')
        .next()
        .unwrap_or("c")
        .split([':', '@'])
        .next()
        .unwrap_or("c");
    format!("{base}-{}", &id[..digits.min(id.len())])
}

/// The default name, with more of the id while a container holds the shorter one (two ids
/// that share their first five digits): a generated name never fails a create, as Docker's
/// do not.
fn free_default_name(store: &store::Store, image: &str, id: &str) -> String {
    (5..id.len())
        .map(|d| default_name(image, id, d))
        .find(|n| !store.name_taken(n))
        .unwrap_or_else(|| default_name(image, id, id.len()))
}

/// Everything of the request that needed the host to check, checked.
struct Checked {
    /// Where the container's cgroup goes (`{ID}` for its id), or why it has none.
    cgroups: Cgroups,
    restart: RestartPolicy,
    seccomp: Seccomp,
    no_new_privileges: bool,
    /// `systempaths=unconfined`: nothing of /proc and /sys masked or read-only.
    unmask_paths: bool,
    /// `apparmor=PROFILE` (None: unconfined, as burrow runs containers).
    apparmor: Option<String>,
    init: Option<PathBuf>,
    /// `--runtime`, resolved to the program the shim runs.
    runtime: super::runtime::OciRuntime,
    log_opts: LogOpts,
    annotations: HashMap<String, String>,
    bypass: Option<PathBuf>,
    limits: Limits,
    ulimits: Vec<PosixRlimit>,
    shm_bytes: Option<i64>,
    /// `-v` and `--mount` volumes and binds, bind sources made absolute.
    volumes: Vec<VolumeSpec>,
    /// `--tmpfs` and `--mount type=tmpfs`.
    tmpfs: Vec<Mount>,
    /// `--device`, `--device-cgroup-rule`, `--gpus`, CDI devices: looked up and resolved.
    devices: crate::devices::Resolved,
    /// `--userns=keep-id`'s maps and user.
    keep_id: Option<super::userns::KeepId>,
    /// The mount points `--volumes-from` takes over.
    inherited: Vec<MountPoint>,
    /// Anonymous volumes to mount again at their destinations (see [`CreateOptions`]).
    reuse_anonymous: Vec<(String, String)>,
}

impl Checked {
    fn new(ctx: &Ctx, req: &ContainerRequest) -> Result<Checked, CreateError> {
        // A parent cgroup that cannot be had fails before any pull.
        let cgroups = cgroups(ctx, &req.host_config.cgroup_parent)?;
        let hc = &req.host_config;
        let Security {
            seccomp,
            no_new_privileges,
            unmask_paths,
            apparmor,
        } = security(&hc.security_opt)?;
        let init = if hc.init { Some(find_init()?) } else { None };
        let runtime =
            super::runtime::OciRuntime::resolve(&hc.runtime).map_err(RequestError::from)?;
        let log_opts = logdriver::parse_opts(&hc.log_config.driver, &hc.log_config.options)
            .map_err(anyhow::Error::from)?;
        let bypass = if super::bypass::wanted(req.bypass, &req.config.labels, &hc.annotations) {
            Some(super::bypass::prepare(&ctx.ep, network_mode(req))?)
        } else {
            None
        };
        let ulimits = hc
            .ulimits
            .iter()
            .map(|u| u.to_oci())
            .collect::<Result<Vec<_>, _>>()
            .map_err(spec::SpecError::from)?;
        let (volumes, tmpfs) = mounts_of(req)?;
        let devices = crate::devices::resolve(
            &hc.devices,
            &hc.device_cgroup_rules,
            &hc.device_requests,
            &ctx.cdi_spec_dirs,
        )?;
        let keep_id =
            super::userns::create_parts::plan(ctx, &hc.userns_mode).map_err(RequestError::from)?;
        Ok(Checked {
            cgroups,
            devices,
            restart: hc.restart_policy,
            seccomp,
            no_new_privileges,
            unmask_paths,
            apparmor,
            init,
            runtime,
            log_opts,
            annotations: hc.annotations.clone().into_iter().collect(),
            bypass,
            limits: hc.limits(),
            ulimits,
            // In a Slurm job /dev/shm is as large as the node's (MPI's shared-memory transport).
            shm_bytes: hc
                .shm_size
                .map(|s| s.0)
                .or_else(crate::slurm::node_shm_bytes),
            volumes,
            tmpfs,
            keep_id,
            inherited: Vec::new(),
            reuse_anonymous: Vec::new(),
        })
    }

    /// Anonymous volumes at the image's `VOLUME` paths and at the paths of `reuse` (a replaced
    /// container's), where no other mount is: as Docker's, filled from the image when new, and
    /// removed with the container by `rm -v` and `run --rm`. Mounts are then ordered by depth,
    /// so that one inside another's path is mounted after it.
    fn add_anonymous_volumes(&mut self, image_paths: &[String], reuse: &[(String, String)]) {
        let mut paths: Vec<String> = image_paths
            .iter()
            .chain(reuse.iter().map(|(t, _)| t))
            .map(|p| clean_target(p))
            .collect();
        paths.sort();
        paths.dedup();
        for target in paths {
            let taken = self
                .volumes
                .iter()
                .any(|v| clean_target(&v.target) == target)
                || self
                    .inherited
                    .iter()
                    .any(|m| clean_target(&m.destination) == target)
                || self
                    .tmpfs
                    .iter()
                    .any(|m| clean_target(&m.destination().to_string_lossy()) == target);
            if !taken && target != "/" {
                self.volumes
                    .push(VolumeSpec::new(VolumeSource::Anonymous, target));
            }
        }
        self.volumes.sort_by_key(|v| depth(&v.target));
        self.reuse_anonymous = reuse.to_vec();
    }
}

/// A mount's container path without a trailing or doubled `/` (`/data/` and `/data` are one).
fn clean_target(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// How many path components a mount's container path has (`/` has none).
fn depth(p: &str) -> usize {
    p.split('/').filter(|c| !c.is_empty() && *c != ".").count()
}

/// Docker's check that a shared or slave bind's source is on a shared (or slave) mount, as the
/// runtime's mount namespace (the launcher's, rootless) sees it.
fn check_propagation(ctx: &Ctx, checked: &Checked) -> Result<(), MountError> {
    let mountinfo = match &ctx.ep.launcher {
        Some(l) => PathBuf::from(format!("/proc/{}/mountinfo", l.child_pid)),
        None => PathBuf::from("/proc/self/mountinfo"),
    };
    let own = checked.volumes.iter().filter_map(|v| match &v.source {
        VolumeSource::Host(p) => Some(MountPoint::of(v, p)),
        _ => None,
    });
    for m in own.chain(checked.inherited.iter().cloned()) {
        super::mounts::check_propagation(&m, &mountinfo, ctx.ep.launcher.is_some())?;
    }
    Ok(())
}

fn network_mode(req: &ContainerRequest) -> &str {
    match req.host_config.network_mode.as_str() {
        "" => crate::network::DEFAULT_NETWORK,
        m => m,
    }
}

/// What `--security-opt` asks.
struct Security {
    seccomp: Seccomp,
    no_new_privileges: bool,
    unmask_paths: bool,
    apparmor: Option<String>,
}

/// Where the kernel says whether AppArmor is on, and SELinux's file system.
const APPARMOR_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
const SELINUX_FS: &str = "/sys/fs/selinux/enforce";

/// The seccomp profile, no-new-privileges, unmasked system paths and AppArmor profile of
/// `--security-opt`. SELinux labels are taken where SELinux is off (as Docker takes them: they
/// change nothing there) and refused where it is on (burrow cannot apply them).
fn security(opts: &[SecurityOpt]) -> anyhow::Result<Security> {
    let mut s = Security {
        seccomp: Seccomp::Default,
        no_new_privileges: false,
        unmask_paths: false,
        apparmor: None,
    };
    for o in opts {
        match o {
            SecurityOpt::SeccompUnconfined => s.seccomp = Seccomp::Unconfined,
            SecurityOpt::SeccompProfile(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the seccomp profile {}", path.display()))?;
                let profile: burrow_seccomp::Profile = serde_json::from_str(&text)
                    .with_context(|| format!("parsing the seccomp profile {}", path.display()))?;
                s.seccomp = Seccomp::Profile(Box::new(profile));
            }
            SecurityOpt::NoNewPrivileges(b) => s.no_new_privileges = *b,
            SecurityOpt::SystemPathsUnconfined => s.unmask_paths = true,
            SecurityOpt::AppArmor(p) if p == "unconfined" => s.apparmor = None,
            SecurityOpt::AppArmor(p) => {
                let on = std::fs::read_to_string(APPARMOR_ENABLED).is_ok_and(|v| v.trim() == "Y");
                if !on {
                    anyhow::bail!("--security-opt apparmor={p}: AppArmor is not enabled on this host ({APPARMOR_ENABLED}), so no profile can be applied; leave the option out (burrow's containers run unconfined by AppArmor)");
                }
                s.apparmor = Some(p.clone());
            }
            SecurityOpt::Label(l) => {
                if Path::new(SELINUX_FS).exists() {
                    anyhow::bail!("--security-opt label={l}: SELinux is enabled on this host and burrow does not apply SELinux labels; leave the option out");
                }
            }
        }
    }
    Ok(s)
}

/// The request's volumes and binds (bind sources made absolute; a missing `-v` source is made
/// as Docker makes it, a missing `--mount` source refused) and its tmpfs mounts, in Docker's
/// order: `-v`, then `--mount`; `--tmpfs`, then `--mount type=tmpfs`.
fn mounts_of(req: &ContainerRequest) -> anyhow::Result<(Vec<VolumeSpec>, Vec<Mount>)> {
    let hc = &req.host_config;
    for v in &hc.binds {
        if let VolumeSource::Host(src) = &v.source {
            if std::fs::symlink_metadata(src).is_err() {
                std::fs::create_dir_all(src)
                    .with_context(|| format!("creating the bind source {} of -v", src.display()))?;
            }
        }
    }
    let mut volumes: Vec<VolumeSpec> = hc.binds.clone();
    let mut tmpfs = hc.tmpfs.clone();
    for m in &hc.mounts {
        match m {
            MountSpec::Volume(v) => volumes.push(v.clone()),
            MountSpec::Tmpfs(t) => tmpfs.push(t.clone()),
        }
    }
    for v in volumes.iter_mut() {
        if let VolumeSource::Host(src) = &v.source {
            let abs = std::fs::canonicalize(src).map_err(|e| {
                anyhow!(
                    "bind source path {:?} of {} does not exist ({e}): create it first",
                    src.display().to_string(),
                    v.target
                )
            })?;
            v.source = VolumeSource::Host(abs);
        }
    }
    let tmpfs = tmpfs
        .iter()
        .map(|t| {
            let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
            o.extend(t.options.iter().cloned());
            MountBuilder::default()
                .destination(&t.target)
                .typ("tmpfs")
                .source("tmpfs")
                .options(o)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((volumes, tmpfs))
}

/// The host's init for `--init`: Docker's docker-init, tini, or catatonit (all static or nearly).
fn find_init() -> anyhow::Result<PathBuf> {
    let libexec = ["/usr/libexec/docker", "/usr/libexec/podman"];
    if let Some(p) = ["docker-init", "tini-static", "tini", "catatonit"]
        .iter()
        .find_map(|name| crate::setup::programs::which_in(name, &libexec))
    {
        return Ok(p);
    }
    anyhow::bail!(
        "--init needs an init binary on the host (docker-init, tini or catatonit) and none was found: as root, apt-get install catatonit (or tini)"
    )
}

/// The image (for the request's platform), pulled first as the request's pull policy says:
/// with `missing`, also when only another platform's image is here (as Docker).
async fn resolve_image(
    ctx: &Ctx,
    req: &ContainerRequest,
    notify: &(dyn Fn(Note) + Sync),
) -> Result<Image, CreateError> {
    let name = &req.config.image;
    let platform = req.platform.as_ref();
    let mut found = ctx.images.resolve_for(name, platform).await;
    if matches!(found, Err(ImageError::NotFound(_))) && req.pull != PullPolicy::Always {
        // Not here: from the shared store, when it has it (no pull, no unpack).
        if let Some((dir, entry)) = super::shared::find(&super::shared::store_dirs(), name) {
            let unpacked = || notify(Note::SquashedOwners);
            super::shared::import(ctx, &dir, &entry, &unpacked)
                .await
                .with_context(|| {
                    format!("starting {name} from the shared store {}", dir.display())
                })?;
            found = ctx.images.resolve_for(&entry.name, platform).await;
        }
    }
    if let Ok(i) = &found {
        super::shared::ensure_mounted(ctx, &i.labels).await?;
    }
    Ok(match (req.pull, found) {
        (PullPolicy::Missing | PullPolicy::Never, Ok(i)) => i,
        (PullPolicy::Never, Err(e)) => return Err(e.into()),
        (PullPolicy::Missing, Err(ImageError::NotFound(_))) => {
            pull(ctx, name, platform, notify)
                .await
                .with_context(|| format!("no such image {name} locally, and pulling it failed"))?;
            ctx.images.resolve_for(name, platform).await?
        }
        (PullPolicy::Missing, Err(e @ ImageError::PlatformMismatch { .. })) => {
            if let Err(err) = pull(ctx, name, platform, notify).await {
                return Err(anyhow!("{e}; pulling it failed: {err:#}").into());
            }
            ctx.images.resolve_for(name, platform).await?
        }
        (PullPolicy::Always, _) => {
            pull(ctx, name, platform, notify).await?;
            ctx.images.resolve_for(name, platform).await?
        }
        (PullPolicy::Missing, Err(e)) => return Err(e.into()),
    })
}

/// Pulls `name` (for `platform`, strictly, when given) from its registry, quietly (a
/// container's stdout may be the caller's).
pub(crate) async fn pull(
    ctx: &Ctx,
    name: &str,
    platform: Option<&crate::images::manifest::Platform>,
    notify: &(dyn Fn(Note) + Sync),
) -> anyhow::Result<()> {
    use crate::images::{manifest::Platform, progress::Progress, pull, reference::Reference};
    let reference = Reference::parse(name)?;
    notify(Note::Pulling(reference.familiar()));
    let reg = std::sync::Arc::new(crate::images::endpoints::registry_for(
        &reference.domain,
        false,
    )?);
    let opts = pull::PullOptions {
        platform: platform.cloned().unwrap_or_else(Platform::host),
        strict_platform: platform.is_some(),
        all_platforms: false,
        unpack: true,
    };
    let store = crate::images::store::Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep);
    let pulled = pull::pull(
        &store,
        reg,
        &reference,
        &opts,
        std::sync::Arc::new(Progress::new(true)),
    )
    .await
    .with_context(|| format!("pulling {}", reference.familiar()))?;
    if store.squashed_owners && pulled.downloaded > 0 {
        notify(Note::SquashedOwners);
    }
    Ok(())
}

/// The container's networks, ports and cgroup placement.
struct NetPlan {
    netns: NetNs,
    /// The networks label (see [`super::endpoints::Resolved::label`]).
    networks: Vec<String>,
    net_confs: Vec<(String, serde_json::Value)>,
    endpoints: Vec<hook::EndpointOpts>,
    /// `--network container:NAME`: the container whose namespace and files are shared.
    joined: Option<super::endpoints::JoinedNet>,
    port_maps: Vec<PortMapping>,
    /// `--add-host` entries, `host-gateway` resolved.
    extra_hosts: Vec<(String, String)>,
    /// `--link`: (linked container's id, alias).
    links: Vec<(String, String)>,
}

impl NetPlan {
    fn new(
        ctx: &Ctx,
        req: &ContainerRequest,
        image: &Image,
        nets: super::endpoints::Resolved,
        notify: &(dyn Fn(Note) + Sync),
    ) -> anyhow::Result<NetPlan> {
        let hc = &req.host_config;
        let mut port_maps = Vec::new();
        for p in &hc.port_bindings {
            port_maps.extend(p.resolve()?);
        }
        if hc.publish_all_ports {
            let mut exposed: Vec<&String> = image.exposed_ports.iter().collect();
            exposed.extend(&req.config.exposed_ports);
            exposed.sort();
            exposed.dedup();
            for e in exposed {
                let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
                port_maps.extend(crate::network::ports::parse(
                    &format!("{port}/{proto}"),
                    crate::network::ports::kernel_free_port,
                )?);
            }
        }
        let mode = network_mode(req);
        if nets.confs.is_empty() && !port_maps.is_empty() {
            notify(Note::PortsDiscarded {
                network: mode.to_string(),
            });
            port_maps.clear();
        }
        if let (Some(ip), true) = (req.networking_config.ipv4_address, nets.confs.is_empty()) {
            check_ip(ip, mode, &nets.confs)?;
        }
        let mut plan = NetPlan {
            netns: nets.netns,
            networks: nets.label,
            net_confs: nets.confs,
            endpoints: nets.endpoints,
            joined: nets.joined,
            port_maps,
            extra_hosts: Vec::new(),
            links: Vec::new(),
        };
        plan.extra_hosts = extra_hosts(req, host_gateway(ctx, &plan).as_deref());
        Ok(plan)
    }
}

/// Where the container's cgroup goes (`{ID}` stands for its id), or why it has none:
/// `parent` (`--cgroup-parent`) replaces the default parent, a slice under systemd.
fn cgroups(ctx: &Ctx, parent: &str) -> Result<Cgroups, RequestError> {
    Ok(match ctx.ep.cgroup_manager.as_str() {
        "none" => {
            let reason = spec::cgroup_unavailable_reason(ctx.rootless()).unwrap_or_else(|| {
                "the cgroup manager is \"none\" (see --cgroup-manager and `burrow info`)".into()
            });
            if !parent.is_empty() {
                return Err(RequestError::CgroupParent(format!(
                    "{parent:?} cannot be used: {reason}"
                )));
            }
            Cgroups::Unavailable { reason }
        }
        "systemd" => {
            let slice = match parent {
                "" if ctx.rootless() => "user.slice",
                "" => "system.slice",
                p if p.ends_with(".slice") && !p.contains('/') => p,
                p => {
                    return Err(RequestError::CgroupParent(format!(
                        "{p:?}: under systemd the parent is a slice, named as NAME.slice"
                    )))
                }
            };
            Cgroups::Path(format!("{slice}:nerdctl:{{ID}}"))
        }
        _ => match parent.trim_matches('/') {
            "" => Cgroups::Path(format!("/{}/{{ID}}", ctx.ep.namespace)),
            p if p.split('/').any(|c| c == ".." || c == ".") => {
                return Err(RequestError::CgroupParent(format!(
                    "{parent:?}: give a path of cgroup names, without . or .."
                )))
            }
            p => Cgroups::Path(format!("/{p}/{{ID}}")),
        },
    })
}

/// `--ip` must fall in the subnet of the network the container joins with it (`confs`' first).
pub(crate) fn check_ip(
    ip: std::net::Ipv4Addr,
    network: &str,
    confs: &[(String, serde_json::Value)],
) -> anyhow::Result<()> {
    let Some((name, conf)) = confs.first() else {
        anyhow::bail!("--ip needs a network, and the container has none (--network {network})");
    };
    let subnets = crate::network::conf_subnets(conf);
    let inside = subnets.iter().any(|s| {
        crate::network::parse_cidr(s).is_some_and(|(net, len)| {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(ip) & mask == net
        })
    });
    if !inside {
        anyhow::bail!(
            "--ip {ip} is not in the subnet of network {name} ({}): pick an address there, or create a network with --subnet",
            subnets.join(", ")
        );
    }
    Ok(())
}

/// Everything a partly created container owns, removed again on failure.
struct Undo<'a> {
    ctx: &'a Ctx,
    id: String,
    name: Option<String>,
    dir: bool,
    record: Option<String>,
    /// Anonymous volumes made for the container.
    anonymous: Vec<String>,
    /// Anonymous volumes of a replaced container mounted again (kept on failure).
    reused: Vec<String>,
    /// Named volumes this create made.
    created_named: Vec<String>,
}

impl<'a> Undo<'a> {
    fn new(ctx: &'a Ctx, id: &str) -> Undo<'a> {
        Undo {
            ctx,
            id: id.to_string(),
            name: None,
            dir: false,
            record: None,
            anonymous: Vec::new(),
            reused: Vec::new(),
            created_named: Vec::new(),
        }
    }

    async fn run(self) {
        let ctx = self.ctx;
        let _ = ctx.client.delete_task(&self.id).await;
        teardown_leftovers(ctx, &self.id);
        if let Some(snapshotter) = &self.record {
            if let Err(err) = ctx.client.delete(&self.id, snapshotter).await {
                tracing::warn!(%err, "removing the container of a failed create");
            }
        }
        if let Some(name) = &self.name {
            ctx.store.release_name(name, &self.id);
        }
        if self.dir {
            let _ = ctx.store.remove_dir(&self.id);
        }
        let volumes = Volumes::of(ctx);
        volumes.remove_quietly(&self.anonymous);
        volumes.remove_quietly(&self.created_named);
    }
}

/// If the network hook's state is still there (the runtime failed after attaching), detach
/// by running the hook's poststop in the runtime's namespaces.
pub fn teardown_leftovers(ctx: &Ctx, id: &str) {
    let dir = ctx.store.container_dir(id);
    if !dir.join(hook::STATE_FILE).exists() {
        return;
    }
    let Some(mut cmd) = net_teardown_command(ctx, &dir, false) else {
        return;
    };
    match cmd.status() {
        Ok(s) if s.success() => {}
        other => tracing::warn!(?other, "network teardown of a failed run"),
    }
}

/// Starts detaching a just-exited container's networks in a helper, claiming them first so the
/// runtime's poststop hook (run by the task's deletion) has nothing to do and the two overlap
/// (`run --rm`, an auto-removed container's end). None: nothing claimed, the hook detaches.
pub fn start_claimed_teardown(ctx: &Ctx, id: &str) -> Option<std::process::Child> {
    let dir = ctx.store.container_dir(id);
    if !hook::claim(&dir) {
        return None;
    }
    let Some(mut cmd) = net_teardown_command(ctx, &dir, true) else {
        hook::unclaim(&dir);
        return None;
    };
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    match cmd.spawn() {
        Ok(child) => Some(child),
        Err(err) => {
            tracing::warn!(%err, "starting the network teardown; the poststop hook will detach");
            hook::unclaim(&dir);
            None
        }
    }
}

/// The network teardown helper (None when our own binary cannot be found).
pub fn net_teardown_command(ctx: &Ctx, dir: &Path, claimed: bool) -> Option<std::process::Command> {
    Helper::NetTeardown {
        state_dir: dir.to_path_buf(),
        launcher_pid: ctx.launcher_pid(),
        claimed,
    }
    .command()
    .ok()
}

fn bind(dest: &str, src: &Path, ro: bool) -> anyhow::Result<Mount> {
    let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
    if ro {
        opts.push("ro".to_string());
    }
    Ok(MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(src)
        .options(opts)
        .build()?)
}

/// The state dir's files (resolv.conf, hosts, hostname) bound into the container.
fn state_files(
    ctx: &Ctx,
    req: &ContainerRequest,
    plan: &NetPlan,
    id: &str,
    hostname: &str,
) -> anyhow::Result<(Vec<Mount>, PathBuf)> {
    if let Some(j) = &plan.joined {
        // Docker's container: mode shares these three with the other container.
        let mounts = ["resolv.conf", "hosts", "hostname"]
            .iter()
            .map(|f| bind(&format!("/etc/{f}"), &j.dir.join(f), false))
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Ok((mounts, j.dir.join("hosts")));
    }
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = ctx.store.write_file(
        id,
        "resolv.conf",
        &files::resolv_conf_with(
            ctx.rootless(),
            &req.host_config.dns,
            &req.host_config.dns_search,
            &req.host_config.dns_options,
            &host_resolv,
        ),
    )?;
    let hosts_file =
        ctx.store
            .write_file(id, "hosts", &files::hosts(None, &[], &plan.extra_hosts))?;
    let hostname_file = ctx
        .store
        .write_file(id, "hostname", &format!("{hostname}\n"))?;
    let mounts = vec![
        bind("/etc/resolv.conf", &resolv, false)?,
        bind("/etc/hosts", &hosts_file, false)?,
        bind("/etc/hostname", &hostname_file, false)?,
    ];
    Ok((mounts, hosts_file))
}

/// `--add-host` entries as (name, address), `host-gateway` made the host's address as the
/// container reaches it: rootless, the launcher's gateway (10.0.2.2); rootful, the gateway of
/// the container's network (the host's address on that bridge), or 127.0.0.1 on the host's
/// own network.
fn extra_hosts(req: &ContainerRequest, gateway: Option<&str>) -> Vec<(String, String)> {
    req.host_config
        .extra_hosts
        .iter()
        .map(|h| {
            let ip = match h.ip {
                HostAddr::Ip(ip) => ip.to_string(),
                HostAddr::HostGateway => gateway.unwrap_or("127.0.0.1").to_string(),
            };
            (h.name.clone(), ip)
        })
        .collect()
}

/// The host as a container reaches it, for `host-gateway`.
fn host_gateway(ctx: &Ctx, plan: &NetPlan) -> Option<String> {
    if ctx.rootless() {
        return Some(crate::network::files::ROOTLESS_HOST.to_string());
    }
    let (_, conf) = plan.net_confs.first()?;
    let subnet = crate::network::conf_subnets(conf).into_iter().next()?;
    let (net, _) = crate::network::parse_cidr(&subnet)?;
    Some(std::net::Ipv4Addr::from(net + 1).to_string())
}

/// (container path, volume data dir) of a volume still empty, to fill from the image.
type FreshVolume = (String, PathBuf);

/// A container's volume and bind mounts, made.
struct VolumeMounts {
    /// The OCI mounts.
    mounts: Vec<Mount>,
    /// The new volumes to fill from the image.
    fresh: Vec<FreshVolume>,
    /// What inspect shows of them (and `--volumes-from` takes).
    points: Vec<MountPoint>,
}

/// Volume and bind mounts: the ones `--volumes-from` takes over (unless the container's own
/// replace them), then its own, anonymous and named volumes made (recorded in `undo`); the
/// volumes still empty, to fill from the image (unless nocopy); and their mount points.
fn volume_mounts(
    ctx: &Ctx,
    checked: &Checked,
    undo: &mut Undo<'_>,
) -> Result<VolumeMounts, CreateError> {
    let store = Volumes::of(ctx);
    let mut points: Vec<MountPoint> = checked
        .inherited
        .iter()
        .filter(|m| !checked.volumes.iter().any(|v| v.target == m.destination))
        .cloned()
        .collect();
    let mut fresh = Vec::new();
    for v in &checked.volumes {
        let source = match &v.source {
            VolumeSource::Host(p) => p.clone(),
            VolumeSource::Anonymous | VolumeSource::Named(_) => {
                let data = match &v.source {
                    VolumeSource::Named(n) => {
                        let opts = v.volume_opts.clone().into_iter().collect();
                        let (data, created) = store.ensure_with(n, opts)?;
                        if created {
                            undo.created_named.push(n.clone());
                        }
                        // A volume of a filesystem (tmpfs) is mounted before it is filled.
                        store.mount(n)?;
                        data
                    }
                    _ => match reused(&store, checked, &v.target) {
                        Some((name, data)) => {
                            undo.reused.push(name);
                            data
                        }
                        None => {
                            let (name, data) = store.create_anonymous()?;
                            undo.anonymous.push(name);
                            data
                        }
                    },
                };
                // A subpath of the volume is mounted as it is: it must be there, and nothing
                // is copied into it (as Docker's volume-subpath).
                if let Some(sub) = &v.subpath {
                    let dir = data.join(sub);
                    if !store.is_dir(&dir) {
                        return Err(anyhow::anyhow!(
                            "volume-subpath {sub:?} of volume {}: no such directory in the volume (make it first, e.g. with a container that mounts the whole volume)",
                            match &v.source {
                                VolumeSource::Named(n) => n.as_str(),
                                _ => "",
                            }
                        )
                        .into());
                    }
                    dir
                } else {
                    if !v.nocopy && store.is_empty(&data) {
                        fresh.push((v.target.clone(), data.clone()));
                    }
                    data
                }
            }
        };
        points.push(MountPoint::of(v, &source));
    }
    let mounts = points
        .iter()
        .map(MountPoint::to_oci)
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::from)?;
    Ok(VolumeMounts {
        mounts,
        fresh,
        points,
    })
}

/// The replaced container's anonymous volume at `target`, if it still exists: (name, data dir).
fn reused(store: &Volumes, checked: &Checked, target: &str) -> Option<(String, PathBuf)> {
    let (_, name) = checked
        .reuse_anonymous
        .iter()
        .find(|(t, _)| clean_target(t) == clean_target(target))?;
    let v = store.get(name).ok()?;
    Some((name.clone(), v.mountpoint))
}

/// Makes the container, recording in `undo` what it made.
#[allow(clippy::too_many_arguments)]
async fn make(
    ctx: &Ctx,
    req: &ContainerRequest,
    checked: &Checked,
    image: &mut Image,
    plan: &NetPlan,
    (id, name): (&str, &str),
    opts: CreateOptions,
    notify: &(dyn Fn(Note) + Sync),
    undo: &mut Undo<'_>,
    net: &mut Option<AheadNet>,
) -> Result<Vec<containerd_client::types::Mount>, CreateError> {
    ctx.store
        .reserve_name(name, id)
        .map_err(anyhow::Error::from)?;
    undo.name = Some(name.to_string());
    let dir = ctx.store.create_dir(id).map_err(anyhow::Error::from)?;
    undo.dir = true;
    let hostname = match &plan.joined {
        Some(j) => j.hostname.clone(),
        // On the host's network (or UTS namespace) a container has the host's name, as
        // Docker's (unless -h).
        None if req.config.hostname.is_none()
            && (network_mode(req) == "host" || req.host_config.uts_mode == "host") =>
        {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| super::record::short_id(id).to_string())
        }
        None => req
            .config
            .hostname
            .clone()
            .unwrap_or_else(|| super::record::short_id(id).to_string()),
    };
    let (mut mounts, hosts_file) = state_files(ctx, req, plan, id, &hostname)?;
    let VolumeMounts {
        mounts: volume_mounts,
        fresh: fresh_volumes,
        points,
    } = volume_mounts(ctx, checked, undo)?;
    mounts.extend(volume_mounts);
    let asked = super::asked::Asked::of(req, image);
    let text = serde_json::to_string_pretty(&asked).map_err(anyhow::Error::from)?;
    ctx.store
        .write_file(id, super::asked::ASKED_FILE, &text)
        .map_err(anyhow::Error::from)?;
    MountRecord {
        volumes_from: req
            .host_config
            .volumes_from
            .iter()
            .map(|f| f.text.clone())
            .collect(),
        mounts: points,
    }
    .write(ctx, id)?;
    mounts.extend(checked.tmpfs.iter().cloned());
    if !plan.net_confs.is_empty() {
        hook::write_config(
            &dir,
            &hook::HookConfig {
                container_id: id.to_string(),
                name: name.to_string(),
                hostname: hostname.clone(),
                networks: plan.net_confs.clone(),
                ports: plan.port_maps.clone(),
                plugin_dirs: ctx.net.plugin_dirs.clone(),
                launcher_api: ctx.ep.launcher.as_ref().map(|l| l.api_socket.clone()),
                launcher_netns: ctx.ep.launcher.as_ref().and_then(|l| l.detached_netns()),
                extra_hosts: plan.extra_hosts.clone(),
                hosts_file: hosts_file.clone(),
                ip: None,
                endpoints: plan.endpoints.clone(),
                links: plan.links.clone(),
            },
        )
        .map_err(anyhow::Error::from)?;
    }
    tracing::debug!("create: wrote the state dir");
    let starting = if opts.ahead && !plan.net_confs.is_empty() {
        let launcher = ctx.launcher_pid();
        prepare::Prepared::spawn(&dir, launcher)
            .map_err(|err| tracing::debug!(%err, "attaching ahead of the task"))
            .ok()
    } else {
        None
    };
    let netns = match &starting {
        Some(_) => NetNs::Path(dir.join(prepare::NETNS_FILE).display().to_string()),
        None => plan.netns.clone(),
    };
    let keep_id = checked.keep_id.as_ref();
    let user = req
        .config
        .user
        .clone()
        .or_else(|| keep_id.map(|k| k.default_user()))
        .unwrap_or_else(|| image.defaults.user.clone());
    // keep-id always reads the image's passwd and group, to add the user where missing.
    load_user_db_if_needed(ctx, image, if keep_id.is_some() { "" } else { &user }).await?;
    if let Some(k) = keep_id {
        let files = super::userns::create_parts::user_files(ctx, k, &mut image.defaults, id)?;
        mounts.extend(files);
    }
    let single_id = ctx.ep.launcher.as_ref().is_some_and(|l| l.single_id());
    if single_id {
        note_single_id_user(&user, image, notify);
    }
    let spec_opts = Options {
        id: id.to_string(),
        hostname: hostname.clone(),
        args: req.config.cmd.clone(),
        entrypoint: req.config.entrypoint.clone(),
        env: req.config.env.clone(),
        workdir: req.config.working_dir.clone(),
        user: Some(user),
        tty: req.config.tty,
        privileged: req.host_config.privileged,
        read_only: req.host_config.readonly_rootfs,
        cap_add: req.host_config.cap_add.clone(),
        cap_drop: req.host_config.cap_drop.clone(),
        seccomp: checked.seccomp.clone(),
        no_new_privileges: checked.no_new_privileges,
        netns,
        cgroups: match &checked.cgroups {
            Cgroups::Path(p) => Cgroups::Path(p.replace("{ID}", id)),
            other => other.clone(),
        },
        limits: checked.limits.clone(),
        mounts,
        annotations: checked.annotations.clone(),
        single_id,
    };
    let mut spec = spec::build(&image.defaults, &spec_opts)?;
    if checked.unmask_paths {
        if let Some(linux) = spec.linux_mut() {
            linux.set_masked_paths(None);
            linux.set_readonly_paths(None);
        }
    }
    if let (Some(p), Some(process)) = (&checked.apparmor, spec.process_mut()) {
        process.set_apparmor_profile(Some(p.clone()));
    }
    super::mounts::set_rootfs_propagation(&mut spec);
    finish_spec(ctx, checked, plan, &dir, &mut spec)?;
    host_options(ctx, req, image, &dir, &mut spec).await?;
    if let Some(k) = keep_id {
        k.apply(&mut spec).map_err(spec::SpecError::from)?;
    }
    if let Some(s) = starting {
        let mut spec_after = spec.clone();
        spec::fresh_netns(&mut spec_after);
        // Ready within milliseconds of its start; the spec was built meanwhile.
        match tokio::task::spawn_blocking(move || s.ready()).await {
            Ok(Ok(helper)) => *net = Some(AheadNet { helper, spec_after }),
            // The createRuntime hook attaches as usual.
            failed => {
                tracing::debug!(?failed, "attaching ahead of the task");
                spec = spec_after;
            }
        }
    }
    save_log_opts(ctx, req, checked, (id, name, image), &spec)?;
    let mut l = record_labels(
        ctx,
        req,
        image,
        checked,
        plan,
        (id, name, &hostname),
        &dir,
        undo,
    )?;
    let healthcheck = super::health::effective(
        req.config.healthcheck.as_ref(),
        image.defaults.healthcheck.as_ref(),
    );
    if let Some(h) = healthcheck {
        l.insert(
            labels::HEALTHCHECK.into(),
            serde_json::to_string(&h).map_err(anyhow::Error::from)?,
        );
    }
    if !req.host_config.userns_mode.is_empty() {
        l.insert(labels::USERNS.into(), req.host_config.userns_mode.clone());
    }
    l.extend(checked.runtime.label());
    let parent = match keep_id {
        // Only the user's ids mapped: the image's files are read as they are stored.
        Some(k) if !k.own_only => {
            super::userns::snapshot::remapped(ctx, image, k, &|| notify(Note::RemappingOwners))
                .await
                .context("making the image's files keep their owners under --userns=keep-id")?
        }
        _ => image.chain_id.clone(),
    };
    tracing::debug!("create: built the spec");
    let rootfs = ctx
        .client
        .create(
            &NewContainer {
                id: id.to_string(),
                image: image.name.clone(),
                parent_chain_id: parent,
                snapshotter: ctx.ep.snapshotter.clone(),
                labels: l,
                shim_options: checked.runtime.shim_options(),
            },
            &spec,
        )
        .await
        .with_context(|| {
            format!(
                "creating the container from {} (is it unpacked for snapshotter {}?)",
                image.name, ctx.ep.snapshotter
            )
        })?;
    undo.record = Some(ctx.ep.snapshotter.clone());
    for (path, data) in &fresh_volumes {
        crate::connection::blocking(|| fill_volume(ctx, &rootfs, path, data)).with_context(
            || {
                format!(
                    "copying the image's {path} into its volume {}",
                    data.display()
                )
            },
        )?;
    }
    Ok(rootfs)
}

/// Keeps the log options beside the log, with the attributes they select from the container's
/// labels and final environment (`--log-opt labels=,env=,...`).
fn save_log_opts(
    ctx: &Ctx,
    req: &ContainerRequest,
    checked: &Checked,
    (id, name, image): (&str, &str, &Image),
    spec: &Spec,
) -> anyhow::Result<()> {
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    let labels: HashMap<String, String> = req.config.labels.clone().into_iter().collect();
    let path = ctx.store.log_path(id);
    LogOpts::with_attrs(checked.log_opts.clone(), &labels, &env)
        .with_tag(id, name, &req.config.image, &image.config_digest)?
        .for_container(name, &image.name)
        .save(&path)
        .with_context(|| format!("writing the log options beside {}", path.display()))
}

/// Reads the image's /etc/passwd and /etc/group when the user is a name, or root (for HOME).
async fn load_user_db_if_needed(ctx: &Ctx, image: &mut Image, user: &str) -> anyhow::Result<()> {
    let needs = user
        .split(':')
        .any(|p| !p.is_empty() && p.parse::<u32>().is_err())
        || user.is_empty();
    if !needs {
        return Ok(());
    }
    ctx.images
        .load_user_db_cached(image, &crate::images::userdb::cache_dir(ctx.store.root()))
        .await
        .context("reading /etc/passwd from the image")
}

/// Notes, where the launcher maps a single id, that a user other than root runs as root.
fn note_single_id_user(user: &str, image: &Image, notify: &(dyn Fn(Note) + Sync)) {
    let Ok(resolved) = super::user::resolve(user, &image.defaults.passwd, &image.defaults.group)
    else {
        return; // spec::build reports the unknown user
    };
    if !resolved.fits_single_id() {
        notify(Note::SingleIdUser {
            user: user.to_string(),
            uid: resolved.uid,
            gid: resolved.gid,
        });
    }
}

/// ulimits, /dev/shm, --init, bypass and the network hooks, on top of the built spec.
fn finish_spec(
    ctx: &Ctx,
    checked: &Checked,
    plan: &NetPlan,
    dir: &Path,
    spec: &mut Spec,
) -> anyhow::Result<()> {
    apply_ulimits_and_shm(spec, &checked.ulimits, checked.shm_bytes);
    if let Some(host_init) = &checked.init {
        apply_init(spec, host_init)?;
    }
    if let Some(listener) = &checked.bypass {
        let meta = super::bypass::metadata(&ctx.ep, &plan.net_confs, &plan.port_maps);
        super::bypass::apply(spec, listener, &meta)?;
    }
    if !plan.net_confs.is_empty() {
        spec.set_hooks(Some(hooks(dir)?));
    }
    // After the network hooks: CDI hooks are added to them.
    checked.devices.apply(spec, ctx.rootless())?;
    Ok(())
}

/// What the request sets on the spec beyond the builder's defaults: domain name, sysctls, OOM
/// score, extra groups, and the IPC, PID and cgroup namespaces (shared with the host or with
/// another container).
async fn host_options(
    ctx: &Ctx,
    req: &ContainerRequest,
    image: &Image,
    dir: &Path,
    spec: &mut Spec,
) -> anyhow::Result<()> {
    use oci_spec::runtime::LinuxNamespaceType as Ns;
    let hc = &req.host_config;
    if let Some(d) = &req.config.domainname {
        spec.set_domainname(Some(d.clone()));
    }
    if let Some(p) = spec.process_mut() {
        if let Some(adj) = hc.oom_score_adj {
            p.set_oom_score_adj(Some(adj));
        }
        if !hc.group_add.is_empty() {
            let mut user = p.user().clone();
            let mut gids = user.additional_gids().clone().unwrap_or_default();
            for g in &hc.group_add {
                gids.push(super::user::group_id(g, &image.defaults.group)?);
            }
            user.set_additional_gids(Some(gids));
            p.set_user(user);
        }
    }
    let Some(linux) = spec.linux_mut() else {
        return Ok(());
    };
    let mut sysctls: std::collections::HashMap<String, String> =
        hc.sysctls.clone().into_iter().collect();
    if let Some(d) = &req.config.domainname {
        // runc 1.1 leaves the spec's domainname alone; the UTS namespace's sysctl sets it.
        sysctls
            .entry("kernel.domainname".into())
            .or_insert_with(|| d.clone());
    }
    // From a user namespace that sysctl cannot be written (/proc/sys/kernel is the host
    // root's): a createContainer hook, inside the container's namespaces, sets the name.
    let domain_hook = match (ctx.rootless(), hc.uts_mode == "host") {
        (true, false) => sysctls.remove("kernel.domainname"),
        _ => None,
    };
    if !sysctls.is_empty() {
        linux.set_sysctl(Some(sysctls));
    }
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    let mut ipc_donor = None;
    let (mut ipc_host, mut pid_host) = (hc.ipc_mode == "host", hc.pid_mode == "host");
    for (mode, typ) in [(&hc.ipc_mode, Ns::Ipc), (&hc.pid_mode, Ns::Pid)] {
        let Some(query) = mode.strip_prefix("container:") else {
            continue;
        };
        let (donor, path) = shared_namespace(ctx, query, typ).await?;
        let (owner, owner_mode) = namespace_owner(ctx, &donor, typ).await;
        if owner_mode == "host" {
            // The host's namespace is joined by keeping it: a rootless runtime could not
            // enter it by path (the host's user namespace owns it).
            match typ {
                Ns::Ipc => ipc_host = true,
                _ => pid_host = true,
            }
            continue;
        }
        for n in namespaces.iter_mut().filter(|n| n.typ() == typ) {
            n.set_path(Some(path.clone().into()));
        }
        if typ == Ns::Ipc {
            ipc_donor = Some((owner, owner_mode, query));
        }
    }
    for (host, typ) in [(ipc_host, Ns::Ipc), (pid_host, Ns::Pid)] {
        if host {
            namespaces.retain(|n| n.typ() != typ);
        }
    }
    if hc.uts_mode == "host" {
        // The host's UTS namespace: its name is not the container's to set.
        namespaces.retain(|n| n.typ() != Ns::Uts);
    }
    if hc.cgroupns_mode == "private" {
        namespaces.push(
            oci_spec::runtime::LinuxNamespaceBuilder::default()
                .typ(Ns::Cgroup)
                .build()?,
        );
    }
    linux.set_namespaces(Some(namespaces));
    // /dev/shm goes with the IPC namespace: a shareable one, or the donor's.
    if let Some((owner, mode, query)) = ipc_donor {
        super::ipc::join_shm(ctx, spec, (&owner, &mode), query)?;
    } else if hc.ipc_mode == "shareable" {
        super::ipc::share_shm(spec, dir)?;
    }
    if hc.uts_mode == "host" {
        spec.set_hostname(None);
        spec.set_domainname(None);
    }
    if let Some(name) = domain_hook {
        let hook = helper_hook(&burrow_exe()?, &Helper::SetDomainname { name })?;
        let mut hooks = spec.hooks().clone().unwrap_or_default();
        crate::devices::edits::add_hook(&mut hooks, "createContainer", hook);
        spec.set_hooks(Some(hooks));
    }
    if pid_host {
        // /proc of a PID namespace the user namespace does not own cannot be mounted afresh.
        bind_proc(spec)?;
    }
    if ipc_host {
        super::ipc::share_host(spec)?;
    }
    Ok(())
}

/// The container whose `typ` namespace container `id` has, and the mode it was made with
/// (`host`, `shareable`, ...): `id` itself unless it joined another's (`container:NAME`), which
/// is followed. A donor gone since is taken as the owner.
async fn namespace_owner(
    ctx: &Ctx,
    id: &str,
    typ: oci_spec::runtime::LinuxNamespaceType,
) -> (String, String) {
    let mut owner = id.to_string();
    // Bounded: a chain of joins cannot loop (a donor runs before its joiner), but a record can
    // be edited by hand.
    for _ in 0..16 {
        let Some(asked) = super::asked::Asked::read(&ctx.store.container_dir(&owner)) else {
            break;
        };
        let mode = match typ {
            oci_spec::runtime::LinuxNamespaceType::Ipc => asked.host.ipc_mode,
            _ => asked.host.pid_mode,
        };
        let next = match mode.strip_prefix("container:") {
            Some(query) => ctx.find(query).await.ok(),
            None => None,
        };
        match next {
            Some(c) => owner = c.id,
            None => return (owner, mode),
        }
    }
    (owner, String::new())
}

/// A running container's id and the `/proc/PID/ns/...` path of its namespace, as the runtime
/// sees it.
async fn shared_namespace(
    ctx: &Ctx,
    query: &str,
    typ: oci_spec::runtime::LinuxNamespaceType,
) -> anyhow::Result<(String, String)> {
    let c = ctx.find(query).await?;
    let pid = match super::record::state(ctx, &c.id).await? {
        super::record::State::Running { pid } | super::record::State::Paused { pid } => pid,
        _ => anyhow::bail!(
            "container {query} is not running: its namespaces cannot be joined (start it first with `burrow start {query}`)"
        ),
    };
    let name = match typ {
        oci_spec::runtime::LinuxNamespaceType::Ipc => "ipc",
        _ => "pid",
    };
    Ok((c.id, format!("/proc/{pid}/ns/{name}")))
}

/// Replaces the fresh /proc mount with a bind of the runtime's.
fn bind_proc(spec: &mut Spec) -> anyhow::Result<()> {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in mounts.iter_mut() {
        if m.destination().to_str() == Some("/proc") {
            *m = MountBuilder::default()
                .destination("/proc")
                .typ("bind")
                .source("/proc")
                .options(vec![
                    "rbind".to_string(),
                    "nosuid".into(),
                    "nodev".into(),
                    "noexec".into(),
                ])
                .build()?;
        }
    }
    spec.set_mounts(Some(mounts));
    if let Some(linux) = spec.linux_mut() {
        // Masking paths of the host's /proc would hide them from the host's own view in binds.
        linux.set_readonly_paths(None);
    }
    Ok(())
}

/// The record's labels (nerdctl's, the restart monitor's, burrow's), and the log driver's
/// options file.
#[allow(clippy::too_many_arguments)]
fn record_labels(
    ctx: &Ctx,
    req: &ContainerRequest,
    image: &Image,
    checked: &Checked,
    plan: &NetPlan,
    (_id, name, hostname): (&str, &str, &str),
    dir: &Path,
    undo: &Undo<'_>,
) -> anyhow::Result<HashMap<String, String>> {
    let mut l: HashMap<String, String> = req.config.labels.clone().into_iter().collect();
    let empty: Vec<&String> = req
        .config
        .labels
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| k)
        .collect();
    if !empty.is_empty() {
        l.insert(labels::EMPTY_LABELS.into(), serde_json::to_string(&empty)?);
    }
    l.insert(labels::NAME.into(), name.to_string());
    l.insert(labels::HOSTNAME.into(), hostname.to_string());
    l.insert(
        labels::NETWORKS.into(),
        serde_json::to_string(&plan.networks)?,
    );
    l.insert(
        labels::PORTS.into(),
        serde_json::to_string(&plan.port_maps)?,
    );
    if req.config.open_stdin {
        l.insert(labels::STDIN_OPEN.into(), "true".into());
    }
    if req.config.open_stdin && req.config.stdin_once {
        l.insert(labels::STDIN_ONCE.into(), "true".into());
    }
    if req.host_config.auto_remove {
        l.insert(labels::AUTO_REMOVE.into(), "true".into());
    }
    l.insert(labels::STATE_DIR.into(), dir.display().to_string());
    l.insert(labels::PLATFORM.into(), image.platform.display());
    l.insert(labels::IMAGE_ID.into(), image.config_digest.clone());
    if !plan.extra_hosts.is_empty() {
        l.insert(
            labels::EXTRA_HOSTS.into(),
            serde_json::to_string(&plan.extra_hosts)?,
        );
    }
    if !undo.anonymous.is_empty() || !undo.reused.is_empty() {
        let all: Vec<&String> = undo.anonymous.iter().chain(&undo.reused).collect();
        l.insert(
            labels::ANONYMOUS_VOLUMES.into(),
            serde_json::to_string(&all)?,
        );
    }
    if let Some(devices) = devices_label(&req.host_config)? {
        l.insert(labels::DEVICES.into(), devices);
    }
    if let Some(s) = &req.config.stop_signal {
        l.insert(labels::STOP_SIGNAL.into(), s.clone());
    }
    if let Some(t) = req.config.stop_timeout {
        l.insert(labels::STOP_TIMEOUT.into(), t.to_string());
    }
    let exe = std::env::current_exe().context("finding the burrow binary for logging")?;
    // `--log-driver none`: the shim gets no stdio to write to (it discards the output).
    let log_uri = match checked.log_opts.driver {
        logdriver::Driver::None => String::new(),
        _ => logdriver::uri(&exe, ctx.store.root()),
    };
    let policy = checked.restart.to_string();
    match checked.restart {
        // containerd's monitor brings these back after containerd itself restarts; burrow's
        // monitor restarts them at once, with Docker's back-off, and counts the restarts.
        RestartPolicy::Always | RestartPolicy::UnlessStopped => {
            l.insert(labels::RESTART_STATUS.into(), "running".into());
            if !log_uri.is_empty() {
                l.insert(labels::RESTART_LOG_URI.into(), log_uri.clone());
            }
            l.insert(labels::RESTART_POLICY.into(), policy);
            l.insert(labels::RESTART_WANTED.into(), "running".into());
            l.insert(labels::RESTART_COUNT.into(), "0".into());
        }
        RestartPolicy::OnFailure(_) => {
            l.insert(labels::RESTART_POLICY.into(), policy);
            l.insert(labels::RESTART_WANTED.into(), "running".into());
            l.insert(labels::RESTART_COUNT.into(), "0".into());
        }
        RestartPolicy::No => {}
    }
    l.insert(labels::LOG_URI.into(), log_uri);
    Ok(l)
}

/// The request's devices as Docker's HostConfig shows them, when it has any.
fn devices_label(hc: &super::request::HostConfig) -> anyhow::Result<Option<String>> {
    if hc.devices.is_empty() && hc.device_cgroup_rules.is_empty() && hc.device_requests.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::to_string(&serde_json::json!({
        "Devices": hc.devices,
        "DeviceCgroupRules": hc.device_cgroup_rules,
        "DeviceRequests": hc.device_requests,
    }))?))
}

/// The burrow binary the OCI hooks run.
fn burrow_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("finding the burrow binary for the OCI hooks")
}

/// An OCI hook that runs `helper` in the burrow binary `exe`.
fn helper_hook(exe: &Path, helper: &Helper) -> anyhow::Result<oci_spec::runtime::Hook> {
    Ok(HookBuilder::default()
        .path(exe)
        .args(helper.hook_argv(exe))
        .env(vec![format!("PATH={}", spec::DEFAULT_PATH)])
        .build()?)
}

fn hooks(state_dir: &Path) -> anyhow::Result<oci_spec::runtime::Hooks> {
    let exe = burrow_exe()?;
    let hook = |event: &str| {
        let helper = Helper::OciHook {
            event: event.into(),
            state_dir: state_dir.to_path_buf(),
        };
        helper_hook(&exe, &helper)
    };
    Ok(HooksBuilder::default()
        .create_runtime(vec![hook("createRuntime")?])
        .poststop(vec![hook("poststop")?])
        .build()?)
}

/// Replaces same-typed rlimits with `ulimits` and sizes /dev/shm.
fn apply_ulimits_and_shm(spec: &mut Spec, ulimits: &[PosixRlimit], shm_bytes: Option<i64>) {
    if !ulimits.is_empty() {
        if let Some(mut p) = spec.process().clone() {
            let mut r = p.rlimits().clone().unwrap_or_default();
            r.retain(|x| !ulimits.iter().any(|u| u.typ() == x.typ()));
            r.extend(ulimits.iter().cloned());
            p.set_rlimits(Some(r));
            spec.set_process(Some(p));
        }
    }
    if let Some(bytes) = shm_bytes {
        if let Some(mut mounts) = spec.mounts().clone() {
            for m in mounts.iter_mut() {
                if m.destination().to_str() == Some("/dev/shm")
                    && m.typ().as_deref() == Some("tmpfs")
                {
                    let mut o: Vec<String> = m
                        .options()
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|o| !o.starts_with("size="))
                        .collect();
                    o.push(format!("size={}k", (bytes / 1024).max(1)));
                    m.set_options(Some(o));
                }
            }
            spec.set_mounts(Some(mounts));
        }
    }
}

/// Makes the host's init PID 1: bound read-only at [`INIT_PATH`], running the command after `--`.
fn apply_init(spec: &mut Spec, host_init: &Path) -> anyhow::Result<()> {
    let process = spec
        .process_mut()
        .as_mut()
        .context("the container spec has no process")?;
    let mut args = vec![INIT_PATH.to_string(), "--".to_string()];
    args.extend(process.args().clone().unwrap_or_default());
    process.set_args(Some(args));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(
        MountBuilder::default()
            .destination(INIT_PATH)
            .typ("bind")
            .source(host_init)
            .options(vec![
                "bind".to_string(),
                "ro".to_string(),
                "nosuid".to_string(),
                "nodev".to_string(),
            ])
            .build()?,
    );
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// Copies the image's content at `path` (in the new container's snapshot) into an empty
/// volume's `data` dir, owners and modes kept (inside the launcher's user namespace when
/// rootless), through the `burrow internal cp` helper.
fn fill_volume(
    ctx: &Ctx,
    rootfs: &[containerd_client::types::Mount],
    path: &str,
    data: &Path,
) -> anyhow::Result<()> {
    use super::copy::{Op, Root};
    super::copy::run_helper(
        ctx.launcher_pid(),
        Root::of_mounts(rootfs),
        Op::FillVolume {
            path: path.to_string(),
            dest: data.display().to_string(),
        },
        "the volume copy helper failed",
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_compare_cleaned_and_order_by_depth() {
        assert_eq!(clean_target("/data/"), "/data");
        assert_eq!(clean_target("//var/./lib//db"), "/var/lib/db");
        assert_eq!(clean_target("/"), "/");
        let mut v = ["/a/b/c", "/a", "/x/y", "/"]
            .map(|p| (depth(p), p))
            .to_vec();
        v.sort();
        assert_eq!(
            v.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
            ["/", "/a", "/x/y", "/a/b/c"]
        );
    }

    #[test]
    fn default_names_come_from_the_image() {
        let id = "0123456789abcdef";
        assert_eq!(
            default_name("docker.io/library/nginx:latest", id, 5),
            "nginx-01234"
        );
        assert_eq!(default_name("reg:5000/a/b@sha256:x", id, 5), "b-01234");
        // Another container holds the five-digit name: one more digit.
        let dir = tempfile::tempdir().unwrap();
        let store = store::Store::new(dir.path(), "default");
        assert_eq!(free_default_name(&store, "busybox", id), "busybox-01234");
        store.reserve_name("busybox-01234", "0123499999").unwrap();
        assert_eq!(free_default_name(&store, "busybox", id), "busybox-012345");
    }

    #[test]
    fn mounts_keep_dockers_order_and_check_bind_sources() {
        let mut req = ContainerRequest::new("x");
        req.host_config.binds = vec!["/tmp:/a".parse().unwrap(), "vol:/b".parse().unwrap()];
        req.host_config.mounts = vec![
            "type=volume,target=/c".parse().unwrap(),
            "type=tmpfs,target=/t2".parse().unwrap(),
        ];
        req.host_config.tmpfs = vec!["/t1:size=1m".parse().unwrap()];
        let (vols, tmpfs) = mounts_of(&req).unwrap();
        let targets: Vec<&str> = vols.iter().map(|v| v.target.as_str()).collect();
        assert_eq!(targets, ["/a", "/b", "/c"]);
        assert_eq!(vols[0].source, VolumeSource::Host("/tmp".into()));
        let dests: Vec<String> = tmpfs
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(dests, ["/t1", "/t2"]);
        assert!(tmpfs[0]
            .options()
            .as_ref()
            .unwrap()
            .contains(&"size=1m".to_string()));

        req.host_config.binds.clear();
        req.host_config.mounts = vec!["type=bind,source=/no/such/dir,target=/x".parse().unwrap()];
        let err = mounts_of(&req).unwrap_err().to_string();
        assert!(
            err.contains("does not exist") && err.contains("/no/such/dir"),
            "{err}"
        );
        // -v makes a missing source directory, as Docker does.
        let d = tempfile::tempdir().unwrap();
        let made = d.path().join("made/here");
        req.host_config.mounts.clear();
        req.host_config.binds = vec![format!("{}:/x", made.display()).parse().unwrap()];
        mounts_of(&req).unwrap();
        assert!(made.is_dir());
    }

    #[test]
    fn security_options_become_seccomp_and_nnp() {
        let s = security(&[
            SecurityOpt::SeccompUnconfined,
            SecurityOpt::NoNewPrivileges(true),
            SecurityOpt::SystemPathsUnconfined,
            SecurityOpt::AppArmor("unconfined".into()),
        ])
        .unwrap();
        assert!(matches!(s.seccomp, Seccomp::Unconfined));
        assert!(s.no_new_privileges && s.unmask_paths && s.apparmor.is_none());
        let err = security(&[SecurityOpt::SeccompProfile("/no/such.json".into())])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/no/such.json"), "{err}");
        if !Path::new(APPARMOR_ENABLED).exists() {
            let err = security(&[SecurityOpt::AppArmor("docker-default".into())])
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("AppArmor is not enabled"), "{err}");
        }
        if !Path::new(SELINUX_FS).exists() {
            assert!(security(&[SecurityOpt::Label("disable".into())]).is_ok());
        }
        assert!("label=bogus".parse::<SecurityOpt>().is_err());
        assert!("label=type:svirt_t".parse::<SecurityOpt>().is_ok());
    }
}
