//! `burrow inspect` (and `container inspect`): the library's Docker-shaped inspect documents
//! (`burrow::containers::inspect`), as JSON or through a `{{.Field}}` template.

use std::process::ExitCode;

use serde_json::Value;

use super::Ctx;
use burrow::connection::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format: json (default) or a `{{.Field}}` template over the top-level fields.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let mut out = Vec::new();
        for q in &args.containers {
            out.push(burrow::containers::inspect::inspect(&ctx, q).await?);
        }
        match args.format.as_deref() {
            None | Some("json") => println!("{}", serde_json::to_string_pretty(&out)?),
            Some(t) => {
                for v in &out {
                    println!("{}", render(t, v));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `{{.A.B}}` paths and `{{json .A}}` over the inspect JSON.
pub fn render(template: &str, v: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expr = rest[start + 2..start + end].trim();
        let (json_out, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let mut cur = v;
        for part in path
            .trim_start_matches('.')
            .split('.')
            .filter(|s| !s.is_empty())
        {
            cur = &cur[part];
        }
        if json_out || !cur.is_string() {
            out.push_str(&cur.to_string());
        } else {
            out.push_str(cur.as_str().unwrap_or_default());
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_walk_paths() {
        let v = serde_json::json!({"State":{"Status":"running","Pid":7},"NetworkSettings":{"IPAddress":"10.4.0.2"}});
        assert_eq!(
            render(
                "{{.State.Status}} {{.State.Pid}} {{.NetworkSettings.IPAddress}}",
                &v
            ),
            "running 7 10.4.0.2"
        );
        assert_eq!(
            render("{{json .State}}", &v),
            r#"{"Pid":7,"Status":"running"}"#
        );
    }
}
