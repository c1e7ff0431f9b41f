#!/usr/bin/env bash
# Installs burrow and brings up a rootless container: the README's first command.
#
# As root (a fresh Debian 12 machine): installs the Debian packages burrow needs, builds and
# installs burrow into /usr/local, prepares an unprivileged user (subordinate ids, /run/user/UID,
# a systemd --user manager, /dev/net/tun usable), runs `burrow setup install` as that user and
# starts a demo web server with `burrow run -d -p 8080:80` as that user.
# As an unprivileged user: builds and installs into ~/.local, then the same setup and demo for you
# (missing Debian packages are named with the one command root must run).
#
# Every change to the machine is printed as it is made. Idempotent: run it again at will.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/lib/machine.sh
. "$HERE/tests/lib/machine.sh"

usage() {
    cat <<'EOF'
Usage: bash install.sh [OPTIONS]

Installs burrow, sets up rootless containerd for an unprivileged user, and runs a demo container
that serves http://127.0.0.1:8080/ (rootless, through burrow-rootlesskit).

Options:
  --user NAME      the unprivileged user to set up when run as root
                   (default: $SUDO_USER when run through sudo, else "burrow", created if missing)
  --prefix DIR     where binaries, completions and man pages go
                   (default: /usr/local as root, ~/.local otherwise)
  --port PORT      host port of the demo container (default 8080)
  --no-demo        install and set up, but do not start the demo container
  --no-setup       only build and install the binaries (no user, no containerd, no demo)
  --uninstall      stop the demo, run `burrow setup uninstall` for the user, remove the binaries
  -h, --help       this text
EOF
}

USER_NAME=""
PREFIX=""
PORT=8080
DEMO=1
SETUP=1
UNINSTALL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --user) USER_NAME=${2:?--user needs a name}; shift 2 ;;
        --user=*) USER_NAME=${1#*=}; shift ;;
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --port) PORT=${2:?--port needs a number}; shift 2 ;;
        --port=*) PORT=${1#*=}; shift ;;
        --no-demo) DEMO=0; shift ;;
        --no-setup) SETUP=0; DEMO=0; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (see: bash install.sh --help)" >&2; exit 2 ;;
    esac
done

say() { echo "install: $*"; }
die() { echo "install: error: $*" >&2; exit 1; }

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1
if [ -z "$PREFIX" ]; then
    if [ $IS_ROOT = 1 ]; then PREFIX=/usr/local; else PREFIX="$HOME/.local"; fi
fi
if [ $IS_ROOT = 1 ]; then
    if [ -z "$USER_NAME" ]; then
        if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then USER_NAME=$SUDO_USER; else USER_NAME=burrow; fi
    fi
    [ "$USER_NAME" != root ] || die "--user root: rootless containers need an unprivileged user; name another one"
else
    USER_NAME=$(id -un)
fi
DEMO_NAME=burrow-demo
DEMO_IMAGE=burrow-demo/web:latest
BINS=(burrow burrow-rootlesskit burrow-rootlessctl burrow-slirp burrow-bypass)

# as_user CMD...: runs CMD as the unprivileged user with a login-like environment.
as_user() {
    if [ $IS_ROOT = 1 ]; then
        local uid home
        uid=$(id -u "$USER_NAME"); home=$(getent passwd "$USER_NAME" | cut -d: -f6)
        (cd / && runuser -u "$USER_NAME" -- env -i HOME="$home" USER="$USER_NAME" LOGNAME="$USER_NAME" \
            PATH="$PREFIX/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" XDG_RUNTIME_DIR="/run/user/$uid" \
            TERM="${TERM:-dumb}" "$@")
    else
        PATH="$PREFIX/bin:$PATH" "$@"
    fi
}

# The Debian packages burrow uses at run time, and those its build needs.
RUNTIME_PKGS=(containerd runc uidmap slirp4netns containernetworking-plugins catatonit dbus-user-session systemd
    iproute2 util-linux procps curl ca-certificates)
BUILD_PKGS=(gcc libc6-dev pkg-config protobuf-compiler python3 busybox-static)

packages() {
    if [ $IS_ROOT = 1 ]; then
        machine_install_packages "${RUNTIME_PKGS[@]}" "${BUILD_PKGS[@]}"
        return
    fi
    local missing=() p
    for p in "${RUNTIME_PKGS[@]}" "${BUILD_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        die "missing Debian packages: ${missing[*]}. Ask root to run: sudo apt-get install -y ${missing[*]} (then run install.sh again)"
    fi
}

build() {
    command -v cargo >/dev/null || die "cargo not found: burrow builds with Rust $(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$HERE/Cargo.toml") or newer (rustup.rs); put cargo on PATH and run install.sh again"
    say "building release binaries (scripts/build-release.sh: cargo build --release, the burrow CLI linked statically; a few minutes on a cold checkout)"
    bash "$HERE/scripts/build-release.sh" --quiet || die "the build failed (output above); fix it or report it, then run install.sh again"
}

