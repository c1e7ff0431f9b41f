//! `burrow system df`: disk usage of images, containers, local volumes and build cache as
//! Docker's summary table, `-v` detail, JSON or a template; the numbers are
//! `burrow::containers::diskusage`'s.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{json, Value};

use super::container::{ago, block_on, short_id, status_text, Ctx};
use burrow::connection::Globals;
use burrow::containers::diskusage::{disk_usage, reclaimable_text, DiskUsage};
use burrow::format::listing::Listing;
use burrow::images::catalog::{self, human_size};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Show each image, container and volume.
    #[arg(short, long)]
    pub verbose: bool,
    /// Output: "table", "table TEMPLATE", "json", or a Go template such as '{{.Type}}: {{.Size}}'
    /// (with -v: only "json").
    #[arg(long)]
    pub format: Option<String>,
}

const TABLE: &str =
    "table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}";
const HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];
const IMAGES: &str = "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}\\t{{.SharedSize}}\\t{{.UniqueSize}}\\t{{.Containers}}";
const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];
const CONTAINERS: &str = "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.LocalVolumes}}\\t{{.Size}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Names}}";
const CONTAINER_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Size", "SIZE"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("Names", "NAMES"),
];
const VOLUMES: &str = "table {{.Name}}\\t{{.Links}}\\t{{.Size}}";
const VOLUME_HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
];
const CACHE: &str = "table {{.ID}}\\t{{.CacheType}}\\t{{.Size}}\\t{{.CreatedSince}}\\t{{.LastUsedSince}}\\t{{.UsageCount}}\\t{{.Shared}}";
const CACHE_HEADERS: &[(&str, &str)] = &[
    ("ID", "CACHE ID"),
    ("CacheType", "CACHE TYPE"),
    ("Size", "SIZE"),
    ("CreatedSince", "CREATED"),
    ("LastUsedSince", "LAST USED"),
    ("UsageCount", "USAGE"),
    ("Shared", "SHARED"),
];

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let json_verbose = match (args.verbose, args.format.as_deref()) {
        (true, Some("json")) => true,
        (true, Some(f)) if !f.is_empty() && f != "table" => {
            bail!("system df: with --verbose, --format takes only \"json\" (got {f:?})")
        }
        _ => false,
    };
    let format = match args.verbose {
        true => None,
        false => Some(Listing::parse(args.format.as_deref(), TABLE)?),
    };
    block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let du = disk_usage(&ctx).await?;
        let (images, containers, volumes) =
            (image_rows(&du), container_rows(&du), volume_rows(&du));
        if json_verbose {
            let all = json!({"Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": []});
            println!("{all}");
        } else if let Some(format) = format {
            print!("{}", format.render(HEADERS, &summary_rows(&du))?);
        } else {
            let table = |t, h, rows: &[Value]| Listing::parse(None, t)?.render(h, rows);
            println!(
                "Images space usage:\n\n{}",
                table(IMAGES, IMAGE_HEADERS, &images)?
            );
            println!(
                "Containers space usage:\n\n{}",
                table(CONTAINERS, CONTAINER_HEADERS, &containers)?
            );
            println!(
                "Local Volumes space usage:\n\n{}",
                table(VOLUMES, VOLUME_HEADERS, &volumes)?
            );
            println!(
                "Build cache usage: 0B\n\n{}",
                table(CACHE, CACHE_HEADERS, &[])?.trim_end()
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn size(b: u64) -> String {
    human_size(i64::try_from(b).unwrap_or(i64::MAX))
}

/// The summary lines with Docker's field names (all strings, as its JSON has them).
fn summary_rows(du: &DiskUsage) -> Vec<Value> {
    du.summary()
        .iter()
        .map(|t| {
            json!({
                "Type": t.kind,
                "TotalCount": t.total.to_string(),
                "Active": t.active.to_string(),
                "Size": size(t.size),
                "Reclaimable": reclaimable_text(t),
            })
        })
        .collect()
}

fn image_rows(du: &DiskUsage) -> Vec<Value> {
    du.images
        .iter()
        .map(|i| {
            let mut row = catalog::summary(&i.image, false);
            row["Size"] = json!(size(i.size));
            row["SharedSize"] = json!(size(i.shared));
            row["UniqueSize"] = json!(size(i.size - i.shared));
            row["Containers"] = json!(i.containers.to_string());
            row
        })
        .collect()
}

fn container_rows(du: &DiskUsage) -> Vec<Value> {
    du.containers
        .iter()
        .map(|c| {
            let s = &c.summary;
            let cmd: String = match s.command.chars().count() > 20 {
                true => format!("{}…", s.command.chars().take(19).collect::<String>()),
                false => s.command.clone(),
            };
            json!({
                "ID": short_id(&s.container.id),
                "Image": s.container.image,
                "Command": format!("\"{cmd}\""),
                "LocalVolumes": c.volumes.to_string(),
                "Size": size(c.size),
                "RunningFor": s.created.map(ago).unwrap_or_default(),
                "Status": status_text(&s.state, s.started),
                "Names": s.name,
            })
        })
        .collect()
}

fn volume_rows(du: &DiskUsage) -> Vec<Value> {
    du.volumes
        .iter()
        .map(|v| json!({"Name": v.name, "Links": v.links.to_string(), "Size": size(v.size)}))
        .collect()
}
