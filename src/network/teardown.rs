//! What removing a network does in the namespace that holds its bridge (the host's rootful,
//! the launcher's rootless): the masquerading rule and the bridge go. Runs in a helper that has
//! entered that namespace ([`crate::selfexec::Helper::NetRemove`]).

use std::process::Stdio;

use crate::selfexec::Helper;

/// Removes `bridge` and its masquerading rule here. Rootful, both are gone on return, as
/// Docker's are. Rootless, the bridge is taken down, which removes its routes at once, and a
/// process of its own ([`finish`]) deletes it and the rule a moment later (the kernel's
/// unregister takes tens of milliseconds, and the bridge is out of the user's sight there).
pub fn remove(bridge: &str, rootless: bool) -> anyhow::Result<()> {
    use burrow_rootlesskit::launcher::netconf;
    if !rootless {
        super::masq::remove_for(bridge)?;
        netconf::delete_bridge(bridge)?;
    } else if netconf::bridge_down(bridge)? {
        // Started here, the deleter is in these namespaces already; a daemon, so that it
        // outlives this helper (and a Slurm step's end) for the few ms it needs.
        let mut cmd = Helper::NetDeleteLink {
            bridge: bridge.to_string(),
        }
        .command()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::setup::spawn::spawn_daemon(&mut cmd)?;
    } else {
        // No bridge (an attach that failed after adding the rule): the rule alone.
        super::masq::remove_for(bridge)?;
    }
    Ok(())
}

/// The rootless deleter's work. A rule left a moment longer is harmless: it names this
/// bridge, and a new network on the same subnet masquerades the same way.
pub fn finish(bridge: &str) -> anyhow::Result<()> {
    super::masq::remove_for(bridge)?;
    burrow_rootlesskit::launcher::netconf::delete_bridge(bridge)?;
    Ok(())
}
