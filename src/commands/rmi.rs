//! `burrow rmi` (also `image rm`): remove image names; refuses images a container uses unless -f.

use std::process::ExitCode;

use crate::commands::images::with_endpoint_store;
use burrow::connection::Globals;
use burrow::images::remove::{self, Removed};
use burrow::images::userdb;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Image names or IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even when containers use the image, or when an ID has several names.
    #[arg(short, long)]
    pub force: bool,
}

/// The lines Docker prints for a removal: `Untagged: NAME`..., then `Deleted: ID`.
pub fn lines(r: &Removed) -> Vec<String> {
    let mut out: Vec<String> = r
        .untagged
        .iter()
        .map(|n| format!("Untagged: {n}"))
        .collect();
    out.extend(r.deleted.iter().map(|id| format!("Deleted: {id}")));
    out
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let failed = with_endpoint_store(g, async |ep, store| {
        let user_cache = userdb::cache_dir(&ep.data_root);
        let mut failed = false;
        for arg in &args.images {
            match remove::remove(store, &user_cache, arg, args.force).await {
                Ok(r) => lines(&r).iter().for_each(|l| println!("{l}")),
                Err(e) => {
                    eprintln!("burrow: rmi {arg}: {}", crate::commands::error::text(&e));
                    // With -f an image that is not there is said, not a failure (Docker's).
                    let missing = e.chain().any(|c| {
                        matches!(
                            c.downcast_ref::<burrow::images::catalog::CatalogError>(),
                            Some(burrow::images::catalog::CatalogError::NotFound(_))
                        )
                    });
                    failed |= !(args.force && missing);
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
