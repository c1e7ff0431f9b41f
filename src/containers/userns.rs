//! `--userns` (podman's user-namespace modes): `host` (the runtime's own user namespace, the
//! default) and rootless `keep-id[:uid=U,gid=G]`, a user namespace of the container's own,
//! nested in the launcher's, where the user's uid and gid are the same numbers as on the host
//! (or U and G) and the rest of the subordinate range is mapped around them. This module owns
//! the mode's parsing, the id maps, the passwd/group entry for the user, and what the mode
//! changes in the OCI spec; the remapped copy of the image's snapshot is [`snapshot`].

pub mod snapshot;

use std::fmt;
use std::str::FromStr;

use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, Spec};

/// A `--userns` value burrow implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsernsMode {
    /// `""`: the default, the runtime's user namespace.
    #[default]
    Default,
    /// `host`: the default made explicit (rootless: the launcher's namespace; rootful: the
    /// host's).
    Host,
    /// `keep-id[:uid=U,gid=G][,own]`: the user's ids kept inside (as U and G when given); with
    /// burrow's `own`, the user's ids own everything the launcher's root owns (the image's files
    /// are the user's, as enroot and pyxis show them) and the only other id is a root for runc
    /// (the first subordinate id, owning nothing); other owners show as nobody.
    KeepId {
        uid: Option<u32>,
        gid: Option<u32>,
        own_only: bool,
    },
}

/// A `--userns` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernsError {
    #[error(
        "invalid --userns {0:?}: burrow supports \"\" (the default), host and keep-id[:uid=UID,gid=GID] (auto, nomap, private, ns:PATH and container:ID are not implemented)"
    )]
    Unsupported(String),
    #[error("invalid --userns keep-id option {0:?}: expected uid=UID, gid=GID (numbers) or own (the image's files yours); podman's size= is not implemented")]
    BadKeepIdOption(String),
    #[error(
        "--userns=keep-id is for rootless containers (as in podman): burrow uses a rootful containerd here, where the container already runs in the host's user namespace; drop --userns, or use -u UID:GID"
    )]
    Rootful,
    #[error(
        "--userns=keep-id needs subordinate ids, and this launcher maps only your own id (no entry for you in /etc/subuid and /etc/subgid): with one id there is no room to keep root's files owned by root beside your own; ask the admin for a range (see `burrow setup check`), or run without --userns (you are uid 0 inside, your files stay yours)"
    )]
    SingleId,
    #[error(
        "--userns=keep-id: the {what} {id} does not fit in the launcher's {count} ids (your own and the subordinate range): use keep-id:{what}=N with N below {count}, or ask for a larger range in /etc/sub{what}"
    )]
    OutOfRange {
        what: &'static str,
        id: u32,
        count: u32,
    },
    #[error(
        "--userns=keep-id:own (what `burrow srun --no-container-remap-root` asks for) needs one subordinate id (runc requires a root inside the container), and this launcher maps only your own id: ask the admin for a range (see `burrow setup check`), or run without --userns (srun: with --container-remap-root, its default): you are uid 0 inside, and your files stay yours"
    )]
    SingleIdOwn,
    #[error(
        "--userns=keep-id:own: the {0} inside must not be 0 (root is the one id besides yours)"
    )]
    OwnRoot(&'static str),
    #[error("reading the launcher's id map {path}: {reason}")]
    LauncherMap { path: String, reason: String },
    #[error(
        "cannot {what} container {name}: it runs with --userns=keep-id, and its files are stored shifted by its id map (root's as your first subordinate id), so the result would carry wrong owners; not supported yet (make the changes in a container without --userns, or with a Dockerfile)"
    )]
    ShiftedFiles { what: &'static str, name: String },
}

