//! `burrow login` / `burrow logout`: registry credentials in Docker's config.json.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};

use burrow::connection;
use burrow::images::auth;
use burrow::images::login::{self, server_host};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct LoginArgs {
    /// Registry host [default: Docker Hub].
    pub server: Option<String>,
    /// User name.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password or token (prefer --password-stdin: this one shows in `ps`).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Talk plain HTTP to this registry (always allowed for localhost and 127.0.0.1).
    #[arg(long)]
    pub insecure_registry: bool,
    /// Directory of <host>/hosts.toml registry settings [default: as for pull].
    #[arg(long, value_name = "DIR")]
    pub hosts_dir: Vec<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Registry host [default: Docker Hub].
    pub server: Option<String>,
}

fn prompt(what: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("no {what} given: pass -u/--username and --password-stdin (stdin is not a terminal)");
    }
    eprint!("{what}: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

pub fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let host = server_host(args.server.as_deref());
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username")?,
    };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut p)
                .context("read the password from stdin")?;
            p.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => prompt("Password")?,
    };
    if username.is_empty() || password.is_empty() {
        bail!("a user name and a password are required to log in to {host}");
    }
    let creds = auth::Credentials { username, password };
    connection::runtime().block_on(login::login(
        &host,
        creds,
        args.insecure_registry,
        &args.hosts_dir,
    ))?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let host = server_host(args.server.as_deref());
    if login::logout(&host)? {
        println!("Removing login credentials for {}", auth::key_for(&host));
    } else {
        println!("Not logged in to {host}");
    }
    Ok(ExitCode::SUCCESS)
}
