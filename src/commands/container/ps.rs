//! `burrow ps`: Docker's table (CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES),
//! `-a`, `-q`, `--no-trunc`, `--filter` (name, id, status, label) and `--format`
//! (`json`, `table`, or a `{{.Field}}` template).

use std::process::ExitCode;

use serde::Serialize;

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::listing::{self, ListFilter, ListOptions, Summary};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Display the size of each container's writable layer (and, as virtual, with its image).
    #[arg(short, long)]
    pub size: bool,
    /// Show the N last created containers (all states).
    #[arg(short = 'n', long, value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Filter output (name=, id=, status=, label=KEY[=VALUE]).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format: table, json, or a Go-style template such as '{{.ID}} {{.Names}}'.
    #[arg(long)]
    pub format: Option<String>,
}

impl Args {
    /// How many of the newest containers `-n N` or `-l` asks for (all of them without).
    fn limit(&self) -> Option<usize> {
        match usize::try_from(self.last) {
            Ok(n) if n > 0 => Some(n),
            _ => self.latest.then_some(1),
        }
    }
}

/// Docker's decimal size units (2.1kB, 5.3MB): the images table's formatter.
fn human_size(b: u64) -> String {
    burrow::images::catalog::human_size(i64::try_from(b).unwrap_or(i64::MAX))
}

/// One row, with Docker's `--format` field names.
#[derive(Debug, Serialize)]
pub struct Row {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Image")]
    pub image: String,
    #[serde(rename = "Command")]
    pub command: String,
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "RunningFor")]
    pub running_for: String,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "State")]
    pub state: String,
    #[serde(rename = "Ports")]
    pub ports: String,
    #[serde(rename = "Names")]
    pub names: String,
    #[serde(rename = "Labels")]
    pub labels: String,
    #[serde(rename = "Size", skip_serializing_if = "String::is_empty")]
    pub size: String,
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    } else {
        s.to_string()
    }
}

/// Replaces `{{.Field}}` (and `{{json .}}`) in a template with the row's values.
pub fn render(template: &str, row: &Row) -> String {
    let v = serde_json::to_value(row).unwrap_or_default();
    let mut out = template.replace("\\t", "\t");
    if out.contains("{{json .}}") {
        out = out.replace("{{json .}}", &v.to_string());
    }
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            let text = val
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| val.to_string());
            out = out.replace(&format!("{{{{.{k}}}}}"), &text);
            out = out.replace(&format!("{{{{ .{k} }}}}"), &text);
        }
    }
    out
}

/// The row `ps` prints for a container.
fn row(s: &Summary, no_trunc: bool) -> Row {
    let c = &s.container;
    let labels_text: Vec<String> = c
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with("nerdctl/") && !k.starts_with("burrow/"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Row {
        id: if no_trunc {
            c.id.clone()
        } else {
            super::short_id(&c.id).to_string()
        },
        image: c.image.clone(),
        command: if no_trunc {
            format!("\"{}\"", s.command)
        } else {
            format!("\"{}\"", truncate(&s.command, 20))
        },
        created_at: s
            .created
            .map(burrow::images::time::rfc3339_nano)
            .unwrap_or_default(),
        running_for: s.created.map(super::ago).unwrap_or_default(),
        status: super::status_text(&s.state, s.started),
        state: s.state.word().to_string(),
        ports: s
            .ports
            .iter()
            .map(|p| p.display())
            .collect::<Vec<_>>()
            .join(", "),
        names: s.name.clone(),
        labels: labels_text.join(","),
        size: match s.size {
            Some((own, total)) => format!("{} (virtual {})", human_size(own), human_size(total)),
            None => String::new(),
        },
    }
}

/// Docker's tabwriter look: columns as wide as their widest cell, 3 spaces apart.
fn print_table(rows: &[Row], size: bool) {
    let mut table = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    if size {
        table[0].push("SIZE".into());
    }
    for r in rows {
        let mut line = vec![
            r.id.clone(),
            r.image.clone(),
            r.command.clone(),
            r.running_for.clone(),
            r.status.clone(),
            r.ports.clone(),
            r.names.clone(),
        ];
        if size {
            line.push(r.size.clone());
        }
        table.push(line);
    }
    crate::commands::images::print_table(&table);
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let opts = ListOptions {
        all: args.all,
        last: args.limit(),
        size: args.size,
        filters: args
            .filter
            .iter()
            .map(|f| f.parse::<ListFilter>())
            .collect::<Result<_, _>>()?,
    };
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let rows: Vec<Row> = listing::list(&ctx, &opts)
            .await?
            .iter()
            .map(|s| {
                let mut r = row(s, args.no_trunc);
                if args.size && r.size.is_empty() {
                    r.size = "0B".into();
                }
                r
            })
            .collect();
        if args.quiet {
            for r in rows {
                println!("{}", r.id);
            }
            return Ok(ExitCode::SUCCESS);
        }
        match args.format.as_deref() {
            Some("json") | Some("{{json .}}") => {
                for r in &rows {
                    println!("{}", serde_json::to_string(r)?);
                }
            }
            Some(t) if t != "table" && !t.is_empty() => {
                for r in &rows {
                    println!("{}", render(t, r));
                }
            }
            _ => print_table(&rows, args.size),
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_fields() {
        let row = Row {
            id: "abc".into(),
            image: "img".into(),
            command: "\"sh\"".into(),
            created_at: String::new(),
            running_for: String::new(),
            status: "Up".into(),
            state: "running".into(),
            ports: String::new(),
            names: "web".into(),
            labels: String::new(),
            size: String::new(),
        };
        assert_eq!(render("{{.ID}}\\t{{.Names}}", &row), "abc\tweb");
        assert!(render("{{json .}}", &row).contains("\"Names\":\"web\""));
        assert_eq!(truncate("abcdefgh", 5), "abcd…");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(307_200), "307.2kB");
    }
}
