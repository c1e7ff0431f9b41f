//! Docker's prune filters (`until`, `label`, `label!`, and a prune's boolean keys such as
//! images' `dangling`), parsed once for the CLI's `--filter` and the API's `filters=`, and
//! whether an object passes them.

use std::collections::HashMap;

use super::logquery::parse_unix_secs;
use super::volumes::LabelFilter;

/// A prune's filters.
#[derive(Debug, Default, Clone)]
pub struct PruneFilters {
    until: Option<i64>,
    labels: Vec<LabelFilter>,
    flags: HashMap<String, bool>,
}

/// A filter a prune cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneFilterError {
    #[error("invalid filter '{filter}': {why}")]
    Bad { filter: String, why: String },
    #[error("invalid filter '{key}' for this prune: it takes {takes}")]
    Unknown { key: String, takes: String },
}

impl PruneFilters {
    /// Reads `filters` (`KEY=VALUE`), taking `until` when `until` is allowed and the boolean
    /// keys `flags`.
    pub fn parse<'a>(
        filters: impl IntoIterator<Item = &'a str>,
        until: bool,
        flags: &[&str],
    ) -> Result<PruneFilters, PruneFilterError> {
        let mut out = PruneFilters::default();
        for f in filters {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            let bad = |why: String| PruneFilterError::Bad {
                filter: f.to_string(),
                why,
            };
            match k {
                "label" | "label!" => out.labels.push(
                    f.parse()
                        .map_err(|e: super::volumes::VolumeError| bad(e.to_string()))?,
                ),
                "until" if until => {
                    out.until = Some(parse_unix_secs("until", v).map_err(|e| bad(e.to_string()))?);
                }
                k if flags.contains(&k) => {
                    let on = match v {
                        "1" | "true" | "True" => true,
                        "0" | "false" | "False" => false,
                        _ => return Err(bad(format!("give {k}=true or {k}=false"))),
                    };
                    out.flags.insert(k.to_string(), on);
                }
                _ => {
                    let mut takes: Vec<&str> = vec!["label", "label!"];
                    if until {
                        takes.push("until");
                    }
                    takes.extend(flags);
                    return Err(PruneFilterError::Unknown {
                        key: k.to_string(),
                        takes: takes.join(", "),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Whether an object created at `created` (epoch seconds) with `labels` passes.
    pub fn pass(&self, created: Option<i64>, labels: &HashMap<String, String>) -> bool {
        let young = match (self.until, created) {
            (Some(u), Some(c)) => c >= u,
            (Some(_), None) => true,
            (None, _) => false,
        };
        !young && self.labels.iter().all(|l| l.matches(labels))
    }

    /// The `label` and `label!` conditions.
    pub fn labels(&self) -> &[LabelFilter] {
        &self.labels
    }

    /// The value of the boolean key `k`, when given.
    pub fn flag(&self, k: &str) -> Option<bool> {
        self.flags.get(k).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn until_labels_and_flags() {
        let f =
            PruneFilters::parse(["until=1h", "label=keep!=x", "label!=pinned"], true, &[]).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let labels: HashMap<String, String> = [("keep!".to_string(), "x".to_string())].into();
        assert!(f.pass(Some(now - 7200), &labels));
        assert!(!f.pass(Some(now - 60), &labels), "younger than until");
        assert!(!f.pass(Some(now - 7200), &HashMap::new()), "label missing");
        let pinned: HashMap<String, String> = [
            ("keep!".to_string(), "x".to_string()),
            ("pinned".to_string(), String::new()),
        ]
        .into();
        assert!(!f.pass(Some(now - 7200), &pinned));
        let f = PruneFilters::parse(["dangling=false"], true, &["dangling"]).unwrap();
        assert_eq!(f.flag("dangling"), Some(false));
        assert!(PruneFilters::parse(["dangling=maybe"], true, &["dangling"]).is_err());
        let e = PruneFilters::parse(["until=1h"], false, &[]).unwrap_err();
        assert!(e.to_string().contains("takes label, label!"), "{e}");
        assert!(PruneFilters::parse(["until=yesterday-ish"], true, &[]).is_err());
    }
}
