//! Running an image built for another platform (`run --platform`): the warning when this host
//! has no emulator for it, and what to tell the user when the kernel cannot execute its
//! binaries ("exec format error").

use std::path::Path;

/// Where the kernel's binfmt_misc handlers (e.g. qemu-user emulators) are registered.
const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The explanation for a process of a container whose image is for `platform` (the
/// container's recorded os/arch) that failed with "exec format error" on this host.
pub fn exec_format_hint(platform: Option<&str>) -> String {
    let host = crate::images::manifest::Platform::host().display();
    let image = match platform {
        Some(p) if p != host => p,
        _ => {
            return format!(
                "the command is not an executable this host ({host}) can run: a binary built for \
                 another architecture, or a script without a #! line"
            )
        }
    };
    let emulators = std::fs::read_dir(BINFMT_DIR)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("qemu-"))
                .count()
        })
        .unwrap_or(0);
    let binfmt = if Path::new(BINFMT_DIR).join("register").exists() {
        format!("{emulators} qemu emulators are registered in {BINFMT_DIR}")
    } else {
        format!("{BINFMT_DIR} is not mounted")
    };
    format!(
        "the image is for {image} and this host is {host}: the kernel cannot execute its \
         binaries ({binfmt}); register an emulator (as root: apt-get install qemu-user-static \
         binfmt-support) or run the image for {host} (--platform {host})"
    )
}

/// The qemu-user name of a Go architecture (binfmt_misc registers `qemu-NAME`).
fn qemu_name(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i386",
        a => a,
    }
}

/// Docker's warning for an image of another platform than this host's, when no binfmt_misc
/// emulator is registered for it: its binaries will fail with "exec format error".
pub fn foreign_warning(image: &crate::images::manifest::Platform) -> Option<String> {
    let host = crate::images::manifest::Platform::host();
    if host.matches(image) || (image.os == host.os && image.architecture == host.architecture) {
        return None;
    }
    let emulator = Path::new(BINFMT_DIR).join(format!("qemu-{}", qemu_name(&image.architecture)));
    if emulator.exists() {
        return None;
    }
    Some(format!(
        "the image's platform ({}) does not match this host's ({}) and no emulator is \
         registered for it ({} is missing): its binaries will fail with \"exec format error\" \
         (as root: apt-get install qemu-user-static binfmt-support)",
        image.display(),
        host.display(),
        emulator.display()
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hint_names_both_platforms_and_the_fix() {
        let h = super::exec_format_hint(Some("linux/riscv64"));
        assert!(
            h.contains("linux/riscv64") && h.contains("qemu-user-static"),
            "{h}"
        );
    }
}
