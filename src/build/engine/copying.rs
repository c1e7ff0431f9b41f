//! COPY and ADD steps of a build: their flags, heredoc files, and the entries they copy from
//! the context, an earlier stage or an image.

use super::*;
use crate::build::fetch;

/// How ADD fetches its URLs (`--checksum`, `--keep-git-dir`, `--unpack`).
struct Fetch<'a> {
    checksum: Option<&'a str>,
    keep_git_dir: bool,
    unpack: bool,
}

impl Build<'_> {
    /// The entries a COPY or ADD writes.
    pub(super) async fn copy_tree(
        &mut self,
        state: &State,
        line: &Line,
    ) -> Result<Tree, BuildError> {
        let refuse = |message: String| BuildError::Refused {
            line: line.line,
            instruction: line.original.clone(),
            message,
        };
        let copy_err = |err| BuildError::Copy {
            line: line.line,
            instruction: line.original.clone(),
            err,
        };
        let scope = self.scope(state);
        let mut spec = CopySpec {
            add: line.name == "ADD",
            ..Default::default()
        };
        let mut from = None;
        let mut checksum = None;
        let mut keep_git_dir = false;
        let mut excludes = Vec::new();
        let mut unpack = None;
        for (k, v) in &line.flags {
            let v = v.clone().unwrap_or_default();
            let v = words::process(&v, &scope)
                .map_err(|e| BuildError::Parse(ParseError::at(line.line, e)))?;
            match k.as_str() {
                "chown" => spec.chown = Some(self.chown(state, &v, line).await?),
                "chmod" => spec.chmod = Some(copy::parse_chmod(&v).map_err(copy_err)?),
                "from" if line.name == "COPY" => from = Some(v),
                "keep-git-dir" if line.name == "ADD" => {
                    keep_git_dir = match v.as_str() {
                        "" | "true" => true,
                        "false" => false,
                        _ => return Err(refuse(format!("--keep-git-dir={v}: give true or false"))),
                    }
                }
                "unpack" if line.name == "ADD" => {
                    unpack = match v.as_str() {
                        "" | "true" => Some(true),
                        "false" => Some(false),
                        _ => return Err(refuse(format!("--unpack={v}: give true or false"))),
                    }
                }
                "checksum" if line.name == "ADD" => {
                    checksum = Some(fetch::parse_checksum(&v).map_err(|e| refuse(e.to_string()))?)
                }
                "exclude" if !v.is_empty() => excludes.push(v),
                "exclude" => {
                    return Err(refuse(
                        "--exclude needs a pattern: --exclude=PATTERN".into(),
                    ))
                }
                // --link changes how BuildKit stores the layer, not what it holds.
                "link" => {}
                _ => return Err(refuse(format!("unsupported {} flag --{k}", line.name))),
            }
        }
        // ADD unpacks local archives unless --unpack=false, downloads only with --unpack=true.
        spec.add = spec.add && unpack.unwrap_or(true);
        spec.exclude = crate::build::ignore::Ignore::from_patterns(&excludes)
            .map_err(|e| refuse(format!("--exclude={}: not a pattern: {}", e.pattern, e.why)))?;
        let ws = match json_array(&line.rest) {
            Some(v) => v,
            None => {
                let raw = words::split(&line.rest)
                    .map_err(|e| BuildError::Parse(ParseError::at(line.line, e)))?;
                raw.iter()
                    .map(|w| words::process(w, &scope))
                    .collect::<Result<_, _>>()
                    .map_err(|e| BuildError::Parse(ParseError::at(line.line, e)))?
            }
        };
        let Some((dest, sources)) = ws.split_last() else {
            return Err(refuse(format!(
                "{} requires at least two arguments: SOURCE... DEST",
                line.name
            )));
        };
        if sources.is_empty() {
            return Err(refuse(format!(
                "{} requires at least two arguments: SOURCE... DEST",
                line.name
            )));
        }
        spec.dest = absolute_dest(state, dest);
        // What the stage has matters to a single source without a trailing `/` (into a
        // directory of that name) and to --chown (the directories the copy makes).
        if (sources.len() == 1 && !spec.dest.ends_with('/')) || spec.chown.is_some() {
            spec.stage = Some(self.stage_paths(state).await.map_err(failed(line))?);
        }
        let (docs, sources): (Vec<&String>, Vec<&String>) =
            sources.iter().partition(|s| heredoc_of(line, s).is_some());
        let mut here = Tree::new();
        for d in docs {
            let h = heredoc_of(line, d).expect("partitioned on it");
            let body = match h.expand {
                true => expand_body(&h.body, &scope)
                    .map_err(|e| BuildError::Parse(ParseError::at(line.line, e)))?,
                false => h.body.clone(),
            };
            let path = match spec.dest.ends_with('/') {
                true => format!("{}{}", spec.dest, h.name),
                false => spec.dest.clone(),
            };
            let path = crate::build::ignore::clean(&path);
            here.insert(
                path.clone(),
                files::Entry {
                    path,
                    kind: files::Kind::File(body.into_bytes().into()),
                    mode: spec.chmod.unwrap_or(0o644),
                    uid: spec.chown.map(|c| c.0).unwrap_or(0),
                    gid: spec.chown.map(|c| c.1).unwrap_or(0),
                    mtime: 0,
                },
            );
        }
        let (urls, sources): (Vec<&String>, Vec<&String>) = sources
            .into_iter()
            .partition(|s| fetch::is_url(s) || fetch::is_git(s));
        if let Some(u) = urls.first() {
            if line.name == "COPY" {
                return Err(refuse(format!(
                    "COPY cannot take a URL ({u}): use ADD to download it"
                )));
            }
            if urls.len() + sources.len() + here.len() > 1 && !spec.dest.ends_with('/') {
                return Err(copy_err(copy::CopyError::DestNotDir));
            }
        }
        if let (Some(_), Some(s)) = (&checksum, sources.first()) {
            return Err(refuse(format!(
                "--checksum applies to URLs only, and {s:?} is a path of the build context"
            )));
        }
        let mut tree = match urls.is_empty() {
            true => Tree::new(),
            false => {
                let urls: Vec<String> = urls.into_iter().cloned().collect();
                let fetch = Fetch {
                    checksum: checksum.as_deref(),
                    keep_git_dir,
                    unpack: unpack == Some(true),
                };
                self.download_sources(&spec, &urls, &fetch, line).await?
            }
        };
        if !sources.is_empty() {
            spec.sources = sources.into_iter().cloned().collect();
            let mut local = self.copy_sources(&spec, from, line).await?;
            tree.append(&mut local);
        }
        tree.append(&mut here);
        Ok(tree)
    }

    /// The entries ADD makes of URLs: a Git repository's checkout copied as a directory's
    /// contents; a download named after its path's last segment, mode 0600 (unless --chmod) and
    /// dated by Last-Modified, then placed as a copied file is (unpacked only with --unpack).
    async fn download_sources(
        &mut self,
        spec: &CopySpec,
        urls: &[String],
        fetch: &Fetch<'_>,
        line: &Line,
    ) -> Result<Tree, BuildError> {
        let (checksum, keep_git_dir) = (fetch.checksum, fetch.keep_git_dir);
        let fail = |e: String| BuildError::Refused {
            line: line.line,
            instruction: line.original.clone(),
            message: e,
        };
        if self.downloads.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("burrow-build-add-")
                .tempdir()
                .map_err(|e| fail(format!("cannot make a directory for ADD's downloads: {e}")))?;
            self.downloads = Some(dir);
        }
        if self.http.is_none() {
            self.http = Some(
                crate::images::https::client(&[])
                    .map_err(|e| fail(format!("cannot set up HTTPS for ADD's downloads: {e}")))?,
            );
        }
        let dir = self
            .downloads
            .as_ref()
            .expect("made above")
            .path()
            .to_path_buf();
        let client = self.http.clone().expect("made above");
        let mut src = Tree::new();
        let mut names = Vec::new();
        let mut out = Tree::new();
        for url in urls.iter().filter(|u| fetch::is_git(u)) {
            if checksum.is_some() {
                return Err(fail(format!(
                    "--checksum applies to downloads, and {url} is a Git repository"
                )));
            }
            let (u, d) = (url.clone(), dir.clone());
            let root = tokio::task::spawn_blocking(move || fetch::checkout(&u, &d, keep_git_dir))
                .await
                .map_err(|e| fail(e.to_string()))?
                .map_err(|e| fail(e.to_string()))?;
            let tree = files::context_tree(&root, &crate::build::ignore::Ignore::default())
                .map_err(|e| fail(e.to_string()))?;
            let spec = CopySpec {
                sources: vec![".".into()],
                add: false,
                ..spec.clone()
            };
            let mut got = copy::select(&tree, &spec, &Origin::Stage("the Git repository"))
                .map_err(|err| BuildError::Copy {
                    line: line.line,
                    instruction: line.original.clone(),
                    err,
                })?;
            out.append(&mut got);
        }
        for url in urls.iter().filter(|u| !fetch::is_git(u)) {
            let got = crate::build::downloads::Cache::new(&self.ctx.ep.data_root)
                .get(&client, url, &dir, checksum)
                .await
                .map_err(|e| fail(e.to_string()))?;
            tracing::debug!(%url, len = got.len, digest = %got.digest, "ADD downloaded");
            src.insert(
                got.name.clone(),
                files::Entry {
                    path: got.name.clone(),
                    kind: files::Kind::File(files::Data::Disk {
                        path: got.path,
                        len: got.len,
                    }),
                    mode: 0o600,
                    uid: 0,
                    gid: 0,
                    mtime: got.mtime,
                },
            );
            names.push(got.name);
        }
        if names.is_empty() {
            return Ok(out);
        }
        let spec = CopySpec {
            sources: names,
            add: fetch.unpack,
            ..spec.clone()
        };
        let mut got =
            copy::select(&src, &spec, &Origin::Stage("the downloads")).map_err(|err| {
                BuildError::Copy {
                    line: line.line,
                    instruction: line.original.clone(),
                    err,
                }
            })?;
        out.append(&mut got);
        Ok(out)
    }

    /// The entries of a COPY or ADD's sources from the context or `from`.
    async fn copy_sources(
        &mut self,
        spec: &CopySpec,
        from: Option<String>,
        line: &Line,
    ) -> Result<Tree, BuildError> {
        let copy_err = |err| BuildError::Copy {
            line: line.line,
            instruction: line.original.clone(),
            err,
        };
        let refuse = |message: String| BuildError::Refused {
            line: line.line,
            instruction: line.original.clone(),
            message,
        };
        let spec = spec.clone();
        match from {
            None => {
                if self.context_tree.is_none() {
                    let t = files::context_tree(&self.root, &self.ignore)
                        .map_err(|e| refuse(e.to_string()))?;
                    self.context_tree = Some(t);
                }
                let tree = self.context_tree.as_ref().expect("read above");
                let origin = Origin::Context {
                    root: &self.root,
                    ignore: &self.ignore,
                };
                copy::select(tree, &spec, &origin).map_err(copy_err)
            }
            Some(f) => {
                let tree = self.stage_tree(&f).await.map_err(|err| BuildError::Step {
                    line: line.line,
                    instruction: line.original.clone(),
                    err,
                })?;
                copy::select(&tree, &spec, &Origin::Stage(&f)).map_err(copy_err)
            }
        }
    }

    /// The files of a built stage (by name or index), a named context (`--build-context`) or
    /// an image (from its layers).
    pub(super) async fn stage_tree(&self, from: &str) -> anyhow::Result<Tree> {
        let lower = from.to_ascii_lowercase();
        let layers = match self
            .stages
            .iter()
            .find(|(i, _)| i.to_string() == from)
            .map(|(_, s)| s)
        {
            Some(s) => s.layers.clone(),
            None => match (self.named_stage(&lower), self.named_context(from)) {
                (Some(s), _) => s.layers.clone(),
                (None, Some(Named::Dir { root, ignore, name })) => {
                    return self.named_tree(&root, &ignore, &name)
                }
                (None, named) => {
                    let image = match named {
                        Some(Named::Image(r)) => r,
                        _ => from.to_string(),
                    };
                    self.image(&image, false, None)
                        .await?
                        .1
                        .manifest
                        .layers
                        .clone()
                }
            },
        };
        self.layers_tree(&layers, from).await
    }

    /// The files `layers` make, applied in order.
    async fn layers_tree(&self, layers: &[Descriptor], what: &str) -> anyhow::Result<Tree> {
        let mut tree = Tree::new();
        for l in layers {
            let data = self.leased.read(&l.digest).await?;
            files::apply_layer(&mut tree, &data, what)?;
        }
        Ok(tree)
    }

    /// --chown's ids: numbers as given, names from the stage's /etc/passwd and /etc/group.
    pub(super) async fn chown(
        &self,
        state: &State,
        v: &str,
        line: &Line,
    ) -> Result<(u64, u64), BuildError> {
        if let Ok(ids) = copy::parse_chown(v) {
            return Ok(ids);
        }
        let tree = self
            .layers_tree(&state.layers, "the stage")
            .await
            .map_err(failed(line))?;
        let text = |p: &str| match tree.get(p).map(|e| &e.kind) {
            Some(files::Kind::File(d)) => d
                .bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
            _ => String::new(),
        };
        copy::resolve_chown(v, &text("etc/passwd"), &text("etc/group")).map_err(|err| {
            BuildError::Copy {
                line: line.line,
                instruction: line.original.clone(),
                err,
            }
        })
    }

    fn named_stage(&self, lower: &str) -> Option<&State> {
        self.stage_names.get(lower).and_then(|i| self.stages.get(i))
    }
}

