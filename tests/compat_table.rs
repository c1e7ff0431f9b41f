//! docs/usage.md's "Compatibility with the docker CLI" tables against burrow's own help and
//! Docker 28's lists: a command or `run` flag that burrow gains or loses without its row changing,
//! or a Docker command or flag without a row, fails here. Needs only the built binary.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Docker 28.2's top-level commands, as `docker --help` groups them, then those it answers
/// without listing them and the two CLI plugins Docker's packages ship. Written out because CI
/// machines need not have docker 28.
const DOCKER_COMMANDS: &[&[&str]] = &[
    // Common commands.
    &[
        "run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search",
        "version", "info",
    ],
    // Management commands.
    &[
        "builder",
        "checkpoint",
        "container",
        "context",
        "image",
        "manifest",
        "network",
        "plugin",
        "system",
        "trust",
        "volume",
    ],
    // Swarm commands.
    &["config", "node", "secret", "service", "stack", "swarm"],
    // Commands.
    &[
        "attach", "commit", "cp", "create", "diff", "events", "export", "history", "import",
        "inspect", "kill", "load", "logs", "pause", "port", "rename", "restart", "rm", "rmi",
        "save", "start", "stats", "stop", "tag", "top", "unpause", "update", "wait",
    ],
    // Answered, not listed: `docker bake` (buildx's), `docker completion`, `docker help`.
    &["bake", "completion", "help"],
    // The docker-buildx-plugin and docker-compose-plugin packages.
    &["buildx", "compose"],
];

/// Docker 28.2's `docker run --help` flags: (short letter, long name).
const DOCKER_RUN_FLAGS: &[(Option<char>, &str)] = &[
    (None, "add-host"),
    (None, "annotation"),
    (Some('a'), "attach"),
    (None, "blkio-weight"),
    (None, "blkio-weight-device"),
    (None, "cap-add"),
    (None, "cap-drop"),
    (None, "cgroup-parent"),
    (None, "cgroupns"),
    (None, "cidfile"),
    (None, "cpu-count"),
    (None, "cpu-percent"),
    (None, "cpu-period"),
    (None, "cpu-quota"),
    (None, "cpu-rt-period"),
    (None, "cpu-rt-runtime"),
    (Some('c'), "cpu-shares"),
    (None, "cpus"),
    (None, "cpuset-cpus"),
    (None, "cpuset-mems"),
    (Some('d'), "detach"),
    (None, "detach-keys"),
    (None, "device"),
    (None, "device-cgroup-rule"),
    (None, "device-read-bps"),
    (None, "device-read-iops"),
    (None, "device-write-bps"),
    (None, "device-write-iops"),
    (None, "disable-content-trust"),
    (None, "dns"),
    (None, "dns-option"),
    (None, "dns-search"),
    (None, "domainname"),
    (None, "entrypoint"),
    (Some('e'), "env"),
    (None, "env-file"),
    (None, "expose"),
    (None, "gpus"),
    (None, "group-add"),
    (None, "health-cmd"),
    (None, "health-interval"),
    (None, "health-retries"),
    (None, "health-start-interval"),
    (None, "health-start-period"),
    (None, "health-timeout"),
    (None, "help"),
    (Some('h'), "hostname"),
    (None, "init"),
    (Some('i'), "interactive"),
    (None, "io-maxbandwidth"),
    (None, "io-maxiops"),
    (None, "ip"),
    (None, "ip6"),
    (None, "ipc"),
    (None, "isolation"),
    (None, "kernel-memory"),
    (Some('l'), "label"),
    (None, "label-file"),
    (None, "link"),
    (None, "link-local-ip"),
    (None, "log-driver"),
    (None, "log-opt"),
    (None, "mac-address"),
    (Some('m'), "memory"),
    (None, "memory-reservation"),
    (None, "memory-swap"),
    (None, "memory-swappiness"),
    (None, "mount"),
    (None, "name"),
    (None, "network"),
    (None, "network-alias"),
    (None, "no-healthcheck"),
    (None, "oom-kill-disable"),
    (None, "oom-score-adj"),
    (None, "pid"),
    (None, "pids-limit"),
    (None, "platform"),
    (None, "privileged"),
    (Some('p'), "publish"),
    (Some('P'), "publish-all"),
    (None, "pull"),
    (Some('q'), "quiet"),
    (None, "read-only"),
    (None, "restart"),
    (None, "rm"),
    (None, "runtime"),
    (None, "security-opt"),
    (None, "shm-size"),
    (None, "sig-proxy"),
    (None, "stop-signal"),
    (None, "stop-timeout"),
    (None, "storage-opt"),
    (None, "sysctl"),
    (None, "tmpfs"),
    (Some('t'), "tty"),
    (None, "ulimit"),
    (None, "use-api-socket"),
    (Some('u'), "user"),
    (None, "userns"),
    (None, "uts"),
    (Some('v'), "volume"),
    (None, "volume-driver"),
    (None, "volumes-from"),
    (Some('w'), "workdir"),
];

