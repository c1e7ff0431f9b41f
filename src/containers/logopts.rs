//! `--log-driver` and `--log-opt` as Docker takes them, kept in the container's dir as
//! `log-opts.json` for the log driver, attached runs and `logs`: the driver (json-file, local,
//! none, journald), rotation (max-size, max-file, compress) and the extra attributes every record carries
//! (labels, env, labels-regex, env-regex), fixed when the container is made.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a container's output goes.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    /// Docker's json-file records in `ID-json.log`.
    #[default]
    JsonFile,
    /// Docker's `local`: burrow stores it as json-file records, rotated by default (20m x 5).
    Local,
    /// Nothing stored; `logs` has nothing to read.
    None,
    /// Entries in the systemd journal (see [`super::journald`]).
    Journald,
}

/// A `--log-driver`/`--log-opt` that burrow cannot honour.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogOptError {
    #[error("unsupported --log-driver {0:?}: burrow stores logs with json-file (the default) or local, or none")]
    Driver(String),
    #[error("--log-driver journald: no systemd journal is reachable here ({0} does not exist, so systemd-journald is not running); use --log-driver json-file (the default) and `burrow logs`")]
    NoJournal(String),
    #[error("invalid --log-opt {0:?}: expected KEY=VALUE")]
    NotKeyValue(String),
    #[error("invalid --log-opt {0:?}: a size such as 10m, 512k or 1g")]
    Size(String),
    #[error("invalid --log-opt {0:?}: a number of files, 1 or more")]
    Files(String),
    #[error("invalid --log-opt {opt:?}: not a regular expression ({reason})")]
    Regex { opt: String, reason: String },
    #[error("unsupported --log-opt {key:?} for the {driver} driver: it takes {takes}")]
    Unsupported {
        key: String,
        driver: &'static str,
        takes: &'static str,
    },
    #[error("--log-opt max-file needs max-size (without it the log never rotates)")]
    FilesWithoutSize,
    #[error("invalid --log-opt {0:?}: give true or false")]
    NotBool(String),
    #[error("invalid --log-opt {opt:?}: not a template ({reason}); use fields such as {{{{.Name}}}}, {{{{.ID}}}}, {{{{.FullID}}}}, {{{{.ImageName}}}}, {{{{.ImageID}}}}")]
    Tag { opt: String, reason: String },
    #[error("--log-opt compress=true needs max-file of 2 or more (with one file nothing is rotated to compress)")]
    CompressOneFile,
}

/// The systemd journal's socket, whose presence means a journal is reachable.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// A container's log settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogOpts {
    #[serde(default)]
    pub driver: Driver,
    /// Rotate the file when it would grow past this many bytes (0: never).
    #[serde(default)]
    pub max_size: u64,
    /// How many files to keep, the current one included (at least 1).
    #[serde(default)]
    pub max_file: u32,
    /// `tag=`: the template of each record's tag (json-file: the `tag` attribute; journald:
    /// CONTAINER_TAG and SYSLOG_IDENTIFIER), rendered into `tag` when the container is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_template: Option<String>,
    /// The rendered tag ([`LogOpts::with_tag`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The `--log-opt`s as given (inspect's `HostConfig.LogConfig.Config`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub given: BTreeMap<String, String>,
    /// Rotated files are gzip-compressed (`compress=true`; the local driver's default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compress: bool,
    /// `labels=`: container labels each record carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// `env=`: environment variables each record carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_regex: Option<String>,
    /// The attributes those select, fixed when the container is made ([`LogOpts::with_attrs`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
    /// The container's name and image, for the journal's CONTAINER_NAME and IMAGE_NAME.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
}

/// The file the options live in, next to the log.
pub fn opts_path(log: &Path) -> PathBuf {
    log.with_file_name("log-opts.json")
}

