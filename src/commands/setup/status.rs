//! `burrow setup status`: is the rootless containerd installed, running and answering, and where its parts are.

use std::process::ExitCode;

use burrow::connection::Globals;
use burrow::setup::layout::Layout;
use burrow::setup::status::{self, ServiceStatus};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let l = Layout::current(g)?;
    let st = status::gather(&l);
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        print_text(&st);
    }
    // As `systemctl status`: 0 when running, 3 when not.
    Ok(if st.containerd.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn print_text(st: &ServiceStatus) {
    println!("installed:  {}", st.installed);
    if let Some(u) = &st.unit {
        println!("unit:       {}", u.display());
    }
    println!("state:      {}", st.state);
    if let Some(p) = st.service_pid {
        println!("service:    pid {p}");
    }
    if let Some(p) = st.child_pid {
        println!("namespaces: pid {p} (burrow setup nsenter enters them)");
    }
    match (&st.containerd, &st.error) {
        (Some(v), _) => println!("containerd: {v}, answering on {}", st.socket.display()),
        (None, Some(e)) => {
            println!("containerd: not answering on {} ({e})", st.socket.display())
        }
        (None, None) => println!("containerd: not answering on {}", st.socket.display()),
    }
    println!("data:       {}", st.data_dir.display());
    println!("log:        {} (burrow setup logs)", st.log.display());
    println!("bypass:     {}", st.bypass);
    println!("docker api: {}", st.docker_api.describe());
    if st.installed == "none" {
        println!("to set it up: burrow setup install");
    } else if st.containerd.is_none() {
        println!("to see why: burrow setup logs; to (re)start it: burrow setup install");
    }
}