const SECTION: &str = "## Compatibility with the docker CLI";
const COMMANDS_HEADER: &str = "| command | burrow | notes |";
const FLAGS_HEADER: &str = "| flag | burrow | notes |";

/// The burrow column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Support {
    Yes,
    Partly,
    No,
}

impl Support {
    fn parse(s: &str) -> Option<Support> {
        match s {
            "yes" => Some(Support::Yes),
            "partly" => Some(Support::Partly),
            "no" => Some(Support::No),
            _ => None,
        }
    }

    fn accepted(self) -> bool {
        self != Support::No
    }
}

impl std::fmt::Display for Support {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Support::Yes => "yes",
            Support::Partly => "partly",
            Support::No => "no",
        })
    }
}

/// One table row: the code spans of its first cell, its burrow column and its notes.
#[derive(Debug)]
struct Row {
    names: Vec<String>,
    support: Support,
    notes: String,
}

/// A flag row: its short letter (if the row gives one) and support, by long name.
type FlagRows = BTreeMap<String, (Option<char>, Support)>;

fn is_docker_command(name: &str) -> bool {
    DOCKER_COMMANDS.iter().any(|group| group.contains(&name))
}

fn usage_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/usage.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The text of the compatibility section, up to the next `## ` heading.
fn section(doc: &str) -> &str {
    let start = doc
        .find(SECTION)
        .unwrap_or_else(|| panic!("docs/usage.md has no {SECTION:?} section"));
    let body = &doc[start + SECTION.len()..];
    let end = body.find("\n## ").unwrap_or(body.len());
    &body[..end]
}

/// A Markdown table row's cells, split on the `|` that are not escaped as `\|`.
fn cells(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    // The leading and trailing pipes leave an empty cell at each end.
    out.remove(0);
    out.pop();
    out
}

/// The text inside each pair of backticks.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The rows of the table under `header` in the section.
fn table(section: &str, header: &str) -> Vec<Row> {
    let mut lines = section.lines().skip_while(|l| l.trim() != header);
    assert!(
        lines.next().is_some(),
        "no table headed {header:?} in {SECTION:?}"
    );
    let sep = lines.next().unwrap_or_default();
    assert!(
        sep.starts_with("|---"),
        "{header:?} is not followed by |---|"
    );
    lines
        .take_while(|l| l.trim_start().starts_with('|'))
        .map(|l| {
            let c = cells(l);
            assert_eq!(c.len(), 3, "row {l:?} does not have 3 cells");
            let support = Support::parse(&c[1]).unwrap_or_else(|| {
                panic!("row {l:?}: the burrow column must be yes, partly or no")
            });
            Row {
                names: code_spans(&c[0]),
                support,
                notes: c[2].clone(),
            }
        })
        .collect()
}

/// Problems common to both tables: a duplicate row, `partly` or `no` without a note.
fn check_row(key: &str, row: &Row, seen: &mut BTreeSet<String>, problems: &mut Vec<String>) {
    if !seen.insert(key.to_string()) {
        problems.push(format!("{key} has more than one row"));
    }
    if row.support != Support::Yes && row.notes.is_empty() {
        problems.push(format!(
            "{key} is {} without a note saying what is missing or why",
            row.support
        ));
    }
}

