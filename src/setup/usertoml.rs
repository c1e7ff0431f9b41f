//! `setup install`'s lines in the user's burrow.toml: a marked block of the keys it chose
//! (snapshotter, cgroup manager, data root) at the top, beside whatever the user writes there
//! themselves. Install rewrites only the block, leaving out a key the user sets; uninstall
//! removes only the block (and the file when nothing else is left).

use super::layout::MARKER;

/// The first line of the block (it contains [`MARKER`], by which the block's data root is found).
const BEGIN: &str = "# Managed by burrow setup install: the lines up to the end mark are rewritten by `burrow setup install` and removed by `burrow setup uninstall`; write your own settings below it.";
/// The last line of the block.
const END: &str = "# End of the lines managed by burrow setup install.";
/// The keys install writes.
const KEYS: [&str; 3] = ["snapshotter", "cgroup_manager", "data_root"];

/// A key install would set that the user's own lines set to something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub key: String,
    /// What install would have written (`key = "value"`).
    pub wanted: String,
}

/// The user's part of `text`: everything but the block (or, in a file an older install wrote
/// whole, its marker line and its keys' lines).
fn user_part(text: &str) -> String {
    if let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) {
        if b < e {
            let after = &text[e + END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            return format!("{}{}", &text[..b], after);
        }
    }
    if !text.starts_with(MARKER) {
        return text.to_string();
    }
    let ours = |l: &str| {
        l.starts_with(MARKER)
            || KEYS.iter().any(|k| {
                l.strip_prefix(k)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
    };
    text.lines()
        .filter(|l| !ours(l))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `text` (the file as it is, empty when missing) with the block set to `values` (key, value;
/// a None value is left out), but for keys the user's part sets: those stay the user's, and
/// the ones set to something else are returned.
pub fn with_block(text: &str, values: &[(&str, Option<String>)]) -> (String, Vec<Kept>) {
    let user = user_part(text);
    let theirs: toml::Table = toml::from_str(&user).unwrap_or_default();
    let mut block = String::new();
    let mut kept = Vec::new();
    for (key, value) in values {
        let Some(value) = value else { continue };
        let line = format!("{key} = {}", toml::Value::String(value.clone()));
        match theirs.get(*key) {
            None => block.push_str(&format!("{line}\n")),
            Some(v) if v.as_str() == Some(value.as_str()) => {}
            Some(_) => kept.push(Kept {
                key: key.to_string(),
                wanted: line,
            }),
        }
    }
    let user = user.trim_start_matches('\n');
    let mut out = String::new();
    if !block.is_empty() {
        out = format!("{BEGIN}\n{block}{END}\n");
        if !user.is_empty() {
            out.push('\n');
        }
    }
    out.push_str(user);
    (out, kept)
}

/// `text` without the block; None when nothing but blank lines is left.
pub fn without_block(text: &str) -> Option<String> {
    let user = user_part(text);
    let user = user.trim_start_matches('\n');
    (!user.trim().is_empty()).then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(data_root: Option<&str>) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("snapshotter", Some("overlayfs".into())),
            ("cgroup_manager", Some("none".into())),
            ("data_root", data_root.map(String::from)),
        ]
    }

    #[test]
    fn the_block_goes_above_the_users_lines_and_leaves_with_uninstall() {
        let mine = "# my settings\nenv = [\"SLURM_*\"]\n";
        let (text, kept) = with_block(mine, &chosen(Some("/scratch/u/nerdctl")));
        assert!(kept.is_empty());
        assert!(text.starts_with(BEGIN), "{text}");
        assert!(text.ends_with(mine), "{text}");
        let cfg: crate::config::FileConfig = toml::from_str(&text).unwrap();
        assert_eq!(cfg.data_root.unwrap().to_str(), Some("/scratch/u/nerdctl"));
        assert_eq!(cfg.env.unwrap(), ["SLURM_*"]);
        // Again: the same file, not a second block.
        assert_eq!(
            with_block(&text, &chosen(Some("/scratch/u/nerdctl"))).0,
            text
        );
        assert_eq!(without_block(&text).as_deref(), Some(mine));
        let (alone, _) = with_block("", &chosen(None));
        assert_eq!(without_block(&alone), None);
    }

    #[test]
    fn a_key_the_user_sets_stays_theirs() {
        let mine = "snapshotter = \"native\"\ncgroup_manager = \"none\"\n";
        let (text, kept) = with_block(mine, &chosen(None));
        assert_eq!(text, mine, "nothing of install's is left to write");
        assert_eq!(
            kept,
            [Kept {
                key: "snapshotter".into(),
                wanted: "snapshotter = \"overlayfs\"".into()
            }]
        );
    }

    #[test]
    fn a_file_an_older_install_wrote_whole_keeps_the_lines_added_to_it() {
        let old = format!("{MARKER}: defaults chosen by `burrow setup check` for this host.\nsnapshotter = \"overlayfs\"\ncgroup_manager = \"none\"\nenv = [\"A\"]\n");
        assert_eq!(without_block(&old).as_deref(), Some("env = [\"A\"]\n"));
        let (text, _) = with_block(&old, &chosen(None));
        assert!(text.starts_with(BEGIN) && text.ends_with("env = [\"A\"]\n"));
        assert_eq!(text.matches("snapshotter").count(), 1);
    }
}
