//! `compose down`: the project's containers (one-off runs too) stopped and removed, each
//! service once the services that depend on it are gone (the others at once), then the
//! networks it made, with `-v` its named volumes, with `--rmi` its images: exactly what `up`
//! made, found by the project's labels.

use super::naming;
use super::state::ProjectState;
use super::up::{remove_member, Report};
use crate::compose::project::Project;
use crate::compose::ComposeError;
use crate::containers::{networks, volumes, Ctx};
use crate::network as net;

/// Which images `down --rmi` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveImages {
    /// Images of services without a custom tag (built ones).
    Local,
    All,
}

/// What `down` is asked.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub volumes: bool,
    pub images: Option<RemoveImages>,
    pub remove_orphans: bool,
    pub timeout: Option<u64>,
}

/// Takes the project down.
pub async fn down(
    ctx: &Ctx,
    project: &Project,
    opts: &DownOptions,
    report: Report<'_>,
) -> Result<(), ComposeError> {
    let state = ProjectState::read(ctx, &project.name).await?;
    let known = |s: &str| project.compose.services.keys().any(|k| k.as_str() == s);
    // Orphans and one-off containers first, all at once.
    let strays = state
        .members
        .iter()
        .filter(|m| !known(&m.service) && (opts.remove_orphans || m.oneoff));
    let removed = futures_util::future::join_all(
        strays.map(|m| remove_member(ctx, project, m, opts.timeout, opts.volumes, report)),
    )
    .await;
    removed.into_iter().collect::<Result<(), _>>()?;
    // Then each service once those depending on it are gone, its containers at once.
    let services = project
        .services_for(&[])?
        .iter()
        .map(|n| super::service::Service::of(project, n))
        .collect::<Result<Vec<_>, _>>()?;
    let state = &state;
    let nets = project_networks(ctx, project)?;
    // Each service that is gone is told to the network remover, which takes a network down as
    // soon as the last of the project's containers on it is gone (its bridge's deletion then
    // overlaps the stops of the rest).
    let (gone_tx, gone_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stops = async move {
        let gone_tx = gone_tx;
        super::deps::dependents_first(&services, |svc| {
            let gone_tx = &gone_tx;
            async move {
                let mine = state.members.iter().filter(|m| m.service == svc.name);
                let removed =
                    futures_util::future::join_all(mine.map(|m| {
                        remove_member(ctx, project, m, opts.timeout, opts.volumes, report)
                    }))
                    .await;
                let removed = removed.into_iter().collect::<Result<(), _>>();
                if removed.is_ok() {
                    let _ = gone_tx.send(svc.name.clone());
                }
                removed
            }
        })
        .await
    };
    let (stopped, early) = tokio::join!(
        stops,
        remove_networks_early(ctx, project, &nets, &state.members, gone_rx, report)
    );
    stopped?;
    let rest: Vec<net::Network> = nets
        .into_iter()
        .filter(|n| !early.contains(&n.name))
        .collect();
    remove_networks(ctx, &rest, report).await?;
    if opts.volumes {
        remove_volumes(ctx, project, report).await?;
    }
    if let Some(which) = opts.images {
        remove_images(ctx, project, which, report).await?;
    }
    Ok(())
}

/// The networks the project made (by its label).
fn project_networks(ctx: &Ctx, project: &Project) -> Result<Vec<net::Network>, ComposeError> {
    Ok(net::list(&ctx.net)
        .map_err(anyhow::Error::from)?
        .into_iter()
        .filter(|n| {
            n.labels().get(naming::PROJECT).and_then(|v| v.as_str()) == Some(project.name.as_str())
        })
        .collect())
}

/// Removes each of `nets` once every service of `project` whose containers (`members`) are on
/// it is gone, as `gone` names them, while the other services still stop; a network that still
/// has a container then (one of another project, an orphan left in place) is left to the final
/// pass, which reports it. Returns the names of those it removed. Ends when `gone` closes and
/// every removal it began has finished.
async fn remove_networks_early(
    ctx: &Ctx,
    project: &Project,
    nets: &[net::Network],
    members: &[super::state::Member],
    mut gone: tokio::sync::mpsc::UnboundedReceiver<String>,
    report: Report<'_>,
) -> Vec<String> {
    use futures_util::StreamExt;
    let known = |s: &str| project.compose.services.keys().any(|k| k.as_str() == s);
    // The networks of each member still to go (read once), then per network the services
    // whose containers are on it.
    let on: Vec<(&str, Vec<String>)> = members
        .iter()
        .filter(|m| known(&m.service) && !m.oneoff)
        .map(|m| {
            let nets = crate::containers::record::networks_of(&m.container);
            (m.service.as_str(), nets)
        })
        .collect();
    let mut waiting: Vec<(&net::Network, std::collections::HashSet<&str>)> = nets
        .iter()
        .map(|n| {
            let services = on.iter().filter(|(_, nets)| nets.contains(&n.name));
            (n, services.map(|(svc, _)| *svc).collect())
        })
        .collect();
    let mut removing = futures_util::stream::FuturesUnordered::new();
    let mut removed = Vec::new();
    let mut open = true;
    loop {
        let (ready, rest): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(_, s)| s.is_empty());
        waiting = rest;
        for (n, _) in ready {
            removing.push(async move { (n, remove_if_unused(ctx, n).await) });
        }
        tokio::select! {
            svc = gone.recv(), if open => match svc {
                Some(svc) => {
                    for (_, services) in waiting.iter_mut() {
                        services.remove(svc.as_str());
                    }
                }
                None => open = false,
            },
            Some((n, done)) = removing.next(), if !removing.is_empty() => {
                if done {
                    report(format!("Network {}  Removed", n.name));
                    removed.push(n.name.clone());
                }
            }
            else => break,
        }
    }
    removed
}