fn command_rows(problems: &mut Vec<String>) -> BTreeMap<String, Support> {
    let doc = usage_md();
    let mut seen = BTreeSet::new();
    let mut out = BTreeMap::new();
    for row in table(section(&doc), COMMANDS_HEADER) {
        let [name] = row.names.as_slice() else {
            problems.push(format!("a command row must name one `command`: {row:?}"));
            continue;
        };
        check_row(&format!("`{name}`"), &row, &mut seen, problems);
        out.insert(name.clone(), row.support);
    }
    out
}

fn flag_rows(problems: &mut Vec<String>) -> FlagRows {
    let doc = usage_md();
    let mut seen = BTreeSet::new();
    let mut out = FlagRows::new();
    for row in table(section(&doc), FLAGS_HEADER) {
        let names: Vec<&str> = row.names.iter().map(String::as_str).collect();
        let (short, long) = match names.as_slice() {
            [l] => (None, l.strip_prefix("--")),
            [s, l] => (short_letter(s), l.strip_prefix("--")),
            _ => (None, None),
        };
        let Some(long) = long else {
            problems.push(format!(
                "a flag row must name `--long` or `-x`, `--long`: {row:?}"
            ));
            continue;
        };
        if names.len() == 2 && short.is_none() {
            problems.push(format!("`--{long}`: `{}` is not a short flag", names[0]));
        }
        check_row(&format!("`--{long}`"), &row, &mut seen, problems);
        out.insert(long.to_string(), (short, row.support));
    }
    out
}

/// `-x` as `x`.
fn short_letter(s: &str) -> Option<char> {
    let mut c = s.strip_prefix('-')?.chars();
    match (c.next(), c.next()) {
        (Some(x), None) if x.is_ascii_alphabetic() => Some(x),
        _ => None,
    }
}

/// `-x`, or "none".
fn short_text(short: Option<char>) -> String {
    short.map_or_else(|| "none".to_string(), |c| format!("`-{c}`"))
}