/// Parses `--log-driver` and `--log-opt` as Docker's drivers take them: json-file (max-size,
/// max-file, labels, env, labels-regex, env-regex), local (max-size, max-file; rotated at 20m x 5
/// unless told), none (no options), journald (labels, env and their regexes; refused, saying
/// why, where no journal is reachable).
pub fn parse_opts(driver: &str, opts: &[String]) -> Result<LogOpts, LogOptError> {
    let mut o = LogOpts {
        driver: match driver {
            "json-file" | "" => Driver::JsonFile,
            "local" => Driver::Local,
            "none" => Driver::None,
            "journald" if !Path::new(JOURNAL_SOCKET).exists() => {
                return Err(LogOptError::NoJournal(JOURNAL_SOCKET.into()))
            }
            "journald" => Driver::Journald,
            other => return Err(LogOptError::Driver(other.into())),
        },
        ..Default::default()
    };
    let mut max_file = None;
    let mut compress = None;
    for kv in opts {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| LogOptError::NotKeyValue(kv.clone()))?;
        o.given.insert(k.to_string(), v.to_string());
        let list = |v: &str| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let regex = |v: &str| {
            regex::Regex::new(v)
                .map(|_| Some(v.to_string()))
                .map_err(|e| LogOptError::Regex {
                    opt: kv.clone(),
                    reason: e.to_string(),
                })
        };
        match (o.driver, k) {
            (Driver::JsonFile | Driver::Local, "max-size") => {
                o.max_size = parse_size(v).ok_or_else(|| LogOptError::Size(kv.clone()))?;
            }
            (Driver::JsonFile | Driver::Local, "max-file") => {
                let n = v.parse().ok().filter(|n| *n >= 1);
                max_file = Some(n.ok_or_else(|| LogOptError::Files(kv.clone()))?);
            }
            (Driver::JsonFile | Driver::Local, "compress") => {
                compress = Some(parse_bool(v).ok_or_else(|| LogOptError::NotBool(kv.clone()))?);
            }
            (Driver::JsonFile | Driver::Journald, "tag") => {
                crate::format::template::Template::parse("tag", v).map_err(|e| {
                    LogOptError::Tag {
                        opt: kv.clone(),
                        reason: e.to_string(),
                    }
                })?;
                o.tag_template = Some(v.to_string());
            }
            (Driver::JsonFile | Driver::Journald, "labels") => o.labels = list(v),
            (Driver::JsonFile | Driver::Journald, "env") => o.env = list(v),
            (Driver::JsonFile | Driver::Journald, "labels-regex") => o.labels_regex = regex(v)?,
            (Driver::JsonFile | Driver::Journald, "env-regex") => o.env_regex = regex(v)?,
            (d, _) => return Err(unsupported(d, k)),
        }
    }
    if o.driver == Driver::Local {
        o.max_size = match o.max_size {
            0 => 20 << 20,
            n => n,
        };
        o.max_file = max_file.unwrap_or(5);
        o.compress = compress.unwrap_or(true);
        return Ok(o);
    }
    if max_file.is_some_and(|n| n > 1) && o.max_size == 0 {
        return Err(LogOptError::FilesWithoutSize);
    }
    o.max_file = max_file.unwrap_or(1);
    o.compress = compress.unwrap_or(false);
    if o.compress && o.max_file < 2 {
        return Err(LogOptError::CompressOneFile);
    }
    Ok(o)
}

fn unsupported(d: Driver, key: &str) -> LogOptError {
    let (driver, takes) = match d {
        Driver::JsonFile => (
            "json-file",
            "max-size, max-file, compress, tag, labels, env, labels-regex and env-regex",
        ),
        Driver::Local => ("local", "max-size, max-file and compress"),
        Driver::None => ("none", "no options"),
        Driver::Journald => ("journald", "tag, labels, env, labels-regex and env-regex"),
    };
    LogOptError::Unsupported {
        key: key.to_string(),
        driver,
        takes,
    }
}

/// A boolean option's value, as Go's strconv.ParseBool reads it.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let m = match s[i..].trim_end_matches('b') {
                "" => 1,
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                _ => return None,
            };
            (&s[..i], m)
        }
        None => (s.as_str(), 1),
    };
    num.parse::<u64>().ok().filter(|n| *n > 0).map(|n| n * mult)
}

impl LogOpts {
    /// These options with the attributes they select from the container's `labels` and `env`
    /// (`KEY=VALUE` entries), as Docker's log drivers take them at create time.
    pub fn with_attrs(mut self, labels: &HashMap<String, String>, env: &[String]) -> LogOpts {
        let env: HashMap<&str, &str> = env.iter().filter_map(|e| e.split_once('=')).collect();
        let mut attrs = BTreeMap::new();
        for k in &self.labels {
            if let Some(v) = labels.get(k) {
                attrs.insert(k.clone(), v.clone());
            }
        }
        if let Some(re) = self
            .labels_regex
            .as_deref()
            .and_then(|r| regex::Regex::new(r).ok())
        {
            for (k, v) in labels.iter().filter(|(k, _)| re.is_match(k)) {
                attrs.insert(k.clone(), v.clone());
            }
        }
        for k in &self.env {
            if let Some(v) = env.get(k.as_str()) {
                attrs.insert(k.clone(), v.to_string());
            }
        }
        if let Some(re) = self
            .env_regex
            .as_deref()
            .and_then(|r| regex::Regex::new(r).ok())
        {
            for (k, v) in env.iter().filter(|(k, _)| re.is_match(k)) {
                attrs.insert(k.to_string(), v.to_string());
            }
        }
        self.attrs = attrs;
        self
    }

