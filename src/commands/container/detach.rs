//! What the CLI says when a session detaches: the library's background reader takes the
//! process's stdio over ([`burrow::containers::held`]), and the CLI says how to get back.

use std::path::Path;

use super::Ctx;
pub use burrow::containers::held::Detached;
use burrow::session::Session;

/// After the detach keys: a background reader keeps reading the process's output and holds
/// its stdin open, so the CLI can leave while it runs on.
pub fn hand_over(
    ctx: &Ctx,
    id: &str,
    session: Session,
    fifo_dir: &Path,
    what: Detached,
) -> anyhow::Result<()> {
    burrow::containers::held::hand_over(ctx, id, session, fifo_dir, what)?;
    let short = super::short_id(id);
    match what {
        Detached::Container { .. } => eprintln!(
            "\r\ndetached: the container keeps running (`burrow logs -f {short}` follows its output, `burrow attach {short}` attaches again)"
        ),
        Detached::Exec { .. } => eprintln!(
            "\r\ndetached: the command keeps running in {short} (`burrow top {short}` lists it)"
        ),
    }
    Ok(())
}
