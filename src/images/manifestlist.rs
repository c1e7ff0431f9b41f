//! Manifest lists made by hand (`manifest create/annotate/inspect/push/rm`): image manifests
//! already in a registry gathered under one name, kept until pushed where the docker CLI keeps
//! them (`~/.docker/manifests/LIST/IMAGE`, one JSON file per image in its format, so either tool
//! reads the other's), then written to the registry as one index whose images are copied into
//! the list's repository first (their blobs mounted across repositories).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use hyper::body::Bytes;
use serde_json::{json, Value};

use super::manifest::{self, Descriptor};
use super::reference::Reference;
use super::registry::Registry;
use super::{auth, endpoints};

/// A manifest list operation that cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("invalid image name {name:?}: {why}")]
    Name { name: String, why: String },
    #[error("manifest list {0} already exists here: give --amend to add to it, or `burrow manifest rm {0}` first")]
    Exists(String),
    #[error("no manifest list {0} here: make it with `burrow manifest create {0} IMAGE...`")]
    NoList(String),
    #[error("{image} is not in manifest list {list}: add it with `burrow manifest create --amend {list} {image}`")]
    NotInList { list: String, image: String },
    #[error("{image} is in registry {got}, the list {list} in {want}: a list and its images share a registry")]
    OtherRegistry {
        list: String,
        image: String,
        got: String,
        want: String,
    },
    #[error(
        "{0} is a manifest list itself: give the image manifests (by tag or digest) it is made of"
    )]
    IsList(String),
    #[error("{image}: {why}")]
    Bad { image: String, why: String },
    #[error("{what} {path}: {err}")]
    Io {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error(transparent)]
    Registry(#[from] anyhow::Error),
}

type Result<T> = std::result::Result<T, ListError>;

/// One image of a list: its reference, its descriptor (with the platform) and its manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub reference: String,
    pub descriptor: Value,
    pub raw: Vec<u8>,
}

impl Entry {
    /// The docker CLI's file form (`types.ImageManifest`).
    pub fn to_json(&self) -> Value {
        let parsed: Value = serde_json::from_slice(&self.raw).unwrap_or(Value::Null);
        let key = match self.descriptor["mediaType"].as_str() {
            Some(manifest::OCI_MANIFEST) => "OCIManifest",
            _ => "SchemaV2Manifest",
        };
        json!({
            "Ref": self.reference,
            "Descriptor": self.descriptor,
            "Raw": base64::engine::general_purpose::STANDARD.encode(&self.raw),
            key: parsed,
        })
    }

    fn from_json(v: &Value) -> Option<Entry> {
        Some(Entry {
            reference: v["Ref"].as_str()?.to_string(),
            descriptor: v["Descriptor"].clone(),
            raw: base64::engine::general_purpose::STANDARD
                .decode(v["Raw"].as_str()?)
                .ok()?,
        })
    }

    /// The manifest's blobs (config and layers), by digest.
    fn blobs(&self) -> Vec<String> {
        let m: Value = serde_json::from_slice(&self.raw).unwrap_or(Value::Null);
        std::iter::once(&m["config"])
            .chain(m["layers"].as_array().into_iter().flatten())
            .filter_map(|d| d["digest"].as_str().map(str::to_string))
            .collect()
    }
}

/// What a registry holds under a name: a list (its document and its images' entries, fetched
/// when asked) or one image.
#[derive(Debug, Clone)]
pub enum Remote {
    List { raw: Vec<u8>, images: Vec<Entry> },
    Image(Entry),
}

/// A change of an image's platform in a list (`manifest annotate`).
#[derive(Debug, Clone, Default)]
pub struct Annotation {
    pub os: Option<String>,
    pub arch: Option<String>,
    pub variant: Option<String>,
    pub os_version: Option<String>,
    pub os_features: Vec<String>,
}

fn parse(name: &str) -> Result<Reference> {
    Reference::parse(name).map_err(|e| ListError::Name {
        name: name.to_string(),
        why: e.to_string(),
    })
}

