//! The typed values a container request is made of, each parsed from the text Docker's flags,
//! Compose files and the Docker API use for it: sizes, ulimits, volumes and mounts, tmpfs, port
//! specs, restart policies, security options, extra hosts, key=value pairs and pull policies.
//! Parsing only checks the text; what needs the host (a bind source existing, a free port, a
//! seccomp profile's content) is checked by `create` before it makes anything.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a value cannot be parsed. `Display` gives the reason alone; [`FlagError`] adds which
/// flag (or field) held it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("use a size such as 512m or 1g")]
    Size,
    #[error("expected NAME=SOFT[:HARD], e.g. nofile=1024:2048")]
    UlimitForm,
    #[error("unknown limit {0:?} (nofile, nproc, core, memlock, stack ...)")]
    UlimitName(String),
    #[error("the soft limit is above the hard one")]
    UlimitOrder,
    #[error("expected SRC:DST[:OPTIONS], e.g. data:/data:ro")]
    VolumeForm,
    #[error("the container path {0:?} must be absolute")]
    RelativeTarget(String),
    #[error(
        "unknown option {0:?} (use ro or rw, z or Z, nocopy, or a propagation: shared, slave, \
         private, rshared, rslave or rprivate)"
    )]
    VolumeOption(String),
    #[error("{0}")]
    VolumeMode(String),
    #[error("{0}")]
    Mount(String),
    #[error("the path must be absolute")]
    TmpfsTarget,
    #[error("{0} (expected [hostIP:][hostPort:]containerPort[/tcp|udp], e.g. 8080:80)")]
    Port(String),
    #[error("use no, always, unless-stopped or on-failure[:MAX-RETRIES]")]
    Restart,
    #[error("use seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges, systempaths=unconfined, apparmor=PROFILE or label=...")]
    SecurityOpt,
    #[error("expected HOST:IP (or HOST=IP; IP may be host-gateway)")]
    ExtraHost,
    #[error("give KEY=VALUE")]
    KeyValue,
    #[error("use missing, always or never")]
    Pull,
    #[error("unknown signal {0:?}: use a name such as TERM or a number")]
    Signal(String),
    #[error("expected six hex pairs such as 02:42:ac:11:00:02")]
    Mac,
    #[error("a multicast MAC address (the first byte is odd); use a unicast one such as 02:42:ac:11:00:02")]
    MacMulticast,
    #[error("{0} (expected NAME or name=NAME[,alias=A][,ip=IP][,mac-address=MAC])")]
    NetworkForm(String),
    #[error("give PORT[-PORT][/tcp|udp]")]
    Expose,
    #[error("{0:?} is not a duration: use Go's syntax, such as 30s, 1m30s or 500ms")]
    Duration(String),
    #[error("valid streams are STDIN, STDOUT and STDERR")]
    AttachStream,
    #[error("give a value from 0 to 100 (-1: the host's)")]
    Swappiness,
}

/// A flag's (or field's) value that cannot be used: `invalid --memory "x": use a size ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag} {value:?}: {reason}")]
pub struct FlagError {
    pub flag: &'static str,
    pub value: String,
    pub reason: ValueError,
}

/// Parses `value` as a `T`, naming `flag` in the error.
pub fn parse_flag<T: FromStr<Err = ValueError>>(
    flag: &'static str,
    value: &str,
) -> Result<T, FlagError> {
    value.parse().map_err(|reason| FlagError {
        flag,
        value: value.to_string(),
        reason,
    })
}

/// Every value of a repeated flag.
pub fn parse_all<T: FromStr<Err = ValueError>>(
    flag: &'static str,
    values: &[String],
) -> Result<Vec<T>, FlagError> {
    values.iter().map(|v| parse_flag(flag, v)).collect()
}

