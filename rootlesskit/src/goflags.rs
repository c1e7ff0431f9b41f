//! Go's flag forms on clap, shared by burrow-rootlesskit (RootlessKit's urfave/cli flags) and the
//! burrow CLI (Docker's cobra/pflag flags): boolean flags that also take `=true`/`=false`, and
//! Go's single-dash long flags (`-state-dir=D`).

use std::ffi::OsString;

use clap::{Arg, ArgAction};

/// Gives a boolean flag Go's forms, for an Args struct's `#[command(mut_args(...))]`:
/// `--rm` and `--rm=true` set it, `--rm=false` clears it (also `-d=false`), and the word after
/// a bare `--rm` is never its value. A flag named twice takes the later value, as in Go. Other
/// arguments are left as they are.
pub fn go_bool(arg: Arg) -> Arg {
    if !matches!(arg.get_action(), ArgAction::SetTrue) {
        return arg;
    }
    // A flag on by default (`--sig-proxy`) keeps its default, shown in the help.
    let arg = if arg.get_default_values().is_empty() {
        arg.default_value("false").hide_default_value(true)
    } else {
        arg
    };
    let id = arg.get_id().clone();
    arg.action(ArgAction::Set)
        .value_parser(parse_bool)
        .num_args(0..=1)
        .require_equals(true)
        .default_missing_value("true")
        .value_name("BOOL")
        .overrides_with(id)
}

/// Go's `strconv.ParseBool`: the words a boolean flag's `=VALUE` may be.
fn parse_bool(word: &str) -> Result<bool, String> {
    match word {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err("not a boolean: use true or false".to_string()),
    }
}

/// Rewrites Go's single-dash long flags (`-net=host`, `-pidns`, `-state-dir D`), which Go's
/// flag package (and so RootlessKit) takes, into clap's `--` form, for the flags `cmd` knows.
/// Stops at `--` or at the first word that is neither a flag nor a flag's value (the command
/// to run), so the command's own arguments are never touched.
pub fn single_dash_longs(cmd: &clap::Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut words = args.into_iter();
    if let Some(program) = words.next() {
        out.push(program);
    }
    while let Some(word) = words.next() {
        let Some(text) = word.to_str().map(str::to_owned) else {
            out.push(word);
            break;
        };
        if text == "--" || !text.starts_with('-') || text == "-" {
            out.push(word);
            break;
        }
        let (name, has_value) = match text.trim_start_matches('-').split_once('=') {
            Some((n, _)) => (n.to_owned(), true),
            None => (text.trim_start_matches('-').to_owned(), false),
        };
        let single = !text.starts_with("--");
        let long = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()));
        let short = single && name.chars().count() == 1;
        let arg = match (long, short) {
            (Some(a), _) => Some(a),
            (None, true) => {
                let c = name.chars().next();
                cmd.get_arguments().find(|a| a.get_short() == c)
            }
            (None, false) => None,
        };
        out.push(if single && long.is_some() {
            OsString::from(format!("-{text}"))
        } else {
            word
        });
        // A flag that takes a value in the next word (not `=`, not an optional boolean).
        let takes_next = arg.is_some_and(|a| {
            a.get_action().takes_values()
                && !a.is_require_equals_set()
                && a.get_num_args().is_none_or(|n| n.min_values() > 0)
        });
        if takes_next && !has_value {
            if let Some(v) = words.next() {
                out.push(v);
            }
        }
    }
    out.extend(words);
    out
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use clap::{Command, Parser};

    #[derive(Debug, Parser)]
    #[command(mut_args(super::go_bool))]
    struct T {
        #[arg(short, long)]
        detach: bool,
        #[arg(short, long)]
        interactive: bool,
        #[arg(short, long)]
        tty: bool,
        #[arg(long)]
        rm: bool,
        #[arg(long, default_value_t = true)]
        proxy: bool,
        #[arg(long)]
        name: Option<String>,
        rest: Vec<String>,
    }

    fn parse(line: &str) -> Result<T, clap::Error> {
        T::try_parse_from(std::iter::once("t").chain(line.split_whitespace()))
    }

    #[test]
    fn go_forms_of_booleans() {
        let t = parse("--rm=true -d=false --tty=True -i=0 --proxy=f").unwrap();
        assert!(t.rm && t.tty);
        assert!(!t.detach && !t.interactive && !t.proxy);
        let t = parse("-dit --rm --proxy").unwrap();
        assert!(t.detach && t.interactive && t.tty && t.rm && t.proxy);
        let t = parse("").unwrap();
        assert!(!t.detach && !t.rm && t.proxy, "defaults stay");
        // The later use wins, as in Go.
        let t = parse("--rm --rm=false -d -d").unwrap();
        assert!(!t.rm && t.detach);
    }

    #[test]
    fn a_bare_boolean_does_not_take_the_next_word() {
        let t = parse("--rm false -d true").unwrap();
        assert!(t.rm && t.detach);
        assert_eq!(t.rest, ["false", "true"]);
    }

    #[test]
    fn other_words_are_refused_and_other_flags_untouched() {
        let err = parse("--rm=yes").unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let t = parse("--name x img").unwrap();
        assert_eq!(t.name.as_deref(), Some("x"));
        let cmd: Command = <T as clap::CommandFactory>::command();
        let name = cmd.get_arguments().find(|a| a.get_id() == "name").unwrap();
        assert!(!name.is_require_equals_set());
    }

    #[test]
    fn go_single_dash_long_flags_become_clap_forms() {
        #[derive(Debug, Parser)]
        #[command(mut_args(super::go_bool))]
        struct L {
            #[arg(long)]
            net: Option<String>,
            #[arg(long)]
            pidns: bool,
            #[arg(short, long)]
            publish: Vec<String>,
            #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
            command: Vec<String>,
        }
        let cmd = <L as clap::CommandFactory>::command();
        let words = |line: &str| -> Vec<OsString> {
            std::iter::once("l")
                .chain(line.split_whitespace())
                .map(OsString::from)
                .collect()
        };
        let fixed = super::single_dash_longs(
            &cmd,
            words("-net host -pidns=false -p 1:2/tcp -publish=3:4/tcp sh -net -c x"),
        );
        let l = L::try_parse_from(fixed).unwrap();
        assert_eq!(l.net.as_deref(), Some("host"));
        assert!(!l.pidns);
        assert_eq!(l.publish, ["1:2/tcp", "3:4/tcp"]);
        assert_eq!(
            l.command,
            ["sh", "-net", "-c", "x"],
            "the command's words stay"
        );
        let unknown = super::single_dash_longs(&cmd, words("-bogus sh"));
        assert_eq!(
            unknown[1], "-bogus",
            "unknown names are left for clap to refuse"
        );
    }
}
