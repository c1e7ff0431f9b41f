//! `burrow setup logs`: the rootless containerd's and launcher's log, whole, tailed or followed.

use std::process::ExitCode;

use burrow::connection::Globals;
use burrow::setup::layout::Layout;
use burrow::setup::logs;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Keep printing lines as they are written.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let l = Layout::current(g)?;
    logs::copy(
        &l.log,
        args.tail,
        args.follow,
        &mut std::io::stdout().lock(),
    )?;
    Ok(ExitCode::SUCCESS)
}
