//! The build itself: the context read, the Dockerfile planned, each needed stage built step by
//! step on the state before it (layers, config, cache key, the image record holding it), the
//! cache consulted before any RUN, COPY or ADD, and the final image written and tagged, all
//! under one containerd lease so that what a failed build half-made is collected. RUN steps are
//! in [`run`], COPY and ADD in [`copying`].

mod copying;
mod files_out;
mod run;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use serde_json::{json, Value};

use super::copy::{self, CopySpec, Origin};
use super::files::{self, Tree};
use super::ignore::Ignore;
use super::mounts::{self, RunMount};
use super::progress::{Mode, Progress};
use super::runstep::{self, RunError, RunSpec};
use super::stages::{self, Plan, Stage};
use super::{cache, BuildError, Built, ContextSource, DockerfileSource, Options};
use crate::containers::Ctx;
use crate::dockerfile::file::{self, Line, ParseError};
use crate::dockerfile::{apply_step, words, Instruction};
use crate::images::import::{descriptor, write_image};
use crate::images::manifest::{self, Config, Descriptor, History, Platform, RootFs};
use crate::images::reference::Reference;
use crate::images::store::{from_pb, Store};
use crate::images::{endpoints, local, pull, push, save, time};

/// The image a stage is at after a step.
#[derive(Debug, Clone)]
struct State {
    layers: Vec<Descriptor>,
    config: Config,
    key: String,
    /// An image record holding exactly this state (to run a container from).
    record: Option<String>,
    /// ARGs declared in the stage (or the stage it is based on), with their values; None for
    /// an ARG declared without a value and given none (declared, but unset, as in Docker).
    args: Vec<(String, Option<String>)>,
    cmd_set: bool,
}

impl State {
    fn arg_env(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, v)| Some(format!("{k}={}", v.as_ref()?)))
            .collect()
    }

    /// The image config's `config` object.
    fn image_config(&mut self) -> &mut Value {
        self.config.config.get_or_insert_with(|| json!({}))
    }
}

/// Everything a build reads once.
struct Build<'a> {
    ctx: &'a Ctx,
    leased: Store,
    opts: &'a Options,
    root: PathBuf,
    ignore: Ignore,
    context_tree: Option<Tree>,
    progress: Progress,
    stages: BTreeMap<usize, State>,
    /// Stage names (lower case) to their indexes.
    stage_names: HashMap<String, usize>,
    consumed: BTreeSet<String>,
    /// The paths (no contents) a list of layers makes, by the layers' digests joined: what
    /// WORKDIR and COPY ask of a stage's files, each layer read once.
    paths: HashMap<String, Arc<Tree>>,
    /// Where ADD's downloads are kept until the build ends, made at the first.
    downloads: Option<tempfile::TempDir>,
    /// The client of ADD's downloads, made at the first.
    http: Option<crate::images::https::HttpClient>,
    /// Named contexts (`--build-context`), remote ones fetched, by their key.
    named: HashMap<String, Named>,
    /// Where remote named contexts were fetched, until the build ends.
    _named_dirs: Vec<tempfile::TempDir>,
}

/// A named context as the build reads it.
#[derive(Debug, Clone)]
enum Named {
    /// An image reference.
    Image(String),
    /// A directory's files (its `.dockerignore` applied), and the name to report it by.
    Dir {
        root: PathBuf,
        ignore: Ignore,
        name: String,
    },
}

