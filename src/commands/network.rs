//! `burrow network create/ls/inspect/rm/prune`: CNI bridge networks in nerdctl's config layout.

use burrow::network::DriverOptions;
use std::process::ExitCode;

use serde_json::{json, Value};

use super::container::{self as ctr, Ctx};
use burrow::connection::Globals;
use burrow::containers::endpoints::Endpoint;
use burrow::containers::networks;
use burrow::containers::values::parse_flag;
use burrow::format::listing::{Inspect, Listing};
use burrow::images::time;
use burrow::network::{self as net, manage};

#[derive(Debug, clap::Subcommand)]
// Each subcommand\'s arguments are built only when it runs: building all of them cost
// more than some whole commands (`ps`) take.
#[command(defer = true)]
pub enum Command {
    /// Create a network.
    Create(CreateArgs),
    /// Connect a container to a network (a running one at once, a stopped one on its next start).
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks as JSON, or through a Go template.
    Inspect(InspectArgs),
    /// Remove networks.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove networks no container uses.
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
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
    /// No way out: its containers reach each other only (no gateway, no masquerade, no
    /// default route; published ports do not reach them).
    #[arg(long)]
    pub internal: bool,
    /// A bridge driver option (KEY=VALUE, repeatable): com.docker.network.driver.mtu,
    /// com.docker.network.bridge.name, com.docker.network.bridge.enable_ip_masquerade.
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The container's IPv4 address on the network (within its subnet).
    #[arg(long, value_name = "IPv4")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// A name the container answers to on this network (user-defined networks only).
    #[arg(long, value_name = "ALIAS")]
    pub alias: Vec<String>,
    /// The MAC address of the container's interface on this network.
    #[arg(long, value_name = "MAC")]
    pub mac_address: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct DisconnectArgs {
    /// Also when the network no longer exists.
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct LsArgs {
    #[arg(short, long)]
    pub quiet: bool,
    /// Output: burrow's table (default), "table TEMPLATE", "json", or a Go template over ID,
    /// Name, Driver, Scope, IPv6, Internal, Labels.
    #[arg(long)]
    pub format: Option<String>,
    /// Keep only networks that match: name=, id=, label=KEY[=VALUE], driver=, type=custom|builtin,
    /// scope=, dangling=true|false (no container on it).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Show whole network IDs.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Output: indented JSON (default), "json" (one line), or a Go template such as '{{.Id}}'.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// Docker's column names for `network ls`'s fields.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct RmArgs {
    /// Pass over networks that do not exist.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Only networks made before a time (`until=24h`, `until=2026-12-01T10:00:00`) or with
    /// (`label=KEY[=VALUE]`) or without (`label!=KEY[=VALUE]`) a label; repeatable.
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn run(cmd: Command, g: &Globals) -> anyhow::Result<ExitCode> {
    ctr::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        match cmd {
            Command::Create(a) => create(&ctx, a).await?,
            Command::Connect(a) => {
                let endpoint = Endpoint {
                    network: a.network,
                    aliases: a.alias,
                    ipv4_address: a.ip,
                    mac_address: a
                        .mac_address
                        .as_deref()
                        .map(|m| parse_flag("--mac-address", m))
                        .transpose()?,
                };
                networks::connect(&ctx, &a.container, &endpoint).await?;
            }
            Command::Disconnect(a) => {
                networks::disconnect(&ctx, &a.network, &a.container, a.force).await?;
            }
            Command::Ls(a) => ls(&ctx, a).await?,
            Command::Inspect(a) => {
                let format = Inspect::parse(a.format.as_deref())?;
                let mut out = Vec::new();
                for q in &a.networks {
                    let n = net::get(&ctx.net, q)?;
                    let mut v = manage::inspect(&n);
                    v["Containers"] = Value::Object(networks::members(&ctx, &n.name).await?);
                    out.push(v);
                }
                match format.render(&out)? {
                    Some(text) => print!("{text}"),
                    None => println!("{}", serde_json::to_string_pretty(&out)?),
                }
            }
            Command::Rm(a) => {
                let users = networks::users(&ctx).await?;
                let mut failed = false;
                for q in &a.networks {
                    match networks::remove(&ctx, q, &users).await {
                        Ok(()) => println!("{q}"),
                        Err(net::NetworkError::NotFound(_)) if a.force => {}
                        Err(e) => {
                            crate::commands::error::say(&anyhow::Error::from(e));
                            failed = true;
                        }
                    }
                }
                if failed {
                    return Ok(ExitCode::from(1));
                }
            }
            Command::Prune(a) => {
                let filters = burrow::containers::prunefilter::PruneFilters::parse(
                    a.filter.iter().map(String::as_str),
                    true,
                    &[],
                )?;
                let what = "all custom networks not used by at least one container";
                if !crate::commands::confirm("network prune", what, a.force)? {
                    return Ok(ExitCode::SUCCESS);
                }
                println!("Deleted Networks:");
                for n in networks::prune(&ctx, &filters).await? {
                    println!("{}", n.name);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    let labels = ctr::parse_labels(&a.label)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let n = networks::create(
        ctx,
        manage::CreateRequest {
            name: a.name,
            driver: a.driver,
            subnet: a.subnet,
            gateway: a.gateway,
            ip_range: a.ip_range,
            labels,
            internal: a.internal,
            options: DriverOptions::parse(
                a.opt
                    .iter()
                    .map(|o| o.split_once('=').unwrap_or((o.as_str(), ""))),
            )?,
        },
    )
    .await?;
    println!("{}", n.id);
    Ok(())
}

async fn ls(ctx: &Ctx, a: LsArgs) -> anyhow::Result<()> {
    // burrow's own table (with each network's file) unless a format is asked for.
    let format = match a.format.as_deref() {
        None | Some("") | Some("table") => None,
        f => Some(Listing::parse(f, "")?),
    };
    let filters = a
        .filter
        .iter()
        .map(|f| f.parse::<manage::ListFilter>())
        .collect::<Result<Vec<_>, _>>()?;
    let all = networks::list_matching(ctx, &filters).await?;
    let id = |n: &net::Network| match a.no_trunc {
        true => n.id.clone(),
        false => n.id[..12].to_string(),
    };
    if a.quiet {
        for n in &all {
            println!("{}", id(n));
        }
    } else if let Some(format) = format {
        let rows: Vec<Value> = all.iter().map(|n| ls_row(n, &id(n))).collect();
        print!("{}", format.render(HEADERS, &rows)?);
    } else {
        let w = if a.no_trunc { 66 } else { 16 };
        println!("{:<w$}{:<20}FILE", "NETWORK ID", "NAME");
        for n in &all {
            println!("{:<w$}{:<20}{}", id(n), n.name, n.file.display());
        }
        if a.filter.is_empty() {
            println!("{:<16}{:<20}", "", "host");
            println!("{:<16}{:<20}", "", "none");
        }
    }
    Ok(())
}

/// A network as `network ls --format` sees it (Docker's fields, as strings).
fn ls_row(n: &net::Network, id: &str) -> Value {
    let labels: Vec<String> = n
        .labels()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    json!({
        "ID": id,
        "Name": n.name,
        "Driver": "bridge",
        "Scope": "local",
        "IPv6": "false",
        "Internal": n.internal().to_string(),
        "Labels": labels.join(","),
        "CreatedAt": n.created().map(|t| time::go_string(time::unix_secs(t))).unwrap_or_default(),
    })
}
