#!/usr/bin/env bash
# Makes a fresh Debian 12 machine ready for burrow's tests and benchmarks. Run as root; idempotent;
# needs no network beyond Debian's package archive and PyPI (testcontainers). What it sets up:
#   - the Debian packages the project, its tests and its benchmarks use
#   - an unprivileged test user (burrowtest) with /etc/subuid and /etc/subgid ranges, and a second
#     one (burrownosub) with none
#   - /run/user/UID (0700, owned by the user) and /dev/net/tun usable by unprivileged users
#   - a running `systemd --user` manager for that user, even when PID 1 is not systemd
#   - two local registries: 127.0.0.1:5000 (no auth) and 127.0.0.1:5001 (basic auth)
#   - the test images, pushed to both registries
#   - docker.io (client only), docker-compose and testcontainers-python (in /opt/burrow-test/venv)
#   - a one-node Slurm cluster (munge, slurmctld, slurmd; tests/lib/slurm.sh) for the [hpc] tests
#   - /etc/burrow-test.env describing all of the above for the test harness
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/lib/machine.sh
. "$HERE/lib/machine.sh"
# shellcheck source=tests/lib/slurm.sh
. "$HERE/lib/slurm.sh"

[ "$(id -u)" = 0 ] || { echo "provision.sh: run me as root (I install packages and create a test user)" >&2; exit 1; }

TEST_USER="${BURROW_TEST_USER:-burrowtest}"
# A second user without subordinate ids (single-id mode: LDAP/SSSD accounts on clusters).
NOSUBID_USER="${BURROW_TEST_NOSUBID_USER:-burrownosub}"
STATE=/var/lib/burrow-test
REG_PORT=5000
AUTH_REG_PORT=5001
AUTH_USER=burrow
AUTH_PASSWORD=burrow-test-password

say() { echo "provision: $*"; }

install_packages() {
    local pkgs=(containerd runc crun uidmap containernetworking-plugins slirp4netns rootlesskit passt
        podman catatonit buildah podman-compose docker-registry busybox-static iperf3 umoci skopeo zstd protobuf-compiler apache2-utils
        attr curl jq python3 dbus-user-session systemd iproute2 util-linux procps psmisc
        slurm-wlm munge libslurm-dev squashfs-tools squashfuse fuse3 erofs-utils tinyproxy git)
    machine_install_packages "${pkgs[@]}"
    # tinyproxy is for the tests' own instances (ADD through a proxy); not the packaged service.
    if pgrep -x tinyproxy > /dev/null; then
        service tinyproxy stop > /dev/null 2>&1 || pkill -x tinyproxy || true
    fi
    install_docker_clients
    install_compose_and_testcontainers
}

# The Docker API tests (tests/dockerapi_rootless.rs) drive burrow's socket with real clients:
# Debian's docker.io for its `docker` client and python3-docker (the Docker SDK) for the system
# python. docker.io also ships dockerd, which must never start here: a policy-rc.d refuses
# every service start during the install, and the units are masked afterwards.
install_docker_clients() {
    if [ "$(dpkg-query -W -f='${Status}\n' docker.io python3-docker 2>/dev/null | grep -c "install ok installed")" = 2 ]; then
        return
    fi
    local policy=/usr/sbin/policy-rc.d had_policy=
    [ -e "$policy" ] && had_policy=1 && cp -a "$policy" "$policy.burrow-saved"
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    machine_install_packages docker.io python3-docker
    if [ -n "$had_policy" ]; then mv "$policy.burrow-saved" "$policy"; else rm -f "$policy"; fi
    if command -v systemctl > /dev/null; then
        systemctl mask docker.service docker.socket > /dev/null 2>&1 || true
    fi
    say "installed the docker client (dockerd not started) and the Python Docker SDK"
}

# The Docker API client tests (tests/dockerapi_clients_rootless.rs) also drive burrow with
# Debian's docker-compose 1.29 (on Debian's python3-docker) and testcontainers-python from PyPI.
# Debian's python3 is externally managed, so testcontainers lives in a venv of its own, with
# PyPI's docker SDK pinned to a version testcontainers supports. Quiet when already there.
VENV=/opt/burrow-test/venv
TESTCONTAINERS_VERSION=4.15.0
DOCKER_SDK_VERSION=7.1.0
install_compose_and_testcontainers() {
    machine_install_packages docker-compose python3-venv
    # The test user runs it: the venv and the directory above must be readable by everyone.
    mkdir -p "$(dirname "$VENV")"
    chmod 755 "$(dirname "$VENV")"
    # Debian's python (root's PATH may hold another one the test user cannot run).
    if "$VENV/bin/python" -c "import sys, testcontainers, docker; assert sys.base_prefix == '/usr' and docker.__version__ == '$DOCKER_SDK_VERSION'" > /dev/null 2>&1; then
        return
    fi
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        "testcontainers==$TESTCONTAINERS_VERSION" "docker==$DOCKER_SDK_VERSION" > /tmp/burrow-pip.log 2>&1 || {
        echo "provision: pip install of testcontainers failed; see /tmp/burrow-pip.log" >&2
        tail -20 /tmp/burrow-pip.log >&2
        exit 1
    }
    chmod -R a+rX "$VENV"
    say "installed testcontainers $TESTCONTAINERS_VERSION (docker SDK $DOCKER_SDK_VERSION) in $VENV"
}

