//! The user-namespace flags of `run` and `create` (`--userns`).

use burrow::containers::request::HostConfig;

// Not a doc comment: clap would show a flattened struct's doc as the command's about.
// `--userns`, flattened into the create flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UsernsFlags {
    /// User namespace: "" or host (the runtime's, the default), or keep-id[:uid=UID,gid=GID]
    /// (rootless: your uid and gid inside as outside, image files' owners kept); keep-id:own
    /// (burrow's: your ids own the image's files, as with enroot and pyxis).
    #[arg(long, value_name = "MODE", default_value = "")]
    pub userns: String,
}

impl UsernsFlags {
    /// Sets the request's UsernsMode (checked with the rest of the request).
    pub fn apply(&self, h: &mut HostConfig) {
        h.userns_mode = self.userns.clone();
    }
}