/// Removes `n` if no container is on it now (`networks::remove` refuses otherwise); whether it
/// did.
async fn remove_if_unused(ctx: &Ctx, n: &net::Network) -> bool {
    let Ok(users) = networks::users(ctx).await else {
        return false;
    };
    networks::remove(ctx, &n.name, &users).await.is_ok()
}

/// Removes `mine` (what the early pass left), reporting each, or why it could not.
async fn remove_networks(
    ctx: &Ctx,
    mine: &[net::Network],
    report: Report<'_>,
) -> Result<(), ComposeError> {
    if mine.is_empty() {
        return Ok(());
    }
    let users = networks::users(ctx).await?;
    // At once: each takes a helper process to delete its bridge in the launcher's namespace.
    let removed =
        futures_util::future::join_all(mine.iter().map(|n| networks::remove(ctx, &n.name, &users)))
            .await;
    for (n, r) in mine.iter().zip(removed) {
        match r {
            Ok(()) => report(format!("Network {}  Removed", n.name)),
            Err(e) => report(format!("warning: network {}: {e}", n.name)),
        }
    }
    Ok(())
}

async fn remove_volumes(
    ctx: &Ctx,
    project: &Project,
    report: Report<'_>,
) -> Result<(), ComposeError> {
    let used = volumes::InUse::of(ctx).await?;
    for v in volumes::Volumes::of(ctx).list() {
        if v.labels.get(naming::PROJECT).map(String::as_str) != Some(project.name.as_str()) {
            continue;
        }
        volumes::remove(ctx, &v.name, &used)
            .await
            .map_err(|e| ComposeError::Load(format!("removing volume {}: {e}", v.name)))?;
        report(format!("Volume {}  Removed", v.name));
    }
    Ok(())
}

/// The images `--rmi` names: with `local` those built for services without `image:`
/// (`PROJECT-SERVICE`), with `all` every service's image; once each.
pub fn images_to_remove(
    project: &Project,
    which: RemoveImages,
) -> Result<Vec<String>, ComposeError> {
    let mut out: Vec<String> = Vec::new();
    for name in project.compose.services.keys() {
        let s = super::service::Service::of(project, name.as_str())?;
        if which == RemoveImages::Local && !s.builds_only() {
            continue;
        }
        let Ok(image) = s.image() else { continue };
        if !out.contains(&image) {
            out.push(image);
        }
    }
    Ok(out)
}

async fn remove_images(
    ctx: &Ctx,
    project: &Project,
    which: RemoveImages,
    report: Report<'_>,
) -> Result<(), ComposeError> {
    let cache = crate::images::userdb::cache_dir(&ctx.ep.data_root);
    let store = crate::images::open_store(&ctx.ep)
        .await
        .map_err(anyhow::Error::from)?;
    for image in images_to_remove(project, which)? {
        // Skipped when not there (names as `images` matches them, imported ones too).
        let host = crate::images::manifest::Platform::host();
        if !crate::images::catalog::find(&store, &image, &host)
            .await
            .is_ok_and(|found| !found.is_empty())
        {
            continue;
        }
        match crate::images::remove::remove(&store, &cache, &image, false).await {
            Ok(_) => report(format!("Image {image}  Removed")),
            Err(e) => report(format!("warning: image {image}: {e:#}")),
        }
    }
    Ok(())
}
