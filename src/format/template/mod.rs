//! Go's text/template, as Docker's `--format` uses it: actions, pipelines, variables,
//! `if`/`else if`/`with`/`range` (with `break`/`continue`), trim markers and comments, Go's
//! builtin functions and Docker's (`json`, `split`, `join`, `title`, `lower`, `upper`, `pad`,
//! `truncate`), over JSON data ([`Value::from_json`]).
//!
//! Missing fields follow Docker's typed data: a JSON object is a Go struct, whose missing field
//! is an error ("can't evaluate field X"), except the objects Docker declares as maps
//! ([`value::MAP_FIELDS`]: Labels, Networks, Ports, Options, ...), whose missing key prints
//! `<no value>`. `{{define}}`, `{{template}}` and `{{block}}` are not supported.
//!
//! ```
//! use burrow::format::template::{Template, Value};
//! let t = Template::parse("", "{{range $k, $v := .Labels}}{{$k}}={{$v | upper}} {{end}}").unwrap();
//! let data = Value::from_json(&serde_json::json!({"Labels": {"a": "x", "b": "y"}}));
//! assert_eq!(t.execute(&data).unwrap(), "a=X b=Y ");
//! ```

mod exec;
mod funcs;
mod lex;
mod parse;
mod printf;
pub mod value;

pub use value::Value;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    root: Vec<parse::Node>,
}

/// A template that does not parse: Go's `template: NAME:LINE: message`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {name}:{line}: {msg}")]
pub struct ParseError {
    name: String,
    line: usize,
    msg: String,
}

impl ParseError {
    fn new(src: &str, at: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            name: String::new(),
            line: 1 + src[..at.min(src.len())].matches('\n').count(),
            msg: msg.into(),
        }
    }

    /// The line (from 1) the problem is on.
    pub fn line(&self) -> usize {
        self.line
    }
}

/// A template that failed on its data: Go's
/// `template: NAME:LINE:COL: executing "NAME" at <ACTION>: message`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {name}:{line}:{col}: executing \"{name}\" at <{context}>: {msg}")]
pub struct ExecError {
    name: String,
    line: usize,
    col: usize,
    context: String,
    msg: String,
}

impl ExecError {
    fn new(t: &Template, at: usize, context: &str, msg: impl Into<String>) -> ExecError {
        let before = &t.src[..at.min(t.src.len())];
        let (line, col) = match before.rfind('\n') {
            Some(nl) => (1 + before.matches('\n').count(), at - nl - 1),
            None => (1, at),
        };
        ExecError {
            name: t.name.clone(),
            line,
            col,
            context: context.to_owned(),
            msg: msg.into(),
        }
    }
}

/// Either failure of a template.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}

impl Template {
    /// Parses `src`; `name` is the name errors give (Docker's is empty, `version` for `version`).
    pub fn parse(name: &str, src: &str) -> Result<Template, ParseError> {
        let named = |mut e: ParseError| {
            e.name = name.to_owned();
            e
        };
        let tokens = lex::lex(src).map_err(named)?;
        let root = parse::parse(src, tokens).map_err(named)?;
        Ok(Template {
            name: name.to_owned(),
            src: src.to_owned(),
            root,
        })
    }

    /// The template's text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Runs the template over `data`.
    pub fn execute(&self, data: &Value) -> Result<String, ExecError> {
        let mut e = exec::Exec::new(self, data, false);
        e.run(data)?;
        Ok(e.out)
    }

    /// Runs the template over a table's header names with Docker's header functions (`upper`,
    /// `json`, `split`, ... leave the name as it is). Like Docker, an error ends the header
    /// where it happens, without failing.
    pub fn execute_header(&self, names: &Value) -> String {
        let mut e = exec::Exec::new(self, names, true);
        let _ = e.run(names);
        e.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        Value::from_json(&json!({
            "Name": "web",
            "Id": "0123456789abcdef",
            "Count": 3,
            "Ratio": 0.5,
            "Running": true,
            "Empty": "",
            "Nothing": null,
            "Args": ["sh", "-c", "echo hi"],
            "Config": {"Labels": {"app": "shop", "tier": "front"}, "Env": ["A=1", "B=2"]},
            "NetworkSettings": {"Networks": {
                "b-net": {"IPAddress": "10.4.1.2", "Gateway": "10.4.1.1"},
                "a-net": {"IPAddress": "10.4.0.2", "Gateway": "10.4.0.1"}
            }},
            "Labels": {}
        }))
    }