/// Refuses to `what` (commit, export) the container `name` with these record labels when it
/// runs with keep-id: its snapshot holds the owners as the launcher sees them.
pub fn refuse_shifted(
    labels: &std::collections::HashMap<String, String>,
    what: &'static str,
    name: &str,
) -> Result<(), UsernsError> {
    let keep_id = labels
        .get(crate::containers::labels::USERNS)
        .and_then(|m| m.parse::<UsernsMode>().ok())
        .is_some_and(|m| {
            matches!(
                m,
                UsernsMode::KeepId {
                    own_only: false,
                    ..
                }
            )
        });
    if keep_id {
        return Err(UsernsError::ShiftedFiles {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}

impl FromStr for UsernsMode {
    type Err = UsernsError;

    fn from_str(s: &str) -> Result<UsernsMode, UsernsError> {
        let (mode, opts) = match s.split_once(':') {
            Some((m, o)) => (m, Some(o)),
            None => (s, None),
        };
        match (mode, opts) {
            ("", None) => Ok(UsernsMode::Default),
            ("host", None) => Ok(UsernsMode::Host),
            ("keep-id", opts) => {
                let (mut uid, mut gid, mut own_only) = (None, None, false);
                for o in opts.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
                    let bad = || UsernsError::BadKeepIdOption(o.to_string());
                    if o == "own" {
                        own_only = true;
                        continue;
                    }
                    let (k, v) = o.split_once('=').ok_or_else(bad)?;
                    let n: u32 = v.parse().map_err(|_| bad())?;
                    match k {
                        "uid" => uid = Some(n),
                        "gid" => gid = Some(n),
                        _ => return Err(bad()),
                    }
                }
                Ok(UsernsMode::KeepId { uid, gid, own_only })
            }
            _ => Err(UsernsError::Unsupported(s.to_string())),
        }
    }
}

impl fmt::Display for UsernsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsernsMode::Default => Ok(()),
            UsernsMode::Host => f.write_str("host"),
            UsernsMode::KeepId { uid, gid, own_only } => {
                f.write_str("keep-id")?;
                let mut opts: Vec<String> = [("uid", uid), ("gid", gid)]
                    .iter()
                    .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
                    .collect();
                if *own_only {
                    opts.push("own".into());
                }
                if !opts.is_empty() {
                    write!(f, ":{}", opts.join(","))?;
                }
                Ok(())
            }
        }
    }
}

/// One line of a uid or gid map: `size` ids from `container` inside are `host` onwards in the
/// runtime's user namespace (the launcher's, rootless).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// A uid or gid map.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct IdMap(pub Vec<IdRange>);

impl IdMap {
    /// keep-id's map over a launcher namespace of `count` ids (0 = the user, 1.. = the
    /// subordinate range): container 0..keep-1 are launcher 1..keep, container `keep` is
    /// launcher 0 (the user), and container ids above `keep` are themselves, up to `count`.
    pub fn keep_id(keep: u32, count: u32) -> Option<IdMap> {
        if keep >= count {
            return None;
        }
        let mut v = Vec::new();
        if keep > 0 {
            v.push(IdRange {
                container: 0,
                host: 1,
                size: keep,
            });
        }
        v.push(IdRange {
            container: keep,
            host: 0,
            size: 1,
        });
        if count - 1 > keep {
            v.push(IdRange {
                container: keep + 1,
                host: keep + 1,
                size: count - 1 - keep,
            });
        }
        Some(IdMap(v))
    }

    /// The runtime-namespace id of container id `id`, if mapped.
    pub fn to_host(&self, id: u32) -> Option<u32> {
        self.0.iter().find_map(|r| {
            (id >= r.container && id - r.container < r.size).then(|| r.host + (id - r.container))
        })
    }

    /// A compact text naming the map (`c:h:n,c:h:n`), for snapshot keys and labels.
    pub fn key(&self) -> String {
        self.0
            .iter()
            .map(|r| format!("{}:{}:{}", r.container, r.host, r.size))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The lines of a /proc/PID/uid_map (or gid_map): (first id inside, first id outside, count).
pub fn map_lines(map: &str) -> Vec<(u64, u64, u64)> {
    map.lines()
        .filter_map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[0], f[1], f[2]))
        })
        .collect()
}

/// How many ids a launcher's /proc/PID/uid_map (or gid_map) gives its namespace, counting from
/// 0 (the user) through the subordinate range; None unless they are contiguous from 0.
pub fn launcher_id_count(map: &str) -> Option<u32> {
    let mut ranges: Vec<(u64, u64)> = map_lines(map)
        .into_iter()
        .map(|(inside, _, size)| (inside, size))
        .collect();
    ranges.sort();
    let mut next = 0u64;
    for (start, size) in ranges {
        if start != next {
            return None;
        }
        next += size;
    }
    u32::try_from(next).ok().filter(|n| *n > 0)
}

