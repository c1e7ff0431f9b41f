//! The `rootlessctl`-compatible command line (`info`, `list-ports`, `add-ports`, `remove-ports`,
//! `--json`), shared by the `burrow-rootlessctl` binary and the launcher's `ctl` subcommand.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;

use super::client::Client;
use crate::port::{PortSpec, PortStatus};

/// The command line: global flags and one subcommand. Also usable as a clap subcommand's
/// arguments (e.g. `burrow-rootlesskit ctl ...`).
#[derive(Debug, Parser)]
#[command(
    name = "burrow-rootlessctl",
    version,
    about = "Client of the burrow-rootlesskit (and RootlessKit) REST API"
)]
pub struct Cli {
    /// Debug mode
    #[arg(long, global = true)]
    pub debug: bool,
    /// Path to api.sock (under the launcher's --state-dir); defaults to $ROOTLESSKIT_STATE_DIR/api.sock
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, as `rootlessctl` has them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List ports
    ListPorts {
        /// Prints as JSON
        #[arg(long)]
        json: bool,
    },
    /// Add ports, e.g. 127.0.0.1:8080:80/tcp ([PARENTIP:]PARENTPORT[:CHILDIP]:CHILDPORT/PROTO)
    AddPorts {
        /// Prints as JSON
        #[arg(long)]
        json: bool,
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<String>,
    },
    /// Remove ports
    RemovePorts {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Show info
    Info {
        /// Prints as JSON
        #[arg(long)]
        json: bool,
    },
}

fn socket_path(cli: &Cli) -> Result<PathBuf> {
    if let Some(s) = &cli.socket {
        return Ok(s.clone());
    }
    match std::env::var_os("ROOTLESSKIT_STATE_DIR") {
        Some(d) if !d.is_empty() => Ok(PathBuf::from(d).join("api.sock")),
        _ => bail!("no API socket given: pass --socket PATH (the launcher's --state-dir/api.sock) or set ROOTLESSKIT_STATE_DIR"),
    }
}

/// Runs one command, printing what `rootlessctl` prints.
pub fn run(cli: Cli) -> Result<()> {
    let client = Client::new(&socket_path(&cli)?);
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::ListPorts { json } => {
            let ports = client.list_ports().context("listing ports")?;
            if json {
                for p in &ports {
                    writeln!(out, "{}", serde_json::to_string(p)?)?;
                }
            } else {
                write!(out, "{}", port_table(&ports))?;
            }
        }
        Command::AddPorts { json, specs } => {
            let specs = specs
                .iter()
                .map(|s| s.parse::<PortSpec>())
                .collect::<Result<Vec<_>, _>>()?;
            for spec in specs {
                let st = client
                    .add_port(&spec)
                    .with_context(|| format!("adding port {spec}"))?;
                if json {
                    writeln!(out, "{}", serde_json::to_string(&st)?)?;
                } else {
                    writeln!(out, "{}", st.id)?;
                }
            }
        }
        Command::RemovePorts { ids } => {
            let ids = ids
                .iter()
                .map(|s| {
                    s.parse::<u64>()
                        .with_context(|| format!("bad port id {s:?}"))
                })
                .collect::<Result<Vec<_>>>()?;
            for id in ids {
                client
                    .remove_port(id)
                    .with_context(|| format!("removing port {id}"))?;
                writeln!(out, "{id}")?;
            }
        }
        Command::Info { json } => {
            let info = client.info().context("getting info")?;
            if json {
                // Four-space indentation, as rootlessctl prints it.
                let mut buf = Vec::new();
                let mut ser = serde_json::Serializer::with_formatter(
                    &mut buf,
                    serde_json::ser::PrettyFormatter::with_indent(b"    "),
                );
                info.serialize(&mut ser)?;
                out.write_all(&buf)?;
                writeln!(out)?;
            } else {
                writeln!(out, "- REST API version: {}", info.api_version)?;
                writeln!(out, "- Implementation version: {}", info.version)?;
                writeln!(out, "- State Directory: {}", info.state_dir.display())?;
                writeln!(out, "- Child PID: {}", info.child_pid)?;
                if let Some(n) = &info.network_driver {
                    writeln!(out, "- Network Driver: {}", n.driver)?;
                    writeln!(
                        out,
                        "  - DNS: [{}]",
                        n.dns
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    )?;
                    if let Some(ip) = n.child_ip {
                        writeln!(out, "  - IP: {ip}")?;
                    }
                }
                if let Some(p) = &info.port_driver {
                    writeln!(out, "- Port Driver: {}", p.driver)?;
                    writeln!(out, "  - Supported protocols: [{}]", p.protos.join(" "))?;
                }
            }
        }
    }
    Ok(())
}

/// The `list-ports` table, laid out as Go's tabwriter (min width 4, padding 4) lays out rootlessctl's.
fn port_table(ports: &[PortStatus]) -> String {
    let ip = |ip: Option<std::net::IpAddr>| ip.map(|i| i.to_string()).unwrap_or_default();
    let mut rows = vec![[
        "ID",
        "PROTO",
        "PARENTIP",
        "PARENTPORT",
        "CHILDIP",
        "CHILDPORT",
    ]
    .map(String::from)
    .to_vec()];
    for p in ports {
        let s = &p.spec;
        rows.push(vec![
            p.id.to_string(),
            s.proto.to_string(),
            ip(s.parent_ip),
            s.parent_port.to_string(),
            ip(s.child_ip),
            s.child_port.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len() + 4)
                .max()
                .unwrap_or(0)
                .max(4)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (cell, w) in r.iter().zip(&widths) {
            out.push_str(&format!("{cell:<w$}"));
        }
        out.push('\n');
    }
    out
}
