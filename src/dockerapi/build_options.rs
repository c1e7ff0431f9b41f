//! The query of `POST /build` (the classic builder's parameters, as the docker CLI, docker-py
//! and docker-compose send them) read into the builder's options: what burrow does is taken,
//! the defaults clients always send are accepted, and anything else is refused by name.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::error::ApiError;
use super::http::Query;
use crate::build::{cancel::Cancel, progress::Mode, ContextSource, DockerfileSource, Options};
use crate::images::manifest::Platform;
use crate::images::reference::Reference;

/// A `/build` request as the builder takes it.
#[derive(Debug)]
pub struct BuildRequest {
    pub options: Options,
    /// `q`: only the image id in the stream.
    pub quiet: bool,
}

/// Reads the query of `POST /build`; the context is the spooled body at `context`.
pub fn read(q: &Query, context: PathBuf) -> Result<BuildRequest, ApiError> {
    refuse_unsupported(q)?;
    // Accepted: burrow always removes its step containers.
    q.flag("rm", true)?;
    q.flag("forcerm", false)?;
    let options = Options {
        // `remote`: a Git repository or a URL the builder fetches (the body is then empty).
        context: q
            .get("remote")
            .and_then(ContextSource::remote)
            .unwrap_or(ContextSource::TarFile(context)),
        dockerfile: DockerfileSource::Path(dockerfile(q.get("dockerfile"))?),
        tags: tags(&q.all("t"))?,
        build_args: json_map(q, "buildargs")?,
        target: q
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: q.flag("nocache", false)?,
        pull: pull(q.get("pull"))?,
        labels: json_map(q, "labels")?,
        network: network(q.get("networkmode"))?,
        progress: Mode::Quiet,
        output: None,
        events: None,
        cancel: Cancel::token(),
        pull_auth: Default::default(),
        secrets: Default::default(),
        ssh: Default::default(),
        push: false,
        run: run_settings(q)?,
        contexts: Default::default(),
    };
    platform(q.get("platform"))?;
    Ok(BuildRequest {
        options,
        quiet: q.flag("q", false)?,
    })
}

/// The BuildKit protocol, remote contexts burrow cannot fetch and the options burrow's builder
/// has no way to honour.
fn refuse_unsupported(q: &Query) -> Result<(), ApiError> {
    if q.get("version").is_some_and(|v| v == "2") {
        return Err(ApiError::not_implemented(
            "burrow does not implement BuildKit's build protocol (version=2): build with the \
             classic protocol (DOCKER_BUILDKIT=0 docker build), which burrow's builder answers",
        ));
    }
    if let Some(r) = q.get("remote").filter(|r| !r.is_empty()) {
        if ContextSource::remote(r).is_none() {
            return Err(ApiError::bad_request(format!(
                "remote {r:?}: give a Git repository (…/repo.git, git@…, git://…) or an http(s) URL \
                 of a tar archive or a Dockerfile"
            )));
        }
    }
    for name in ["cpuperiod", "cpuquota", "cpushares", "memory", "memswap"] {
        if q.int(name)?.is_some_and(|v| v != 0) {
            return Err(ApiError::bad_request(format!(
                "{name} is not supported: burrow's builder sets no resource limits on RUN steps"
            )));
        }
    }
    for name in ["cpusetcpus", "cpusetmems", "cgroupparent", "outputs"] {
        if q.get(name).is_some_and(|v| !v.is_empty()) {
            return Err(ApiError::bad_request(format!(
                "{name} is not supported by burrow's builder"
            )));
        }
    }
    for name in ["cachefrom"] {
        if q.get(name)
            .is_some_and(|v| !matches!(v, "" | "[]" | "null" | "{}"))
        {
            return Err(ApiError::bad_request(format!(
                "{name} is not supported by burrow's builder (it caches by its own records)"
            )));
        }
    }
    if q.flag("squash", false)? {
        return Err(ApiError::bad_request(
            "squash is not supported by burrow's builder",
        ));
    }
    if q.get("isolation")
        .is_some_and(|v| !matches!(v, "" | "default"))
    {
        return Err(ApiError::bad_request("isolation is not supported on Linux"));
    }
    Ok(())
}

