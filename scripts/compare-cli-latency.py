#!/usr/bin/env python3
"""Compares the CLI latency of two burrow binaries in the same run, side by side.

Usage (as root, on a machine prepared by tests/provision.sh, with the test user's rootless
containerd installed by `burrow setup install`):

    python3 scripts/compare-cli-latency.py OLD_BURROW NEW_BURROW [--reps N]

Runs `ps -a` and `run --rm --network none IMAGE true` as the unprivileged test user with each
binary in turn (interleaved, so both see the same machine), and prints the median and p90 of
each and the ratio new/old. A program, not a test: it never fails on a number.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def load_env(path="/etc/burrow-test.env"):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def as_user(m, argv):
    env = {
        "HOME": m["BURROW_TEST_HOME"],
        "USER": m["BURROW_TEST_USER"],
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "XDG_RUNTIME_DIR": m["BURROW_TEST_XDG_RUNTIME_DIR"],
    }
    uid, gid = int(m["BURROW_TEST_UID"]), int(m["BURROW_TEST_GID"])

    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    t = time.perf_counter()
    out = subprocess.run(argv, env=env, preexec_fn=drop, cwd=env["HOME"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ms = (time.perf_counter() - t) * 1000
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {out.stderr.decode()}")
    return ms


def summary(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(len(xs) * 0.9))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--reps", type=int, default=30)
    a = p.parse_args()
    m = load_env()
    image = m["BURROW_TEST_IMAGE_BUSYBOX"]
    # Copies the test user can run, whatever the checkout's permissions.
    tmp = tempfile.mkdtemp(prefix="burrow-latency-")
    os.chmod(tmp, 0o755)
    bins = {}
    for name, path in (("old", a.old), ("new", a.new)):
        dest = os.path.join(tmp, f"burrow-{name}")
        shutil.copy(path, dest)
        os.chmod(dest, 0o755)
        bins[name] = dest
    as_user(m, [bins["new"], "pull", "-q", image])
    cases = {
        "ps -a": lambda b: [b, "ps", "-a"],
        "run --rm --network none IMAGE true": lambda b: [b, "run", "--rm", "--network", "none",
                                                         image, "true"],
    }
    print(f"{'command':<40}{'old median':>12}{'new median':>12}{'old p90':>10}{'new p90':>10}"
          f"{'new/old':>9}")
    for label, argv in cases.items():
        reps = a.reps if label == "ps -a" else max(5, a.reps // 3)
        times = {"old": [], "new": []}
        for name in bins:  # warm-up
            as_user(m, argv(bins[name]))
        for _ in range(reps):
            for name in ("old", "new"):
                times[name].append(as_user(m, argv(bins[name])))
        (om, o90), (nm, n90) = summary(times["old"]), summary(times["new"])
        print(f"{label:<40}{om:>10.1f}ms{nm:>10.1f}ms{o90:>8.1f}ms{n90:>8.1f}ms{nm / om:>9.2f}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
