//! Where a `cp` lands, by Docker's rules: into an existing directory under the source's name,
//! over an existing file, or as a new name in an existing directory; `SRC/.` copies contents.

use std::path::Path;

use anyhow::bail;

use super::Stat;

/// Where a copy lands: the directory to unpack into and the top entry's name there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub dir: String,
    pub name: String,
}

/// The last component of a source path (`.` for `/`), `SRC/.` read as `SRC`.
pub fn base_name(src: &str) -> String {
    Path::new(src.trim_end_matches("/.").trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| ".".into())
}

/// Docker's rules for SRC → DEST (`dest_stat` is what exists at DEST).
pub fn plan(src: &str, src_is_dir: bool, dest: &str, dest_stat: Stat) -> anyhow::Result<Plan> {
    let contents = src.ends_with("/.");
    let trimmed = dest.trim_end_matches('/');
    let dest_dir_part = || {
        Path::new(trimmed)
            .parent()
            .map(|p| p.to_string_lossy().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| {
                if dest.starts_with('/') {
                    "/".into()
                } else {
                    ".".into()
                }
            })
    };
    let dest_name = || {
        Path::new(trimmed)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    };
    if dest_stat.exists && dest_stat.dir {
        let name = if contents && src_is_dir {
            ".".into()
        } else {
            base_name(src)
        };
        return Ok(Plan {
            dir: dest.to_string(),
            name,
        });
    }
    if dest_stat.exists {
        if src_is_dir {
            bail!("cannot copy a directory to a file: {dest} is a file");
        }
        return Ok(Plan {
            dir: dest_dir_part(),
            name: dest_name(),
        });
    }
    if dest.ends_with('/') && !src_is_dir {
        bail!("the destination directory {dest} does not exist");
    }
    Ok(Plan {
        dir: dest_dir_part(),
        name: dest_name(),
    })
}

/// What is at a host path (a dangling symlink exists, and is no directory).
pub fn host_stat(p: &str) -> Stat {
    match std::fs::metadata(p) {
        Ok(m) => Stat {
            exists: true,
            dir: m.is_dir(),
        },
        Err(_) => Stat {
            exists: std::fs::symlink_metadata(p).is_ok(),
            dir: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Stat = Stat {
        exists: false,
        dir: false,
    };
    const DIR: Stat = Stat {
        exists: true,
        dir: true,
    };
    const FILE: Stat = Stat {
        exists: true,
        dir: false,
    };

    fn p(dir: &str, name: &str) -> Plan {
        Plan {
            dir: dir.into(),
            name: name.into(),
        }
    }

    #[test]
    fn docker_path_rules() {
        assert_eq!(
            plan("/etc/hosts", false, "/tmp", DIR).unwrap(),
            p("/tmp", "hosts")
        );
        assert_eq!(
            plan("/etc/hosts", false, "/tmp/h", NONE).unwrap(),
            p("/tmp", "h")
        );
        assert_eq!(
            plan("/etc/hosts", false, "/tmp/h", FILE).unwrap(),
            p("/tmp", "h")
        );
        assert!(plan("/etc/hosts", false, "/tmp/nodir/", NONE).is_err());
        assert_eq!(plan("/etc", true, "/tmp/x", NONE).unwrap(), p("/tmp", "x"));
        assert_eq!(plan("/etc", true, "/tmp", DIR).unwrap(), p("/tmp", "etc"));
        assert_eq!(plan("/etc/.", true, "/tmp", DIR).unwrap(), p("/tmp", "."));
        assert!(plan("/etc", true, "/tmp/file", FILE).is_err());
        assert_eq!(plan("f", false, "out", NONE).unwrap(), p(".", "out"));
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name("/etc/hosts"), "hosts");
        assert_eq!(base_name("/etc/."), "etc");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/"), ".");
    }
}
