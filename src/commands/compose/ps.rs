//! `burrow compose ps` (the project's containers, `burrow ps`'s rows with Name, Service and
//! Project) and `compose logs` (their output, prefixed).

use std::process::ExitCode;
use std::time::SystemTime;

use burrow::compose::engine::logs::{self, Style};
use burrow::compose::engine::naming;
use burrow::compose::project::Project;
use burrow::connection::Globals;
use burrow::containers::listing::{self, ListFilter, ListOptions};
use burrow::containers::logquery::LogQuery;
use burrow::containers::Ctx;
use burrow::format::listing::Listing;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Show stopped containers too.
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only display the services' names.
    #[arg(long)]
    pub services: bool,
    /// Format: table, json, or a Go template such as '{{.Name}} {{.Service}}'.
    #[arg(long)]
    pub format: Option<String>,
    /// Services (default: all).
    #[arg(value_name = "SERVICE")]
    pub names: Vec<String>,
}

const TABLE: &str = "table {{.Name}}\\t{{.Image}}\\t{{.Command}}\\t{{.Service}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}";

const HEADERS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("Service", "SERVICE"),
    ("Project", "PROJECT"),
    ("RunningFor", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Ports", "PORTS"),
    ("Labels", "LABELS"),
];

pub fn run(args: Args, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    if args.services {
        for s in project.services_for(&args.names)? {
            println!("{s}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    project.services_for(&args.names)?;
    let format = Listing::parse(args.format.as_deref(), TABLE)?;
    let opts = ListOptions {
        all: args.all,
        filters: vec![ListFilter::Label {
            key: naming::PROJECT.into(),
            value: Some(project.name.clone()),
        }],
        ..ListOptions::default()
    };
    crate::commands::container::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let mut rows = Vec::new();
        let mut list = listing::list(&ctx, &opts).await?;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        for s in list {
            let service = s
                .container
                .labels
                .get(naming::SERVICE)
                .cloned()
                .unwrap_or_default();
            if !args.names.is_empty() && !args.names.contains(&service) {
                continue;
            }
            if args.quiet {
                println!("{}", s.container.id);
                continue;
            }
            let mut v = serde_json::to_value(crate::commands::container::ps::row(&s, false))?;
            v["Name"] = s.name.clone().into();
            v["Service"] = service.into();
            v["Project"] = project.name.clone().into();
            rows.push(v);
        }
        if !args.quiet {
            print!("{}", format.render(HEADERS, &rows)?);
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of each container's log ("all" for everything).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since a time (RFC 3339, Unix timestamp, or a duration such as 10m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a time (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// Print without colours.
    #[arg(long)]
    pub no_color: bool,
    /// Print the lines without the `name  | ` prefix.
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Services (default: all).
    #[arg(value_name = "SERVICE")]
    pub names: Vec<String>,
}

pub fn logs(args: LogsArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let q = LogQuery::parse(
        args.since.as_deref(),
        args.until.as_deref(),
        &args.tail,
        args.follow,
        SystemTime::now(),
    )?;
    let style = Style {
        color: !args.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        timestamps: args.timestamps,
        no_prefix: args.no_log_prefix,
    };
    crate::commands::container::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let members = super::members(&ctx, project, &args.names, true).await?;
        let refs: Vec<_> = members.iter().collect();
        logs::show(&ctx, &refs, &q, style).await?;
        Ok(ExitCode::SUCCESS)
    })
}