/// The full name a reference is kept and compared under (`docker.io/library/x:latest`).
fn full(r: &Reference) -> String {
    let mut r = r.clone();
    if r.tag.is_none() && r.digest.is_none() {
        r.tag = Some("latest".into());
    }
    r.to_string()
}

/// The docker CLI's file-safe form of a name (`:` to `-`, `/` to `_`).
fn safe(name: &str) -> String {
    name.replace(':', "-").replace('/', "_")
}

/// Where lists are kept: `manifests/` beside the docker config (`$DOCKER_CONFIG`, else
/// `~/.docker`).
pub fn lists_dir() -> Result<PathBuf> {
    let config = auth::config_path().map_err(|e| ListError::Registry(e.into()))?;
    Ok(config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join("manifests"))
}

fn list_dir(root: &Path, list: &Reference) -> PathBuf {
    root.join(safe(&full(list)))
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ListError + 'a {
    move |err| ListError::Io {
        what,
        path: path.to_path_buf(),
        err,
    }
}

/// The images of the list `name` kept under `root`, in the order they were added; None when
/// there is no such list.
pub fn local(root: &Path, name: &str) -> Result<Option<Vec<Entry>>> {
    let dir = list_dir(root, &parse(name)?);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("reading", &dir)(e)),
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = rd
        .flatten()
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, e.path())
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for (_, f) in files {
        let text = std::fs::read(&f).map_err(io("reading", &f))?;
        let v: Value = serde_json::from_slice(&text).map_err(|e| ListError::Bad {
            image: f.display().to_string(),
            why: format!("not a manifest list entry: {e}"),
        })?;
        if let Some(e) = Entry::from_json(&v) {
            out.push(e);
        }
    }
    Ok(Some(out))
}

fn save(root: &Path, list: &Reference, e: &Entry) -> Result<()> {
    let dir = list_dir(root, list);
    crate::fsutil::private_dir(&dir).map_err(io("making", &dir))?;
    let path = dir.join(safe(&e.reference));
    let text = serde_json::to_vec(&e.to_json()).map_err(|e| ListError::Registry(e.into()))?;
    std::fs::write(&path, text).map_err(io("writing", &path))
}

/// Reads all of a blob of `repo`.
async fn blob_bytes(reg: &Registry, repo: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
    let what = format!("blob {digest} of {repo}");
    let (mut body, _) = reg.blob(repo, digest, 0, &what).await?;
    let mut out = Vec::new();
    while let Some(chunk) = reg.next_chunk(&mut body, &what).await? {
        out.extend_from_slice(&chunk);
    }
    if manifest::sha256(&out) != digest {
        anyhow::bail!("{what}: the registry sent content of another digest");
    }
    Ok(out)
}

/// The entry of the image manifest `desc`/`raw` of `r`: its platform from the descriptor the
/// list gave, else from its config.
async fn entry_of(
    reg: &Registry,
    r: &Reference,
    mut desc: Descriptor,
    raw: Vec<u8>,
) -> anyhow::Result<Entry> {
    let m: Value = serde_json::from_slice(&raw)?;
    let platform = match desc.platform.take() {
        Some(p) => serde_json::to_value(p)?,
        None => {
            let config = m["config"]["digest"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("{r}: the manifest names no config"))?;
            let c: Value = serde_json::from_slice(&blob_bytes(reg, &r.path, config).await?)?;
            let mut p = json!({
                "architecture": c["architecture"].as_str().unwrap_or_default(),
                "os": c["os"].as_str().unwrap_or_default(),
            });
            if let Some(v) = c["variant"].as_str().filter(|v| !v.is_empty()) {
                p["variant"] = json!(v);
            }
            p
        }
    };
    let mut d = json!({
        "mediaType": desc.media_type,
        "digest": desc.digest,
        "size": desc.size,
        "platform": platform,
    });
    if desc.media_type.is_empty() {
        d["mediaType"] = json!(m["mediaType"].as_str().unwrap_or(manifest::OCI_MANIFEST));
    }
    Ok(Entry {
        reference: full(r),
        descriptor: d,
        raw,
    })
}