/// Builds what `opts` says; returns the image made.
pub async fn build(ctx: &Ctx, opts: &Options) -> anyhow::Result<Built> {
    if opts.push && opts.tags.is_empty() {
        anyhow::bail!("--push needs a name to push to: add -t REGISTRY/NAME[:TAG]");
    }
    if opts.push && opts.output.is_some() {
        anyhow::bail!(
            "--push names an image: it cannot be combined with -o type=local|tar|oci|docker"
        );
    }
    let (_tmp, root, remote_dockerfile) = match &opts.context {
        ContextSource::Remote(url) => remote_context(url).await?,
        other => {
            let (tmp, root) = context_root(other)?;
            (tmp, root, None)
        }
    };
    let text = match remote_dockerfile {
        Some(t) => t,
        None => dockerfile_text(&root, &opts.dockerfile)?,
    };
    let ignore = read_ignore(&root, &opts.dockerfile)?;
    let plan = Plan::new(file::parse(&text)?, &opts.build_args)?;
    let target = plan
        .target(opts.target.as_deref())
        .map_err(anyhow::Error::msg)?
        .index;
    let (named, named_dirs) = named_contexts(&opts.contexts).await?;
    let store = Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep);
    let leased = store.with_lease("build").await?;
    let mut b = Build {
        ctx,
        leased,
        opts,
        root,
        ignore,
        context_tree: None,
        progress: Progress::new(opts.progress).with_sink(opts.events.clone()),
        stages: BTreeMap::new(),
        stage_names: plan
            .stages
            .iter()
            .filter_map(|s| s.name.clone().map(|n| (n, s.index)))
            .collect(),
        consumed: BTreeSet::new(),
        paths: HashMap::new(),
        downloads: None,
        http: None,
        named,
        _named_dirs: named_dirs,
    };
    let result = {
        let run = b.run(&plan, target);
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => break r,
                _ = opts.cancel.stopped(), if !opts.cancel.is_cancelled() || !opts.cancel.in_step() => {
                    if !opts.cancel.in_step() {
                        break Err(anyhow::anyhow!("interrupted: the build stopped"));
                    }
                }
            }
        }
    };
    if let Err(err) = b.leased.release().await {
        tracing::warn!(%err, "could not release the build lease (it expires in a day)");
    }
    let mut built = result?;
    if opts.push {
        let progress = crate::images::progress::Progress::new(opts.progress == Mode::Quiet);
        for name in &opts.tags {
            let pushed =
                push::push_name(&store, name, &Platform::host(), false, &[], &progress).await?;
            built.pushed.push(pushed);
        }
    }
    Ok(built)
}

