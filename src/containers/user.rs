//! `--user`/image `User` resolution against the image's /etc/passwd and /etc/group, as Docker
//! does: names or numbers, `user[:group]`, and supplementary groups from /etc/group.

/// The ids a container process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The passwd home directory, when known (for HOME).
    pub home: Option<String>,
}

impl ResolvedUser {
    /// Whether these ids exist in a single-id user namespace (only uid and gid 0 are mapped).
    pub fn fits_single_id(&self) -> bool {
        self.uid == 0 && self.gid == 0 && self.additional_gids.iter().all(|g| *g == 0)
    }

    /// The same user where only id 0 exists (a rootless user without subordinate ids): uid and
    /// gid 0 (the user's own ids outside), no supplementary groups; the home directory stays.
    pub fn squashed(self) -> ResolvedUser {
        ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: self.home,
        }
    }
}

/// A group by name (from the image's /etc/group) or number, for `--group-add`.
pub fn group_id(spec: &str, group: &str) -> Result<u32, UserError> {
    if let Ok(n) = spec.parse::<u32>() {
        return Ok(n);
    }
    group_entries(group)
        .find(|(name, _, _)| *name == spec)
        .map(|(_, gid, _)| gid)
        .ok_or_else(|| UserError::NoGroup(spec.to_string()))
}

/// The user spec names someone the image does not know.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in the image's /etc/passwd")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in the image's /etc/group")]
    NoGroup(String),
}

struct Passwd<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = Passwd<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 6 || line.starts_with('#') {
            return None;
        }
        Some(Passwd {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

/// (name, gid, members) of each /etc/group line.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || line.starts_with('#') {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid` ...) given the contents of
/// the image's /etc/passwd and /etc/group (empty strings when the image has none).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };

    let entry =
        passwd_entries(passwd).find(|e| e.name == user_part || e.uid.to_string() == user_part);
    let (uid, mut gid, name, home) = match (&entry, user_part.parse::<u32>()) {
        (Some(e), _) => (
            e.uid,
            e.gid,
            Some(e.name.to_string()),
            Some(e.home.to_string()),
        ),
        (None, Ok(uid)) => (uid, 0, None, None),
        (None, Err(_)) => return Err(UserError::NoUser(user_part.to_string())),
    };

    let mut additional_gids = Vec::new();
    match group_part {
        Some(g) if !g.is_empty() => {
            gid = match group_entries(group).find(|(n, id, _)| *n == g || id.to_string() == g) {
                Some((_, id, _)) => id,
                None => g.parse().map_err(|_| UserError::NoGroup(g.to_string()))?,
            };
        }
        _ => {
            // Only without an explicit group, like Docker: supplementary groups of the user.
            if let Some(name) = &name {
                for (_, id, members) in group_entries(group) {
                    if members.contains(&name.as_str())
                        && id != gid
                        && !additional_gids.contains(&id)
                    {
                        additional_gids.push(id);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nwww-data:x:33:\nalice:x:1000:\nwheel:x:10:alice,bob\naudio:x:29:alice\n";

    #[test]
    fn names_numbers_and_groups() {
        assert_eq!(resolve("", PASSWD, GROUP).unwrap().uid, 0);
        let a = resolve("alice", PASSWD, GROUP).unwrap();
        assert_eq!(
            (a.uid, a.gid, a.additional_gids.clone()),
            (1000, 1000, vec![10, 29])
        );
        assert_eq!(a.home.as_deref(), Some("/home/alice"));
        let w = resolve("www-data:wheel", PASSWD, GROUP).unwrap();
        assert_eq!((w.uid, w.gid), (33, 10));
        assert!(w.additional_gids.is_empty());
        let n = resolve("4242:4343", PASSWD, GROUP).unwrap();
        assert_eq!((n.uid, n.gid, n.home), (4242, 4343, None));
        assert_eq!(resolve("1000", PASSWD, GROUP).unwrap().gid, 1000);
        assert_eq!(resolve("4242", "", "").unwrap().gid, 0);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(
            resolve("bob", PASSWD, GROUP),
            Err(UserError::NoUser(_))
        ));
        assert!(matches!(
            resolve("alice:nogroup", PASSWD, GROUP),
            Err(UserError::NoGroup(_))
        ));
    }
}
