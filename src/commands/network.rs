//! `burrow network create/ls/inspect/rm/prune`: CNI bridge networks in nerdctl's config layout.

use std::process::ExitCode;

use serde_json::{json, Value};

use super::container::{self as ctr, Ctx};
use burrow::connection::Globals;
use burrow::network::{self as net, Network};

#[derive(Debug, clap::Subcommand)]
// Each subcommand\'s arguments are built only when it runs: building all of them cost
// more than some whole commands (`ps`) take.
#[command(defer = true)]
pub enum Command {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks as JSON.
    Inspect(NamesArgs),
    /// Remove networks.
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Remove networks no container uses.
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Driver (only bridge).
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR form.
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway for the subnet.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Allocate container IPs from this sub-range.
    #[arg(long)]
    pub ip_range: Option<String>,
    /// Set metadata (KEY=VALUE).
    #[arg(long)]
    pub label: Vec<String>,
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    #[arg(short, long)]
    pub force: bool,
}

fn inspect_json(n: &Network) -> Value {
    let config: Vec<Value> = n
        .subnets()
        .into_iter()
        .map(|(s, g)| json!({"Subnet": s, "Gateway": g.unwrap_or_default()}))
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Driver": "bridge",
        "IPAM": {"Driver": "default", "Config": config},
        "Labels": n.labels(),
        "ConfigFile": n.file,
    })
}

async fn used_networks(ctx: &Ctx) -> anyhow::Result<Vec<(String, String)>> {
    let mut used = Vec::new();
    for c in ctx.client.list(vec![]).await? {
        for n in ctr::networks_of(&c) {
            used.push((n, ctr::name_of(&c)));
        }
    }
    Ok(used)
}

pub fn run(cmd: Command, g: &Globals) -> anyhow::Result<ExitCode> {
    ctr::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let paths = &ctx.net;
        match cmd {
            Command::Create(a) => {
                if a.driver != "bridge" {
                    anyhow::bail!("unsupported network driver {:?}: only bridge", a.driver);
                }
                let labels = ctr::parse_labels(&a.label)
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                let n = net::create(
                    paths,
                    &a.name,
                    a.subnet.as_deref(),
                    a.gateway.as_deref(),
                    a.ip_range.as_deref(),
                    labels,
                )?;
                println!("{}", n.id);
            }
            Command::Ls(a) => {
                let json = super::wants_json(a.format.as_deref())?;
                net::ensure_default(paths)?;
                let all = net::list(paths)?;
                if a.quiet {
                    for n in &all {
                        println!("{}", &n.id[..12]);
                    }
                } else if json {
                    for n in &all {
                        println!(
                            "{}",
                            json!({"ID": &n.id[..12], "Name": n.name, "Driver": "bridge"})
                        );
                    }
                } else {
                    println!("{:<16}{:<20}FILE", "NETWORK ID", "NAME");
                    for n in &all {
                        println!("{:<16}{:<20}{}", &n.id[..12], n.name, n.file.display());
                    }
                    println!("{:<16}{:<20}", "", "host");
                    println!("{:<16}{:<20}", "", "none");
                }
            }
            Command::Inspect(a) => {
                let out = a
                    .networks
                    .iter()
                    .map(|n| net::get(paths, n).map(|n| inspect_json(&n)))
                    .collect::<Result<Vec<_>, _>>()?;
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Command::Rm(a) => {
                let used = used_networks(&ctx).await?;
                let mut failed = false;
                for q in &a.networks {
                    let res = (|| {
                        let n = net::get(paths, q)?;
                        if n.name == net::DEFAULT_NETWORK {
                            anyhow::bail!(
                                "network {q} is the default network and cannot be removed"
                            );
                        }
                        if let Some((_, c)) = used.iter().find(|(u, _)| *u == n.name) {
                            anyhow::bail!("network {q} is in use by container {c}: remove the container first");
                        }
                        net::remove(&n)?;
                        Ok(())
                    })();
                    match res {
                        Ok(()) => println!("{q}"),
                        Err(e) => {
                            eprintln!("burrow: {e:#}");
                            failed = true;
                        }
                    }
                }
                if failed {
                    return Ok(ExitCode::from(1));
                }
            }
            Command::Prune(_) => {
                let used = used_networks(&ctx).await?;
                println!("Deleted Networks:");
                for n in net::list(paths)? {
                    if n.name != net::DEFAULT_NETWORK && !used.iter().any(|(u, _)| *u == n.name) {
                        net::remove(&n)?;
                        println!("{}", n.name);
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