impl Build<'_> {
    async fn run(&mut self, plan: &Plan, target: usize) -> anyhow::Result<Built> {
        for i in plan.needed(target) {
            let state = self.stage(plan, &plan.stages[i]).await?;
            self.stages.insert(i, state);
        }
        let mut state = self
            .stages
            .remove(&target)
            .expect("the target stage was built");
        for (k, v) in &self.opts.labels {
            state.image_config()["Labels"][k] = json!(v);
        }
        let built = self.finish(state).await?;
        let unused_args = self
            .opts
            .build_args
            .keys()
            .filter(|k| !self.consumed.contains(*k) && !stages::PROXY_ARGS.contains(&k.as_str()))
            .filter(|k| !plan.global.contains_key(*k))
            .cloned()
            .collect();
        Ok(Built {
            unused_args,
            ..built
        })
    }

    /// Builds one stage: its base, then each step.
    async fn stage(&mut self, plan: &Plan, stage: &Stage) -> anyhow::Result<State> {
        let label = stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", stage.index));
        let mut steps = stage.steps.clone();
        let total = 1 + steps.iter().filter(|l| is_vertex(l)).count();
        let n = self
            .progress
            .stage_step(&label, 1, total, &stage.from.original);
        let mut state = self.base(plan, stage).await?;
        self.progress.done(n);
        // The base's ONBUILD triggers run first, as Docker runs them.
        let triggers = take_onbuild(&mut state);
        if !triggers.is_empty() {
            let mut lines = file::parse(&triggers.join("\n")).map_err(|e| ParseError {
                line: stage.from.line,
                message: format!("the base image's ONBUILD trigger: {}", e.message),
            })?;
            for l in &mut lines {
                l.line = stage.from.line;
            }
            lines.append(&mut steps);
            steps = lines;
        }
        let mut k = 1;
        for line in &steps {
            let title = if is_vertex(line) {
                k += 1;
                Some((label.clone(), k, total))
            } else {
                None
            };
            self.step(plan, &mut state, line, title).await?;
        }
        Ok(state)
    }

    /// The state a stage starts from: `scratch`, an earlier stage, or an image.
    async fn base(&mut self, plan: &Plan, stage: &Stage) -> anyhow::Result<State> {
        let state = |layers, config, key, record| State {
            layers,
            config,
            key,
            record,
            args: Vec::new(),
            cmd_set: false,
        };
        let scratch = || {
            let host = stage.platform.clone().unwrap_or_else(Platform::host);
            let config = Config {
                architecture: host.architecture,
                os: host.os,
                variant: host.variant,
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: Vec::new(),
                },
                config: Some(json!({"Env": [DEFAULT_PATH]})),
                ..Default::default()
            };
            state(Vec::new(), config, cache::base_key("scratch"), None)
        };
        if stage.base.eq_ignore_ascii_case("scratch") {
            return Ok(scratch());
        }
        if let Some(dep) = plan.stage(&stage.base).filter(|d| d.index < stage.index) {
            // A stage based on another inherits its ARGs as well as its ENV (BuildKit).
            let mut s = self.stages[&dep.index].clone();
            s.cmd_set = false;
            return Ok(s);
        }
        let mut base = stage.base.clone();
        match self.named_context(&stage.base) {
            Some(Named::Image(r)) => base = r,
            Some(Named::Dir { root, ignore, name }) => {
                // A directory as the base: its files on an empty image, as BuildKit's.
                let mut st = scratch();
                let tree = self
                    .named_tree(&root, &ignore, &name)
                    .map_err(failed(&stage.from))?;
                let spec = CopySpec {
                    sources: vec![".".into()],
                    dest: "/".into(),
                    ..Default::default()
                };
                let tree =
                    copy::select(&tree, &spec, &copy::Origin::Stage(&name)).map_err(|err| {
                        BuildError::Copy {
                            line: stage.from.line,
                            instruction: stage.from.original.clone(),
                            err,
                        }
                    })?;
                let content =
                    files::content_digest(&tree).map_err(|e| failed(&stage.from)(e.into()))?;
                let key = cache::key(&st.key, &stage.from.full(), &[], Some(&content));
                let (gz, diff_id) =
                    files::layer_gzip(&tree).map_err(|e| failed(&stage.from)(e.into()))?;
                let desc = descriptor(manifest::OCI_LAYER_GZIP, &gz);
                self.commit(&mut st, key, &stage.from, desc, diff_id, Some(gz))
                    .await
                    .map_err(failed(&stage.from))?;
                return Ok(st);
            }
            None => {}
        }
        let (name, image) = self
            .image(&base, self.opts.pull, stage.platform.as_ref())
            .await
            .map_err(|err| BuildError::Step {
                line: stage.from.line,
                instruction: stage.from.original.clone(),
                err,
            })?;
        let key = cache::base_key(&image.manifest_desc.digest);
        Ok(state(
            image.manifest.layers.clone(),
            image.config.clone(),
            key,
            Some(name),
        ))
    }

    /// The named context `name` (a FROM base or a --from) means, when the build was given one.
    fn named_context(&self, name: &str) -> Option<Named> {
        self.named.get(&crate::build::contexts::key(name)?).cloned()
    }

    /// The files of a named context's directory.
    fn named_tree(&self, root: &Path, ignore: &Ignore, name: &str) -> anyhow::Result<Tree> {
        files::context_tree(root, ignore)
            .with_context(|| format!("reading the build context {name} ({})", root.display()))
    }

    /// A local image by reference for `platform` (None: this host's), pulled when missing or
    /// without that platform (or always with `pull`).
    async fn image(
        &self,
        reference: &str,
        pull: bool,
        platform: Option<&Platform>,
    ) -> anyhow::Result<(String, local::LocalImage)> {
        let want = platform.cloned().unwrap_or_else(Platform::host);
        let r = Reference::parse(reference)
            .with_context(|| format!("invalid image reference {reference:?}"))?;
        let name = r.to_string();
        // As `run` finds it: the normalised reference, else a record named exactly as given
        // (imported under a name that is no normalised reference, as `ctr images import` does).
        let mut record = match crate::images::catalog::record(&self.leased, reference).await {
            Ok(found) => Some(found),
            Err(crate::images::catalog::CatalogError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        // An image here only from the shared image store has no layers to build on: pulled.
        let from_store = record.as_ref().is_some_and(|r| {
            r.labels
                .contains_key(crate::containers::shared::STORE_LABEL)
        });
        let lacks_platform = match &record {
            Some(r) if platform.is_some() => local::resolve(&self.leased, r, &want).await.is_err(),
            _ => false,
        };
        if record.is_none() || pull || from_store || lacks_platform {
            let mut regs = endpoints::registries_for(&r.domain, false, false, &[])?;
            if let Some(c) = self.opts.pull_auth.0.get(&r.domain) {
                regs = regs
                    .into_iter()
                    .map(|g| g.with_credentials(Some(c.clone())))
                    .collect();
            }
            let opts = pull::PullOptions {
                platform: want.clone(),
                strict_platform: platform.is_some(),
                all_platforms: false,
                unpack: true,
            };
            let quiet = Arc::new(crate::images::progress::Progress::new(true));
            let pulled = endpoints::pull_any(&self.leased, regs, &r, &opts, quiet).await;
            let pulled = if from_store {
                pulled.map_err(|e| anyhow::anyhow!("image {name} is here only from the shared image store, without the layers a build needs, and pulling it failed: {e:#}"))?
            } else {
                pulled?
            };
            record = self.leased.image(&pulled.name).await?;
        }
        let record = record.with_context(|| format!("image {name} is not here after its pull"))?;
        let resolved = local::resolve(&self.leased, &record, &want).await?;
        Ok((record.name.clone(), resolved))
    }

    /// One instruction of a stage.
    async fn step(
        &mut self,
        plan: &Plan,
        state: &mut State,
        line: &Line,
        title: Option<(String, usize, usize)>,
    ) -> Result<(), BuildError> {
        let refuse = refused(line);
        match line.name.as_str() {
            "ARG" => self.arg(plan, state, line),
            "RUN" => {
                let n = self.begin_step(&title, line);
                self.run_step(state, line, n).await
            }
            "COPY" | "ADD" => {
                let n = self.begin_step(&title, line);
                let tree = self.copy_tree(state, line).await?;
                self.tree_step(state, line, &tree, n).await
            }
            "SHELL" => {
                let Some(v) = json_array(&line.rest) else {
                    return Err(refuse(
                        "SHELL requires the JSON form: SHELL [\"executable\", \"parameters\"]"
                            .into(),
                    ));
                };
                state.image_config()["Shell"] = json!(v);
                self.config_step(state, line);
                Ok(())
            }
            "MAINTAINER" => {
                state.config.author = Some(line.rest.clone());
                self.config_step(state, line);
                Ok(())
            }
            "FROM" => Err(refuse("FROM inside a stage".into())),
            "WORKDIR" => self.workdir(state, line).await,
            _ => {
                apply_config(state, line)?;
                self.config_step(state, line);
                Ok(())
            }
        }
    }

    /// WORKDIR: the working directory set, and made (as BuildKit makes it) when the stage lacks
    /// it: the missing directories in a layer of their own, owned by the stage's USER.
    async fn workdir(&mut self, state: &mut State, line: &Line) -> Result<(), BuildError> {
        apply_config(state, line)?;
        let dir = state.image_config()["WorkingDir"]
            .as_str()
            .unwrap_or("/")
            .to_string();
        let paths = self.stage_paths(state).await.map_err(failed(line))?;
        let mut missing = Vec::new();
        let mut at = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            at = if at.is_empty() {
                part.to_string()
            } else {
                format!("{at}/{part}")
            };
            if !paths.contains_key(&at) {
                missing.push(at.clone());
            }
        }
        if missing.is_empty() {
            self.config_step(state, line);
            return Ok(());
        }
        let user = state.image_config()["User"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let (uid, gid) = match user.as_str() {
            "" | "root" | "0" | "0:0" => (0, 0),
            u => self.chown(state, u, line).await?,
        };
        let tree: Tree = missing
            .into_iter()
            .map(|path| {
                let entry = files::Entry {
                    path: path.clone(),
                    kind: files::Kind::Dir,
                    mode: 0o755,
                    uid,
                    gid,
                    mtime: 0,
                };
                (path, entry)
            })
            .collect();
        let n = self.progress.step(&line.original);
        self.tree_step(state, line, &tree, n).await
    }

    /// A step whose layer holds `tree` (COPY, ADD, a WORKDIR that makes directories): taken
    /// from the cache when its key (with the tree's content) has a result, else written.
    async fn tree_step(
        &mut self,
        state: &mut State,
        line: &Line,
        tree: &Tree,
        n: usize,
    ) -> Result<(), BuildError> {
        let step_err = failed(line);
        let content = files::content_digest(tree).map_err(|e| step_err(e.into()))?;
        let key = cache::key(&state.key, &line.full(), &state.arg_env(), Some(&content));
        if self.cached(state, &key, n).await.map_err(step_err)? {
            return Ok(());
        }
        let (gz, diff_id) = files::layer_gzip(tree).map_err(|e| step_err(e.into()))?;
        let desc = descriptor(manifest::OCI_LAYER_GZIP, &gz);
        self.commit(state, key, line, desc, diff_id, Some(gz))
            .await
            .map_err(step_err)?;
        self.progress.done(n);
        Ok(())
    }

    /// The paths the stage's files have (contents left out).
    async fn stage_paths(&mut self, state: &State) -> anyhow::Result<Arc<Tree>> {
        let keys: Vec<String> = state
            .layers
            .iter()
            .scan(String::new(), |acc, l| {
                acc.push_str(&l.digest);
                Some(acc.clone())
            })
            .collect();
        let Some(last) = keys.last() else {
            return Ok(Arc::new(Tree::new()));
        };
        if let Some(t) = self.paths.get(last) {
            return Ok(t.clone());
        }
        let done = keys.iter().rposition(|k| self.paths.contains_key(k));
        let mut tree = match done {
            Some(i) => (*self.paths[&keys[i]]).clone(),
            None => Tree::new(),
        };
        let from = done.map_or(0, |i| i + 1);
        for l in state.layers.iter().skip(from) {
            let data = self.leased.read(&l.digest).await?;
            files::apply_layer_paths(&mut tree, &data, "the stage")?;
        }
        let tree = Arc::new(tree);
        self.paths.insert(last.clone(), tree.clone());
        Ok(tree)
    }

    /// The progress step of a RUN, COPY or ADD (of its stage when `title` says which).
    fn begin_step(&mut self, title: &Option<(String, usize, usize)>, line: &Line) -> usize {
        match title {
            Some((label, k, total)) => self.progress.stage_step(label, *k, *total, &line.original),
            None => self.progress.step(&line.original),
        }
    }

    /// ARG: declares names in the stage, valued by --build-arg, the default, or the global.
    fn arg(&mut self, plan: &Plan, state: &mut State, line: &Line) -> Result<(), BuildError> {
        for (k, default) in stages::arg_decls(line)? {
            let scope = self.scope(state);
            let value = match (self.opts.build_args.get(&k), default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => Some(
                    words::process(&d, &scope)
                        .map_err(|e| BuildError::Parse(ParseError::at(line.line, e)))?,
                ),
                (None, None) => plan.global.get(&k).cloned(),
            };
            self.consumed.insert(k.clone());
            state.args.retain(|(n, _)| *n != k);
            state.args.push((k, value));
        }
        Ok(())
    }

    /// The variables words expand with: the stage's args under the config's Env.
    fn scope(&self, state: &State) -> Vec<String> {
        let mut env = state.arg_env();
        env.extend(
            state
                .config
                .config
                .as_ref()
                .map(|c| crate::images::runnable::strings(&c["Env"]))
                .unwrap_or_default(),
        );
        env
    }

    /// A config-only step: its history entry (no layer) and the new chain key.
    fn config_step(&self, state: &mut State, line: &Line) {
        state.key = cache::key(&state.key, &line.original, &state.arg_env(), None);
        state.record = None;
        state.config.history.push(History {
            created: state.config.created.clone(),
            created_by: Some(line.original.clone()),
            comment: Some(HISTORY_COMMENT.into()),
            empty_layer: true,
            ..Default::default()
        });
    }

    /// Takes the cached result of `key` when there is one (and --no-cache is off).
    async fn cached(&mut self, state: &mut State, key: &str, n: usize) -> anyhow::Result<bool> {
        if self.opts.no_cache {
            return Ok(false);
        }
        let name = cache::record_name(key);
        let Some(record) = self.leased.image(&name).await? else {
            return Ok(false);
        };
        let Ok(image) = local::resolve(&self.leased, &record, &Platform::host()).await else {
            return Ok(false);
        };
        state.layers = image.manifest.layers.clone();
        state.config = image.config.clone();
        state.key = key.to_string();
        state.record = Some(name);
        self.progress.cached(n);
        Ok(true)
    }

    /// A step that made a layer: the state's config and layers grown, written under its key.
    async fn commit(
        &self,
        state: &mut State,
        key: String,
        line: &Line,
        layer: Descriptor,
        diff_id: String,
        data: Option<Vec<u8>>,
    ) -> anyhow::Result<()> {
        let now = time::rfc3339(SystemTime::now());
        state.config.created = Some(now.clone());
        state.config.rootfs.kind = "layers".into();
        state.config.rootfs.diff_ids.push(diff_id);
        state.config.history.push(History {
            created: Some(now),
            created_by: Some(line.full()),
            comment: Some(HISTORY_COMMENT.into()),
            ..Default::default()
        });
        let new = match data {
            Some(d) => vec![(layer, d)],
            None => {
                state.layers.push(layer);
                Vec::new()
            }
        };
        let name = cache::record_name(&key);
        write_image(
            &self.leased,
            state.layers.clone(),
            new.clone(),
            &state.config,
            Some(name.clone()),
        )
        .await?;
        state.layers.extend(new.into_iter().map(|(d, _)| d));
        state.key = key;
        state.record = Some(name);
        Ok(())
    }

    /// An image record of the state as it is (written when config steps changed it).
    async fn ensure_record(&self, state: &mut State) -> anyhow::Result<String> {
        if let Some(r) = &state.record {
            return Ok(r.clone());
        }
        let name = cache::record_name(&state.key);
        write_image(
            &self.leased,
            state.layers.clone(),
            Vec::new(),
            &state.config,
            Some(name.clone()),
        )
        .await?;
        state.record = Some(name.clone());
        Ok(name)
    }

    /// Writes the final image and its names (or its archive, with `-o`).
    async fn finish(&mut self, state: State) -> anyhow::Result<Built> {
        let n = self.progress.step("exporting to image");
        match self.opts.output.clone() {
            Some(super::Output::Archive(dest)) => return self.export(state, &dest, n).await,
            Some(out) => return self.export_files(state, &out, n).await,
            None => {}
        }
        let mut names = self.opts.tags.clone();
        let first = names.first().cloned();
        let made = write_image(
            &self.leased,
            state.layers.clone(),
            Vec::new(),
            &state.config,
            first,
        )
        .await?;
        if names.is_empty() {
            names.push(made.name.clone());
        }
        if names.len() > 1 {
            let target = self.target_of(&made.name).await?;
            for name in &names[1..] {
                self.leased.put_image(name, &target, HashMap::new()).await?;
            }
        }
        self.progress.note(n, &format!("writing image {}", made.id));
        for name in &names {
            self.progress.note(n, &format!("naming to {name}"));
        }
        self.progress.done(n);
        Ok(Built {
            id: made.id,
            names,
            unused_args: Vec::new(),
            pushed: Vec::new(),
        })
    }

    async fn target_of(&self, record: &str) -> anyhow::Result<Descriptor> {
        let record = self
            .leased
            .image(record)
            .await?
            .context("the image just written is gone")?;
        record
            .target
            .as_ref()
            .map(from_pb)
            .context("the image record has no target")
    }

    /// The state's image under a passing record (`-o` reads it, then deletes the record): its
    /// name and what was written.
    async fn passing_image(
        &self,
        state: &State,
        what: &str,
    ) -> anyhow::Result<(String, crate::images::import::Imported)> {
        let temp = format!("{}-{what}:{}", cache::CACHE_REPO, std::process::id());
        let made = write_image(
            &self.leased,
            state.layers.clone(),
            Vec::new(),
            &state.config,
            Some(temp.clone()),
        )
        .await?;
        Ok((temp, made))
    }

    /// `-o`: the image written under a passing record, archived with the -t names, the record
    /// removed again (its blobs go with the build's lease).
    async fn export(&mut self, state: State, dest: &Path, n: usize) -> anyhow::Result<Built> {
        let (temp, made) = self.passing_image(&state, "export").await?;
        let result = async {
            let (partial, file) = save::PartialFile::create(dest)?;
            match save::export(
                &self.leased,
                &temp,
                &self.opts.tags,
                &Platform::host(),
                file,
            )
            .await
            {
                Ok(()) => partial.commit(),
                Err(e) => {
                    partial.abandon();
                    Err(e)
                }
            }
        }
        .await
        .with_context(|| format!("writing the image archive {}", dest.display()));
        let _ = self.leased.delete_image(&temp, false).await;
        result?;
        self.progress
            .note(n, &format!("exporting {} to {}", made.id, dest.display()));
        self.progress.done(n);
        Ok(Built {
            id: made.id,
            names: Vec::new(),
            unused_args: Vec::new(),
            pushed: Vec::new(),
        })
    }
}

/// The PATH an image from `scratch` gets, as Docker gives it.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The history comment of every step burrow builds.
const HISTORY_COMMENT: &str = "burrow build";

/// Instructions shown as steps (those that make a layer, as BuildKit shows them).
fn is_vertex(line: &Line) -> bool {
    matches!(line.name.as_str(), "RUN" | "COPY" | "ADD")
}

fn json_array(text: &str) -> Option<Vec<String>> {
    if !text.trim_start().starts_with('[') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// The base image's ONBUILD triggers, removed from the config (they run once, here).
fn take_onbuild(state: &mut State) -> Vec<String> {
    let c = state.image_config();
    let triggers = crate::images::runnable::strings(&c["OnBuild"]);
    if !triggers.is_empty() {
        c["OnBuild"] = Value::Null;
    }
    triggers
}

/// The named contexts as the build reads them: remote ones fetched (into the directories
/// returned, to keep until the build ends), each directory's `.dockerignore` read.
async fn named_contexts(
    given: &crate::build::contexts::NamedContexts,
) -> anyhow::Result<(HashMap<String, Named>, Vec<tempfile::TempDir>)> {
    use crate::build::contexts::NamedContext;
    let (mut named, mut dirs) = (HashMap::new(), Vec::new());
    for (key, c) in given.iter() {
        let (root, what) = match c {
            NamedContext::Image(r) => {
                named.insert(key.clone(), Named::Image(r.clone()));
                continue;
            }
            NamedContext::Dir(d) => (d.clone(), d.display().to_string()),
            NamedContext::Remote(url) => {
                let (tmp, root, dockerfile) = remote_context(url)
                    .await
                    .with_context(|| format!("fetching the build context {key} ({url})"))?;
                if dockerfile.is_some() {
                    anyhow::bail!("the build context {key} ({url}) is a single file, not a Git repository or a tar archive");
                }
                dirs.extend(tmp);
                (root, url.clone())
            }
        };
        let ignore = match std::fs::read_to_string(root.join(".dockerignore")) {
            Ok(text) => Ignore::parse(&text).with_context(|| {
                format!("the .dockerignore of the build context {key} ({what})")
            })?,
            Err(_) => Ignore::default(),
        };
        named.insert(
            key.clone(),
            Named::Dir {
                root,
                ignore,
                name: format!("the build context {key}"),
            },
        );
    }
    Ok((named, dirs))
}

/// The context directory (a tar extracted into a temporary one, kept alive by the guard).
fn context_root(source: &ContextSource) -> anyhow::Result<(Option<tempfile::TempDir>, PathBuf)> {
    match source {
        ContextSource::Dir(d) => {
            let meta = std::fs::metadata(d).with_context(|| {
                format!(
                    "unable to prepare context: path {:?} not found",
                    d.display().to_string()
                )
            })?;
            if !meta.is_dir() {
                anyhow::bail!(
                    "unable to prepare context: {} is not a directory",
                    d.display()
                );
            }
            Ok((None, d.clone()))
        }
        ContextSource::Tar(data) => {
            unpack_context(data.as_slice(), "from stdin").map_err(|e| BuildError::Context(e).into())
        }
        ContextSource::TarFile(path) => {
            let f = std::fs::File::open(path)
                .with_context(|| format!("opening the build context {}", path.display()))?;
            unpack_context(std::io::BufReader::new(f), "sent")
                .map_err(|e| BuildError::Context(e).into())
        }
        ContextSource::Remote(url) => anyhow::bail!("the remote context {url} is fetched first"),
    }
}

/// A remote context: a Git repository checked out (its subdirectory when the URL names one),
/// or a URL downloaded (a tar archive unpacked; a text file is the Dockerfile, with an empty
/// context).
async fn remote_context(
    url: &str,
) -> anyhow::Result<(Option<tempfile::TempDir>, PathBuf, Option<String>)> {
    let tmp = tempfile::Builder::new().prefix("burrow-build-").tempdir()?;
    if super::fetch::is_git(url) {
        let (u, d) = (url.to_string(), tmp.path().to_path_buf());
        let root =
            tokio::task::spawn_blocking(move || super::fetch::checkout(&u, &d, false)).await??;
        return Ok((Some(tmp), root, None));
    }
    let client = crate::images::https::client(&[]).map_err(anyhow::Error::msg)?;
    let super::fetch::Fetched::Body(got, _) =
        super::fetch::download(&client, url, tmp.path(), None, None).await?
    else {
        anyhow::bail!("{url}: the server answered 304 Not Modified to a plain GET");
    };
    let head = {
        use std::io::Read as _;
        let mut head = Vec::new();
        std::fs::File::open(&got.path)?
            .take(512)
            .read_to_end(&mut head)?;
        head
    };
    // Compressed (unpack_context names the kinds it cannot read) or a plain tar.
    let archive = crate::images::compression::detect(&head)
        != crate::images::compression::Compression::Plain
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || crate::build::files::is_archive(&head);
    if archive {
        let f = std::fs::File::open(&got.path)?;
        let (inner, root) = unpack_context(std::io::BufReader::new(f), &format!("from {url}"))
            .map_err(BuildError::Context)?;
        drop(tmp);
        return Ok((inner, root, None));
    }
    let text = std::fs::read_to_string(&got.path)
        .with_context(|| format!("{url} is neither a tar archive nor a text Dockerfile"))?;
    std::fs::remove_file(&got.path)?;
    let root = tmp.path().to_path_buf();
    Ok((Some(tmp), root, Some(text)))
}

/// A context archive (plain tar, gzip or zstd) unpacked into a temporary directory; `how` says where
/// it came from, for the error.
fn unpack_context(
    mut input: impl std::io::BufRead,
    how: &str,
) -> anyhow::Result<(Option<tempfile::TempDir>, PathBuf)> {
    let head = input.fill_buf()?.to_vec();
    let refused = [
        (&b"BZh"[..], "bzip2"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0][..], "xz"),
    ];
    if let Some((_, kind)) = refused.iter().find(|(m, _)| head.starts_with(m)) {
        anyhow::bail!(
            "the build context {how} is {kind}-compressed: burrow reads a plain, gzip- or zstd-compressed tar archive; send one of those"
        );
    }
    let tmp = tempfile::Builder::new().prefix("burrow-build-").tempdir()?;
    let reader = crate::images::compression::decompressed(input)?;
    tar::Archive::new(Padded::new(reader))
        .unpack(tmp.path())
        .with_context(|| {
            format!("unpacking the build context {how} (a tar archive, plain, gzip or zstd)")
        })?;
    let root = tmp.path().to_path_buf();
    Ok((Some(tmp), root))
}

/// A tar stream made whole at its end: the docker CLI sends a context whose last entry lacks
/// its padding and the end-of-archive blocks when it adds a Dockerfile from outside the
/// context (`-f -`, `-f ../Dockerfile`); Go's reader takes that, the tar crate's does not. At
/// the end of the input this gives zeros up to the next 512-byte block and two more blocks.
struct Padded<R> {
    inner: R,
    read: u64,
    tail: Option<u64>,
}

impl<R> Padded<R> {
    fn new(inner: R) -> Self {
        Padded {
            inner,
            read: 0,
            tail: None,
        }
    }
}

impl<R: std::io::Read> std::io::Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.tail.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.tail = Some((512 - self.read % 512) % 512 + 1024);
        }
        let left = self.tail.as_mut().expect("set above");
        let n = (*left).min(buf.len() as u64) as usize;
        buf[..n].fill(0);
        *left -= n as u64;
        Ok(n)
    }
}

