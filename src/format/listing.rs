//! Docker's `--format` for lists (`ps`, `images`, `stats`, `history`, `volume ls`, ...): the
//! command's own table when absent or `table`, `table TEMPLATE` (a header row of Docker's
//! column names, then a row per item, aligned by [`tabwriter`]), `json` (one object per line)
//! or a Go template per item. `\t` and `\n` in the flag are a tab and a newline.

use serde_json::Value as Json;

use super::tabwriter;
use super::template::{ExecError, ParseError, Template, TemplateError, Value};

/// A `--format` that does not parse or fails on the data, worded as Docker's CLI words it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template parsing error: {0}")]
pub struct FormatError(pub TemplateError);

impl From<ParseError> for FormatError {
    fn from(e: ParseError) -> FormatError {
        FormatError(e.into())
    }
}

impl From<ExecError> for FormatError {
    fn from(e: ExecError) -> FormatError {
        FormatError(e.into())
    }
}

/// `--format` of a command that prints one document (`version`, `info`): its own text when
/// absent, `json` for the document as JSON, or a Go template over it.
#[derive(Debug, Clone)]
pub struct Document(Option<Template>);

impl Document {
    /// `name` is the name errors give (Docker names `version`'s template `version`).
    pub fn parse(name: &str, flag: Option<&str>) -> Result<Document, FormatError> {
        Ok(Document(match flag {
            None | Some("") => None,
            Some("json") => Some(Template::parse(name, "{{json .}}")?),
            Some(t) => Some(Template::parse(name, t)?),
        }))
    }

    /// The template's text and a newline, or None for the command's own text.
    /// Whether there is no template: the command prints its own text.
    pub fn is_text(&self) -> bool {
        self.0.is_none()
    }

    pub fn render(&self, data: &Json) -> Result<Option<String>, FormatError> {
        match &self.0 {
            None => Ok(None),
            Some(t) => Ok(Some(t.execute(&Value::from_json(data))? + "\n")),
        }
    }
}

/// A parsed `--format` for a list.
#[derive(Debug, Clone)]
pub struct Listing {
    table: bool,
    template: Template,
}

impl Listing {
    /// Reads `--format` as Docker does. `default_table` is the command's table as Docker
    /// writes it, e.g. `table {{.ID}}\t{{.Image}}`, used when the flag is absent or `table`.
    pub fn parse(flag: Option<&str>, default_table: &str) -> Result<Listing, FormatError> {
        let f = match flag {
            None | Some("") | Some("table") => default_table,
            Some("json") => "{{json .}}",
            Some(f) => f,
        };
        let (table, body) = match f.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, f),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        Ok(Listing {
            table,
            template: Template::parse("", &body)?,
        })
    }

    /// Whether the output is a table with a header row.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// The text for `rows`, each line ended. `headers` maps field names to Docker's column
    /// names for the command (`("ID", "CONTAINER ID")`); a field without one heads `<no value>`
    /// as in Docker.
    pub fn render(&self, headers: &[(&str, &str)], rows: &[Json]) -> Result<String, FormatError> {
        let mut body = String::new();
        for r in rows {
            body.push_str(&self.template.execute(&Value::from_json(r))?);
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        let names: serde_json::Map<String, Json> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Json::String((*v).to_owned())))
            .collect();
        let header = self
            .template
            .execute_header(&Value::map_from_json(&Json::Object(names)));
        Ok(tabwriter::align(&format!("{header}\n{body}")))
    }
}

/// `--format` of an inspect command: its indented JSON when absent, `json` for one compact
/// JSON array, or a Go template per item (no escapes: `\t` stays as written, as in Docker).
#[derive(Debug, Clone)]
pub enum Inspect {
    Indented,
    Json,
    Template(Template),
}

impl Inspect {
    pub fn parse(flag: Option<&str>) -> Result<Inspect, FormatError> {
        Ok(match flag {
            None | Some("") => Inspect::Indented,
            Some("json") => Inspect::Json,
            Some(t) => Inspect::Template(Template::parse("", t)?),
        })
    }

