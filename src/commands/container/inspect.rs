//! `burrow inspect` (and `container inspect`): the library's Docker-shaped inspect documents
//! (`burrow::containers::inspect`), as indented JSON, one line of JSON, or through a Go template
//! (`burrow::format`).

use std::process::ExitCode;

use serde_json::Value;

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::volumes::Volumes;
use burrow::format::listing::Inspect;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Format: indented JSON (default), "json" (one line), or a Go template such as
    /// '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only objects of this type: container, image, network or volume (default: the first
    /// that has the name, in that order).
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<Kind>,
    /// Add the containers' sizes (SizeRw, SizeRootFs).
    #[arg(short, long)]
    pub size: bool,
    /// Names or ids.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// What `inspect --type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

/// The inspect document of the object `q` names, of `kind` or of the first kind that has it.
async fn one(ctx: &Ctx, q: &str, kind: Option<Kind>, size: bool) -> anyhow::Result<Value> {
    let kinds = match kind {
        Some(k) => vec![k],
        None => vec![Kind::Container, Kind::Image, Kind::Network, Kind::Volume],
    };
    let mut first_err = None;
    for k in kinds {
        let found = match k {
            Kind::Container => container(ctx, q, size).await,
            Kind::Image => image(ctx, q).await,
            Kind::Network => burrow::network::get(&ctx.net, q)
                .map(|n| burrow::network::manage::inspect(&n))
                .map_err(anyhow::Error::from),
            Kind::Volume => Volumes::of(ctx)
                .get(q)
                .map_err(anyhow::Error::from)
                .and_then(|v| Ok(serde_json::to_value(v)?)),
        };
        match found {
            Ok(v) => return Ok(v),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match (kind, first_err) {
        (Some(_), Some(e)) => Err(e),
        _ => anyhow::bail!(
            "no such object: {q} (not a container, image, network or volume; `burrow ps -a`, \
             `images`, `network ls` and `volume ls` list what there is)"
        ),
    }
}

async fn container(ctx: &Ctx, q: &str, size: bool) -> anyhow::Result<Value> {
    burrow::containers::inspect::inspect_sized(ctx, q, size).await
}

async fn image(ctx: &Ctx, q: &str) -> anyhow::Result<Value> {
    let store =
        burrow::images::store::Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep);
    let platform = burrow::images::manifest::Platform::host();
    Ok(burrow::containers::stored_images::inspect(&store, q, &platform).await?)
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let format = Inspect::parse(args.format.as_deref())?;
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        // As Docker: what was found is printed, then the errors for what was not (exit 1).
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for q in &args.containers {
            match one(&ctx, q, args.kind, args.size).await {
                Ok(v) => out.push(v),
                Err(e) => errors.push(e),
            }
        }
        match format.render(&out)? {
            Some(text) => print!("{text}"),
            None => println!("{}", serde_json::to_string_pretty(&out)?),
        }
        for e in &errors {
            crate::commands::error::say(e);
        }
        Ok(if errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