/// The context's ignore file: `<Dockerfile>.dockerignore` beside a Dockerfile given by path
/// when there is one (as BuildKit reads it), else `.dockerignore` in the context's root.
fn read_ignore(root: &Path, dockerfile: &DockerfileSource) -> anyhow::Result<Ignore> {
    let mut candidates = Vec::new();
    if let DockerfileSource::Path(p) = dockerfile {
        let p = if p.is_absolute() {
            p.clone()
        } else {
            root.join(p)
        };
        let mut own = p.into_os_string();
        own.push(".dockerignore");
        candidates.push(PathBuf::from(own));
    }
    candidates.push(root.join(".dockerignore"));
    for c in candidates {
        if let Ok(t) = std::fs::read_to_string(&c) {
            return Ignore::parse(&t).with_context(|| format!("reading {}", c.display()));
        }
    }
    Ok(Ignore::default())
}

fn dockerfile_text(root: &Path, source: &DockerfileSource) -> anyhow::Result<String> {
    match source {
        DockerfileSource::Text(t) => Ok(t.clone()),
        DockerfileSource::Path(p) => {
            let path = if p.is_absolute() {
                p.clone()
            } else {
                root.join(p)
            };
            std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "cannot read the Dockerfile {} (give another with -f)",
                    path.display()
                )
            })
        }
    }
}