/// Serde through the text form, so a request reads as the flags would be written.
macro_rules! text_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A size in bytes: `512m`, `1g`, `100k`, `1.5g`, `1024` (an optional trailing `b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub i64);

/// Go's `time.ParseDuration` ("1m30s", "500ms", "-1.5h", "0"), as Docker's duration flags and
/// Dockerfile options take it: the signed number of nanoseconds, or None when malformed or out
/// of range. The one parser of Go durations: health flags, `--since`/`--until` and Dockerfile
/// instructions wrap it.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let n = total.round() as i64;
    Some(if neg { -n } else { n })
}

/// [`parse_go_duration`] for a duration that cannot be negative.
pub fn parse_go_duration_std(s: &str) -> Option<std::time::Duration> {
    parse_go_duration(s)
        .and_then(|n| u64::try_from(n).ok())
        .map(std::time::Duration::from_nanos)
}

impl FromStr for ByteSize {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_suffix('b').unwrap_or(&t);
        let (num, mul) = match t.chars().last() {
            Some('k') => (&t[..t.len() - 1], 1i64 << 10),
            Some('m') => (&t[..t.len() - 1], 1 << 20),
            Some('g') => (&t[..t.len() - 1], 1 << 30),
            _ => (t, 1),
        };
        let n: f64 = num.parse().map_err(|_| ValueError::Size)?;
        if !n.is_finite() || n < 0.0 {
            return Err(ValueError::Size);
        }
        Ok(ByteSize((n * mul as f64) as i64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
text_serde!(ByteSize);

/// `--ulimit NAME=SOFT[:HARD]` (`-1` or `unlimited` for no limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// Lowercase, without `RLIMIT_`: nofile, nproc, ...
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

const RLIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

impl FromStr for Ulimit {
    type Err = ValueError;

    fn from_str(u: &str) -> Result<Self, ValueError> {
        let (name, vals) = u.split_once('=').ok_or(ValueError::UlimitForm)?;
        let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
        let num = |v: &str| -> Result<u64, ValueError> {
            if v == "-1" || v == "unlimited" {
                Ok(u64::MAX)
            } else {
                v.parse().map_err(|_| ValueError::UlimitForm)
            }
        };
        let name = name.to_ascii_lowercase();
        if !RLIMITS.contains(&name.as_str()) {
            return Err(ValueError::UlimitName(name));
        }
        let (soft, hard) = (num(soft)?, num(hard)?);
        if soft > hard {
            return Err(ValueError::UlimitOrder);
        }
        Ok(Ulimit { name, soft, hard })
    }
}

impl fmt::Display for Ulimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |v: u64| {
            if v == u64::MAX {
                "-1".to_string()
            } else {
                v.to_string()
            }
        };
        write!(f, "{}={}:{}", self.name, n(self.soft), n(self.hard))
    }
}
text_serde!(Ulimit);

impl Ulimit {
    /// As an OCI rlimit.
    pub fn to_oci(&self) -> Result<oci_spec::runtime::PosixRlimit, oci_spec::OciSpecError> {
        let typ: oci_spec::runtime::PosixRlimitType = serde_json::from_value(serde_json::json!(
            format!("RLIMIT_{}", self.name.to_ascii_uppercase())
        ))
        .map_err(|e| oci_spec::OciSpecError::Other(e.to_string()))?;
        oci_spec::runtime::PosixRlimitBuilder::default()
            .typ(typ)
            .soft(self.soft)
            .hard(self.hard)
            .build()
    }
}

/// Where a volume mount's content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeSource {
    /// A new volume for this container alone (`-v /path`).
    Anonymous,
    /// A named volume, created if absent.
    Named(String),
    /// A host path (absolute, or relative to the caller's directory: `./dir`).
    Host(PathBuf),
}

/// `-v [SRC:]DST[:MODES]`, or a `--mount type=bind|volume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub source: VolumeSource,
    pub target: String,
    pub read_only: bool,
    /// A bind's mount propagation (None: Docker's default, rprivate); binds only.
    #[serde(default)]
    pub propagation: Option<Propagation>,
    /// A new volume is left empty instead of filled from the image (`nocopy`,
    /// `volume-nocopy`); volumes only.
    #[serde(default)]
    pub nocopy: bool,
    /// The modes as given to `-v` (inspect's `Mounts[].Mode`); "" from `--mount`.
    #[serde(default)]
    pub mode: String,
    /// A directory of the volume to mount instead of all of it (`volume-subpath`); named
    /// volumes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    /// The bind without the mounts under its source (`bind-nonrecursive`); binds only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nonrecursive: bool,
    /// The local driver's options a named volume is made with when it does not exist yet
    /// (`volume-opt=KEY=VALUE`); named volumes only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_opts: BTreeMap<String, String>,
}

impl VolumeSpec {
    /// A mount of `source` at `target`, read-write, with Docker's defaults.
    pub fn new(source: VolumeSource, target: impl Into<String>) -> VolumeSpec {
        VolumeSpec {
            source,
            target: target.into(),
            read_only: false,
            propagation: None,
            nocopy: false,
            mode: String::new(),
            subpath: None,
            nonrecursive: false,
            volume_opts: BTreeMap::new(),
        }
    }

    /// Refuses what applies to the other kind of mount: a propagation on a volume, nocopy on
    /// a bind (Docker's "field BindOptions/VolumeOptions must not be specified").
    fn check_kind(&self) -> Result<(), ValueError> {
        let bind = matches!(self.source, VolumeSource::Host(_));
        if let (false, Some(p)) = (bind, self.propagation) {
            return Err(ValueError::VolumeMode(format!(
                "the propagation {p} applies to bind mounts only, not to volumes"
            )));
        }
        if bind && self.nocopy {
            return Err(ValueError::VolumeMode(
                "nocopy applies to volumes only, not to bind mounts of a host path".into(),
            ));
        }
        Ok(())
    }
}

/// A bind mount's propagation (Docker's `bind-propagation`, or a `-v` mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    Shared,
    Slave,
    Private,
    RShared,
    RSlave,
    RPrivate,
}

impl Propagation {
    /// The mount option (and inspect's `Propagation`): rshared, slave ...
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Shared => "shared",
            Propagation::Slave => "slave",
            Propagation::Private => "private",
            Propagation::RShared => "rshared",
            Propagation::RSlave => "rslave",
            Propagation::RPrivate => "rprivate",
        }
    }

    /// Whether the source must be on a shared mount (shared, rshared).
    pub fn is_shared(self) -> bool {
        matches!(self, Propagation::Shared | Propagation::RShared)
    }

    /// Whether the source must be on a shared or slave mount (slave, rslave).
    pub fn is_slave(self) -> bool {
        matches!(self, Propagation::Slave | Propagation::RSlave)
    }
}

