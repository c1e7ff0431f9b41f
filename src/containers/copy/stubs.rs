//! The stubs a step's mounts leave in a snapshot: the empty files and directories the runtime
//! makes at mount targets (and above them) the image did not have. Found before the step,
//! removed after it, so a build's layer holds none of them (as BuildKit's do not).

use std::path::Path;

/// Which of `paths` (absolute, inside `root`) and the directories above them `root` lacks, top
/// down; a symbolic link on the way ends the walk for that path (the runtime follows it, so
/// what it makes is elsewhere and left alone).
pub fn missing(root: &Path, paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        let mut at = String::new();
        for c in p.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if c == ".." {
                break;
            }
            at.push('/');
            at.push_str(c);
            match std::fs::symlink_metadata(root.join(&at[1..])) {
                Ok(m) if m.file_type().is_symlink() => break,
                Ok(_) => continue,
                Err(_) => {
                    if !out.contains(&at) {
                        out.push(at.clone());
                    }
                }
            }
        }
    }
    out
}

/// Removes each of `paths` that is an empty directory or an empty regular file, deepest first,
/// when no component on the way is a symbolic link. What a step put there stays.
pub fn remove(root: &Path, paths: &[String]) {
    let mut sorted: Vec<&String> = paths.iter().collect();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for p in sorted {
        let rel = p.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == "..") || through_link(root, rel) {
            continue;
        }
        let full = root.join(rel);
        let Ok(m) = std::fs::symlink_metadata(&full) else {
            continue;
        };
        if m.is_dir() {
            // Fails, and so keeps it, when the step left anything in it.
            let _ = std::fs::remove_dir(&full);
        } else if m.is_file() && m.len() == 0 {
            let _ = std::fs::remove_file(&full);
        }
    }
}

/// Whether a directory above `rel` in `root` is a symbolic link.
fn through_link(root: &Path, rel: &str) -> bool {
    let mut at = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return true,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_are_found_and_only_empty_ones_go() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("run")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("link")).unwrap();
        let paths = vec![
            "/run/secrets/token".to_string(),
            "/scratch".to_string(),
            "/link/x".to_string(),
            "/cache".to_string(),
        ];
        let found = missing(r, &paths);
        assert_eq!(
            found,
            ["/run/secrets", "/run/secrets/token", "/scratch", "/cache"]
        );
        // The step ran: the runtime made the stubs; the step left a file in /cache.
        std::fs::create_dir_all(r.join("run/secrets")).unwrap();
        std::fs::write(r.join("run/secrets/token"), "").unwrap();
        std::fs::create_dir_all(r.join("scratch")).unwrap();
        std::fs::create_dir_all(r.join("cache")).unwrap();
        std::fs::write(r.join("cache/kept"), "x").unwrap();
        remove(r, &found);
        assert!(!r.join("run/secrets").exists() && r.join("run").exists());
        assert!(!r.join("scratch").exists());
        assert!(r.join("cache/kept").exists());
    }
}
