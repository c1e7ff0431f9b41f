//! Docker's (Go's) flag forms on clap: boolean flags that also take `=true`/`=false`.

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

#[cfg(test)]
mod tests {
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
}