fn is_index(media_type: &str) -> bool {
    media_type == manifest::OCI_INDEX || media_type == manifest::DOCKER_LIST
}

/// What the registry holds under `name`: a list with each of its images (their manifests
/// fetched when `images` is set), or one image.
pub async fn fetch(name: &str, insecure: bool, images: bool) -> Result<Remote> {
    let r = parse(name)?;
    let reg = endpoints::registry_for(&r.domain, insecure)?;
    let what = format!("manifest {}", r.familiar());
    let (desc, raw) = reg
        .manifest(&r.path, r.object(), &what)
        .await
        .map_err(anyhow::Error::from)?;
    if !is_index(&desc.media_type) {
        return Ok(Remote::Image(entry_of(&reg, &r, desc, raw).await?));
    }
    let mut children = Vec::new();
    if images {
        let index: Value = serde_json::from_slice(&raw).map_err(anyhow::Error::from)?;
        for d in index["manifests"].as_array().into_iter().flatten() {
            let d: Descriptor = serde_json::from_value(d.clone()).map_err(anyhow::Error::from)?;
            let mut child = r.clone();
            child.tag = None;
            child.digest = Some(d.digest.clone());
            let (_, body) = reg
                .manifest(
                    &r.path,
                    &d.digest,
                    &format!("manifest {}", child.familiar()),
                )
                .await
                .map_err(anyhow::Error::from)?;
            children.push(entry_of(&reg, &child, d, body).await?);
        }
    }
    Ok(Remote::List {
        raw,
        images: children,
    })
}

/// Docker's distribution inspect of `name` at `reg` (`GET /distribution/{name}/json`): the
/// descriptor of what the registry holds under it (an index or one image's manifest) and the
/// platforms it serves (an index's from its entries, one image's from its config).
pub async fn distribution(reg: &Registry, name: &str) -> Result<Value> {
    let r = parse(name)?;
    let what = format!("manifest {}", r.familiar());
    let (desc, raw) = reg
        .manifest(&r.path, r.object(), &what)
        .await
        .map_err(anyhow::Error::from)?;
    let descriptor = json!({
        "mediaType": desc.media_type,
        "digest": desc.digest,
        "size": desc.size,
    });
    let platforms: Vec<Value> = if is_index(&desc.media_type) {
        let index: Value = serde_json::from_slice(&raw).map_err(anyhow::Error::from)?;
        index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("platform").cloned())
            .collect()
    } else {
        vec![entry_of(reg, &r, desc, raw).await?.descriptor["platform"].clone()]
    };
    Ok(json!({ "Descriptor": descriptor, "Platforms": platforms }))
}

/// Makes the list `list` of `images` (image manifests in the list's registry), or with
/// `amend` adds them to the one kept.
pub async fn create(
    root: &Path,
    list: &str,
    images: &[String],
    amend: bool,
    insecure: bool,
) -> Result<()> {
    let l = parse(list)?;
    for i in images {
        let r = parse(i)?;
        if r.domain != l.domain {
            return Err(ListError::OtherRegistry {
                list: l.familiar(),
                image: r.familiar(),
                got: r.domain.clone(),
                want: l.domain.clone(),
            });
        }
    }
    let dir = list_dir(root, &l);
    if dir.exists() && !amend {
        return Err(ListError::Exists(l.familiar()));
    }
    let mut entries = Vec::new();
    for i in images {
        let r = parse(i)?;
        match fetch(i, insecure, false).await? {
            Remote::Image(e) => entries.push(e),
            Remote::List { .. } => return Err(ListError::IsList(r.familiar())),
        }
    }
    for e in &entries {
        save(root, &l, e)?;
    }
    Ok(())
}