/// The host user keep-id keeps: ids, and what their passwd entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUser {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub group: String,
    pub gecos: String,
    /// `$HOME` (as podman), else the passwd home.
    pub home: String,
}

impl HostUser {
    /// The user running burrow.
    pub fn current() -> HostUser {
        let uid = nix::unistd::getuid();
        let gid = nix::unistd::getgid();
        let pw = nix::unistd::User::from_uid(uid).ok().flatten();
        let gr = nix::unistd::Group::from_gid(gid).ok().flatten();
        let name = pw
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| format!("u{uid}")));
        let home = std::env::var("HOME")
            .ok()
            .filter(|h| h.starts_with('/'))
            .or_else(|| pw.as_ref().map(|p| p.dir.display().to_string()))
            .unwrap_or_else(|| "/".into());
        HostUser {
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            group: gr.map(|g| g.name).unwrap_or_else(|| name.clone()),
            gecos: pw
                .as_ref()
                .map(|p| p.gecos.to_string_lossy().into_owned())
                .unwrap_or_default(),
            name,
            home,
        }
    }
}

/// A keep-id container's plan: its maps, and the user it runs as by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepId {
    pub uid_map: IdMap,
    pub gid_map: IdMap,
    /// The user's ids inside.
    pub uid: u32,
    pub gid: u32,
    pub user: HostUser,
    /// `own`: the user's ids are the launcher's root, so the image's files need no shift.
    pub own_only: bool,
}

impl KeepId {
    /// The plan for `keep-id[:uid,gid]` of `user` over a launcher with `uid_count`/`gid_count`
    /// ids (see [`launcher_id_count`]).
    pub fn new(
        opts: (Option<u32>, Option<u32>),
        own_only: bool,
        user: HostUser,
        (uid_count, gid_count): (u32, u32),
    ) -> Result<KeepId, UsernsError> {
        let uid = opts.0.unwrap_or(user.uid);
        let gid = opts.1.unwrap_or(user.gid);
        let (uid_map, gid_map) = if own_only {
            // runc wants a root inside: the first subordinate id, which owns nothing.
            if uid_count <= 1 || gid_count <= 1 {
                return Err(UsernsError::SingleIdOwn);
            }
            let own = |what, id| {
                if id == 0 {
                    return Err(UsernsError::OwnRoot(what));
                }
                Ok(IdMap(vec![
                    IdRange {
                        container: 0,
                        host: 1,
                        size: 1,
                    },
                    IdRange {
                        container: id,
                        host: 0,
                        size: 1,
                    },
                ]))
            };
            (own("uid", uid)?, own("gid", gid)?)
        } else {
            if uid_count <= 1 || gid_count <= 1 {
                return Err(UsernsError::SingleId);
            }
            let map = |what, id, count| {
                IdMap::keep_id(id, count).ok_or(UsernsError::OutOfRange { what, id, count })
            };
            (map("uid", uid, uid_count)?, map("gid", gid, gid_count)?)
        };
        Ok(KeepId {
            uid_map,
            gid_map,
            uid,
            gid,
            user,
            own_only,
        })
    }

    /// The plan for a rootless launcher whose child is `child_pid` (its maps read from /proc).
    pub fn for_launcher(
        opts: (Option<u32>, Option<u32>),
        own_only: bool,
        child_pid: i32,
    ) -> Result<KeepId, UsernsError> {
        let count = |which: &str| -> Result<u32, UsernsError> {
            let path = format!("/proc/{child_pid}/{which}");
            let text = std::fs::read_to_string(&path).map_err(|e| UsernsError::LauncherMap {
                path: path.clone(),
                reason: format!("{e} (is the rootless containerd running? burrow setup status)"),
            })?;
            launcher_id_count(&text).ok_or_else(|| UsernsError::LauncherMap {
                path,
                reason: format!("the ids inside are not contiguous from 0: {text:?}"),
            })
        };
        KeepId::new(
            opts,
            own_only,
            HostUser::current(),
            (count("uid_map")?, count("gid_map")?),
        )
    }