install_files() {
    local target="${CARGO_TARGET_DIR:-$HERE/target}/release" b installed=()
    mkdir -p "$PREFIX/bin"
    for b in "${BINS[@]}"; do
        [ -x "$target/$b" ] || continue
        install -m 0755 "$target/$b" "$PREFIX/bin/$b.new" && mv -f "$PREFIX/bin/$b.new" "$PREFIX/bin/$b"
        installed+=("$b")
    done
    say "installed ${installed[*]} into $PREFIX/bin (none is setuid)"
    local bash_dir zsh_dir fish_dir man_dir="$PREFIX/share/man/man1"
    if [ $IS_ROOT = 1 ] && [ "$PREFIX" = /usr/local ]; then
        bash_dir=/usr/local/share/bash-completion/completions
    else
        bash_dir="$PREFIX/share/bash-completion/completions"
    fi
    zsh_dir="$PREFIX/share/zsh/site-functions"
    fish_dir="$PREFIX/share/fish/vendor_completions.d"
    mkdir -p "$bash_dir" "$zsh_dir" "$fish_dir" "$man_dir"
    "$PREFIX/bin/burrow" completion bash > "$bash_dir/burrow"
    "$PREFIX/bin/burrow" completion zsh > "$zsh_dir/_burrow"
    "$PREFIX/bin/burrow" completion fish > "$fish_dir/burrow.fish"
    "$PREFIX/bin/burrow" man "$man_dir" >/dev/null
    say "installed shell completions (bash, zsh, fish) and man pages under $PREFIX/share"
}

prepare_user() {
    [ $IS_ROOT = 1 ] || return 0
    machine_prepare_user "$USER_NAME"
    machine_start_user_manager "$USER_NAME"
}

setup_user() {
    say "running 'burrow setup install' as $USER_NAME"
    as_user burrow setup install || die "'burrow setup install' failed for $USER_NAME (its message is above); 'burrow setup check' as that user lists what is missing"
}

demo() {
    local archive
    archive=$(mktemp --tmpdir burrow-demo-XXXXXX.tar)
    chmod 0644 "$archive"
    python3 "$HERE/tests/images/build.py" --demo-archive "$archive" >/dev/null \
        || die "could not build the demo image archive (tests/images/build.py needs python3 and busybox-static)"
    say "loading the demo image $DEMO_IMAGE (built offline from busybox-static) as $USER_NAME"
    as_user burrow load -i "$archive" || { rm -f "$archive"; die "'burrow load' of the demo image failed (message above)"; }
    rm -f "$archive"
    as_user burrow rm -f "$DEMO_NAME" >/dev/null 2>&1 || true
    say "as $USER_NAME: burrow run -d --name $DEMO_NAME -p $PORT:80 $DEMO_IMAGE"
    as_user burrow run -d --name "$DEMO_NAME" -p "$PORT:80" "$DEMO_IMAGE" \
        || die "the demo container did not start (message above); 'burrow logs $DEMO_NAME' as $USER_NAME may say why"
    local i body=""
    for i in $(seq 60); do
        body=$(curl -fsS --max-time 2 "http://127.0.0.1:$PORT/" 2>/dev/null) && break
        body=""
        sleep 0.5
    done
    [ -n "$body" ] || die "the demo container runs but http://127.0.0.1:$PORT/ does not answer; as $USER_NAME: burrow logs $DEMO_NAME; burrow port $DEMO_NAME"
    say "curl http://127.0.0.1:$PORT/ answered from the rootless container:"
    echo "$body" | sed 's/^/    /'
}

uninstall() {
    if [ $IS_ROOT = 0 ] || id "$USER_NAME" >/dev/null 2>&1; then
        if [ -x "$PREFIX/bin/burrow" ]; then
            as_user burrow rm -f "$DEMO_NAME" >/dev/null 2>&1 || true
            as_user burrow setup uninstall || say "'burrow setup uninstall' for $USER_NAME reported a problem (above)"
        fi
    fi
    local b
    for b in "${BINS[@]}"; do rm -f "$PREFIX/bin/$b"; done
    rm -f "$PREFIX/share/bash-completion/completions/burrow" "$PREFIX/share/zsh/site-functions/_burrow" \
        "$PREFIX/share/fish/vendor_completions.d/burrow.fish" "$PREFIX"/share/man/man1/burrow*.1
    say "removed burrow's binaries, completions and man pages from $PREFIX"
    say "left in place: Debian packages, the user $USER_NAME and its subordinate ids (remove with: userdel -r $USER_NAME)"
}

if [ $UNINSTALL = 1 ]; then
    uninstall
    exit 0
fi

packages
build
install_files
if [ $SETUP = 1 ]; then
    prepare_user
    setup_user
fi
if [ $DEMO = 1 ]; then
    demo
    say "done. As $USER_NAME, try: burrow ps; burrow logs $DEMO_NAME; burrow rm -f $DEMO_NAME"
    [ $IS_ROOT = 1 ] && say "(become that user with: su - $USER_NAME, or machinectl shell $USER_NAME@)"
else
    say "done."
fi
exit 0