impl fmt::Display for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Propagation {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        Ok(match s {
            "shared" => Propagation::Shared,
            "slave" => Propagation::Slave,
            "private" => Propagation::Private,
            "rshared" => Propagation::RShared,
            "rslave" => Propagation::RSlave,
            "rprivate" => Propagation::RPrivate,
            _ => return Err(ValueError::VolumeOption(s.to_string())),
        })
    }
}

/// The `-v` modes (`ro,rshared`, `nocopy` ...), each kind at most once, as Docker allows.
fn volume_modes(spec: &mut VolumeSpec, opts: &str) -> Result<(), ValueError> {
    let twice = |kind: &str| {
        ValueError::VolumeMode(format!(
            "{opts:?} gives more than one {kind}: give at most one"
        ))
    };
    let (mut access, mut label) = (false, false);
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" if access => return Err(twice("of ro and rw")),
            "ro" | "rw" => {
                access = true;
                spec.read_only = o == "ro";
            }
            "z" | "Z" if label => return Err(twice("of z and Z")),
            // SELinux relabelling: nothing to do on hosts without SELinux, as Docker.
            "z" | "Z" => label = true,
            "nocopy" if spec.nocopy => return Err(twice("nocopy")),
            "nocopy" => spec.nocopy = true,
            // Docker Desktop's consistency modes mean nothing on Linux; Docker accepts them.
            "consistent" | "cached" | "delegated" => {}
            p => {
                let p: Propagation = p.parse()?;
                if spec.propagation.is_some() {
                    return Err(twice("propagation"));
                }
                spec.propagation = Some(p);
            }
        }
    }
    spec.mode = opts.to_string();
    Ok(())
}

impl FromStr for VolumeSpec {
    type Err = ValueError;

    fn from_str(v: &str) -> Result<Self, ValueError> {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [dst] => ("", *dst, ""),
            [src, dst] => (*src, *dst, ""),
            [src, dst, opts] => (*src, *dst, *opts),
            _ => return Err(ValueError::VolumeForm),
        };
        if !dst.starts_with('/') {
            return Err(ValueError::RelativeTarget(dst.to_string()));
        }
        let source = if src.is_empty() {
            VolumeSource::Anonymous
        } else if src.starts_with('/') || src.starts_with('.') {
            VolumeSource::Host(PathBuf::from(src))
        } else {
            VolumeSource::Named(src.to_string())
        };
        let mut spec = VolumeSpec::new(source, dst);
        volume_modes(&mut spec, opts)?;
        spec.check_kind()?;
        Ok(spec)
    }
}

/// `--tmpfs DST[:OPTIONS]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsSpec {
    pub target: String,
    /// Mount options after Docker's nosuid,nodev,noexec (size=, mode=, ro ...).
    pub options: Vec<String>,
}

impl FromStr for TmpfsSpec {
    type Err = ValueError;

    fn from_str(t: &str) -> Result<Self, ValueError> {
        let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
        if !dst.starts_with('/') {
            return Err(ValueError::TmpfsTarget);
        }
        Ok(TmpfsSpec {
            target: dst.to_string(),
            options: opts
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// Docker's `--mount` long form: a volume (or bind) or a tmpfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountSpec {
    Volume(VolumeSpec),
    Tmpfs(TmpfsSpec),
}

/// The fields of a `--mount` as given, before its type decides what they mean.
#[derive(Default)]
struct MountFields {
    typ: Option<String>,
    src: Option<String>,
    dst: Option<String>,
    ro: bool,
    size: Option<ByteSize>,
    mode: Option<String>,
    propagation: Option<Propagation>,
    nocopy: Option<bool>,
    subpath: Option<String>,
    nonrecursive: Option<bool>,
    volume_opts: BTreeMap<String, String>,
}

/// A volume's subpath (`volume-subpath`, Compose's `volume.subpath`): relative, inside it.
pub fn check_subpath(v: &str) -> Result<(), ValueError> {
    let p = std::path::Path::new(v);
    if v.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(ValueError::Mount(format!(
            "volume-subpath={v:?}: give a path inside the volume, relative, without .."
        )));
    }
    Ok(())
}

/// A `--mount` boolean field: bare (true), or true/false/1/0.
fn mount_bool(field: &str, v: Option<&str>) -> Result<bool, ValueError> {
    match v {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(ValueError::Mount(format!(
            "{field}={v:?} must be true or false"
        ))),
    }
}

impl MountFields {
    fn parse(spec: &str) -> Result<MountFields, ValueError> {
        let bad = |why: String| ValueError::Mount(why);
        let mut m = MountFields::default();
        for field in spec.split(',').filter(|f| !f.is_empty()) {
            let (k, v) = match field.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (field.trim(), None),
            };
            match (k, v) {
                ("type", Some(v)) => m.typ = Some(v.to_string()),
                ("source" | "src", Some(v)) => m.src = Some(v.to_string()),
                ("target" | "destination" | "dst", Some(v)) => m.dst = Some(v.to_string()),
                ("readonly" | "ro", v) => m.ro = mount_bool(k, v)?,
                ("tmpfs-size", Some(v)) => {
                    m.size = Some(v.parse().map_err(|_| {
                        bad(format!("tmpfs-size={v:?}: use a size such as 512m or 1g"))
                    })?)
                }
                ("tmpfs-mode", Some(v)) => {
                    u32::from_str_radix(v, 8).map_err(|_| {
                        bad(format!("tmpfs-mode={v:?} must be octal, e.g. 1777"))
                    })?;
                    m.mode = Some(v.to_string());
                }
                ("bind-propagation", Some(v)) => {
                    m.propagation = Some(v.parse().map_err(|_| {
                        bad(format!(
                            "bind-propagation={v:?}: use shared, slave, private, rshared, rslave or rprivate"
                        ))
                    })?)
                }
                ("volume-nocopy", v) => m.nocopy = Some(mount_bool(k, v)?),
                ("volume-subpath", Some(v)) => {
                    check_subpath(v)?;
                    m.subpath = Some(v.to_string());
                }
                ("bind-nonrecursive", v) => m.nonrecursive = Some(mount_bool(k, v)?),
                ("volume-driver", Some("local")) => {}
                ("volume-driver", Some(d)) => {
                    return Err(bad(format!(
                        "volume-driver={d:?}: burrow has only the local volume driver (leave the field out)"
                    )))
                }
                ("volume-opt", Some(o)) => {
                    let Some((k, v)) = o.split_once('=') else {
                        return Err(bad(format!(
                            "{field:?}: give volume-opt=KEY=VALUE (type, o or device)"
                        )));
                    };
                    m.volume_opts.insert(k.to_string(), v.to_string());
                }
                _ => return Err(bad(format!(
                    "unsupported field {field:?} (use type, source, target, readonly, bind-propagation, \
                     bind-nonrecursive, volume-nocopy, volume-subpath, tmpfs-size, tmpfs-mode)"
                ))),
            }
        }
        Ok(m)
    }
}

impl FromStr for MountSpec {
    type Err = ValueError;

