//! `burrow image ...`: the image command group (ls, inspect, rm, tag, pull, load, history,
//! prune) and `image inspect`'s Docker-shaped JSON.

use std::process::ExitCode;

use serde::Serialize;

use crate::commands::images::with_store;
use crate::commands::{history, image_prune, images, load, pull, push, rmi, save, tag};
use burrow::connection::Globals;
use burrow::containers::stored_images;
use burrow::format::listing::Inspect;

#[derive(Debug, clap::Subcommand)]
// Each subcommand\'s arguments are built only when it runs: building all of them cost
// more than some whole commands (`ps`) take.
#[command(defer = true)]
pub enum Command {
    /// List images.
    #[command(alias = "list")]
    Ls(images::Args),
    /// Display detailed information on images.
    Inspect(InspectArgs),
    /// Remove images.
    #[command(alias = "remove")]
    Rm(rmi::Args),
    /// Give an image another name.
    Tag(tag::Args),
    /// Pull an image from a registry.
    Pull(pull::Args),
    /// Load images from an archive.
    Load(load::Args),
    /// Import the contents from a tarball to create a filesystem image.
    Import(crate::commands::import::Args),
    /// Push an image to a registry.
    Push(push::Args),
    /// Save images to a tar archive.
    Save(save::Args),
    /// Show the history of an image.
    History(history::Args),
    /// Remove unused images.
    Prune(image_prune::Args),
    /// Build an image from a Dockerfile.
    Build(Box<crate::commands::build::Args>),
    /// Write an image as one SquashFS file (and its config) into a shared directory every node
    /// reads; `burrow run` on a node with that dir in `image_store` (or BURROW_IMAGE_STORE)
    /// starts from it without a pull.
    Squash(SquashArgs),
}

#[derive(Debug, clap::Args)]
pub struct SquashArgs {
    /// The image (pulled first when it is not here).
    pub image: String,
    /// The shared store's directory.
    #[arg(long, value_name = "DIR")]
    pub to: std::path::PathBuf,
}

fn squash(args: SquashArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    crate::commands::container::block_on(async move {
        let ctx = burrow::containers::Ctx::connect(g).await?;
        let made = burrow::containers::shared::squash(&ctx, &args.image, &args.to).await?;
        if made.owners_squashed {
            eprintln!(
                "burrow: warning: your user has no subordinate ids, so every file of {} is root's in the store (its other owners were lost when it was unpacked here); squash it from an account with subordinate ids to keep them",
                args.image
            );
        }
        println!("{}", made.file.display());
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run(cmd: Command, g: &Globals) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Ls(a) => images::run(a, g),
        Command::Squash(a) => squash(a, g),
        Command::Inspect(a) => inspect(a, g),
        Command::Rm(a) => rmi::run(a, g),
        Command::Tag(a) => tag::run(a, g),
        Command::Pull(a) => pull::run(a, g),
        Command::Load(a) => load::run(a, g),
        Command::Import(a) => crate::commands::import::run(a, g),
        Command::Push(a) => push::run(a, g),
        Command::Save(a) => save::run(a, g),
        Command::History(a) => history::run(a, g),
        Command::Prune(a) => image_prune::run(a, g),
        Command::Build(a) => crate::commands::build::run(*a, g),
    }
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Image names or IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Output: indented JSON (default), "json" (one line), or a Go template such as '{{.Id}}'.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Platform to show for a multi-platform image [default: this host's].
    #[arg(long)]
    pub platform: Option<String>,
}

/// JSON as Docker prints it (four-space indent).
pub fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)?;
    println!("{}", String::from_utf8_lossy(&out));
    Ok(())
}

pub fn inspect(args: InspectArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    let format = Inspect::parse(args.format.as_deref())?;
    let platform = pull::platform_arg(args.platform.as_deref())?;
    // Each local image, else the shared store's image of that name (as `images` lists it).
    let found = with_store(g, async |store| {
        Ok(stored_images::inspect_each(store, &args.images, &platform).await?)
    })?;
    let mut docs = Vec::new();
    let mut failed = false;
    for doc in found {
        match doc {
            Ok(d) => docs.push(d),
            Err(e) => {
                eprintln!("burrow: image inspect: {e}");
                failed = true;
            }
        }
    }
    match format.render(&docs)? {
        Some(text) => print!("{text}"),
        None => print_json(&docs)?,
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
