//! `burrow version`: the client's version and the server's (containerd's Version service).

use std::process::ExitCode;

use serde::Serialize;

use burrow::client::server::Server;
use burrow::connection::{self, Globals};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: "json", or a table when omitted.
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Versions {
    client: ClientVersion,
    server: Option<ServerVersion>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ClientVersion {
    version: &'static str,
    os: &'static str,
    arch: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServerVersion {
    mode: connection::Mode,
    socket: String,
    containerd_version: String,
    containerd_revision: String,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let client = ClientVersion {
        version: env!("CARGO_PKG_VERSION"),
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
    };
    let server = server_version(g);
    let json = crate::commands::wants_json(args.format.as_deref())?;
    let (server, err) = match server {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e)),
    };
    let v = Versions { client, server };
    if json {
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!(
            "Client:\n Version:\t{}\n OS/Arch:\t{}/{}",
            v.client.version, v.client.os, v.client.arch
        );
        if let Some(s) = &v.server {
            println!(
                "\nServer:\n Mode:\t{}\n Socket:\t{}\n containerd:\n  Version:\t{}\n  GitCommit:\t{}",
                s.mode, s.socket, s.containerd_version, s.containerd_revision
            );
        }
    }
    match err {
        // Docker prints the client part and then the daemon error.
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn server_version(g: &Globals) -> anyhow::Result<ServerVersion> {
    let ep = connection::resolve(g)?;
    let v =
        connection::runtime().block_on(async { Server::connect(&ep).await?.version().await })?;
    Ok(ServerVersion {
        mode: ep.mode,
        socket: ep.socket.display().to_string(),
        containerd_version: v.version,
        containerd_revision: v.revision,
    })
}