/// The heredoc a word (`<<EOF`, `<<-"EOF"`) names.
pub(super) fn heredoc_of<'l>(line: &'l Line, word: &str) -> Option<&'l file::Heredoc> {
    let name = word.strip_prefix("<<")?.trim_start_matches('-');
    let name = name.trim_matches(|c| c == '"' || c == '\'');
    line.heredocs.iter().find(|h| h.name == name)
}

/// A COPY heredoc's body with `$VAR` and `${VAR...}` expanded (quotes and backslashes kept).
/// A heredoc body with variables expanded as a shell expands an unquoted heredoc: quotes are
/// text, `\$` is a literal `$` and `\\` one backslash; other backslashes stay.
fn expand_body(body: &str, scope: &[String]) -> Result<String, crate::dockerfile::DockerfileError> {
    let mut escaped = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => escaped.push('\\'),
            '\\' if matches!(chars.peek(), Some('$' | '\\')) => {
                escaped.push(c);
                escaped.extend(chars.next());
                continue;
            }
            '\\' => escaped.push('\\'),
            _ => {}
        }
        escaped.push(c);
    }
    words::process(&escaped, scope)
}

/// A COPY destination made absolute against the WORKDIR (a trailing `/` kept).
fn absolute_dest(state: &State, dest: &str) -> String {
    if dest.starts_with('/') {
        return dest.to_string();
    }
    let wd = state
        .config
        .config
        .as_ref()
        .and_then(|c| c["WorkingDir"].as_str())
        .unwrap_or("/")
        .trim_end_matches('/')
        .to_string();
    format!("{wd}/{dest}")
}

#[cfg(test)]
mod tests {
    use super::expand_body;

    #[test]
    fn heredoc_bodies_expand_as_a_shell_heredoc() {
        let scope = vec!["NAME=world".to_string()];
        let got = expand_body("hi $NAME \\$NAME \\\\ \\n \"q\" 'x'\n", &scope).unwrap();
        assert_eq!(got, "hi world $NAME \\ \\n \"q\" 'x'\n");
    }
}