start_registry() { # name port [htpasswd]
    local name=$1 port=$2 htpasswd=${3:-}
    local dir="$STATE/registry-$name"
    mkdir -p "$dir/data"
    {
        echo "version: 0.1"
        echo "log: {level: warn}"
        echo "storage:"
        echo "  filesystem: {rootdirectory: $dir/data}"
        echo "  delete: {enabled: true}"
        echo "http:"
        echo "  addr: 127.0.0.1:$port"
        echo "  headers: {X-Content-Type-Options: [nosniff]}"
        if [ -n "$htpasswd" ]; then
            echo "auth:"
            echo "  htpasswd: {realm: burrow-test, path: $htpasswd}"
        fi
    } > "$dir/config.yml"
    if curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; then
        say "registry $name already answers on 127.0.0.1:$port"
        return
    fi
    setsid docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 < /dev/null &
    echo $! > "$dir/pid"
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && { say "started registry $name on 127.0.0.1:$port"; return; }
        sleep 0.1
    done
    echo "provision: registry $name did not come up on 127.0.0.1:$port; its log:" >&2
    cat "$dir/log" >&2
    exit 1
}

install_packages
machine_prepare_user "$TEST_USER"
uid=$(id -u "$TEST_USER"); gid=$(id -g "$TEST_USER"); home=$(getent passwd "$TEST_USER" | cut -d: -f6)
machine_start_user_manager "$TEST_USER"
machine_prepare_user "$NOSUBID_USER" --no-subids
nosub_uid=$(id -u "$NOSUBID_USER"); nosub_gid=$(id -g "$NOSUBID_USER")
nosub_home=$(getent passwd "$NOSUBID_USER" | cut -d: -f6)

mkdir -p "$STATE"
if [ ! -s "$STATE/htpasswd" ]; then
    htpasswd -Bbc "$STATE/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" 2>/dev/null
fi
slurm_start_cluster
start_registry plain "$REG_PORT"
start_registry auth "$AUTH_REG_PORT" "$STATE/htpasswd"

python3 "$HERE/images/build.py" --out "$STATE/images" \
    --push "127.0.0.1:$REG_PORT" \
    --push-auth "127.0.0.1:$AUTH_REG_PORT" "$AUTH_USER:$AUTH_PASSWORD"

cat > /etc/burrow-test.env <<ENV
BURROW_TEST_USER=$TEST_USER
BURROW_TEST_UID=$uid
BURROW_TEST_GID=$gid
BURROW_TEST_HOME=$home
BURROW_TEST_XDG_RUNTIME_DIR=/run/user/$uid
BURROW_TEST_REGISTRY=127.0.0.1:$REG_PORT
BURROW_TEST_AUTH_REGISTRY=127.0.0.1:$AUTH_REG_PORT
BURROW_TEST_AUTH_USER=$AUTH_USER
BURROW_TEST_AUTH_PASSWORD=$AUTH_PASSWORD
BURROW_TEST_IMAGE_BUSYBOX=127.0.0.1:$REG_PORT/burrow-test/busybox:latest
BURROW_TEST_IMAGE_MULTILAYER=127.0.0.1:$REG_PORT/burrow-test/multilayer:latest
BURROW_TEST_IMAGE_MULTIARCH=127.0.0.1:$REG_PORT/burrow-test/multiarch:latest
BURROW_TEST_IMAGE_TOOLS=127.0.0.1:$REG_PORT/burrow-test/tools:latest
BURROW_TEST_IMAGE_DEMO=127.0.0.1:$REG_PORT/burrow-demo/web:latest
BURROW_TEST_IMAGES_DIR=$STATE/images
BURROW_TEST_NOSUBID_USER=$NOSUBID_USER
BURROW_TEST_NOSUBID_UID=$nosub_uid
BURROW_TEST_NOSUBID_GID=$nosub_gid
BURROW_TEST_NOSUBID_HOME=$nosub_home
BURROW_TEST_NOSUBID_XDG_RUNTIME_DIR=/run/user/$nosub_uid
BURROW_TEST_SLURM_PARTITION=debug
ENV
chmod 0644 /etc/burrow-test.env
say "wrote /etc/burrow-test.env"
say "ready: user $TEST_USER (uid $uid), systemd --user running, registries on 127.0.0.1:$REG_PORT and :$AUTH_REG_PORT"