    /// The name of the remapped snapshot of the image snapshot `chain_id` for these maps.
    pub fn snapshot_key(&self, chain_id: &str) -> String {
        format!(
            "{chain_id}-burrow-userns-u{}-g{}",
            self.uid_map.key(),
            self.gid_map.key()
        )
    }

    /// The default `--user` of the container: the user's ids inside.
    pub fn default_user(&self) -> String {
        format!("{}:{}", self.uid, self.gid)
    }

    /// The image's /etc/passwd with an entry for the user appended when it has none for the
    /// uid (as podman): name, home and shell; None when the image has one.
    pub fn passwd(&self, image_passwd: &str) -> Option<String> {
        if has_id(image_passwd, self.uid) {
            return None;
        }
        let u = &self.user;
        Some(format!(
            "{}{}:x:{}:{}:{}:{}:/bin/sh\n",
            with_newline(image_passwd),
            u.name,
            self.uid,
            self.gid,
            u.gecos.replace([':', '\n'], " "),
            u.home
        ))
    }

    /// The image's /etc/group with the user's group appended when it has none for the gid.
    pub fn group(&self, image_group: &str) -> Option<String> {
        if has_id(image_group, self.gid) {
            return None;
        }
        Some(format!(
            "{}{}:x:{}:{}\n",
            with_newline(image_group),
            self.user.group,
            self.gid,
            self.user.name
        ))
    }