    fn from_str(spec: &str) -> Result<Self, ValueError> {
        let bad = |why: String| ValueError::Mount(why);
        let m = MountFields::parse(spec)?;
        let typ = m.typ.as_deref().unwrap_or("volume");
        let Some(target) = m.dst else {
            return Err(bad("target=PATH is required".into()));
        };
        let extra = |field: &str| bad(format!("{field} does not apply to a mount of type={typ}"));
        if typ != "tmpfs" && (m.size.is_some() || m.mode.is_some()) {
            return Err(extra("tmpfs-size/tmpfs-mode"));
        }
        if typ != "bind" && m.propagation.is_some() {
            return Err(extra("bind-propagation"));
        }
        if typ != "volume" && m.nocopy.is_some() {
            return Err(extra("volume-nocopy"));
        }
        if typ != "volume" && m.subpath.is_some() {
            return Err(extra("volume-subpath"));
        }
        if typ != "bind" && m.nonrecursive.is_some() {
            return Err(extra("bind-nonrecursive"));
        }
        if typ != "volume" && !m.volume_opts.is_empty() {
            return Err(extra("volume-opt"));
        }
        match typ {
            "bind" => {
                let Some(src) = m.src else {
                    return Err(bad("a bind mount needs source=PATH".into()));
                };
                if !src.starts_with('/') {
                    return Err(bad(format!(
                        "the bind source {src:?} must be an absolute path"
                    )));
                }
                let mut v = VolumeSpec::new(VolumeSource::Host(PathBuf::from(src)), target);
                v.read_only = m.ro;
                v.propagation = m.propagation;
                v.nonrecursive = m.nonrecursive.unwrap_or(false);
                Ok(MountSpec::Volume(v))
            }
            "volume" => {
                let source = match m.src {
                    Some(name) if name.starts_with('/') => {
                        return Err(bad(format!(
                        "a volume's source is a volume name; use type=bind for the path {name:?}"
                    )))
                    }
                    Some(name) => VolumeSource::Named(name),
                    None => VolumeSource::Anonymous,
                };
                if (m.subpath.is_some() || !m.volume_opts.is_empty())
                    && source == VolumeSource::Anonymous
                {
                    return Err(bad(
                        "volume-subpath needs a named volume (source=NAME)".into()
                    ));
                }
                let mut v = VolumeSpec::new(source, target);
                v.read_only = m.ro;
                v.nocopy = m.nocopy.unwrap_or(false);
                v.subpath = m.subpath;
                v.volume_opts = m.volume_opts;
                Ok(MountSpec::Volume(v))
            }
            "tmpfs" => {
                if m.src.is_some() {
                    return Err(bad("a tmpfs mount has no source".into()));
                }
                let mut options: Vec<String> = Vec::new();
                if let Some(s) = m.size {
                    options.push(format!("size={}", s.0));
                }
                if let Some(mode) = m.mode {
                    options.push(format!("mode={mode}"));
                }
                if m.ro {
                    options.push("ro".into());
                }
                Ok(MountSpec::Tmpfs(TmpfsSpec { target, options }))
            }
            other => Err(bad(format!("type={other:?} (use bind, volume or tmpfs)"))),
        }
    }
}

/// A stream `run -a/--attach` joins to the terminal (case-insensitive, as Docker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachStream {
    Stdin,
    Stdout,
    Stderr,
}

