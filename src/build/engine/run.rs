//! RUN steps of a build: their flags (`--network`, `--mount`), the cache, the bind mounts
//! files, the script (heredocs), and the step run in a container.

use super::*;

impl Build<'_> {
    /// RUN: from the cache, or run in a container and committed.
    pub(super) async fn run_step(
        &mut self,
        state: &mut State,
        line: &Line,
        n: usize,
    ) -> Result<(), BuildError> {
        let (refuse, step_err) = (super::refused(line), super::failed(line));
        let mut network = self.opts.network.clone();
        let mut mounts = Vec::new();
        for (k, v) in &line.flags {
            match (k.as_str(), v.as_deref()) {
                ("network", Some(m @ ("none" | "host"))) => network = m.to_string(),
                ("network", Some("default")) => {}
                ("mount", Some(m)) => {
                    let m = words::process(m, &self.scope(state))
                        .map_err(|e| BuildError::Parse(ParseError::at(line.line, e)))?;
                    mounts.push(RunMount::parse(&m).map_err(refuse)?);
                }
                _ => {
                    return Err(refuse(format!(
                        "unsupported RUN flag --{k}: RUN takes --network=none|host|default and --mount=type=cache|bind|secret|ssh|tmpfs,..."
                    )))
                }
            }
        }
        let mut binds = Vec::new();
        let mut content = String::new();
        for m in &mounts {
            let bind = self.bind_tree(m).await.map_err(|err| BuildError::Step {
                line: line.line,
                instruction: line.original.clone(),
                err,
            })?;
            if let Some((tree, _, _, _)) = &bind {
                let digest = files::content_digest(tree).map_err(|e| step_err(e.into()))?;
                content.push_str(&digest);
            }
            binds.push(bind);
        }
        content.push_str(&self.opts.run.cache_text());
        let content = (!content.is_empty()).then_some(content.as_str());
        let key = cache::key(&state.key, &line.full(), &state.arg_env(), content);
        if self.cached(state, &key, n).await.map_err(step_err)? {
            return Ok(());
        }
        let mut temps = Vec::new();
        let mut volumes = Vec::new();
        let (mut secret_env, mut tmpfs) = (Vec::new(), Vec::new());
        let mut ssh_mounts = 0;
        for (m, bind) in mounts.iter().zip(binds) {
            volumes.push(match (m, bind) {
                (RunMount::Cache { target, id }, _) => {
                    format!("{}:{target}:nocopy", mounts::cache_volume(id))
                }
                (
                    RunMount::Ssh {
                        id,
                        target,
                        required,
                    },
                    _,
                ) => {
                    let Some(sock) = self.opts.ssh.0.get(id) else {
                        if *required {
                            return Err(refuse(format!(
                                "ssh agent {id} is required and the build was not given it: burrow build --ssh {id}[=SOCKET]"
                            )));
                        }
                        continue;
                    };
                    let target = target.clone().unwrap_or_else(|| {
                        format!("/run/buildkit/ssh_agent.{ssh_mounts}")
                    });
                    ssh_mounts += 1;
                    // For this step only, in neither the cache key nor the image.
                    secret_env.push(format!("SSH_AUTH_SOCK={target}"));
                    format!("{}:{target}", sock.display())
                }
                (RunMount::Tmpfs { target, size }, _) => {
                    // BuildKit's: programs may run from it.
                    let mut options = vec!["exec".to_string(), "mode=1777".to_string()];
                    options.extend(size.map(|b| format!("size={b}")));
                    tmpfs.push(crate::containers::values::TmpfsSpec {
                        target: target.clone(),
                        options,
                    });
                    continue;
                }
                (
                    RunMount::Secret {
                        id,
                        target,
                        env,
                        required,
                        mode,
                    },
                    _,
                ) => {
                    let value = match self.opts.secrets.value(id).map_err(refuse)? {
                        Some(v) => v,
                        None if *required => {
                            return Err(refuse(format!(
                                "secret {id} is required and the build was not given it: burrow build --secret id={id},src=FILE (or env=VARIABLE)"
                            )))
                        }
                        None => continue,
                    };
                    if let Some(var) = env {
                        secret_env.push(format!(
                            "{var}={}",
                            String::from_utf8_lossy(&value).trim_end_matches('\n')
                        ));
                    }
                    let Some(target) = target else { continue };
                    let tmp = tempfile::Builder::new()
                        .prefix("burrow-build-secret-")
                        .tempdir()
                        .map_err(|e| step_err(e.into()))?;
                    let file = tmp.path().join("secret");
                    write_secret(&file, &value, *mode).map_err(|e| step_err(e.into()))?;
                    std::fs::set_permissions(
                        tmp.path(),
                        std::os::unix::fs::PermissionsExt::from_mode(0o755),
                    )
                    .map_err(|e| step_err(e.into()))?;
                    temps.push(tmp);
                    format!("{}:{target}:ro", file.display())
                }
                (_, Some((tree, file, target, rw))) => {
                    let tmp = tempfile::Builder::new()
                        .prefix("burrow-build-bind-")
                        .tempdir()
                        .map_err(|e| step_err(e.into()))?;
                    mounts::materialize(&tree, tmp.path()).map_err(|e| step_err(e.into()))?;
                    // The step's user may be another than the builder's.
                    std::fs::set_permissions(
                        tmp.path(),
                        std::os::unix::fs::PermissionsExt::from_mode(0o755),
                    )
                    .map_err(|e| step_err(e.into()))?;
                    let host = match file {
                        Some(f) => tmp.path().join(f),
                        None => tmp.path().to_path_buf(),
                    };
                    temps.push(tmp);
                    format!(
                        "{}:{target}:{}",
                        host.display(),
                        if rw { "rw" } else { "ro" }
                    )
                }
                (RunMount::Bind { .. }, None) => unreachable!("a bind mount always has its tree"),
            });
        }
        let binds = volumes
            .iter()
            .map(|v| {
                v.parse()
                    .map_err(|e: crate::containers::values::ValueError| refuse(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let argv = match json_array(&line.rest) {
            Some(v) => v,
            None => {
                let c = state.config.config.clone().unwrap_or_default();
                let mut shell = crate::images::runnable::strings(&c["Shell"]);
                if shell.is_empty() {
                    shell = vec!["/bin/sh".into(), "-c".into()];
                }
                shell.push(run_script(line));
                shell
            }
        };
        let image = self.ensure_record(state).await.map_err(step_err)?;
        let image_env: Vec<String> = state
            .config
            .config
            .as_ref()
            .map(|c| crate::images::runnable::strings(&c["Env"]))
            .unwrap_or_default();
        let set_by_env = |k: &str| {
            image_env
                .iter()
                .any(|e| e.split_once('=').map(|p| p.0) == Some(k))
        };
        // ENV wins over an ARG of the same name, as in Docker.
        let mut env: Vec<String> = state
            .arg_env()
            .into_iter()
            .filter(|a| !set_by_env(a.split_once('=').map(|p| p.0).unwrap_or(a)))
            .collect();
        // The proxy build args reach RUN without an ARG line (and stay out of the cache key
        // and the image), as in Docker.
        for k in super::super::stages::PROXY_ARGS {
            let declared = state.args.iter().any(|(n, _)| n == k);
            if let (Some(v), false) = (self.opts.build_args.get(*k), declared || set_by_env(k)) {
                env.push(format!("{k}={v}"));
            }
        }
        // Secrets as variables: for this step only, in neither the cache key nor the image.
        env.extend(secret_env);
        let spec = RunSpec {
            image: &image,
            argv,
            env,
            network: &network,
            binds,
            tmpfs,
            cancel: &self.opts.cancel,
            settings: &self.opts.run,
        };
        let progress = &mut self.progress;
        let mut out = |d: &[u8]| progress.output(n, d);
        match runstep::run(self.ctx, &self.leased, &spec, &mut out).await {
            Ok((layer, diff_id)) => {
                self.commit(state, key, line, layer, diff_id, None)
                    .await
                    .map_err(step_err)?;
                self.progress.done(n);
                Ok(())
            }
            Err(RunError::Exit { code, output }) => Err(BuildError::Run {
                line: line.line,
                instruction: line.original.clone(),
                code,
                output: String::from_utf8_lossy(&output).into_owned(),
            }),
            Err(RunError::Other(err)) => Err(step_err(err)),
        }
    }

    /// The files a bind mount shows (none for the other kinds): the tree, the file name when the
    /// source is one file, the target and whether it is writable.
    async fn bind_tree(
        &mut self,
        m: &RunMount,
    ) -> anyhow::Result<Option<(Tree, Option<String>, String, bool)>> {
        let RunMount::Bind {
            target,
            source,
            from,
            rw,
        } = m
        else {
            return Ok(None);
        };
        let tree = match from {
            Some(f) => self.stage_tree(f).await?,
            None => {
                if self.context_tree.is_none() {
                    self.context_tree = Some(files::context_tree(&self.root, &self.ignore)?);
                }
                self.context_tree.clone().expect("read above")
            }
        };
        let source = crate::build::ignore::clean(source);
        if source.is_empty() {
            return Ok(Some((tree, None, target.clone(), *rw)));
        }
        let Some(top) = tree.get(&source) else {
            anyhow::bail!(
                "--mount source {source:?} is not in {}",
                from.as_deref().unwrap_or("the build context")
            );
        };
        let prefix = format!("{source}/");
        if top.kind != files::Kind::Dir {
            let name = source.rsplit('/').next().unwrap_or(&source).to_string();
            let mut e = top.clone();
            e.path = name.clone();
            return Ok(Some((
                Tree::from([(name.clone(), e)]),
                Some(name),
                target.clone(),
                *rw,
            )));
        }
        let sub = tree
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, e)| {
                let rel = p[prefix.len()..].to_string();
                let mut e = e.clone();
                e.path = rel.clone();
                (rel, e)
            })
            .collect();
        Ok(Some((sub, None, target.clone(), *rw)))
    }
}

/// The shell script of a RUN: its text, with its heredocs after it for the shell to read; a RUN
/// that is only a heredoc runs the heredoc's body (as BuildKit does).
fn run_script(line: &Line) -> String {
    match line.heredocs.as_slice() {
        [] => line.rest.clone(),
        [h] if super::copying::heredoc_of(line, line.rest.trim()).is_some() => h.body.clone(),
        docs => {
            let mut text = line.rest.clone();
            text.push('\n');
            for h in docs {
                text.push_str(&h.body);
                text.push_str(&h.name);
                text.push('\n');
            }
            text
        }
    }
}

/// Writes a secret's value to `path` with `mode`, private from its first byte.
fn write_secret(path: &std::path::Path, value: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(value)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}
