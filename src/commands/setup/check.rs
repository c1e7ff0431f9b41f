//! `burrow setup check`: every prerequisite of a rootless containerd, each with the exact fix.

use std::path::PathBuf;
use std::process::ExitCode;

use burrow::connection::Globals;
use burrow::setup::check::{self, Report, Status};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// The RootlessKit-compatible launcher to check [default: burrow-rootlesskit next to burrow, else on PATH].
    #[arg(long, env = "BURROW_LAUNCHER", value_name = "PATH")]
    pub launcher: Option<PathBuf>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let report = check::gather(g, args.launcher.as_deref());
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_text(r: &Report) {
    for c in &r.checks {
        let tag = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("[{tag}] {}: {}", c.name, c.detail);
        if let Some(fix) = &c.fix {
            println!("       fix: {fix}");
        }
    }
    println!();
    println!(
        "install would use: {} service, snapshotter {}, runtime {}, cgroup manager {}, data in {}",
        r.choices.service,
        r.choices.snapshotter,
        r.choices.runtime.as_deref().unwrap_or("none found"),
        r.choices.cgroup_manager,
        r.choices.data_dir.display()
    );
    if r.ok {
        println!("ready: `burrow setup install` can proceed");
    } else {
        println!("not ready: fix the FAIL lines above, then run `burrow setup check` again");
    }
}
