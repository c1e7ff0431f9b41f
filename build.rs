//! Links the `burrow` binary as a position-dependent executable.
//!
//! As a PIE its ~18,000 relative relocations dirtied some 80 pages of `.data.rel.ro` at every
//! start: about 0.9 ms of the 5 ms a `burrow ps` takes, and short commands are what the CLI runs
//! most (docs/perf.md). Debian's containerd, ctr and runc are position-dependent too; the code is
//! still compiled position-independent, and shared libraries keep their ASLR.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.contains("linux") && (target.starts_with("x86_64") || target.starts_with("aarch64")) {
        println!("cargo:rustc-link-arg-bin=burrow=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