/// What RUN steps get: `extrahosts` (repeated `NAME:IP`), `shmsize` (bytes, 0 for the
/// default) and `ulimits` (Docker's JSON list of `{Name, Soft, Hard}`).
fn run_settings(q: &Query) -> Result<crate::build::runstep::RunSettings, ApiError> {
    use crate::containers::values::{ByteSize, ExtraHost, Ulimit};
    let extra_hosts = q
        .all("extrahosts")
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<ExtraHost>()
                .map_err(|e| ApiError::bad_request(format!("extrahosts {v}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let shm_size = q.int("shmsize")?.filter(|&n| n != 0);
    if shm_size.is_some_and(|n| n < 0) {
        return Err(ApiError::bad_request("shmsize: give a size in bytes"));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Limit {
        name: String,
        soft: i64,
        hard: i64,
    }
    let ulimits = match q.get("ulimits").filter(|v| !matches!(*v, "" | "null")) {
        None => Vec::new(),
        Some(text) => serde_json::from_str::<Vec<Limit>>(text)
            .map_err(|e| ApiError::bad_request(format!("ulimits: {e}")))?
            .into_iter()
            .map(|l| {
                let text = format!("{}={}:{}", l.name, l.soft, l.hard);
                text.parse::<Ulimit>()
                    .map_err(|e| ApiError::bad_request(format!("ulimits {text}: {e}")))
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(crate::build::runstep::RunSettings {
        extra_hosts,
        shm_size: shm_size.map(ByteSize),
        ulimits,
    })
}

/// The Dockerfile's path in the context (default `Dockerfile`); one outside it is refused.
fn dockerfile(name: Option<&str>) -> Result<PathBuf, ApiError> {
    let name = name.filter(|n| !n.is_empty()).unwrap_or("Dockerfile");
    let p = Path::new(name);
    let inside = p
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside {
        return Err(ApiError::bad_request(format!(
            "dockerfile {name:?} is not a path inside the build context: send the Dockerfile \
             in the context's archive and name it relative to its root"
        )));
    }
    Ok(p.to_path_buf())
}

fn tags(t: &[&str]) -> Result<Vec<String>, ApiError> {
    t.iter()
        .filter(|t| !t.is_empty())
        .map(|t| {
            Reference::parse(t)
                .map(|r| r.to_string())
                .map_err(|e| ApiError::bad_request(format!("invalid tag {t:?}: {e}")))
        })
        .collect()
}

/// A JSON object of strings (`buildargs`, `labels`); a null value is left out (Docker's CLI
/// sends `--build-arg NAME` of an unset variable so).
fn json_map(q: &Query, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(raw) = q.get(name).filter(|r| !r.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let bad = || {
        ApiError::bad_request(format!(
            "invalid {name} {raw:?}: give a JSON object of strings"
        ))
    };
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|_| bad())?;
    let Some(obj) = v.as_object() else {
        return match v {
            serde_json::Value::Null => Ok(BTreeMap::new()),
            _ => Err(bad()),
        };
    };
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        match v {
            serde_json::Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            serde_json::Value::Null => {}
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// `pull`: a boolean (older clients send any non-empty string for true).
fn pull(v: Option<&str>) -> Result<bool, ApiError> {
    Ok(match v {
        None | Some("" | "0" | "false" | "False" | "FALSE") => false,
        Some(_) => true,
    })
}

/// `networkmode` for RUN steps: default (bridge), none or host.
fn network(v: Option<&str>) -> Result<String, ApiError> {
    match v.unwrap_or("") {
        "" | "default" | "bridge" => Ok(crate::network::DEFAULT_NETWORK.to_string()),
        m @ ("none" | "host") => Ok(m.to_string()),
        other => Err(ApiError::bad_request(format!(
            "networkmode {other:?}: RUN steps take default, none or host"
        ))),
    }
}

/// `platform`: only this host's.
fn platform(v: Option<&str>) -> Result<(), ApiError> {
    let Some(p) = v.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let want = Platform::parse(p).map_err(ApiError::bad_request)?;
    let host = Platform::host();
    if !host.matches(&want) {
        return Err(ApiError::bad_request(format!(
            "platform {p}: burrow builds only for this host's platform ({}); cross-platform \
             builds are not supported",
            host.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    #[test]
    fn the_docker_clis_query_reads_whole() {
        let r = read(
            &q("buildargs=%7B%22X%22%3A%221%22%2C%22Y%22%3Anull%7D&cachefrom=%5B%5D&cgroupparent=&cpuperiod=0&cpuquota=0&cpusetcpus=&cpusetmems=&cpushares=0&dockerfile=Dockerfile&labels=%7B%7D&memory=0&memswap=0&networkmode=default&rm=1&shmsize=0&t=demo&t=127.0.0.1%3A5000%2Fa%3A1&target=&ulimits=null&version=1"),
            PathBuf::from("/tmp/ctx"),
        )
        .unwrap();
        let o = &r.options;
        assert_eq!(
            o.tags,
            ["docker.io/library/demo:latest", "127.0.0.1:5000/a:1"]
        );
        assert_eq!(o.build_args.len(), 1);
        assert_eq!(o.build_args["X"], "1");
        assert!(o.target.is_none() && !o.no_cache && !o.pull && !r.quiet);
        assert!(matches!(&o.dockerfile, DockerfileSource::Path(p) if p == Path::new("Dockerfile")));
    }

    #[test]
    fn what_burrow_cannot_do_is_refused_by_name() {
        let ctx = || PathBuf::from("/tmp/ctx");
        let e = read(&q("version=2"), ctx()).unwrap_err();
        assert_eq!(e.status, 501);
        assert!(e.message.contains("DOCKER_BUILDKIT=0"));
        for bad in [
            "remote=ftp://example.com/x.tar",
            "memory=1000",
            "cachefrom=%5B%22a%22%5D",
            "dockerfile=/etc/passwd",
            "dockerfile=../Dockerfile",
            "networkmode=container:x",
            "platform=linux/s390x",
            "buildargs=%5B1%5D",
            "t=Bad%20Name",
        ] {
            let e = read(&q(bad), ctx()).unwrap_err();
            assert_eq!(e.status, 400, "{bad}: {e}");
        }
        let r = read(
            &q("q=1&nocache=True&pull=1&networkmode=none&dockerfile=sub/Df"),
            ctx(),
        )
        .unwrap();
        assert!(r.quiet && r.options.no_cache && r.options.pull);
        assert_eq!(r.options.network, "none");
        // RUN steps' hosts, /dev/shm and limits, as the docker CLI and docker-py send them.
        let r = read(
            &q("extrahosts=a%3A10.0.0.1&extrahosts=b%3A10.0.0.2&shmsize=67108864&ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Hard%22%3A2048%2C%22Soft%22%3A1024%7D%5D"),
            ctx(),
        )
        .unwrap();
        let run = &r.options.run;
        assert_eq!(run.extra_hosts.len(), 2);
        assert_eq!(run.shm_size.map(|b| b.0), Some(64 << 20));
        assert_eq!(run.ulimits[0].to_string(), "nofile=1024:2048");
        for bad in ["extrahosts=nocolon", "shmsize=-1", "ulimits=%5B1%5D"] {
            let e = read(&q(bad), ctx()).unwrap_err();
            assert_eq!(e.status, 400, "{bad}: {e}");
        }
    }
}
