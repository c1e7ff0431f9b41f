//! `burrow compose version`: burrow's version, as Docker Compose prints its own.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Print only the version number.
    #[arg(long)]
    pub short: bool,
    /// Output: "pretty" (default) or "json".
    #[arg(short, long, default_value = "pretty")]
    pub format: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    match (args.short, args.format.as_str()) {
        (true, _) => println!("{version}"),
        (false, "json") => println!("{}", serde_json::json!({ "version": version })),
        (false, "pretty") => println!("burrow compose version {version}"),
        (false, other) => anyhow::bail!("unknown --format {other:?}: use pretty or json"),
    }
    Ok(ExitCode::SUCCESS)
}
