//! `burrow version`: the client's version and the server's (containerd's Version service).

use std::process::ExitCode;

use serde::Serialize;

use burrow::client::server::Server;
use burrow::connection::{self, Globals};
use burrow::format::listing::Document;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output: text when omitted, "json", or a Go template such as '{{.Server.Version}}'.
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
    /// The Docker API version burrow speaks (Docker's JSON names it ApiVersion, its
    /// templates `.APIVersion`: both are here).
    api_version: &'static str,
    #[serde(rename = "APIVersion")]
    api_version_template: &'static str,
    os: &'static str,
    arch: &'static str,
}

/// The server: containerd (its version is Docker's `Server.Version` to templates), with
/// Docker's `Components` list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServerVersion {
    version: String,
    /// The Docker API version burrow serves (`burrow system service`), as on the client.
    api_version: &'static str,
    #[serde(rename = "APIVersion")]
    api_version_template: &'static str,
    #[serde(rename = "MinAPIVersion")]
    min_api_version: &'static str,
    os: &'static str,
    arch: &'static str,
    components: Vec<Component>,
    mode: connection::Mode,
    socket: String,
    containerd_version: String,
    containerd_revision: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Component {
    name: &'static str,
    version: String,
    details: std::collections::BTreeMap<&'static str, String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let client = ClientVersion {
        version: env!("CARGO_PKG_VERSION"),
        api_version: burrow::dockerapi::API_VERSION,
        api_version_template: burrow::dockerapi::API_VERSION,
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
    };
    // A template that does not parse fails before the server is asked.
    let format = Document::parse("version", args.format.as_deref())?;
    let (server, err) = match server_version(g) {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e)),
    };
    let v = Versions { client, server };
    // Docker prints what the template makes of the client even when the server is down.
    match format.render(&serde_json::to_value(&v)?) {
        Ok(Some(text)) => print!("{text}"),
        Ok(None) => print_text(&v),
        Err(e) => {
            let e = anyhow::Error::from(e);
            return Err(match err {
                Some(server) => e.context(format!("{server:#}")),
                None => e,
            });
        }
    }
    match err {
        // Docker prints the client part and then the daemon error.
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn print_text(v: &Versions) {
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

fn server_version(g: &Globals) -> anyhow::Result<ServerVersion> {
    let ep = connection::resolve(g)?;
    let v =
        connection::runtime().block_on(async { Server::connect(&ep).await?.version().await })?;
    let details = [("GitCommit", v.revision.clone())].into_iter().collect();
    Ok(ServerVersion {
        version: v.version.clone(),
        api_version: burrow::dockerapi::API_VERSION,
        api_version_template: burrow::dockerapi::API_VERSION,
        min_api_version: burrow::dockerapi::MIN_API_VERSION,
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
        components: vec![Component {
            name: "containerd",
            version: v.version.clone(),
            details,
        }],
        mode: ep.mode,
        socket: ep.socket.display().to_string(),
        containerd_version: v.version,
        containerd_revision: v.revision,
    })
}
