//! `compose pull` and `compose push`: the services' images to and from their registries,
//! through the images library (hosts.toml mirrors and credentials as for `burrow pull`).

use std::sync::Arc;

use super::service::Service;
use crate::compose::{ComposeError, Project};
use crate::images::endpoints::{pull_any, registries_for};
use crate::images::manifest::Platform;
use crate::images::progress::Progress;
use crate::images::reference::Reference;
use crate::images::store::Store;
use crate::images::{pull, push};

/// One service's image and whether it is left out (`build:` only, or --ignore-buildable).
pub struct ServiceImage {
    pub service: String,
    pub image: String,
    pub skipped: bool,
}

/// The images of these services (all when empty, in dependency order); `skip` marks services
/// whose image comes from a build. A service with only `build:` has its derived image name.
pub fn service_images(
    project: &Project,
    services: &[String],
    skip: impl Fn(&Service) -> bool,
) -> Result<Vec<ServiceImage>, ComposeError> {
    let mut out = Vec::new();
    for s in project.services_for(services)? {
        if !services.is_empty() && !services.contains(&s) {
            continue;
        }
        let svc = Service::of(project, &s)?;
        out.push(ServiceImage {
            skipped: skip(&svc),
            image: svc.image()?,
            service: s,
        });
    }
    Ok(out)
}

/// Pulls `image` (this host's platform) with `progress`; says whether anything was downloaded.
pub async fn pull(store: &Store, image: &str, progress: Arc<Progress>) -> anyhow::Result<bool> {
    let reference = Reference::parse(image)?;
    let opts = pull::PullOptions {
        platform: Platform::host(),
        strict_platform: false,
        all_platforms: false,
        unpack: true,
    };
    let regs = registries_for(&reference.domain, false, false, &[])?;
    let pulled = pull_any(store, regs, &reference, &opts, progress).await?;
    Ok(pulled.downloaded > 0)
}

/// Pushes `image` (this host's platform) to its registry; returns the pushed digest.
pub async fn push(store: &Store, image: &str, progress: &Progress) -> anyhow::Result<String> {
    let pushed = push::push_name(store, image, &Platform::host(), false, &[], progress).await?;
    Ok(pushed.digest)
}
