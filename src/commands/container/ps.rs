//! `burrow ps`: Docker's table (CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES),
//! `-a`, `-q`, `--no-trunc`, `--filter` (name, id, status, label) and `--format`
//! (`json`, `table`, or a `{{.Field}}` template).

use std::collections::HashMap;
use std::process::ExitCode;

use serde::Serialize;

use super::{Ctx, State};
use burrow::connection::Globals;

#[derive(Debug, clap::Args)]
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
    /// Filter output (name=, id=, status=, label=KEY[=VALUE]).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format: table, json, or a Go-style template such as '{{.ID}} {{.Names}}'.
    #[arg(long)]
    pub format: Option<String>,
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

fn matches(
    filters: &[(String, String)],
    row: &Row,
    st: &State,
    labels: &HashMap<String, String>,
) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "name" => row.names.contains(v.as_str()),
        "id" => row.id.starts_with(v.as_str()),
        "status" => st.word() == v,
        "label" => match v.split_once('=') {
            Some((lk, lv)) => labels.get(lk).map(String::as_str) == Some(lv),
            None => labels.contains_key(v),
        },
        _ => false,
    })
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let filters: Vec<(String, String)> = args
        .filter
        .iter()
        .map(|f| {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            match k {
                "name" | "id" | "status" | "label" => Ok((k.to_string(), v.to_string())),
                _ => Err(anyhow::anyhow!(
                    "unsupported --filter {f:?}: use name=, id=, status= or label="
                )),
            }
        })
        .collect::<anyhow::Result<_>>()?;
    let format = args.format.clone();
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let (containers, tasks) = tokio::join!(ctx.client.list(vec![]), ctx.client.list_tasks());
        let containers = containers?;
        let tasks: HashMap<String, _> = tasks?
            .into_iter()
            .map(|t| {
                // containerd fills `id` with the container's id in task lists.
                let key = if t.container_id.is_empty() {
                    t.id.clone()
                } else {
                    t.container_id.clone()
                };
                (key, t)
            })
            .collect();
        let mut rows = Vec::new();
        let mut sorted = containers;
        sorted.sort_by_key(|c| {
            std::cmp::Reverse(c.created_at.as_ref().map(|t| (t.seconds, t.nanos)))
        });
        for c in sorted {
            let st = super::with_recorded_exit(&ctx, &c.id, State::from_task(tasks.get(&c.id)));
            let all_shown = args.all || filters.iter().any(|(k, _)| k == "status");
            if !all_shown && !st.is_running() {
                continue;
            }
            let created = c.created_at.as_ref().map(super::timestamp);
            // Only a running container's start time is shown (its "Up" time).
            let started = if st.is_running() {
                ctx.store
                    .started_at(&c.id)
                    .or_else(|| c.updated_at.as_ref().map(super::timestamp))
                    .or(created)
            } else {
                None
            };
            let command = super::process_of(&c).args.join(" ");
            let ports: Vec<String> = super::ports_of(&c).iter().map(|p| p.display()).collect();
            let labels_text: Vec<String> = c
                .labels
                .iter()
                .filter(|(k, _)| !k.starts_with("nerdctl/") && !k.starts_with("burrow/"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let row = Row {
                id: if args.no_trunc {
                    c.id.clone()
                } else {
                    super::short_id(&c.id).to_string()
                },
                image: c.image.clone(),
                command: if args.no_trunc {
                    format!("\"{command}\"")
                } else {
                    format!("\"{}\"", truncate(&command, 20))
                },
                created_at: created
                    .map(burrow::images::time::rfc3339_nano)
                    .unwrap_or_default(),
                running_for: created.map(super::ago).unwrap_or_default(),
                status: super::status_text(&st, started),
                state: st.word().to_string(),
                ports: ports.join(", "),
                names: super::name_of(&c),
                labels: labels_text.join(","),
                size: if args.size {
                    match ctx
                        .client
                        .snapshot_sizes(&c.snapshotter, &c.snapshot_key)
                        .await
                    {
                        Ok((own, total)) => {
                            format!("{} (virtual {})", human_size(own), human_size(total))
                        }
                        Err(_) => "0B".into(),
                    }
                } else {
                    String::new()
                },
            };
            if matches(&filters, &row, &st, &c.labels) {
                rows.push(row);
            }
        }
        if args.quiet {
            for r in rows {
                println!("{}", r.id);
            }
            return Ok(ExitCode::SUCCESS);
        }
        match format.as_deref() {
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
            _ => {
                // Docker's tabwriter look: columns as wide as their widest cell, 3 spaces apart.
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
                if args.size {
                    table[0].push("SIZE".into());
                }
                for r in &rows {
                    table.push(vec![
                        r.id.clone(),
                        r.image.clone(),
                        r.command.clone(),
                        r.running_for.clone(),
                        r.status.clone(),
                        r.ports.clone(),
                        r.names.clone(),
                    ]);
                    if args.size {
                        if let Some(last) = table.last_mut() {
                            last.push(r.size.clone());
                        }
                    }
                }
                crate::commands::images::print_table(&table);
            }
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
