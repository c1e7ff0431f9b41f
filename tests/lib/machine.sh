# Shell functions that prepare a machine for rootless containers; sourced by tests/provision.sh and
# install.sh. Each function is idempotent and prints what it changes. Run as root.

machine_log() { echo "machine: $*"; }

# machine_install_packages PKG...: installs the missing ones from Debian's archive.
machine_install_packages() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    machine_log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" > /tmp/burrow-apt.log 2>&1; then
        apt-get update -q >> /tmp/burrow-apt.log 2>&1
        apt-get install -y -q --no-install-recommends "${missing[@]}" >> /tmp/burrow-apt.log 2>&1 || {
            echo "machine: apt-get install failed; see /tmp/burrow-apt.log" >&2
            tail -20 /tmp/burrow-apt.log >&2
            return 1
        }
    fi
}

# machine_prepare_user NAME [--no-subids]: an unprivileged user with subordinate ids (or, with
# --no-subids, explicitly without any, as accounts from LDAP/SSSD often are), /run/user/UID and a
# usable /dev/net/tun.
machine_prepare_user() {
    local user=$1 subids=1
    [ "${2:-}" = --no-subids ] && subids=0
    local created=0
    if ! id "$user" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/bash "$user"
        machine_log "created unprivileged user $user"
        created=1
    fi
    local uid gid
    uid=$(id -u "$user"); gid=$(id -g "$user")
    local f
    for f in /etc/subuid /etc/subgid; do
        touch "$f"
        if [ $subids = 0 ]; then
            # useradd hands out ranges by default: this user is to have none.
            if grep -qE "^($user|$uid):" "$f"; then
                sed -i -E "/^($user|$uid):/d" "$f"
                machine_log "removed $user's subordinate ids from $f (this user is to have none)"
            fi
        elif ! grep -qE "^($user|$uid):" "$f"; then
            # The next free 65536-id range at or above 200000.
            local start
            start=$(awk -F: 'BEGIN{m=200000} {e=$2+$3; if (e>m) m=e} END{print m}' "$f")
            echo "$user:$start:65536" >> "$f"
            machine_log "added $user:$start:65536 to $f"
        elif [ $created = 1 ]; then
            machine_log "useradd gave $user the subordinate ids $(grep -E "^($user|$uid):" "$f" | head -1) in $f"
        fi
    done
    local rd=/run/user/$uid
    if [ ! -d "$rd" ]; then
        mkdir -p "$rd"
        machine_log "created $rd"
    fi
    chown "$uid:$gid" "$rd"; chmod 0700 "$rd"
    local tunmode
    tunmode=$(stat -c %a /dev/net/tun 2>/dev/null || echo missing)
    if [ "$tunmode" != 666 ] && [ -c /dev/net/tun ]; then
        chmod 0666 /dev/net/tun
        machine_log "chmod 0666 /dev/net/tun (was $tunmode; distributions ship 0666) so unprivileged users can open tap devices"
    fi
    local fusemode
    fusemode=$(stat -c %a /dev/fuse 2>/dev/null || echo missing)
    if [ "$fusemode" != 666 ] && [ -c /dev/fuse ]; then
        chmod 0666 /dev/fuse
        machine_log "chmod 0666 /dev/fuse (was $fusemode; distributions ship 0666) so unprivileged users can mount the shared image store with squashfuse"
    fi
    # Unprivileged ping sockets for the user-mode network stacks' ICMP echo.
    if [ -w /proc/sys/net/ipv4/ping_group_range ] && [ "$(cat /proc/sys/net/ipv4/ping_group_range)" != "$(printf '0\t2147483647')" ]; then
        if echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range 2>/dev/null; then
            machine_log "sysctl net.ipv4.ping_group_range=\"0 2147483647\" (unprivileged ICMP echo sockets, until reboot)"
        fi
    fi
}

# machine_user_manager_running NAME: is a systemd --user manager answering for NAME?
machine_user_manager_running() {
    local user=$1 uid
    uid=$(id -u "$user")
    local state
    state=$(runuser -u "$user" -- env XDG_RUNTIME_DIR="/run/user/$uid" systemctl --user is-system-running 2>/dev/null || true)
    case "$state" in running|degraded|starting) return 0 ;; *) return 1 ;; esac
}

# machine_start_user_manager NAME: starts `systemd --user` for NAME when PID 1 is not systemd (the
# recipe: /run/systemd/system exists, and the manager starts inside cgroups delegated to the user
# in both the unified and the name=systemd hierarchies). On a machine booted with systemd this is
# logind's job: we only enable lingering.
machine_start_user_manager() {
    local user=$1 uid gid home
    uid=$(id -u "$user"); gid=$(id -g "$user"); home=$(getent passwd "$user" | cut -d: -f6)
    if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
        loginctl enable-linger "$user" 2>/dev/null || true
        machine_log "systemd is PID 1: lingering enabled for $user"
        return 0
    fi
    machine_user_manager_running "$user" && { machine_log "systemd --user already runs for $user"; return 0; }
    mkdir -p /run/systemd/system
    local h d procs=()
    for h in unified systemd; do
        [ -d "/sys/fs/cgroup/$h" ] || continue
        d=/sys/fs/cgroup/$h/user.slice/user-$uid.slice/user@$uid.service
        mkdir -p "$d"
        chown -R "$uid:$gid" "$d"
        procs+=("$d/cgroup.procs")
    done
    if [ -d /sys/fs/cgroup/user.slice ] || [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        d=/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service
        mkdir -p "$d" && chown -R "$uid:$gid" "$d" && procs+=("$d/cgroup.procs")
    fi
    local log=/var/log/burrow-user-manager-$user.log
    # The starting shell joins the delegated cgroups, then becomes the user's manager.
    # shellcheck disable=SC2016
    BURROW_CGROUPS="${procs[*]}" setsid bash -c 'for p in $BURROW_CGROUPS; do echo $$ > "$p"; done; exec "$@"' _ \
        runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" \
        PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR="/run/user/$uid" \
        /lib/systemd/systemd --user > "$log" 2>&1 < /dev/null &
    local i
    for i in $(seq 150); do
        machine_user_manager_running "$user" && { machine_log "started systemd --user for $user (log $log)"; return 0; }
        sleep 0.2
    done
    echo "machine: systemd --user for $user did not come up; its log:" >&2
    tail -30 "$log" >&2
    return 1
}