/// The standard output of `burrow ARGS...`, which must succeed.
fn burrow_help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_burrow"))
        .args(args)
        // One width wherever the test runs, so entries and their wrapped lines look the same.
        .env("COLUMNS", "100")
        .output()
        .expect("run burrow");
    assert!(
        out.status.success(),
        "burrow {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The lines of a help section (`Commands:`, `Options:`): the indented and blank lines after its
/// title (clap leaves blank lines between entries when one has a long help).
fn help_section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

/// The commands a help lists, with their visible aliases. Entries start at column 2; deeper
/// lines continue a description.
fn listed_commands(help: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in help_section(help, "Commands:") {
        if line.starts_with("   ") || !line.starts_with("  ") {
            continue;
        }
        out.extend(line.split_whitespace().next().map(str::to_string));
        for tag in ["[aliases: ", "[alias: "] {
            if let Some((_, rest)) = line.split_once(tag) {
                let list = rest.split(']').next().unwrap_or_default();
                out.extend(list.split(',').map(|a| a.trim().to_string()));
            }
        }
    }
    out
}

/// The flags a help lists: long name to short letter. An entry is `  -x, --long ...` or
/// `      --long ...`; descriptions are indented further.
fn listed_flags(help: &str) -> BTreeMap<String, Option<char>> {
    let mut out = BTreeMap::new();
    for line in help_section(help, "Options:") {
        let text = line.trim_start();
        if line.len() - text.len() > 6 || !text.starts_with('-') {
            continue;
        }
        let (short, rest) = match text.strip_prefix("--") {
            Some(_) => (None, text),
            None => (
                text.chars().nth(1),
                text.get(2..).unwrap_or_default().trim_start_matches(", "),
            ),
        };
        let Some(long) = rest.strip_prefix("--") else {
            continue;
        };
        let long: String = long
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        out.insert(long, short);
    }
    out
}

fn assert_none(problems: Vec<String>, what: &str) {
    assert!(
        problems.is_empty(),
        "docs/usage.md's {what} table does not match (see {SECTION:?} there):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_tables_hold_every_docker_28_command_and_run_flag_once() {
    let mut problems = Vec::new();
    let commands = command_rows(&mut problems);
    for c in DOCKER_COMMANDS.iter().flat_map(|group| group.iter()) {
        if !commands.contains_key(*c) {
            problems.push(format!("docker's `{c}` has no row"));
        }
    }
    for c in commands.keys() {
        if !is_docker_command(c) {
            problems.push(format!("`{c}` is not a docker 28 command"));
        }
    }
    let flags = flag_rows(&mut problems);
    for (short, long) in DOCKER_RUN_FLAGS {
        match flags.get(*long) {
            None => problems.push(format!("docker run's `--{long}` has no row")),
            Some((s, _)) if s != short => problems.push(format!(
                "`--{long}`: the row's short flag is {}, docker's is {}",
                short_text(*s),
                short_text(*short)
            )),
            Some(_) => {}
        }
    }
    for long in flags.keys() {
        if !DOCKER_RUN_FLAGS.iter().any(|(_, l)| l == long) {
            problems.push(format!("`--{long}` is not a docker 28 run flag"));
        }
    }
    assert_none(problems, "compatibility");
}

#[test]
fn commands_marked_yes_or_partly_are_exactly_the_docker_commands_burrow_lists() {
    let mut problems = Vec::new();
    let rows = command_rows(&mut problems);
    let listed = listed_commands(&burrow_help(&["--help"]));
    assert!(
        listed.contains("run") && listed.contains("container"),
        "burrow --help lists no commands that could be parsed: {listed:?}"
    );
    for (name, support) in &rows {
        if support.accepted() && !listed.contains(name) {
            problems.push(format!(
                "`{name}` is {support} but `burrow --help` does not list it"
            ));
        }
    }
    for name in listed.iter().filter(|n| is_docker_command(n)) {
        if !rows.get(name).is_some_and(|s| s.accepted()) {
            problems.push(format!(
                "burrow has `{name}`: its row must say yes or partly"
            ));
        }
    }
    assert_none(problems, "command");
}

#[test]
fn run_flags_marked_yes_or_partly_are_exactly_the_docker_flags_burrow_run_lists() {
    let mut problems = Vec::new();
    let rows = flag_rows(&mut problems);
    let listed = listed_flags(&burrow_help(&["run", "--help"]));
    assert!(
        listed.get("detach") == Some(&Some('d')) && listed.contains_key("rm"),
        "burrow run --help lists no flags that could be parsed: {listed:?}"
    );
    for (long, (short, support)) in &rows {
        if !support.accepted() {
            continue;
        }
        match listed.get(long) {
            None => problems.push(format!(
                "`--{long}` is {support} but `burrow run --help` does not list it"
            )),
            Some(s) if s != short => problems.push(format!(
                "`--{long}` is {support} with the short flag {}, burrow's is {}",
                short_text(*short),
                short_text(*s)
            )),
            Some(_) => {}
        }
    }
    let docker_flags = listed
        .keys()
        .filter(|l| DOCKER_RUN_FLAGS.iter().any(|(_, d)| d == l));
    for long in docker_flags {
        if !rows.get(long).is_some_and(|(_, s)| s.accepted()) {
            problems.push(format!(
                "burrow run has `--{long}`: its row must say yes or partly"
            ));
        }
    }
    assert_none(problems, "run flag");
}

/// Every command's `--help` opens with the summary `burrow --help` lists for it, and so do the
/// `container` forms: a flag group's own doc comment must never take a command's place.
#[test]
fn each_commands_help_opens_with_its_summary() {
    let top = burrow_help(&["--help"]);
    let mut checked = 0;
    for (parent, help) in [
        (None, top.clone()),
        (Some("container"), burrow_help(&["container", "--help"])),
    ] {
        for line in help_section(&help, "Commands:") {
            if line.starts_with("   ") || !line.starts_with("  ") {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(name) = words.next() else { continue };
            if name == "help" {
                continue;
            }
            let summary: String = words.collect::<Vec<_>>().join(" ");
            let summary = summary
                .split(" [alias")
                .next()
                .unwrap_or_default()
                .to_string();
            let mut args: Vec<&str> = parent.into_iter().collect();
            args.extend([name, "--help"]);
            let own = burrow_help(&args);
            let first = own.lines().next().unwrap_or_default();
            assert!(
                !summary.is_empty() && first.starts_with(summary.trim_end_matches('.')),
                "`burrow {}` opens with {first:?}, not its summary {summary:?}",
                args[..args.len() - 1].join(" ")
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} commands checked");
}