    /// The text for `items` unless [`Inspect::Indented`] (the command's own JSON): each
    /// template result on its own line, or one line of JSON.
    pub fn render(&self, items: &[Json]) -> Result<Option<String>, FormatError> {
        match self {
            Inspect::Indented => Ok(None),
            Inspect::Json => Ok(Some(
                serde_json::to_string(items).unwrap_or_default() + "\n",
            )),
            Inspect::Template(t) => {
                let mut out = String::new();
                for i in items {
                    out.push_str(&t.execute(&Value::from_json(i))?);
                    out.push('\n');
                }
                if out.is_empty() {
                    out.push('\n');
                }
                Ok(Some(out))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PS: &str = "table {{.ID}}\\t{{.Names}}";
    const HEADERS: &[(&str, &str)] = &[
        ("ID", "CONTAINER ID"),
        ("Names", "NAMES"),
        ("Status", "STATUS"),
    ];

    fn rows() -> Vec<Json> {
        vec![
            json!({"ID": "abc", "Names": "web", "Status": "Up 1 second"}),
            json!({"ID": "def", "Names": "a-much-longer-name", "Status": "Created"}),
        ]
    }

    fn render(flag: Option<&str>) -> String {
        Listing::parse(flag, PS)
            .unwrap()
            .render(HEADERS, &rows())
            .unwrap()
    }

    #[test]
    fn table_templates_get_docker_headers_and_columns() {
        assert_eq!(
            render(Some("table {{.Names}}\\t{{.Status}}")),
            "NAMES                STATUS\n\
             web                  Up 1 second\n\
             a-much-longer-name   Created\n"
        );
        assert_eq!(render(None), render(Some("table")));
        assert_eq!(
            render(None),
            "CONTAINER ID   NAMES\nabc            web\ndef            a-much-longer-name\n"
        );
        // A table with no rows is its header.
        let l = Listing::parse(Some("table {{.Status}}"), PS).unwrap();
        assert!(l.is_table());
        assert_eq!(l.render(HEADERS, &[]).unwrap(), "STATUS\n");
    }

    #[test]
    fn json_and_plain_templates() {
        assert_eq!(
            render(Some("json")).lines().next().unwrap(),
            r#"{"ID":"abc","Names":"web","Status":"Up 1 second"}"#
        );
        assert_eq!(
            render(Some("{{.Names}}\\t{{.ID}}")),
            "web\tabc\na-much-longer-name\tdef\n"
        );
        assert_eq!(
            Listing::parse(Some("{{.Names"), PS)
                .unwrap_err()
                .to_string(),
            "template parsing error: template: :1: unclosed action"
        );
        let l = Listing::parse(Some("{{.Nope}}"), PS).unwrap();
        assert!(l.render(HEADERS, &rows()).is_err());
    }

    #[test]
    fn one_document() {
        let v = json!({"Client": {"Version": "1.0"}, "Server": null});
        let doc = |f| Document::parse("version", Some(f)).unwrap().render(&v);
        assert_eq!(doc("{{.Client.Version}}").unwrap().unwrap(), "1.0\n");
        assert_eq!(
            doc("json").unwrap().unwrap(),
            "{\"Client\":{\"Version\":\"1.0\"},\"Server\":null}\n"
        );
        assert!(Document::parse("", None)
            .unwrap()
            .render(&v)
            .unwrap()
            .is_none());
        assert_eq!(
            doc("{{.Server.Version}}").unwrap_err().to_string(),
            "template parsing error: template: version:1:9: executing \"version\" at \
             <.Server.Version>: nil pointer evaluating .Server.Version"
        );
    }

    #[test]
    fn inspect_formats() {
        let items = [
            json!({"Name": "a", "Labels": {"x": "1"}}),
            json!({"Name": "b", "Labels": {}}),
        ];
        let t = Inspect::parse(Some("{{.Name}}\\t{{.Labels.x}}")).unwrap();
        assert_eq!(
            t.render(&items).unwrap().unwrap(),
            "a\\t1\nb\\t<no value>\n"
        );
        let j = Inspect::parse(Some("json")).unwrap();
        assert_eq!(
            j.render(&items[..1]).unwrap().unwrap(),
            "[{\"Labels\":{\"x\":\"1\"},\"Name\":\"a\"}]\n"
        );
        assert!(Inspect::parse(None)
            .unwrap()
            .render(&items)
            .unwrap()
            .is_none());
        assert_eq!(t.render(&[]).unwrap().unwrap(), "\n");
    }
}