/// Builds the error of an instruction `line` refuses (bad flags, what burrow does not do).
fn refused(line: &Line) -> impl Fn(String) -> BuildError + Copy + '_ {
    move |message| BuildError::Refused {
        line: line.line,
        instruction: line.original.clone(),
        message,
    }
}

/// Builds the error of an instruction `line` that failed while it ran.
/// Applies an instruction that changes the image config (ENV, LABEL, WORKDIR, ...) to the state.
fn apply_config(state: &mut State, line: &Line) -> Result<(), BuildError> {
    let instr = Instruction::parse(&line.original)
        .map_err(|e| BuildError::Parse(ParseError::at(line.line, e)))?;
    let args = state.arg_env();
    let mut cmd_set = state.cmd_set;
    apply_step(state.image_config(), &instr, &args, &mut cmd_set)
        .map_err(|e| BuildError::Parse(ParseError::at(line.line, e)))?;
    state.cmd_set = cmd_set;
    Ok(())
}

fn failed(line: &Line) -> impl Fn(anyhow::Error) -> BuildError + Copy + '_ {
    move |err| BuildError::Step {
        line: line.line,
        instruction: line.original.clone(),
        err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_tar_without_its_end_unpacks() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "Dockerfile", &b"FROM "[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "last", &b"abc"[..]).unwrap();
        let whole = b.into_inner().unwrap();
        // As the docker CLI sends it with a Dockerfile from outside the context: the last
        // entry's data unpadded, no end-of-archive blocks.
        let cut = &whole[..512 * 3 + 3];
        let (_tmp, root) = unpack_context(std::io::BufReader::new(cut), "test").unwrap();
        assert_eq!(std::fs::read(root.join("last")).unwrap(), b"abc");
        let (_tmp, root) = unpack_context(std::io::BufReader::new(&whole[..]), "test").unwrap();
        assert_eq!(std::fs::read(root.join("Dockerfile")).unwrap(), b"FROM ");
    }
}