/// Changes the platform of `image` in the list `list`.
pub fn annotate(root: &Path, list: &str, image: &str, a: &Annotation) -> Result<()> {
    let l = parse(list)?;
    let want = full(&parse(image)?);
    let entries = local(root, list)?.ok_or_else(|| ListError::NoList(l.familiar()))?;
    let mut e = entries
        .into_iter()
        .find(|e| e.reference == want)
        .ok_or_else(|| ListError::NotInList {
            list: l.familiar(),
            image: image.to_string(),
        })?;
    let p = &mut e.descriptor["platform"];
    if !p.is_object() {
        *p = json!({});
    }
    let mut set = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            p[k] = json!(v);
        }
    };
    set("os", &a.os);
    set("architecture", &a.arch);
    set("variant", &a.variant);
    set("os.version", &a.os_version);
    if !a.os_features.is_empty() {
        p["os.features"] = json!(a.os_features);
    }
    if p["os"].as_str().unwrap_or_default().is_empty()
        || p["architecture"].as_str().unwrap_or_default().is_empty()
    {
        return Err(ListError::Bad {
            image: image.to_string(),
            why: "a platform needs both an os and an architecture".into(),
        });
    }
    save(root, &l, &e)
}

/// The index a list is pushed as: an OCI index when every image is an OCI manifest, else a
/// Docker manifest list (as the docker CLI writes it); (media type, bytes).
pub fn index_of(entries: &[Entry]) -> (String, Vec<u8>) {
    let oci = entries
        .iter()
        .all(|e| e.descriptor["mediaType"] == manifest::OCI_MANIFEST);
    let media_type = if oci {
        manifest::OCI_INDEX
    } else {
        manifest::DOCKER_LIST
    };
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": entries.iter().map(|e| e.descriptor.clone()).collect::<Vec<_>>(),
    });
    (
        media_type.to_string(),
        serde_json::to_vec(&doc).unwrap_or_default(),
    )
}

/// Pushes the list `list`: each image into the list's repository (blobs mounted from its own,
/// copied when the registry will not mount), then the index under the list's tag; returns its
/// digest. With `purge` the kept list is removed afterwards.
pub async fn push(root: &Path, list: &str, purge: bool, insecure: bool) -> Result<String> {
    let l = parse(list)?;
    let entries = local(root, list)?.ok_or_else(|| ListError::NoList(l.familiar()))?;
    if entries.is_empty() {
        return Err(ListError::NoList(l.familiar()));
    }
    let reg = endpoints::registries_for(&l.domain, insecure, true, &[])?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no registry endpoint can push to {}", l.domain))?;
    for e in &entries {
        let r = parse(&e.reference)?;
        if r.path != l.path {
            for digest in e.blobs() {
                if reg
                    .has_blob(&l.path, &digest)
                    .await
                    .map_err(anyhow::Error::from)?
                    || reg
                        .mount_blob(&l.path, &digest, &r.path)
                        .await
                        .map_err(anyhow::Error::from)?
                {
                    continue;
                }
                let data = blob_bytes(&reg, &r.path, &digest).await?;
                let location = reg
                    .upload_start(&l.path, &digest)
                    .await
                    .map_err(anyhow::Error::from)?;
                let location = reg
                    .upload_chunk(&location, &digest, 0, Bytes::from(data))
                    .await
                    .map_err(anyhow::Error::from)?;
                reg.upload_finish(&location, &digest)
                    .await
                    .map_err(anyhow::Error::from)?;
            }
        }
        let digest = e.descriptor["digest"].as_str().unwrap_or_default();
        let media_type = e.descriptor["mediaType"].as_str().unwrap_or_default();
        reg.put_manifest(&l.path, digest, media_type, Bytes::from(e.raw.clone()))
            .await
            .map_err(anyhow::Error::from)?;
    }
    let (media_type, data) = index_of(&entries);
    let digest = manifest::sha256(&data);
    reg.put_manifest(&l.path, l.object(), &media_type, Bytes::from(data))
        .await
        .map_err(anyhow::Error::from)?;
    if purge {
        remove(root, list)?;
    }
    Ok(digest)
}

/// Forgets the kept list `list`.
pub fn remove(root: &Path, list: &str) -> Result<()> {
    let l = parse(list)?;
    let dir = list_dir(root, &l);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ListError::NoList(l.familiar())),
        Err(e) => Err(io("removing", &dir)(e)),
    }
}