    /// Gives the spec its own user namespace with these maps. /sys is bound from the runtime's
    /// (sysfs cannot be mounted afresh from a user namespace that does not own the network
    /// namespace, which `run` makes ahead of the task); with `own`, /dev/pts has no tty group.
    pub fn apply(&self, spec: &mut Spec) -> Result<(), oci_spec::OciSpecError> {
        let to_oci = |m: &IdMap| {
            m.0.iter()
                .map(|r| {
                    LinuxIdMappingBuilder::default()
                        .container_id(r.container)
                        .host_id(r.host)
                        .size(r.size)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let (uids, gids) = (to_oci(&self.uid_map)?, to_oci(&self.gid_map)?);
        if let Some(linux) = spec.linux_mut() {
            let mut ns = linux.namespaces().clone().unwrap_or_default();
            if !ns.iter().any(|n| n.typ() == LinuxNamespaceType::User) {
                ns.insert(
                    0,
                    LinuxNamespaceBuilder::default()
                        .typ(LinuxNamespaceType::User)
                        .build()?,
                );
            }
            linux.set_namespaces(Some(ns));
            linux.set_uid_mappings(Some(uids));
            linux.set_gid_mappings(Some(gids));
        }
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for m in mounts.iter_mut() {
            if m.destination().to_str() == Some("/sys") && m.typ().as_deref() == Some("sysfs") {
                let mut opts: Vec<String> = vec!["rbind".into()];
                opts.extend(m.options().clone().unwrap_or_default());
                m.set_typ(Some("bind".into()));
                m.set_source(Some("/sys".into()));
                m.set_options(Some(opts));
            }
            // With `own` there is no tty group (gid 5) inside: /dev/pts keeps the user's group.
            if self.own_only && m.typ().as_deref() == Some("devpts") {
                let opts = m.options().clone().unwrap_or_default();
                m.set_options(Some(opts.into_iter().filter(|o| o != "gid=5").collect()));
            }
        }
        spec.set_mounts(Some(mounts));
        Ok(())
    }
}

/// What keep-id adds to a container being created: the user's passwd and group entries (in the
/// image's files as `spec::build` resolves users, and as files in the state dir bound over
/// /etc/passwd and /etc/group), and the plan for a rootless endpoint.
pub mod create_parts {
    use oci_spec::runtime::{Mount, MountBuilder};

    use super::{KeepId, UsernsError, UsernsMode};
    use crate::containers::Ctx;
    use crate::images::runnable::ImageDefaults;

    /// The keep-id plan `mode` asks for on this endpoint (None for the default and host).
    pub fn plan(ctx: &Ctx, mode: &str) -> Result<Option<KeepId>, UsernsError> {
        match mode.parse::<UsernsMode>()? {
            UsernsMode::Default | UsernsMode::Host => Ok(None),
            UsernsMode::KeepId { uid, gid, own_only } => match &ctx.ep.launcher {
                None => Err(UsernsError::Rootful),
                Some(l) => KeepId::for_launcher((uid, gid), own_only, l.child_pid).map(Some),
            },
        }
    }

    /// Adds the user's entries to the image's passwd and group (in `image`) and writes them
    /// into the container's state dir; returns the mounts that put them in the container.
    pub fn user_files(
        ctx: &Ctx,
        k: &KeepId,
        image: &mut ImageDefaults,
        id: &str,
    ) -> anyhow::Result<Vec<Mount>> {
        let mut mounts = Vec::new();
        let files = [
            ("passwd", k.passwd(&image.passwd)),
            ("group", k.group(&image.group)),
        ];
        for (name, content) in files {
            let Some(content) = content else { continue };
            let path = ctx.store.write_file(id, name, &content)?;
            if name == "passwd" {
                image.passwd = content;
            } else {
                image.group = content;
            }
            mounts.push(
                MountBuilder::default()
                    .destination(format!("/etc/{name}"))
                    .typ("bind")
                    .source(path)
                    .options(vec!["rbind".to_string(), "rprivate".into()])
                    .build()?,
            );
        }
        Ok(mounts)
    }
}

fn with_newline(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// Whether a passwd or group file has an entry with id `id` (the third field).
fn has_id(file: &str, id: u32) -> bool {
    file.lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.split(':').nth(2).and_then(|x| x.parse::<u32>().ok()) == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> HostUser {
        HostUser {
            uid: 1000,
            gid: 1001,
            name: "alice".into(),
            group: "staff".into(),
            gecos: "Alice A".into(),
            home: "/home/alice".into(),
        }
    }

    #[test]
    fn modes_parse_and_print_back() {
        for s in [
            "",
            "host",
            "keep-id",
            "keep-id:uid=11",
            "keep-id:uid=11,gid=12",
            "keep-id:own",
            "keep-id:uid=7,own",
        ] {
            assert_eq!(s.parse::<UsernsMode>().unwrap().to_string(), s);
        }
        assert_eq!(
            "keep-id:gid=3".parse::<UsernsMode>().unwrap(),
            UsernsMode::KeepId {
                uid: None,
                gid: Some(3),
                own_only: false
            }
        );
        for bad in ["auto", "nomap", "ns:/proc/1/ns/user", "private", "host:x"] {
            let e = bad.parse::<UsernsMode>().unwrap_err();
            assert!(matches!(e, UsernsError::Unsupported(_)), "{bad}");
            assert!(e.to_string().contains("keep-id"), "{e}");
        }
        for bad in ["keep-id:uid=x", "keep-id:size=3", "keep-id:uid"] {
            assert!(matches!(
                bad.parse::<UsernsMode>(),
                Err(UsernsError::BadKeepIdOption(_))
            ));
        }
    }

    #[test]
    fn keep_id_maps_like_podman() {
        // podman run --userns=keep-id:uid=11 over 65537 ids: "0 1 11 / 11 0 1 / 12 12 65525".
        let m = IdMap::keep_id(11, 65537).unwrap();
        assert_eq!(m.key(), "0:1:11,11:0:1,12:12:65525");
        assert_eq!(m.to_host(0), Some(1));
        assert_eq!(m.to_host(10), Some(11));
        assert_eq!(m.to_host(11), Some(0));
        assert_eq!(m.to_host(12), Some(12));
        assert_eq!(m.to_host(65536), Some(65536));
        assert_eq!(m.to_host(65537), None);
        assert_eq!(IdMap::keep_id(0, 3).unwrap().key(), "0:0:1,1:1:2");
        assert_eq!(IdMap::keep_id(2, 3).unwrap().key(), "0:1:2,2:0:1");
        assert!(IdMap::keep_id(3, 3).is_none());
    }

    #[test]
    fn launcher_maps_count_from_zero() {
        assert_eq!(
            launcher_id_count(
                "         0       1000          1\n         1     100000      65536\n"
            ),
            Some(65537)
        );
        assert_eq!(launcher_id_count("0 1000 1\n"), Some(1));
        assert_eq!(launcher_id_count("0 1000 1\n5 100000 10\n"), None);
        assert_eq!(launcher_id_count(""), None);
    }

    #[test]
    fn plans_refuse_what_cannot_be_mapped() {
        assert_eq!(
            KeepId::new((None, None), false, user(), (1, 1)),
            Err(UsernsError::SingleId)
        );
        let e = KeepId::new((None, None), false, user(), (1000, 65537)).unwrap_err();
        assert!(matches!(e, UsernsError::OutOfRange { what: "uid", .. }));
        let k = KeepId::new((None, None), false, user(), (65537, 65537)).unwrap();
        assert_eq!((k.uid, k.gid), (1000, 1001));
        assert_eq!(k.default_user(), "1000:1001");
        assert!(k
            .snapshot_key("sha256:abc")
            .starts_with("sha256:abc-burrow-userns-u0:1:1000,"));
        let k = KeepId::new((Some(5), Some(6)), false, user(), (65537, 65537)).unwrap();
        assert_eq!(k.uid_map.to_host(5), Some(0));
        assert_eq!(k.gid_map.to_host(6), Some(0));
        // own: the user's ids are the launcher's root, and root the first subordinate id.
        let k = KeepId::new((None, None), true, user(), (65537, 65537)).unwrap();
        assert_eq!(k.uid_map.key(), "0:1:1,1000:0:1");
        assert_eq!(k.gid_map.key(), "0:1:1,1001:0:1");
        assert_eq!(k.uid_map.to_host(2), None);
        assert_eq!(
            KeepId::new((None, None), true, user(), (1, 1)),
            Err(UsernsError::SingleIdOwn)
        );
        assert_eq!(
            KeepId::new((Some(0), None), true, user(), (9, 9)),
            Err(UsernsError::OwnRoot("uid"))
        );
    }

    #[test]
    fn commit_and_export_of_keep_id_containers_are_refused() {
        use std::collections::HashMap;
        let l =
            |m: &str| HashMap::from([(crate::containers::labels::USERNS.to_string(), m.into())]);
        assert!(refuse_shifted(&HashMap::new(), "commit", "c").is_ok());
        assert!(refuse_shifted(&l("host"), "commit", "c").is_ok());
        let e = refuse_shifted(&l("keep-id:uid=3"), "export", "c").unwrap_err();
        assert!(
            e.to_string().starts_with("cannot export container c"),
            "{e}"
        );
    }

    #[test]
    fn passwd_and_group_get_the_user_when_missing() {
        let k = KeepId::new((None, None), false, user(), (65537, 65537)).unwrap();
        let p = k.passwd("root:x:0:0:root:/root:/bin/sh").unwrap();
        assert_eq!(
            p,
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001:Alice A:/home/alice:/bin/sh\n"
        );
        assert_eq!(k.passwd("bob:x:1000:1000::/home/bob:/bin/sh\n"), None);
        assert_eq!(k.group("").unwrap(), "staff:x:1001:alice\n");
        assert_eq!(k.group("staff:x:1001:\n"), None);
    }

    #[test]
    fn the_spec_gets_a_user_namespace_and_bound_sys() {
        let defaults = crate::images::runnable::ImageDefaults {
            cmd: vec!["true".into()],
            ..Default::default()
        };
        let opts = crate::containers::spec::Options {
            id: "x".into(),
            hostname: "x".into(),
            args: vec![],
            entrypoint: None,
            env: vec![],
            workdir: None,
            user: None,
            tty: false,
            privileged: false,
            read_only: false,
            cap_add: vec![],
            cap_drop: vec![],
            seccomp: crate::containers::spec::Seccomp::Unconfined,
            no_new_privileges: false,
            netns: crate::containers::spec::NetNs::New,
            cgroups: crate::containers::spec::Cgroups::Unavailable { reason: "x".into() },
            limits: Default::default(),
            mounts: vec![],
            annotations: Default::default(),
            single_id: false,
        };
        let mut spec = crate::containers::spec::build(&defaults, &opts).unwrap();
        let k = KeepId::new((None, None), false, user(), (65537, 65537)).unwrap();
        k.apply(&mut spec).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User));
        assert_eq!(linux.uid_mappings().as_ref().unwrap().len(), 3);
        let sys = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination().to_str() == Some("/sys"))
            .unwrap();
        assert_eq!(sys.typ().as_deref(), Some("bind"));
    }
}
