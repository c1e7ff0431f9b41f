//! `burrow info`: mode, socket, launcher and its drivers, snapshotter, cgroup manager, runtime,
//! server version, and burrow's Docker API socket.

use std::process::ExitCode;

use serde::Serialize;

use burrow::client::server::Server;
use burrow::connection::{self, Endpoint, Globals, Mode};
use burrow::format::listing::Document;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output: text when omitted, "json", or a Go template such as '{{.ServerVersion}}'.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// What `burrow info` reports (the JSON keys follow Docker's PascalCase).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Info {
    mode: Mode,
    socket: String,
    namespace: String,
    data_root: String,
    launcher: Option<LauncherReport>,
    snapshotter: String,
    /// Snapshotter plugins containerd loaded successfully.
    snapshotters_available: Vec<String>,
    cgroup_manager: String,
    runtime: &'static str,
    client_version: &'static str,
    server_version: String,
    docker_api: DockerApiReport,
}

/// burrow's Docker API socket for this containerd, and whether something serves it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerApiReport {
    host: Option<String>,
    served: bool,
}

fn docker_api_report(ep: &Endpoint) -> DockerApiReport {
    let socket = burrow::dockerapi::default_socket(ep.mode, &connection::UserEnv::current()).ok();
    DockerApiReport {
        served: socket
            .as_deref()
            .is_some_and(burrow::dockerapi::listen::listening),
        host: socket.map(|s| format!("unix://{}", s.display())),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LauncherReport {
    state_dir: String,
    child_pid: i32,
    api_socket: String,
    network_driver: Option<String>,
    port_driver: Option<String>,
    child_ip: Option<String>,
}

/// The OCI runtime shim burrow creates containers with.
const RUNTIME: &str = "io.containerd.runc.v2";

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let format = Document::parse("", args.format.as_deref())?;
    let ep = connection::resolve(g)?;
    let launcher = ep.launcher.as_ref().map(launcher_report);
    let (server_version, snapshotters) = connection::runtime().block_on(server_facts(&ep))?;
    let info = Info {
        mode: ep.mode,
        socket: ep.socket.display().to_string(),
        namespace: ep.namespace.clone(),
        data_root: ep.data_root.display().to_string(),
        launcher,
        snapshotter: ep.snapshotter.clone(),
        snapshotters_available: snapshotters,
        cgroup_manager: ep.cgroup_manager.clone(),
        runtime: RUNTIME,
        client_version: env!("CARGO_PKG_VERSION"),
        server_version,
        docker_api: docker_api_report(&ep),
    };
    if format.is_text() {
        print_text(&info);
        return Ok(ExitCode::SUCCESS);
    }
    // A template or JSON also sees Docker's info fields (Driver, SecurityOptions,
    // CgroupVersion, NCPU, ...: what scripts written for `docker info` read); burrow's own
    // keys win where both have one.
    let mut doc = connection::runtime().block_on(async {
        let ctx = burrow::containers::Ctx::connect(g).await?;
        burrow::containers::sysinfo::docker_info(&ctx).await
    })?;
    if let (Some(d), serde_json::Value::Object(own)) =
        (doc.as_object_mut(), serde_json::to_value(&info)?)
    {
        d.extend(own);
    }
    if let Some(text) = format.render(&doc)? {
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

fn launcher_report(l: &connection::LauncherInfo) -> LauncherReport {
    let d = l.drivers();
    LauncherReport {
        state_dir: l.state_dir.display().to_string(),
        child_pid: l.child_pid,
        api_socket: l.api_socket.display().to_string(),
        network_driver: d.network,
        port_driver: d.port,
        child_ip: d.child_ip,
    }
}

async fn server_facts(ep: &Endpoint) -> anyhow::Result<(String, Vec<String>)> {
    let server = Server::connect(ep).await?;
    let v = server.version().await?;
    Ok((v.version, server.snapshotters().await?))
}

fn print_text(i: &Info) {
    println!("Mode:\t{}", i.mode);
    println!("Socket:\t{}", i.socket);
    println!("Namespace:\t{}", i.namespace);
    println!("Data Root:\t{}", i.data_root);
    if let Some(l) = &i.launcher {
        println!("Launcher:");
        println!(" State Dir:\t{}", l.state_dir);
        println!(" Child PID:\t{}", l.child_pid);
        println!(" API Socket:\t{}", l.api_socket);
        let unknown = || "unknown (launcher API did not answer)".to_owned();
        println!(
            " Network Driver:\t{}",
            l.network_driver.clone().unwrap_or_else(unknown)
        );
        println!(
            " Port Driver:\t{}",
            l.port_driver.clone().unwrap_or_else(unknown)
        );
        if let Some(ip) = &l.child_ip {
            println!(" Child IP:\t{ip}");
        }
    }
    println!("Snapshotter:\t{}", i.snapshotter);
    println!(
        "Snapshotters Available:\t{}",
        i.snapshotters_available.join(", ")
    );
    println!("Cgroup Manager:\t{}", i.cgroup_manager);
    println!("Runtime:\t{}", i.runtime);
    println!("Client Version:\t{}", i.client_version);
    println!("Server Version:\t{}", i.server_version);
    let api = &i.docker_api;
    match (&api.host, api.served) {
        (Some(h), true) => println!("Docker API:\t{h} (served: export DOCKER_HOST={h})"),
        (Some(h), false) => println!(
            "Docker API:\t{h} (not served: burrow setup install --docker-api, or burrow system service)"
        ),
        (None, _) => println!("Docker API:\tnone (no runtime directory)"),
    }
    let site = burrow::config::site_path();
    match site.exists() {
        true => println!("Site Config:\t{}", site.display()),
        false => println!("Site Config:\tnone ({} does not exist)", site.display()),
    }
}