    fn run(src: &str) -> String {
        Template::parse("", src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .execute(&data())
            .unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    fn exec_err(src: &str) -> String {
        Template::parse("", src)
            .unwrap()
            .execute(&data())
            .unwrap_err()
            .to_string()
    }

    fn parse_err(src: &str) -> String {
        Template::parse("", src).unwrap_err().to_string()
    }

    #[test]
    fn fields_and_printing() {
        assert_eq!(
            run("{{.Name}} {{ .Count }} {{.Ratio}} {{.Running}}"),
            "web 3 0.5 true"
        );
        assert_eq!(run("{{.Args}}"), "[sh -c echo hi]");
        assert_eq!(run("{{.Config.Labels}}"), "map[app:shop tier:front]");
        assert_eq!(run("{{.Nothing}}"), "<nil>");
        assert_eq!(run("{{.Config.Labels.none}}"), "<no value>");
        assert_eq!(run("{{.Labels.x.y}}"), "<no value>");
        assert_eq!(run("{{$}}"), run("{{.}}"));
    }

    #[test]
    fn range_over_maps_in_key_order_and_lists() {
        assert_eq!(
            run("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"),
            "10.4.0.2 10.4.1.2 "
        );
        assert_eq!(
            run("{{range $n, $s := .NetworkSettings.Networks}}{{$n}}={{$s.Gateway}};{{end}}"),
            "a-net=10.4.0.1;b-net=10.4.1.1;"
        );
        assert_eq!(
            run("{{range $i, $a := .Args}}{{$i}}:{{$a}},{{end}}"),
            "0:sh,1:-c,2:echo hi,"
        );
        assert_eq!(run("{{range .Labels}}x{{else}}none{{end}}"), "none");
        assert_eq!(run("{{range .Labels.none}}x{{end}}").len(), 0);
        assert_eq!(
            run("{{range .Args}}{{if eq . \"-c\"}}{{continue}}{{end}}{{if eq . \"echo hi\"}}{{break}}{{end}}{{.}}{{end}}"),
            "sh"
        );
        assert_eq!(run("{{range 3}}{{.}}{{end}}"), "012");
    }

    #[test]
    fn conditionals_with_and_variables() {
        assert_eq!(
            run("{{if .Empty}}a{{else if .Running}}b{{else}}c{{end}}"),
            "b"
        );
        assert_eq!(run("{{if and .Running (gt .Count 2)}}yes{{end}}"), "yes");
        assert_eq!(run("{{if or .Empty .Nothing}}yes{{else}}no{{end}}"), "no");
        assert_eq!(run("{{if not .Empty}}yes{{end}}"), "yes");
        assert_eq!(run("{{with .Config}}{{.Labels.app}}{{end}}"), "shop");
        assert_eq!(run("{{with .Empty}}x{{else}}empty{{end}}"), "empty");
        assert_eq!(run("{{$x := .Name}}{{$x}}-{{$x = \"b\"}}{{$x}}"), "web-b");
        assert_eq!(run("{{range .Args}}{{$.Name}}{{end}}"), "webwebweb");
        assert_eq!(run("{{if ne .Name \"db\"}}{{len .Args}}{{end}}"), "3");
    }

    #[test]
    fn pipelines_and_functions() {
        assert_eq!(run("{{.Name | upper}}"), "WEB");
        assert_eq!(run("{{.Name | printf \"%s!\" | upper}}"), "WEB!");
        assert_eq!(run("{{join .Config.Env \",\"}}"), "A=1,B=2");
        assert_eq!(run("{{index .Args 1}}"), "-c");
        assert_eq!(run("{{index .Config.Labels \"tier\"}}"), "front");
        assert_eq!(run("{{(index .Args 2) | title}}"), "Echo Hi");
        assert_eq!(run("{{range split \"a:b\" \":\"}}[{{.}}]{{end}}"), "[a][b]");
        assert_eq!(
            run("{{json .Config.Labels}}"),
            r#"{"app":"shop","tier":"front"}"#
        );
        assert_eq!(run("{{json .Args}}"), r#"["sh","-c","echo hi"]"#);
        assert_eq!(run("{{truncate .Id 4}}|{{pad .Name 1 1}}|"), "0123| web |");
        assert_eq!(run("{{println .Name}}"), "web\n");
        assert_eq!(run("{{lower \"ABC\"}}{{len .Config.Labels}}"), "abc2");
        assert_eq!(run("{{(.Config).Labels.app}}"), "shop");
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(run("a  {{- .Name -}}  \n b"), "awebb");
        assert_eq!(run("a {{/* note */}}b"), "a b");
        assert_eq!(run("a {{- /* note */ -}} b"), "ab");
        assert_eq!(
            run("{{- range .Args }}\n  {{- . }}\n{{- end }}"),
            "sh-cecho hi"
        );
    }

    #[test]
    fn execution_errors_name_the_action_and_position() {
        assert_eq!(
            exec_err("{{.Nope}}"),
            "template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type struct"
        );
        assert_eq!(
            exec_err("x\n {{.Name.Foo}}"),
            "template: :2:8: executing \"\" at <.Name.Foo>: can't evaluate field Foo in type string"
        );
        assert_eq!(
            exec_err("{{len}}"),
            "template: :1:2: executing \"\" at <len>: wrong number of args for len: want 1 got 0"
        );
        assert_eq!(
            exec_err("{{.Name 3}}"),
            "template: :1:2: executing \"\" at <.Name>: Name has arguments but cannot be invoked as function"
        );
        assert!(exec_err("{{.Nothing.Field}}").contains("nil pointer evaluating"));
        assert!(exec_err("{{upper .Count}}").contains("expected string; got int"));
        assert!(exec_err("{{range .Name}}{{end}}").contains("range can't iterate over web"));
    }

    #[test]
    fn parse_errors_as_go_words_them() {
        assert_eq!(parse_err("{{.Name"), "template: :1: unclosed action");
        assert_eq!(parse_err("{{if .Name}}x"), "template: :1: unexpected EOF");
        assert_eq!(parse_err("{{end}}"), "template: :1: unexpected {{end}}");
        assert_eq!(parse_err("{{else}}"), "template: :1: unexpected {{else}}");
        assert_eq!(
            parse_err("{{foo .Name}}"),
            "template: :1: function \"foo\" not defined"
        );
        assert_eq!(
            parse_err("{{$x}}"),
            "template: :1: undefined variable \"$x\""
        );
        assert_eq!(parse_err("{{}}"), "template: :1: missing value for command");
        assert_eq!(
            parse_err("{{range $i, $e, $f := .}}{{end}}"),
            "template: :1: too many declarations in range"
        );
        assert_eq!(
            parse_err("{{if}}{{end}}"),
            "template: :1: missing value for if"
        );
        assert_eq!(
            parse_err("a\nb\n{{break}}"),
            "template: :3: {{break}} outside {{range}}"
        );
        assert_eq!(
            Template::parse("version", "{{.A").unwrap_err().to_string(),
            "template: version:1: unclosed action"
        );
        // A variable is scoped to the control structure that declares it.
        assert_eq!(
            parse_err("{{if .A}}{{$x := 1}}{{end}}{{$x}}"),
            "template: :1: undefined variable \"$x\""
        );
    }

    #[test]
    fn header_functions_keep_names() {
        let t = Template::parse(
            "",
            "{{.Names | upper}}\t{{json .Status}}\t{{pad .Ports 1 0}}\t{{.Other}}",
        )
        .unwrap();
        let names =
            Value::map_from_json(&json!({"Names": "NAMES", "Status": "STATUS", "Ports": "PORTS"}));
        assert_eq!(
            t.execute_header(&names),
            "NAMES\tSTATUS\t PORTS\t<no value>"
        );
    }
}
