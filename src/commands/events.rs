//! `burrow events` (and `system events`): Docker's event lines, or `--format`, for what happens
//! on containerd from now on (reading and filtering them is `burrow::containers::events`'s).

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use super::container::{block_on, Ctx};
use burrow::connection::Globals;
use burrow::containers::events::{self, Event, EventFilter, EventQuery};
use burrow::containers::logquery::parse_time;
use burrow::format::template::Template;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Show events from this time on (RFC 3339, a Unix timestamp or a duration before now).
    /// containerd keeps no history: events before the command started are not shown.
    #[arg(long)]
    pub since: Option<String>,
    /// Stop at this time (same forms as --since); without it, stream until interrupted.
    #[arg(long)]
    pub until: Option<String>,
    /// Filter: type=container|image, event=ACTION, container=ID|NAME, image=NAME,
    /// label=KEY[=VALUE].
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format with a Go template, or `json` for one JSON object per line.
    #[arg(long)]
    pub format: Option<String>,
}

/// How each event is printed.
enum Output {
    Text,
    Json,
    Template(Template),
}

impl Output {
    fn line(&self, e: &Event) -> anyhow::Result<String> {
        Ok(match self {
            Output::Text => e.text_line(),
            Output::Json => e.to_json().to_string(),
            Output::Template(t) => t.execute(&e.template_value())?,
        })
    }
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let q = EventQuery {
        filter: EventFilter::parse(&args.filter)?,
        since: args
            .since
            .as_deref()
            .map(|v| parse_time("--since", v, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|v| parse_time("--until", v, now))
            .transpose()?,
    };
    let out = match args.format.as_deref() {
        None | Some("") => Output::Text,
        Some("json") => Output::Json,
        Some(t) => Output::Template(
            Template::parse("", t).map_err(burrow::format::listing::FormatError::from)?,
        ),
    };
    block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let mut failed = None;
        events::stream(&ctx.client, &ctx.ep.namespace, &q, |e| {
            if failed.is_some() {
                return;
            }
            match out.line(e) {
                Ok(line) => {
                    let mut o = std::io::stdout().lock();
                    let _ = writeln!(o, "{line}");
                    let _ = o.flush();
                }
                Err(err) => failed = Some(err),
            }
        })
        .await?;
        match failed {
            Some(e) => Err(e),
            None => Ok(ExitCode::SUCCESS),
        }
    })
}
