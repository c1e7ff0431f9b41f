//! `burrow manifest create/annotate/inspect/push/rm`: manifest lists (multi-platform images)
//! made of images already in a registry, as the docker CLI makes them.

use std::process::ExitCode;

use burrow::connection::{runtime, Globals};
use burrow::images::manifestlist::{self as lists, Annotation, Remote};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make a manifest list (kept here until pushed) of images in the list's registry.
    Create(CreateArgs),
    /// Set the platform of an image in a manifest list kept here.
    Annotate(AnnotateArgs),
    /// Show a manifest list kept here, an image of it, or a manifest (list) in a registry.
    Inspect(InspectArgs),
    /// Push a manifest list kept here to its registry (its images are copied into its
    /// repository first); prints its digest.
    Push(PushArgs),
    /// Forget manifest lists kept here.
    Rm(RmArgs),
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct CreateArgs {
    /// The list's name (REGISTRY/REPO:TAG).
    pub list: String,
    /// The images (by tag or digest, in the list's registry).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Add to the list kept here instead of refusing to replace it.
    #[arg(short, long)]
    pub amend: bool,
    /// Allow a registry served over plain HTTP.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    pub list: String,
    /// The image of the list to annotate.
    pub image: String,
    /// Its operating system.
    #[arg(long)]
    pub os: Option<String>,
    /// Its architecture.
    #[arg(long)]
    pub arch: Option<String>,
    /// Its architecture variant (v7, v8 ...).
    #[arg(long)]
    pub variant: Option<String>,
    /// Its operating system version.
    #[arg(long)]
    pub os_version: Option<String>,
    /// Its operating system features (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub os_features: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct InspectArgs {
    /// A list kept here and an image of it, or one name: a list kept here, else what a
    /// registry holds under it.
    #[arg(required = true, num_args = 1..=2, value_name = "[LIST] MANIFEST")]
    pub names: Vec<String>,
    /// Each image's reference, descriptor and manifest.
    #[arg(short, long)]
    pub verbose: bool,
    /// Allow a registry served over plain HTTP.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct PushArgs {
    pub list: String,
    /// Forget the list here once pushed.
    #[arg(short, long)]
    pub purge: bool,
    /// Allow a registry served over plain HTTP.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    #[arg(required = true)]
    pub lists: Vec<String>,
}

pub fn run(cmd: Command, _g: &Globals) -> anyhow::Result<ExitCode> {
    let root = lists::lists_dir()?;
    match cmd {
        Command::Create(a) => {
            runtime().block_on(lists::create(
                &root, &a.list, &a.images, a.amend, a.insecure,
            ))?;
            println!("Created manifest list {}", full_name(&a.list));
        }
        Command::Annotate(a) => {
            let ann = Annotation {
                os: a.os,
                arch: a.arch,
                variant: a.variant,
                os_version: a.os_version,
                os_features: a.os_features,
            };
            lists::annotate(&root, &a.list, &a.image, &ann)?;
        }
        Command::Inspect(a) => inspect(&root, &a)?,
        Command::Push(a) => {
            let digest = runtime().block_on(lists::push(&root, &a.list, a.purge, a.insecure))?;
            println!("{digest}");
        }
        Command::Rm(a) => {
            let mut failed = false;
            for l in &a.lists {
                if let Err(e) = lists::remove(&root, l) {
                    eprintln!("burrow: {e}");
                    failed = true;
                }
            }
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn full_name(name: &str) -> String {
    burrow::images::reference::Reference::parse(name)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string())
}

fn inspect(root: &std::path::Path, a: &InspectArgs) -> anyhow::Result<()> {
    let pretty =
        |v: &serde_json::Value| lists::indent_tabs(&serde_json::to_vec(v).unwrap_or_default());
    if let [list, image] = a.names.as_slice() {
        let entries =
            lists::local(root, list)?.ok_or_else(|| lists::ListError::NoList(list.clone()))?;
        let want = full_name(image);
        let e = entries
            .iter()
            .find(|e| e.reference == want || full_name(&e.reference) == want)
            .ok_or_else(|| lists::ListError::NotInList {
                list: list.clone(),
                image: image.clone(),
            })?;
        println!(
            "{}",
            if a.verbose {
                pretty(&e.to_json())
            } else {
                lists::indent_tabs(&e.raw)
            }
        );
        return Ok(());
    }
    let name = &a.names[0];
    if let Some(entries) = lists::local(root, name)? {
        if a.verbose {
            let all: Vec<serde_json::Value> = entries.iter().map(|e| e.to_json()).collect();
            println!("{}", pretty(&serde_json::Value::Array(all)));
        } else {
            println!("{}", lists::indent_tabs(&lists::index_of(&entries).1));
        }
        return Ok(());
    }
    match runtime().block_on(lists::fetch(name, a.insecure, a.verbose))? {
        Remote::Image(e) if a.verbose => println!("{}", pretty(&e.to_json())),
        Remote::Image(e) => println!("{}", lists::indent_tabs(&e.raw)),
        Remote::List { images, .. } if a.verbose => {
            let all: Vec<serde_json::Value> = images.iter().map(|e| e.to_json()).collect();
            println!("{}", pretty(&serde_json::Value::Array(all)));
        }
        Remote::List { raw, .. } => println!("{}", lists::indent_tabs(&raw)),
    }
    Ok(())
}