    /// These options with the tag rendered for container `id` named `name`, made from the image
    /// `image_name` whose id is `image_id` (Docker's template fields: ID and FullID, Name,
    /// ImageName, ImageID and ImageFullID, DaemonName); json-file records carry it as their
    /// `tag` attribute.
    pub fn with_tag(
        mut self,
        id: &str,
        name: &str,
        image_name: &str,
        image_id: &str,
    ) -> Result<LogOpts, LogOptError> {
        let Some(t) = &self.tag_template else {
            return Ok(self);
        };
        let short = |s: &str| {
            s.trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect::<String>()
        };
        let data = serde_json::json!({
            "ID": short(id),
            "FullID": id,
            "Name": name,
            "ImageName": crate::images::reference::familiar(image_name),
            "ImageID": short(image_id),
            "ImageFullID": image_id,
            "DaemonName": "docker",
        });
        let tag = crate::format::template::Template::parse("tag", t)
            .map_err(|e| e.to_string())
            .and_then(|tpl| {
                tpl.execute(&crate::format::template::value::Value::from_json(&data))
                    .map_err(|e| e.to_string())
            })
            .map_err(|reason| LogOptError::Tag {
                opt: format!("tag={t}"),
                reason,
            })?;
        if self.driver == Driver::JsonFile {
            self.attrs.insert("tag".into(), tag.clone());
        }
        self.tag = Some(tag);
        Ok(self)
    }

    /// These options for the container `name` made from `image` (journald names both in each
    /// entry).
    pub fn for_container(mut self, name: &str, image: &str) -> LogOpts {
        if self.driver == Driver::Journald {
            self.name = name.to_string();
            self.image = image.to_string();
        }
        self
    }

    /// Keeps the options beside `log` (the log driver, attached runs and `logs` read them).
    pub fn save(&self, log: &Path) -> std::io::Result<()> {
        if *self == LogOpts::default().with_max_file(1) {
            return Ok(());
        }
        let path = opts_path(log);
        if let Some(d) = path.parent() {
            crate::fsutil::private_dir(d)?;
        }
        let data = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, data)
    }

    /// The options kept beside `log` (json-file defaults when there are none).
    pub fn load(log: &Path) -> LogOpts {
        std::fs::read(opts_path(log))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn with_max_file(mut self, n: u32) -> LogOpts {
        self.max_file = n;
        self
    }
}

/// What `logs --details` puts before each line, as Docker: the attributes sorted by key,
/// `key=value` query-escaped and joined by commas, then a space (a lone space without any).
pub fn details_prefix(attrs: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = attrs
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    format!("{} ", pairs.join(","))
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_opts_as_docker_takes_them() {
        let o = parse_opts("json-file", &["max-size=10k".into(), "max-file=3".into()]).unwrap();
        assert_eq!((o.max_size, o.max_file), (10240, 3));
        let o = parse_opts("json-file", &[]).unwrap();
        assert_eq!((o.driver, o.max_size, o.max_file), (Driver::JsonFile, 0, 1));
        let o = parse_opts("json-file", &["max-size=2m".into()]).unwrap();
        assert_eq!(o.max_size, 2 << 20);
        let o = parse_opts("local", &[]).unwrap();
        assert_eq!(
            (o.driver, o.max_size, o.max_file),
            (Driver::Local, 20 << 20, 5)
        );
        assert_eq!(parse_opts("none", &[]).unwrap().driver, Driver::None);
        for bad in [
            vec!["max-size=lots".to_string()],
            vec!["max-file=0".into()],
            vec!["max-file=3".into()],
            vec!["compress=true".into()],
            vec!["nokv".into()],
            vec!["labels-regex=(".into()],
        ] {
            assert!(parse_opts("json-file", &bad).is_err(), "{bad:?}");
        }
        assert!(parse_opts("local", &["labels=a".into()]).is_err());
        assert!(parse_opts("none", &["max-size=1m".into()]).is_err());
        assert!(parse_opts("syslog", &[]).is_err());
        assert_eq!(
            parse_opts("journald", &[]).map(|o| o.driver),
            match Path::new(JOURNAL_SOCKET).exists() {
                true => Ok(Driver::Journald),
                false => Err(LogOptError::NoJournal(JOURNAL_SOCKET.into())),
            }
        );
    }

    #[test]
    fn attributes_from_labels_and_env() {
        let opts = parse_opts(
            "json-file",
            &[
                "labels=team,missing".into(),
                "env=A".into(),
                "labels-regex=^com\\.".into(),
                "env-regex=^X_".into(),
            ],
        )
        .unwrap();
        let labels: HashMap<String, String> = [("team", "a b"), ("com.x", "1"), ("other", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = vec!["A=1".into(), "B=2".into(), "X_Y=z=w".into()];
        let o = opts.with_attrs(&labels, &env);
        let got: Vec<(&str, &str)> = o
            .attrs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [("A", "1"), ("X_Y", "z=w"), ("com.x", "1"), ("team", "a b")]
        );
        assert_eq!(details_prefix(&o.attrs), "A=1,X_Y=z%3Dw,com.x=1,team=a+b ");
        assert_eq!(details_prefix(&BTreeMap::new()), " ");
    }

    #[test]
    fn saved_and_loaded_beside_the_log() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("c").join("c-json.log");
        let plain = parse_opts("json-file", &[]).unwrap();
        plain.save(&log).unwrap();
        assert!(!opts_path(&log).exists(), "defaults are not written");
        let none = parse_opts("none", &[]).unwrap();
        none.save(&log).unwrap();
        assert_eq!(LogOpts::load(&log), none);
    }
}
