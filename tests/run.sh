#!/usr/bin/env bash
# burrow's test command (the README's second command, and what CI runs):
#   as root: provisions the machine (tests/provision.sh), then
#   cargo fmt --check, cargo clippy -D warnings, build, unit tests and integration tests.
# Integration tests run commands as the unprivileged test user through the harness in
# tests/support. Exits non-zero on any failure and ends with a one-line summary.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_DIR="${BURROW_TEST_LOG_DIR:-target/test-logs}"
mkdir -p "$LOG_DIR"
declare -a STAGES=()
failed=0

stage() { # name command...
    local name=$1; shift
    local start=$SECONDS
    echo "==> $name: $*"
    if "$@" 2>&1 | tee "$LOG_DIR/$name.log"; then
        STAGES+=("ok      $name ($((SECONDS - start))s)")
    else
        STAGES+=("FAILED  $name ($((SECONDS - start))s, log: $LOG_DIR/$name.log)")
        failed=1
    fi
}

if [ "$(id -u)" = 0 ]; then
    stage provision bash tests/provision.sh
else
    echo "==> not root: skipping provisioning; integration tests run only if this machine was provisioned"
fi

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
stage fmt cargo fmt --all --check
stage clippy cargo clippy --workspace --all-targets -- -D warnings
stage build cargo build --workspace --all-targets
stage test cargo test --workspace --no-fail-fast

# Every test must leave no process behind: after the tests, the test users run nothing but
# their systemd --user manager and its session bus.
leftovers() {
    local users u left i
    users=$(. /etc/burrow-test.env 2>/dev/null && echo "${BURROW_TEST_USER:-} ${BURROW_TEST_NOSUBID_USER:-}")
    for i in $(seq 20); do
        left=""
        for u in $users; do
            left+=$(ps -o pid=,etime=,args= -u "$u" 2>/dev/null |
                grep -vE '/systemd --user$|\(sd-pam\)|dbus-daemon --session' || true)
        done
        [ -z "$left" ] && { echo "no process of the test users ($users) is left"; return 0; }
        sleep 0.5
    done
    echo "processes the tests left behind (a test must stop what it starts):"
    echo "$left"
    return 1
}
if [ -s /etc/burrow-test.env ]; then
    stage leftovers leftovers
fi

# Sum cargo's per-binary result lines into one summary.
read -r passed tfailed ignored < <(awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i+1) ~ /^passed/) p += $i
            if ($(i+1) ~ /^failed/) f += $i
            if ($(i+1) ~ /^ignored/) g += $i
        }
    } END { print p+0, f+0, g+0 }' "$LOG_DIR/test.log" 2>/dev/null || echo "0 0 0")
skipped=$(grep -c '^SKIP: ' "$LOG_DIR/test.log" 2>/dev/null || true)
skipped=${skipped:-0}
# A skipped test returns early and cargo counts it as passed.
passed=$((passed - skipped))

echo
echo "==> summary"
for s in "${STAGES[@]}"; do echo "    $s"; done
if [ "${skipped:-0}" -gt 0 ]; then
    echo "    skipped tests (reasons above, lines starting with SKIP:): $skipped"
fi
echo "test: ${passed} passed, ${tfailed} failed, ${skipped:-0} skipped"
exit $failed