impl FromStr for AttachStream {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s.to_ascii_lowercase().as_str() {
            "stdin" => Ok(AttachStream::Stdin),
            "stdout" => Ok(AttachStream::Stdout),
            "stderr" => Ok(AttachStream::Stderr),
            _ => Err(ValueError::AttachStream),
        }
    }
}

/// `-p [hostIP:][hostPort:]containerPort[/proto]`: checked when parsed; host ports left to the
/// kernel are picked when the container is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec(String);

impl FromStr for PortSpec {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        crate::network::ports::parse(s, |_, _| Ok(0)).map_err(|e| ValueError::Port(e.why))?;
        Ok(PortSpec(s.to_string()))
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
text_serde!(PortSpec);

impl PortSpec {
    /// The mappings, with free host ports picked where the spec leaves them open.
    pub fn resolve(
        &self,
    ) -> Result<Vec<crate::network::ports::PortMapping>, crate::network::ports::BadPort> {
        crate::network::ports::parse(&self.0, crate::network::ports::kernel_free_port)
    }

    /// The container ports it publishes, as "80/tcp" (what Docker adds to ExposedPorts).
    pub fn container_ports(&self) -> Vec<String> {
        crate::network::ports::parse(&self.0, |_, _| Ok(0))
            .map(|m| {
                m.iter()
                    .map(|m| format!("{}/{}", m.container_port, m.protocol))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Docker's restart policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// Restart after a failing exit, at most this many times (0: no limit).
    OnFailure(u32),
}

impl FromStr for RestartPolicy {
    type Err = ValueError;

    fn from_str(p: &str) -> Result<Self, ValueError> {
        match p {
            "no" | "" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" => Ok(RestartPolicy::OnFailure(0)),
            p => match p.strip_prefix("on-failure:").map(str::parse::<u32>) {
                Some(Ok(n)) => Ok(RestartPolicy::OnFailure(n)),
                _ => Err(ValueError::Restart),
            },
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
            RestartPolicy::OnFailure(0) => f.write_str("on-failure"),
            RestartPolicy::OnFailure(n) => write!(f, "on-failure:{n}"),
        }
    }
}
text_serde!(RestartPolicy);

/// `--security-opt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    SeccompUnconfined,
    /// A seccomp profile in Docker's JSON format, read when the container is created.
    SeccompProfile(PathBuf),
    NoNewPrivileges(bool),
    /// `systempaths=unconfined`: /proc and /sys paths neither masked nor read-only.
    SystemPathsUnconfined,
    /// `apparmor=unconfined` (what burrow applies anyway) or `apparmor=PROFILE`.
    AppArmor(String),
    /// `label=...`: SELinux labels (`disable`, `user:`, `role:`, `type:`, `level:`,
    /// `filetype:`, `nested`), as given.
    Label(String),
}

impl FromStr for SecurityOpt {
    type Err = ValueError;

    fn from_str(o: &str) -> Result<Self, ValueError> {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o, ""));
        match (k, v) {
            ("seccomp", "unconfined") => Ok(SecurityOpt::SeccompUnconfined),
            ("seccomp", path) if !path.is_empty() => {
                Ok(SecurityOpt::SeccompProfile(PathBuf::from(path)))
            }
            ("no-new-privileges", "" | "true") => Ok(SecurityOpt::NoNewPrivileges(true)),
            ("no-new-privileges", "false") => Ok(SecurityOpt::NoNewPrivileges(false)),
            ("systempaths", "unconfined") => Ok(SecurityOpt::SystemPathsUnconfined),
            ("apparmor", p) if !p.is_empty() => Ok(SecurityOpt::AppArmor(p.to_string())),
            ("label", l)
                if l == "disable"
                    || l == "nested"
                    || ["user:", "role:", "type:", "level:", "filetype:"]
                        .iter()
                        .any(|p| l.starts_with(p) && l.len() > p.len()) =>
            {
                Ok(SecurityOpt::Label(l.to_string()))
            }
            _ => Err(ValueError::SecurityOpt),
        }
    }
}

impl fmt::Display for SecurityOpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecurityOpt::SeccompUnconfined => f.write_str("seccomp=unconfined"),
            SecurityOpt::SeccompProfile(p) => write!(f, "seccomp={}", p.display()),
            SecurityOpt::NoNewPrivileges(b) => write!(f, "no-new-privileges={b}"),
            SecurityOpt::SystemPathsUnconfined => f.write_str("systempaths=unconfined"),
            SecurityOpt::AppArmor(p) => write!(f, "apparmor={p}"),
            SecurityOpt::Label(l) => write!(f, "label={l}"),
        }
    }
}
text_serde!(SecurityOpt);

/// `--add-host NAME:IP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    pub name: String,
    pub ip: HostAddr,
}

/// The address of an extra host: an IP, or Docker's `host-gateway` (the host as the container
/// reaches it, decided when the container is created).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAddr {
    Ip(IpAddr),
    HostGateway,
}

impl FromStr for ExtraHost {
    type Err = ValueError;

