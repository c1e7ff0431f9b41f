//! `burrow import`: a filesystem tarball (file or stdin) as a one-layer image; the work is
//! `burrow::images::import`'s.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;

use crate::commands::images::with_store;
use burrow::connection::Globals;
use burrow::dockerfile::parse_changes;
use burrow::images::import;
use burrow::images::manifest::Platform;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply a Dockerfile instruction to the image's config (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR).
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Set a commit message for the imported image.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Say the image is for this platform (os/arch[/variant]) instead of this host's.
    #[arg(long)]
    pub platform: Option<String>,
    /// The tarball (plain or gzip): a file, an http(s) URL, or - for stdin.
    #[arg(value_name = "FILE|URL|-")]
    pub file: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let changes = parse_changes(&args.change).context("import --change")?;
    let platform = args
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("import --platform: {e}"))?;
    let mut data = Vec::new();
    if args.file == "-" {
        std::io::stdin()
            .lock()
            .read_to_end(&mut data)
            .context("cannot read stdin")?;
    } else if burrow::build::fetch::is_url(&args.file) {
        data = burrow::connection::runtime()
            .block_on(import::fetch_url(&args.file))
            .with_context(|| format!("cannot download {}", args.file))?;
    } else {
        data = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file))?;
    }
    let comment = match &args.message {
        Some(m) => m.clone(),
        None => format!("Imported from {}", args.file),
    };
    let made = with_store(g, async |store| {
        import::import(
            store,
            data,
            args.name.as_deref(),
            &comment,
            &changes,
            platform.as_ref(),
        )
        .await
    })?;
    println!("{}", made.id);
    Ok(ExitCode::SUCCESS)
}
