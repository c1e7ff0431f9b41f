//! `burrow ps`: Docker's table (CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES),
//! `-a`, `-q`, `--no-trunc`, `--filter` (Docker's keys, `burrow::containers::listing`) and
//! `--format` (`table`,
//! `table TEMPLATE`, `json` or a Go template; `burrow::format::listing`).

use std::process::ExitCode;

use serde::Serialize;

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::listing::{self, ListFilter, ListOptions, Summary};
use burrow::containers::mounts::MountRecord;
use burrow::containers::{labels, record};
use burrow::format::listing::Listing;
use burrow::images::time;

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
    /// Filter output, repeatable: name=, id=, label=KEY[=VALUE], status=, exited=CODE,
    /// ancestor=IMAGE, network=, volume=, health=, before=CONTAINER, since=CONTAINER,
    /// publish=PORT[/PROTO], expose=PORT[/PROTO], is-task=false.
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
    /// Its networks' names, comma-separated.
    #[serde(rename = "Networks")]
    pub networks: String,
    /// Its volumes' names and binds' sources, comma-separated.
    #[serde(rename = "Mounts")]
    pub mounts: String,
    /// How many volumes it mounts.
    #[serde(rename = "LocalVolumes")]
    pub local_volumes: String,
    #[serde(rename = "Platform")]
    pub platform: String,
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    } else {
        s.to_string()
    }
}

/// The row `ps` prints for a container.
pub fn row(s: &Summary, no_trunc: bool) -> Row {
    let c = &s.container;
    let mounts = match c.labels.get(labels::STATE_DIR) {
        Some(dir) => {
            MountRecord::read(std::path::Path::new(dir), record::spec_of(c).as_ref()).mounts
        }
        None => Vec::new(),
    };
    let mut labels_text: Vec<String> = record::user_labels_of(c)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    labels_text.sort();
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
            .map(|t| time::go_string(time::unix_secs(t)))
            .unwrap_or_default(),
        running_for: s.created.map(super::ago).unwrap_or_default(),
        status: match (&s.state, s.health) {
            // Docker adds the health to a running (not paused) container's status.
            (super::State::Running { .. }, Some(h)) => {
                format!(
                    "{} {}",
                    super::status_text(&s.state, s.started),
                    h.ps_suffix()
                )
            }
            _ => super::status_text(&s.state, s.started),
        },
        state: s.state.word().to_string(),
        ports: s
            .shown_ports()
            .iter()
            .map(|p| p.display())
            .collect::<Vec<_>>()
            .join(", "),
        names: s.name.clone(),
        labels: labels_text.join(","),
        networks: record::networks_of(c).join(","),
        mounts: mounts
            .iter()
            .map(|m| {
                let shown = match m.name.is_empty() {
                    true => m.source.display().to_string(),
                    false => m.name.clone(),
                };
                if no_trunc {
                    shown
                } else {
                    truncate(&shown, 15)
                }
            })
            .collect::<Vec<_>>()
            .join(","),
        local_volumes: mounts
            .iter()
            .filter(|m| m.typ == "volume")
            .count()
            .to_string(),
        platform: c.labels.get(labels::PLATFORM).cloned().unwrap_or_default(),
        size: match s.size {
            Some((own, total)) => format!("{} (virtual {})", human_size(own), human_size(total)),
            None => String::new(),
        },
    }
}

/// Docker's `ps` table, and `--size`'s column.
const TABLE: &str =
    "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}";
const SIZE_COLUMN: &str = "\\t{{.Size}}";

/// Docker's column names for `ps`'s fields.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Names", "NAMES"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Networks", "NETWORKS"),
    ("Platform", "PLATFORM"),
];

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
    let mut table = TABLE.to_owned();
    if args.size {
        table.push_str(SIZE_COLUMN);
    }
    let format = Listing::parse(args.format.as_deref(), &table)?;
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
        let rows = rows
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()?;
        print!("{}", format.render(HEADERS, &rows)?);
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_tables_as_docker_prints_them() {
        let row = Row {
            id: "abc".into(),
            image: "img".into(),
            command: "\"sh\"".into(),
            created_at: String::new(),
            running_for: "2 seconds ago".into(),
            status: "Up".into(),
            state: "running".into(),
            ports: String::new(),
            names: "web".into(),
            labels: String::new(),
            size: String::new(),
            networks: "bridge".into(),
            mounts: String::new(),
            local_volumes: "0".into(),
            platform: "linux/amd64".into(),
        };
        let rows = [serde_json::to_value(&row).unwrap()];
        let render = |f: Option<&str>| {
            Listing::parse(f, TABLE)
                .unwrap()
                .render(HEADERS, &rows)
                .unwrap()
        };
        assert_eq!(render(Some("{{.ID}}\\t{{.Names}}")), "abc\tweb\n");
        assert!(render(Some("json")).contains("\"Names\":\"web\""));
        assert_eq!(
            render(None),
            "CONTAINER ID   IMAGE     COMMAND   CREATED         STATUS    PORTS     NAMES\n\
             abc            img       \"sh\"      2 seconds ago   Up                  web\n"
        );
        assert_eq!(truncate("abcdefgh", 5), "abcd…");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(307_200), "307.2kB");
    }
}
