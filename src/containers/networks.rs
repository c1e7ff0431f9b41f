//! Which containers are on which networks, for `network rm` and `network prune`.

use super::record::{name_of, networks_of};
use super::Ctx;
use crate::network::manage::Users;

/// Every (network, container name) pair of the containers there are, running or not.
pub async fn users(ctx: &Ctx) -> anyhow::Result<Users> {
    let mut used = Vec::new();
    for c in ctx.client.list(vec![]).await? {
        for n in networks_of(&c) {
            used.push((n, name_of(&c)));
        }
    }
    Ok(Users(used))
}