    fn from_str(h: &str) -> Result<Self, ValueError> {
        // HOST=IP (Docker 25+) or HOST:IP; an IPv6 address has colons of its own.
        let (name, ip) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .ok_or(ValueError::ExtraHost)?;
        let ip = match ip {
            "host-gateway" => HostAddr::HostGateway,
            ip => HostAddr::Ip(
                ip.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| ValueError::ExtraHost)?,
            ),
        };
        if name.is_empty() {
            return Err(ValueError::ExtraHost);
        }
        Ok(ExtraHost {
            name: name.to_string(),
            ip,
        })
    }
}

impl fmt::Display for ExtraHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            HostAddr::Ip(ip) => write!(f, "{}:{ip}", self.name),
            HostAddr::HostGateway => write!(f, "{}:host-gateway", self.name),
        }
    }
}
text_serde!(ExtraHost);

/// `KEY=VALUE` with a non-empty key (annotations, log options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

impl FromStr for KeyValue {
    type Err = ValueError;

    fn from_str(a: &str) -> Result<Self, ValueError> {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            }),
            _ => Err(ValueError::KeyValue),
        }
    }
}

/// Whether to pull the image before creating: `--pull missing|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    #[default]
    Missing,
    Always,
    Never,
}

impl FromStr for PullPolicy {
    type Err = ValueError;

    fn from_str(p: &str) -> Result<Self, ValueError> {
        match p {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            _ => Err(ValueError::Pull),
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PullPolicy::Missing => "missing",
            PullPolicy::Always => "always",
            PullPolicy::Never => "never",
        })
    }
}
text_serde!(PullPolicy);

/// `--expose PORT[-PORT][/PROTO]`: ports a container listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expose {
    pub first: u16,
    pub last: u16,
    pub proto: String,
}

impl FromStr for Expose {
    type Err = ValueError;

