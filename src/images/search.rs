//! `search`: repositories matching a term. Docker Hub through its search API (what `docker
//! search TERM` asks); another registry (`search REGISTRY/TERM`) through its repository
//! catalog (`/v2/_catalog`, as podman searches registries that have no search API), the
//! repositories whose name holds the term; `--filter` of stars, official and automated.

use serde::Serialize;

use super::endpoints;

/// Docker Hub's search API.
const HUB_SEARCH: &str = "https://index.docker.io/v1/search";

/// One repository found, with Docker's `--format` field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "StarCount")]
    pub star_count: u64,
    #[serde(rename = "IsOfficial")]
    pub is_official: bool,
    #[serde(rename = "IsAutomated")]
    pub is_automated: bool,
}

/// `--filter` of a search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub stars: Option<u64>,
    pub is_official: Option<bool>,
    pub is_automated: Option<bool>,
}

/// A search that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(
        "invalid filter {0:?}: use stars=N, is-official=true|false or is-automated=true|false"
    )]
    Filter(String),
    #[error("invalid limit {0}: give 1 to 100")]
    Limit(usize),
    #[error(transparent)]
    Registry(#[from] anyhow::Error),
}

impl Filters {
    /// Reads `--filter` values.
    pub fn parse<S: AsRef<str>>(given: &[S]) -> Result<Filters, SearchError> {
        let mut f = Filters::default();
        for g in given {
            let g = g.as_ref();
            let bad = || SearchError::Filter(g.to_string());
            let flag = |v: &str| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(bad()),
            };
            match g.split_once('=') {
                Some(("stars", n)) => f.stars = Some(n.parse().map_err(|_| bad())?),
                Some(("is-official", v)) => f.is_official = Some(flag(v)?),
                Some(("is-automated", v)) => f.is_automated = Some(flag(v)?),
                _ => return Err(bad()),
            }
        }
        Ok(f)
    }

    fn pass(&self, r: &Found) -> bool {
        self.stars.is_none_or(|n| r.star_count >= n)
            && self.is_official.is_none_or(|o| r.is_official == o)
            && self.is_automated.is_none_or(|a| r.is_automated == a)
    }
}

/// Where a term is searched: Docker Hub, or the registry it names (`HOST[:PORT]/term`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Hub(String),
    Registry { host: String, term: String },
}

fn target(term: &str) -> Target {
    if let Some((first, rest)) = term.split_once('/') {
        let host_like = first.contains('.') || first.contains(':') || first == "localhost";
        if host_like && !matches!(first, "docker.io" | "index.docker.io") {
            return Target::Registry {
                host: first.to_string(),
                term: rest.to_string(),
            };
        }
        if host_like {
            return Target::Hub(rest.to_string());
        }
    }
    Target::Hub(term.to_string())
}

/// The repositories matching `term`, at most `limit` (1 to 100; 0 for 25), that `filters`
/// pass.
pub async fn search(
    term: &str,
    limit: usize,
    filters: &Filters,
) -> Result<Vec<Found>, SearchError> {
    // 0: the default, as the docker CLI sends it.
    let limit = if limit == 0 { 25 } else { limit };
    if limit > 100 {
        return Err(SearchError::Limit(limit));
    }
    let found = match target(term) {
        Target::Hub(t) => hub(&t, limit).await?,
        Target::Registry { host, term } => catalog(&host, &term).await?,
    };
    Ok(found
        .into_iter()
        .filter(|r| filters.pass(r))
        .take(limit)
        .collect())
}

async fn hub(term: &str, limit: usize) -> anyhow::Result<Vec<Found>> {
    let reg = endpoints::registry_for("index.docker.io", false)?;
    let url = format!(
        "{HUB_SEARCH}?q={}&n={limit}",
        super::registry::query_escape(term)
    );
    let doc = reg
        .get_json(&url, &format!("a search for {term:?}"))
        .await?;
    Ok(hub_results(&doc))
}

/// The results of Docker Hub's search answer.
fn hub_results(doc: &serde_json::Value) -> Vec<Found> {
    doc["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| Found {
            name: r["name"].as_str().unwrap_or_default().to_string(),
            description: r["description"].as_str().unwrap_or_default().to_string(),
            star_count: r["star_count"].as_u64().unwrap_or(0),
            is_official: r["is_official"].as_bool().unwrap_or(false),
            is_automated: r["is_automated"].as_bool().unwrap_or(false),
        })
        .collect()
}

async fn catalog(host: &str, term: &str) -> anyhow::Result<Vec<Found>> {
    let reg = endpoints::registry_for(host, false)?;
    let repos = reg.catalog().await?;
    Ok(catalog_results(host, term, repos))
}

/// The catalog's repositories whose name holds `term` (case-insensitive; every one for an
/// empty term), named with their registry.
fn catalog_results(host: &str, term: &str, repos: Vec<String>) -> Vec<Found> {
    let term = term.to_ascii_lowercase();
    repos
        .into_iter()
        .filter(|r| r.to_ascii_lowercase().contains(&term))
        .map(|r| Found {
            name: format!("{host}/{r}"),
            description: String::new(),
            star_count: 0,
            is_official: false,
            is_automated: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_name_the_hub_or_a_registry() {
        assert_eq!(target("busybox"), Target::Hub("busybox".into()));
        assert_eq!(
            target("library/busybox"),
            Target::Hub("library/busybox".into())
        );
        assert_eq!(target("docker.io/nginx"), Target::Hub("nginx".into()));
        assert_eq!(
            target("127.0.0.1:5000/busy"),
            Target::Registry {
                host: "127.0.0.1:5000".into(),
                term: "busy".into()
            }
        );
        assert_eq!(
            target("localhost/"),
            Target::Registry {
                host: "localhost".into(),
                term: String::new()
            }
        );
    }

    #[test]
    fn results_and_filters() {
        let doc = serde_json::json!({"num_results": 2, "results": [
            {"name": "busybox", "description": "Busybox base image.", "star_count": 3000, "is_official": true, "is_automated": false},
            {"name": "someone/busybox", "description": "", "star_count": 2, "is_official": false, "is_automated": true}
        ]});
        let found = hub_results(&doc);
        assert_eq!(found.len(), 2);
        let f = Filters::parse(&["stars=10", "is-official=true"]).unwrap();
        let kept: Vec<&str> = found
            .iter()
            .filter(|r| f.pass(r))
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(kept, ["busybox"]);
        assert!(Filters::parse(&["stars=x"]).is_err());
        assert!(Filters::parse(&["size=1"]).is_err());
        let got = catalog_results("r:5000", "Box", vec!["test/busybox".into(), "web".into()]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "r:5000/test/busybox");
    }
}