/// JSON text indented with tabs, keys in the order written (how `docker manifest inspect`
/// prints a document).
pub fn indent_tabs(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut depth = 0usize;
    let (mut in_str, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n('\t', depth));
    };
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                // An empty object or array stays on its line.
                let close = if c == '{' { '}' } else { ']' };
                let next = chars[i + 1..].iter().position(|c| !c.is_whitespace());
                if next.is_some_and(|n| chars[i + 1 + n] == close) {
                    out.push(c);
                    out.push(close);
                    i += 2 + next.unwrap_or(0);
                    continue;
                }
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(reference: &str, media_type: &str, arch: &str) -> Entry {
        let raw = json!({"schemaVersion": 2, "mediaType": media_type,
            "config": {"digest": "sha256:c"}, "layers": [{"digest": "sha256:l"}]});
        let raw = serde_json::to_vec(&raw).unwrap();
        Entry {
            reference: reference.into(),
            descriptor: json!({"mediaType": media_type, "digest": manifest::sha256(&raw),
                "size": raw.len(), "platform": {"architecture": arch, "os": "linux"}}),
            raw,
        }
    }

    #[test]
    fn lists_are_kept_as_the_docker_cli_keeps_them() {
        let root = tempfile::tempdir().unwrap();
        let list = parse("127.0.0.1:5000/app:multi").unwrap();
        let e = entry("127.0.0.1:5000/app:amd64", manifest::OCI_MANIFEST, "amd64");
        save(root.path(), &list, &e).unwrap();
        let file = root
            .path()
            .join("127.0.0.1-5000_app-multi/127.0.0.1-5000_app-amd64");
        let v: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert_eq!(v["Ref"], "127.0.0.1:5000/app:amd64");
        assert!(v["OCIManifest"].is_object() && v["Raw"].is_string(), "{v}");
        let back = local(root.path(), "127.0.0.1:5000/app:multi")
            .unwrap()
            .unwrap();
        assert_eq!(back.as_slice(), std::slice::from_ref(&e));
        assert_eq!(e.blobs(), ["sha256:c", "sha256:l"]);

        let a = Annotation {
            arch: Some("arm64".into()),
            variant: Some("v8".into()),
            ..Default::default()
        };
        annotate(
            root.path(),
            "127.0.0.1:5000/app:multi",
            "127.0.0.1:5000/app:amd64",
            &a,
        )
        .unwrap();
        let back = local(root.path(), "127.0.0.1:5000/app:multi")
            .unwrap()
            .unwrap();
        assert_eq!(back[0].descriptor["platform"]["variant"], "v8");
        let err = annotate(
            root.path(),
            "127.0.0.1:5000/app:multi",
            "127.0.0.1:5000/app:x",
            &a,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not in manifest list"), "{err}");

        let (mt, data) = index_of(&back);
        assert_eq!(mt, manifest::OCI_INDEX);
        let idx: Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(idx["manifests"][0]["platform"]["architecture"], "arm64");
        let docker = entry("127.0.0.1:5000/app:b", manifest::DOCKER_MANIFEST, "amd64");
        assert_eq!(
            index_of(&[back[0].clone(), docker]).0,
            manifest::DOCKER_LIST
        );

        remove(root.path(), "127.0.0.1:5000/app:multi").unwrap();
        assert!(local(root.path(), "127.0.0.1:5000/app:multi")
            .unwrap()
            .is_none());
        assert!(remove(root.path(), "127.0.0.1:5000/app:multi").is_err());
    }

    #[test]
    fn documents_print_indented_with_tabs_in_their_own_order() {
        let raw = br#"{"schemaVersion":2,"mediaType":"m","a":{},"l":[{"x":"a,b:{"},1]}"#;
        assert_eq!(
            indent_tabs(raw),
            "{\n\t\"schemaVersion\": 2,\n\t\"mediaType\": \"m\",\n\t\"a\": {},\n\t\"l\": [\n\t\t{\n\t\t\t\"x\": \"a,b:{\"\n\t\t},\n\t\t1\n\t]\n}"
        );
    }
}