    fn from_str(e: &str) -> Result<Self, ValueError> {
        let (ports, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
        let (first, last): (u16, u16) = (
            a.parse().map_err(|_| ValueError::Expose)?,
            b.parse().map_err(|_| ValueError::Expose)?,
        );
        if first == 0 || last < first || !matches!(proto, "tcp" | "udp") {
            return Err(ValueError::Expose);
        }
        Ok(Expose {
            first,
            last,
            proto: proto.to_string(),
        })
    }
}

impl Expose {
    /// Each port as Docker's "PORT/PROTO".
    pub fn ports(&self) -> Vec<String> {
        (self.first..=self.last)
            .map(|p| format!("{p}/{}", self.proto))
            .collect()
    }
}

/// A signal by number or name (`9`, `KILL`, `SIGKILL`, `sigterm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub u32);

impl FromStr for Signal {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        if let Ok(n) = s.parse::<u32>() {
            return Ok(Signal(n));
        }
        let up = s.to_ascii_uppercase();
        let name = if up.starts_with("SIG") {
            up
        } else {
            format!("SIG{up}")
        };
        let sig: nix::sys::signal::Signal = name
            .parse()
            .map_err(|_| ValueError::Signal(s.to_string()))?;
        Ok(Signal(sig as i32 as u32))
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
text_serde!(Signal);

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: FromStr<Err = ValueError> + fmt::Debug>(flag: &'static str, v: &str) -> String {
        let e = parse_flag::<T>(flag, v).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("invalid {flag} {v:?}: ")),
            "{text}"
        );
        text
    }

    #[test]
    fn exposed_ports_and_ranges() {
        let e: Expose = "8000-8002/udp".parse().unwrap();
        assert_eq!(e.ports(), ["8000/udp", "8001/udp", "8002/udp"]);
        assert_eq!("80".parse::<Expose>().unwrap().ports(), ["80/tcp"]);
        for bad in ["0", "9-8", "80/sctp", "x"] {
            assert!(err::<Expose>("--expose", bad).contains("PORT[-PORT]"));
        }
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!("9".parse(), Ok(Signal(9)));
        assert_eq!("TERM".parse(), Ok(Signal(15)));
        assert_eq!("sigkill".parse(), Ok(Signal(9)));
        let e = "NOPE".parse::<Signal>().unwrap_err().to_string();
        assert!(e.contains("unknown signal \"NOPE\""), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!("512m".parse::<ByteSize>(), Ok(ByteSize(512 << 20)));
        assert_eq!("1g".parse::<ByteSize>(), Ok(ByteSize(1 << 30)));
        assert_eq!("64MB".parse::<ByteSize>(), Ok(ByteSize(64 << 20)));
        assert_eq!("1.5k".parse::<ByteSize>(), Ok(ByteSize(1536)));
        assert_eq!("1024".parse::<ByteSize>(), Ok(ByteSize(1024)));
        for bad in ["", "lots", "-1m", "1x"] {
            assert!(err::<ByteSize>("--memory", bad).contains("512m"));
        }
    }

    #[test]
    fn ulimits() {
        let u: Ulimit = "nofile=1024:2048".parse().unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u: Ulimit = "NPROC=-1".parse().unwrap();
        assert_eq!((u.soft, u.hard), (u64::MAX, u64::MAX));
        assert_eq!(u.to_string(), "nproc=-1:-1");
        assert!(u.to_oci().is_ok());
        assert!(err::<Ulimit>("--ulimit", "nofile").contains("NAME=SOFT"));
        assert!(err::<Ulimit>("--ulimit", "nofile=x").contains("NAME=SOFT"));
        assert!(err::<Ulimit>("--ulimit", "bogus=1").contains("unknown limit"));
        assert!(err::<Ulimit>("--ulimit", "nofile=10:5").contains("soft limit"));
    }

    #[test]
    fn volumes() {
        let v: VolumeSpec = "/anon".parse().unwrap();
        assert_eq!(v.source, VolumeSource::Anonymous);
        let v: VolumeSpec = "data:/d:ro".parse().unwrap();
        assert_eq!(v.source, VolumeSource::Named("data".into()));
        assert!(v.read_only);
        let v: VolumeSpec = "./here:/d:rw,z".parse().unwrap();
        assert_eq!(v.source, VolumeSource::Host("./here".into()));
        assert!(!v.read_only);
        assert!(err::<VolumeSpec>("-v", "a:b:c:d").contains("SRC:DST"));
        assert!(err::<VolumeSpec>("-v", "data:rel").contains("absolute"));
        assert!(err::<VolumeSpec>("-v", "/a:/b:rx").contains("\"rx\""));
    }

    #[test]
    fn volume_modes_take_propagation_and_nocopy_as_docker_does() {
        let v: VolumeSpec = "/h:/d:ro,rshared".parse().unwrap();
        assert!(v.read_only);
        assert_eq!(v.propagation, Some(Propagation::RShared));
        assert_eq!(v.mode, "ro,rshared");
        let v: VolumeSpec = "/h:/d:slave".parse().unwrap();
        assert!(!v.read_only && v.propagation.unwrap().is_slave());
        let v: VolumeSpec = "data:/d:nocopy".parse().unwrap();
        assert!(v.nocopy && v.propagation.is_none());
        for (bad, says) in [
            ("/h:/d:ro,rw", "ro and rw"),
            ("/h:/d:shared,slave", "propagation"),
            ("data:/d:rshared", "bind mounts only"),
            ("/h:/d:nocopy", "volumes only"),
            ("data:/d:nocopy,nocopy", "nocopy"),
        ] {
            assert!(err::<VolumeSpec>("-v", bad).contains(says), "{bad}");
        }
        let m: MountSpec = "type=bind,src=/h,dst=/d,bind-propagation=rslave"
            .parse()
            .unwrap();
        assert!(matches!(m, MountSpec::Volume(v) if v.propagation == Some(Propagation::RSlave)));
        for (spec, nocopy) in [
            ("type=volume,src=v,dst=/d,volume-nocopy", true),
            ("type=volume,src=v,dst=/d,volume-nocopy=false", false),
            ("type=volume,src=v,dst=/d,volume-driver=local", false),
        ] {
            let m: MountSpec = spec.parse().unwrap();
            assert!(
                matches!(m, MountSpec::Volume(v) if v.nocopy == nocopy),
                "{spec}"
            );
        }
    }

    #[test]
    fn mounts() {
        let m: MountSpec = "type=bind,source=/etc,target=/x,readonly".parse().unwrap();
        let mut want = VolumeSpec::new(VolumeSource::Host("/etc".into()), "/x");
        want.read_only = true;
        assert_eq!(m, MountSpec::Volume(want));
        let m: MountSpec = "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770"
            .parse()
            .unwrap();
        assert_eq!(
            m,
            MountSpec::Tmpfs(TmpfsSpec {
                target: "/t".into(),
                options: vec!["size=1048576".into(), "mode=1770".into()]
            })
        );
        let m: MountSpec = "target=/v".parse().unwrap();
        assert!(matches!(
            m,
            MountSpec::Volume(VolumeSpec {
                source: VolumeSource::Anonymous,
                ..
            })
        ));
        for (bad, says) in [
            ("type=bind,target=/x", "needs source"),
            ("type=bind,source=rel,target=/x", "absolute"),
            ("type=volume,source=/abs,target=/x", "type=bind"),
            ("type=tmpfs,source=x,target=/x", "no source"),
            ("type=nfs,target=/x", "type=\"nfs\""),
            ("source=x", "target=PATH"),
            ("type=tmpfs,target=/t,tmpfs-mode=999", "octal"),
            (
                "type=bind,source=/a,target=/b,bind-propagation=up",
                "rshared",
            ),
            (
                "type=volume,target=/b,bind-propagation=shared",
                "bind-propagation",
            ),
            (
                "type=bind,source=/a,target=/b,volume-nocopy",
                "volume-nocopy",
            ),
            ("type=volume,target=/b,volume-opt=type=nfs", "named volume"),
            ("type=volume,source=v,target=/b,volume-opt=nfs", "KEY=VALUE"),
            ("type=volume,target=/b,volume-driver=nfs", "only the local"),
            ("type=volume,target=/b,tmpfs-size=1m", "tmpfs-size"),
            (
                "type=volume,source=v,target=/b,bind-nonrecursive",
                "bind-nonrecursive",
            ),
            ("type=volume,target=/b,volume-subpath=x", "named volume"),
            (
                "type=volume,source=v,target=/b,volume-subpath=../x",
                "without ..",
            ),
            (
                "type=bind,source=/a,target=/b,volume-subpath=x",
                "volume-subpath",
            ),
        ] {
            assert!(err::<MountSpec>("--mount", bad).contains(says), "{bad}");
        }
        let Ok(MountSpec::Volume(v)) =
            "type=volume,source=v,target=/b,volume-subpath=a/b".parse::<MountSpec>()
        else {
            panic!("a subpath")
        };
        assert_eq!(v.subpath.as_deref(), Some("a/b"));
        let Ok(MountSpec::Volume(v)) =
            "type=bind,source=/a,target=/b,bind-nonrecursive".parse::<MountSpec>()
        else {
            panic!("a bind")
        };
        assert!(v.nonrecursive);
    }

    #[test]
    fn mount_fields_take_dockers_aliases() {
        let vol = |src: VolumeSource, target: &str, read_only| {
            let mut v = VolumeSpec::new(src, target);
            v.read_only = read_only;
            MountSpec::Volume(v)
        };
        assert_eq!(
            "type=bind,src=/tmp,dst=/data,readonly=false".parse(),
            Ok(vol(VolumeSource::Host("/tmp".into()), "/data", false))
        );
        assert_eq!(
            "source=cache,target=/cache".parse(),
            Ok(vol(VolumeSource::Named("cache".into()), "/cache", false))
        );
        assert_eq!(
            "type=tmpfs,destination=/scratch,tmpfs-size=64m,tmpfs-mode=1770".parse(),
            Ok(MountSpec::Tmpfs(TmpfsSpec {
                target: "/scratch".into(),
                options: vec!["size=67108864".into(), "mode=1770".into()]
            }))
        );
        let kv: KeyValue = "x=".parse().unwrap();
        assert_eq!((kv.key.as_str(), kv.value.as_str()), ("x", ""));
        let u: Ulimit = "nofile=1024:2048".parse().unwrap();
        assert_eq!(
            serde_json::to_value(u.to_oci().unwrap().typ()).unwrap(),
            serde_json::json!("RLIMIT_NOFILE")
        );
    }

    #[test]
    fn tmpfs() {
        let t: TmpfsSpec = "/run:size=1m,mode=700".parse().unwrap();
        assert_eq!(t.options, ["size=1m", "mode=700"]);
        assert!(err::<TmpfsSpec>("--tmpfs", "run").contains("absolute"));
    }

    #[test]
    fn ports() {
        let p: PortSpec = "127.0.0.1:8080:80/udp".parse().unwrap();
        assert_eq!(p.resolve().unwrap()[0].host_port, 8080);
        assert!(err::<PortSpec>("-p", "80/sctp").contains("protocol"));
        assert!("[::1:80".parse::<PortSpec>().is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!("no".parse(), Ok(RestartPolicy::No));
        assert_eq!("on-failure:3".parse(), Ok(RestartPolicy::OnFailure(3)));
        assert_eq!("on-failure".parse(), Ok(RestartPolicy::OnFailure(0)));
        assert_eq!(RestartPolicy::OnFailure(3).to_string(), "on-failure:3");
        for bad in ["sometimes", "on-failure:x", "always:2"] {
            assert!(err::<RestartPolicy>("--restart", bad).contains("unless-stopped"));
        }
    }

    #[test]
    fn security_options() {
        assert_eq!(
            "seccomp=unconfined".parse(),
            Ok(SecurityOpt::SeccompUnconfined)
        );
        assert_eq!(
            "seccomp:unconfined".parse(),
            Ok(SecurityOpt::SeccompUnconfined)
        );
        assert_eq!(
            "no-new-privileges".parse(),
            Ok(SecurityOpt::NoNewPrivileges(true))
        );
        assert_eq!(
            "seccomp=/p.json".parse(),
            Ok(SecurityOpt::SeccompProfile("/p.json".into()))
        );
        assert_eq!("apparmor=x".parse(), Ok(SecurityOpt::AppArmor("x".into())));
        assert!(err::<SecurityOpt>("--security-opt", "selinux=x").contains("seccomp="));
    }

    #[test]
    fn hosts_pairs_and_pull() {
        let h: ExtraHost = "db:10.0.0.2".parse().unwrap();
        assert_eq!(h.to_string(), "db:10.0.0.2");
        let h: ExtraHost = "host.docker.internal:host-gateway".parse().unwrap();
        assert_eq!(h.ip, HostAddr::HostGateway);
        let h: ExtraHost = "v6=::1".parse().unwrap();
        assert_eq!(h.ip, HostAddr::Ip("::1".parse().unwrap()));
        for bad in ["db", ":1.2.3.4", "db:notanip"] {
            assert!(err::<ExtraHost>("--add-host", bad).contains("HOST:IP"));
        }
        assert!(err::<KeyValue>("--annotation", "novalue").contains("KEY=VALUE"));
        assert!(err::<KeyValue>("--annotation", "=v").contains("KEY=VALUE"));
        assert_eq!("never".parse(), Ok(PullPolicy::Never));
        assert!(err::<PullPolicy>("--pull", "sometimes").contains("missing, always"));
    }

    #[test]
    fn values_round_trip_through_serde() {
        let u: Ulimit = "nofile=1:2".parse().unwrap();
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, "\"nofile=1:2\"");
        assert_eq!(serde_json::from_str::<Ulimit>(&json).unwrap(), u);
        assert!(serde_json::from_str::<ByteSize>("\"zz\"").is_err());
    }
}
