#!/usr/bin/env bash
# Release build of every binary, with the `burrow` CLI linked statically.
#
# burrow is a short-lived process, so its start-up is part of every command it runs (and of
# every OCI hook and log line containerd hands it). A dynamically linked burrow spends about
# half a millisecond loading and relocating libc, libm and libgcc_s at each start; linked
# statically against glibc (as Go's containerd tools are static) it skips all of that:
# docs/perf.md measures `ps` and `images`. The other binaries are long-running and stay
# dynamically linked.
#
# Usage: scripts/build-release.sh [cargo flags, e.g. --quiet]
# The binaries land in target/release (or $CARGO_TARGET_DIR/release), as with
# `cargo build --release --workspace`, which also works and gives a dynamically linked burrow.
#
# Cargo cannot give one crate of a workspace its own RUSTFLAGS (and a global crt-static breaks
# proc-macros), so the CLI is built with `cargo rustc`, which adds flags to its final crate
# only. Static glibc still reads /etc/nsswitch.conf for user and host lookups (built in for
# `files` and `dns`; other modules are loaded from the same glibc version, which is what a
# binary built on its host has).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

static_ok() {
    # x86_64 and aarch64 glibc targets with the static libc (libc6-dev) installed.
    local arch libdir
    arch=$(uname -m)
    case "$arch" in x86_64 | aarch64) ;; *) return 1 ;; esac
    libdir=/usr/lib/$arch-linux-gnu
    [ -e "$libdir/libc.a" ] && [ -e "$libdir/libm.a" ] && [ -e "$libdir/libpthread.a" ]
}

if static_ok; then
    cargo build --release --workspace --exclude burrow --locked "$@"
    cargo rustc --release --locked -p burrow --bin burrow "$@" -- \
        -C target-feature=+crt-static -C relocation-model=static
else
    echo "build-release: no static glibc for $(uname -m) here (libc6-dev's libc.a); burrow stays dynamically linked" >&2
    cargo build --release --workspace --locked "$@"
fi
