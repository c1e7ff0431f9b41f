//! `burrow inspect` (and `container inspect`): the library's Docker-shaped inspect documents
//! (`burrow::containers::inspect`), as indented JSON, one line of JSON, or through a Go template
//! (`burrow::format`).

use std::process::ExitCode;

use super::Ctx;
use burrow::connection::Globals;
use burrow::format::listing::Inspect;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format: indented JSON (default), "json" (one line), or a Go template such as
    /// '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let format = Inspect::parse(args.format.as_deref())?;
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        // As Docker: what was found is printed, then the errors for what was not (exit 1).
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for q in &args.containers {
            match burrow::containers::inspect::inspect(&ctx, q).await {
                Ok(v) => out.push(v),
                Err(e) => errors.push(e),
            }
        }
        match format.render(&out)? {
            Some(text) => print!("{text}"),
            None => println!("{}", serde_json::to_string_pretty(&out)?),
        }
        for e in &errors {
            crate::commands::error::say(e);
        }
        Ok(if errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
