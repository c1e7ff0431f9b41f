//! `burrow rmi` (also `image rm`): remove image names; refuses images a container uses unless -f.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use crate::commands::images::with_endpoint_store;
use burrow::connection::Globals;
use burrow::images::userdb;
use burrow::images::{
    catalog,
    manifest::{self, Platform},
    reference::Reference,
    store::Store,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image names or IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even when containers use the image, or when an ID has several names.
    #[arg(short, long)]
    pub force: bool,
}

/// Removes what `arg` names; returns the lines to print. When the image itself goes, so does
/// its entry in `user_cache` (see [`burrow::images::userdb::cache_dir`]).
pub async fn remove(
    store: &Store,
    user_cache: &Path,
    arg: &str,
    force: bool,
) -> anyhow::Result<Vec<String>> {
    let platform = Platform::host();
    let name = Reference::parse(arg)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| arg.to_owned());
    let by_name = store.image(&name).await?.map(|i| i.name);
    let (names, id) = match by_name {
        Some(name) => {
            let id = match store.image(&name).await? {
                Some(img) => burrow::images::local::resolve(store, &img, &platform)
                    .await
                    .map(|l| l.id().to_owned())
                    .ok(),
                None => None,
            };
            (vec![name], id)
        }
        None => {
            let found = catalog::find(store, arg, &platform).await?;
            let names: Vec<String> = found.iter().map(|l| l.name.clone()).collect();
            if names.len() > 1 && !force {
                bail!(
                    "conflict: unable to delete {arg} (must be forced) - image is referenced in multiple repositories ({})",
                    names.iter().map(|n| catalog::familiar(n)).collect::<Vec<_>>().join(", ")
                );
            }
            (names, found.first().map(|l| l.id().to_owned()))
        }
    };
    if !force {
        for n in &names {
            let users = catalog::containers_using(store, n).await?;
            if let Some(c) = users.first() {
                bail!(
                    "conflict: unable to remove repository reference {:?} (must force) - container {} is using its referenced image {}: remove the container first (`burrow rm {}`) or pass -f",
                    catalog::familiar(n),
                    manifest::short_id(c),
                    id.as_deref().map(manifest::short_id).unwrap_or_default(),
                    manifest::short_id(c)
                );
            }
        }
    }
    let mut out = Vec::new();
    for n in &names {
        store.delete_image(n, true).await?;
        out.push(format!("Untagged: {}", catalog::familiar(n)));
    }
    if let Some(id) = id {
        let still = catalog::all(store, &platform)
            .await?
            .iter()
            .any(|l| l.id() == id);
        if !still {
            userdb::forget(user_cache, &id);
            out.push(format!("Deleted: {id}"));
        }
    }
    Ok(out)
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let failed = with_endpoint_store(g, async |ep, store| {
        let user_cache = userdb::cache_dir(&ep.data_root);
        let mut failed = false;
        for arg in &args.images {
            match remove(store, &user_cache, arg, args.force).await {
                Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
                Err(e) => {
                    eprintln!("burrow: rmi {arg}: {e:#}");
                    failed = true;
                }
            }
        }
        Ok(failed)
    })?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
