#!/usr/bin/env python3
"""Builds burrow's test images offline, deterministically, as OCI image layouts.

Images (tags in the layout, repositories when pushed):
  busybox     burrow-test/busybox      busybox-static with its applet links, /etc/passwd, /etc/group
  multilayer  burrow-test/multilayer   three layers exercising unpack (see multilayer-expected.json)
  multilayer-zstd  burrow-test/multilayer-zstd  the same layers and one more, compressed with zstd
  multiarch   burrow-test/multiarch    the multilayer content as an OCI index: linux/amd64 + linux/arm64
  tools       burrow-test/tools        busybox + iperf3 and its shared libraries, for benchmarks
  demo        burrow-demo/web          busybox httpd serving /www on port 80 (the README's demo)
  health      burrow-test/health       busybox sleeping, with a HEALTHCHECK (healthy unless /tmp/sick exists)

Layers are hand-built tar streams, so ownership, setuid bits, whiteouts and xattrs do not depend on
the builder's privileges. Pushing uses skopeo. Standard library only.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

MTIME = 1700000000
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Layer:
    """A tar layer under construction; entries keep insertion order."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.dirs = set()

    def _info(self, name, kind, mode, uid=0, gid=0):
        ti = tarfile.TarInfo(name.lstrip("/"))
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.uname = ti.gname = ""
        ti.mtime = MTIME
        return ti

    def parents(self, path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dir("/" + d)

    def dir(self, path, mode=0o755, uid=0, gid=0):
        self.parents(path)
        self.dirs.add(path.strip("/"))
        self.tar.addfile(self._info(path, tarfile.DIRTYPE, mode, uid, gid))

    def file(self, path, data, mode=0o644, uid=0, gid=0, xattrs=None):
        if isinstance(data, str):
            data = data.encode()
        self.parents(path)
        ti = self._info(path, tarfile.REGTYPE, mode, uid, gid)
        ti.size = len(data)
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, path, target):
        self.parents(path)
        ti = self._info(path, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def hardlink(self, path, target):
        self.parents(path)
        ti = self._info(path, tarfile.LNKTYPE, 0o644)
        ti.linkname = target.lstrip("/")
        self.tar.addfile(ti)

    def whiteout(self, path):
        d, base = os.path.split(path)
        self.file(os.path.join(d, ".wh." + base), b"", mode=0o600)

    def opaque(self, dirpath):
        self.file(os.path.join(dirpath, ".wh..wh..opq"), b"", mode=0o600)

    def host_file(self, path, src, mode=None):
        with open(src, "rb") as f:
            data = f.read()
        self.file(path, data, mode=mode if mode is not None else os.stat(src).st_mode & 0o7777)

    def finish(self):
        """Returns (uncompressed bytes, gzip bytes)."""
        self.tar.close()
        raw = self.buf.getvalue()
        gz = io.BytesIO()
        with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=6) as g:
            g.write(raw)
        return raw, gz.getvalue()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    """An OCI image layout directory."""

    def __init__(self, path):
        self.path = path
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(os.path.join(path, "blobs", "sha256"))
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.refs = []

    def blob(self, data, media_type, extra=None):
        digest = sha(data)
        with open(os.path.join(self.path, "blobs", "sha256", digest[7:]), "wb") as f:
            f.write(data)
        desc = {"mediaType": media_type, "digest": digest, "size": len(data)}
        desc.update(extra or {})
        return desc

    def image(self, layers, cmd, arch=ARCH, env=None, exposed=None, workdir="/", healthcheck=None,
              zstd=False):
        """Writes layers (gzip, or zstd when asked), config and manifest; returns the manifest
        descriptor."""
        descs, diff_ids = [], []
        for raw, gz in layers:
            diff_ids.append(sha(raw))
            if zstd:
                z = subprocess.run(["zstd", "-q", "-c", "-3"], input=raw, capture_output=True, check=True)
                descs.append(self.blob(z.stdout, MT_LAYER_ZSTD))
            else:
                descs.append(self.blob(gz, MT_LAYER))
        config = {
            "created": "2023-11-14T22:13:20Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Env": env or [PATH_ENV], "Cmd": cmd, "WorkingDir": workdir},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "burrow tests/images/build.py"}
                        for _ in layers],
        }
        if exposed:
            config["config"]["ExposedPorts"] = {p: {} for p in exposed}
        if healthcheck:
            config["config"]["Healthcheck"] = healthcheck
        cdesc = self.blob(canon(config), MT_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cdesc, "layers": descs}
        return self.blob(canon(manifest), MT_MANIFEST,
                         {"platform": {"architecture": arch, "os": "linux"}})

    def index(self, manifests):
        idx = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
        return self.blob(canon(idx), MT_INDEX)

    def tag(self, name, desc):
        d = dict(desc)
        d.pop("platform", None)
        d["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.refs.append(d)

    def save(self):
        with open(os.path.join(self.path, "index.json"), "wb") as f:
            f.write(canon({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": self.refs}))


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def busybox_layer(extra=None):
    bb = shutil.which("busybox") or "/bin/busybox"
    out = subprocess.run([bb, "--list-full"], capture_output=True, text=True, check=True).stdout
    layer = Layer()
    for d in ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/etc", "/root", "/home", "/var", "/proc",
              "/sys", "/dev", "/run", "/www"]:
        layer.dir(d, mode=0o700 if d == "/root" else 0o755)
    layer.dir("/tmp", mode=0o1777)
    layer.host_file("/bin/busybox", bb, mode=0o755)
    for applet in sorted(set(out.split())):
        p = "/" + applet
        if p != "/bin/busybox":
            layer.symlink(p, "/bin/busybox")
    layer.file("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
               "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
               "app:x:1000:1000:app:/home/app:/bin/sh\n"
               "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    layer.file("/etc/group", "root:x:0:\ndaemon:x:1:\napp:x:1000:\nnogroup:x:65534:\n")
    layer.dir("/home/app", uid=1000, gid=1000)
    if extra:
        extra(layer)
    return layer.finish()


def multilayer_layers():
    base = busybox_layer()
    l2 = Layer()
    l2.dir("/data")
    l2.file("/data/deleted.txt", "deleted in layer 3\n")
    l2.file("/data/opaque/a", "a\n")
    l2.file("/data/opaque/b", "b\n")
    l2.file("/data/target.txt", "target\n")
    l2.symlink("/data/links/absolute", "/data/target.txt")
    l2.symlink("/data/links/relative", "../target.txt")
    l2.file("/data/hard/one", "hardlinked\n")
    l2.hardlink("/data/hard2/two", "/data/hard/one")
    l2.file("/data/owned/user1000", "owned by 1000\n", uid=1000, gid=1000)
    l2.file("/data/owned/nobody", "owned by 65534\n", uid=65534, gid=65534)
    l2.file("/data/setuid", "setuid\n", mode=0o4755)
    l2.dir("/data/sticky", mode=0o1777)
    l2.file("/data/xattr.txt", "xattr\n", xattrs={"user.burrow": "test"})
    l3 = Layer()
    l3.dir("/data")
    l3.whiteout("/data/deleted.txt")
    l3.dir("/data/opaque")
    l3.opaque("/data/opaque")
    l3.file("/data/opaque/c", "c\n")
    l3.file("/data/layer3.txt", "layer 3\n")
    return [base, l2.finish(), l3.finish()]


MULTILAYER_EXPECTED = {
    "absent": ["/data/deleted.txt", "/data/opaque/a", "/data/opaque/b"],
    "files": {
        "/data/opaque/c": {"content": "c\n"},
        "/data/layer3.txt": {"content": "layer 3\n"},
        "/data/target.txt": {"content": "target\n"},
        "/data/hard/one": {"content": "hardlinked\n", "same_inode_as": "/data/hard2/two"},
        "/data/owned/user1000": {"uid": 1000, "gid": 1000},
        "/data/owned/nobody": {"uid": 65534, "gid": 65534},
        "/data/setuid": {"mode": "4755"},
        "/data/sticky": {"mode": "1777", "type": "directory"},
        "/data/xattr.txt": {"xattr": {"user.burrow": "test"}, "xattr_optional": True},
    },
    "symlinks": {"/data/links/absolute": "/data/target.txt", "/data/links/relative": "../target.txt"},
}


def tools_layers():
    def add_iperf(layer):
        iperf = shutil.which("iperf3")
        if not iperf:
            raise SystemExit("build.py: iperf3 is not installed (apt-get install iperf3)")
        layer.host_file("/usr/bin/iperf3", iperf, mode=0o755)
        ldd = subprocess.run(["ldd", iperf], capture_output=True, text=True, check=True).stdout
        for line in ldd.splitlines():
            parts = line.split()
            path = next((p for p in parts if p.startswith("/")), None)
            if path and os.path.exists(path):
                layer.host_file(path, os.path.realpath(path), mode=0o755)
    return [busybox_layer(), busybox_layer_only(add_iperf)]


def busybox_layer_only(fill):
    layer = Layer()
    fill(layer)
    return layer.finish()


def demo_layers():
    def www(layer):
        layer.file("/www/index.html",
                   "<!doctype html><title>burrow</title><h1>Hello from a rootless burrow container</h1>\n")
    return [busybox_layer(), busybox_layer_only(www)]


DEMO_CMD = ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]

# Docker's HEALTHCHECK --interval=1s --timeout=5s --retries=2 CMD echo image-check; test ! -e /tmp/sick
HEALTHCHECK = {
    "Test": ["CMD-SHELL", "echo image-check; test ! -e /tmp/sick"],
    "Interval": 1_000_000_000,
    "Timeout": 5_000_000_000,
    "Retries": 2,
}


def build(out):
    lay = Layout(os.path.join(out, "layout"))
    bb = busybox_layer()
    lay.tag("busybox", lay.image([bb], ["sh"]))
    ml = multilayer_layers()
    ml_desc = lay.image(ml, ["sh"])
    lay.tag("multilayer", ml_desc)
    # A layer of its own on top, so that its unpack is not skipped for a chain already present.
    z = Layer()
    z.file("/data/zstd/user1000", "from a zstd layer\n", uid=1000, gid=1000)
    lay.tag("multilayer-zstd", lay.image(ml + [z.finish()], ["sh"], zstd=True))
    arm = lay.image(ml, ["sh"], arch="arm64")
    amd = lay.image(ml, ["sh"], arch="amd64")
    lay.tag("multiarch", lay.index([amd, arm]))
    lay.tag("tools", lay.image(tools_layers(), ["iperf3", "-s"]))
    demo = lay.image(demo_layers(), DEMO_CMD, exposed=["80/tcp"])
    lay.tag("demo", demo)
    lay.tag("health", lay.image([bb], ["sleep", "86400"], healthcheck=HEALTHCHECK))
    lay.save()
    with open(os.path.join(out, "multilayer-expected.json"), "w") as f:
        json.dump(MULTILAYER_EXPECTED, f, indent=2, sort_keys=True)
    return lay


REPOS = {
    "busybox": "burrow-test/busybox",
    "multilayer": "burrow-test/multilayer",
    "multilayer-zstd": "burrow-test/multilayer-zstd",
    "multiarch": "burrow-test/multiarch",
    "tools": "burrow-test/tools",
    "demo": "burrow-demo/web",
    "health": "burrow-test/health",
}


def push(layout, registry, creds=None):
    for tag, repo in REPOS.items():
        cmd = ["skopeo", "copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false"]
        if creds:
            cmd += ["--dest-creds", creds]
        cmd += [f"oci:{layout.path}:{tag}", f"docker://{registry}/{repo}:latest"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"build.py: pushing {repo} to {registry} failed: {r.stderr.strip()}")
    print(f"images: pushed {', '.join(REPOS.values())} to {registry}")


def demo_archive(path):
    """Writes the demo image alone as an OCI archive (a tar of an OCI layout)."""
    tmp = path + ".layout"
    lay = Layout(tmp)
    d = lay.image(demo_layers(), DEMO_CMD, exposed=["80/tcp"])
    d.pop("platform", None)
    d["annotations"] = {"org.opencontainers.image.ref.name": "burrow-demo/web:latest",
                        "io.containerd.image.name": "docker.io/burrow-demo/web:latest"}
    lay.refs.append(d)
    lay.save()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(os.listdir(tmp)):
            t.add(os.path.join(tmp, name), arcname=name, filter=_norm)
    shutil.rmtree(tmp)
    print(f"images: wrote the demo image as an OCI archive to {path}")


def _norm(ti):
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.mtime = MTIME
    return ti


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="directory for the OCI layout and the expected-unpack manifest")
    ap.add_argument("--push", metavar="HOST:PORT", help="push every image to this plain-HTTP registry")
    ap.add_argument("--push-auth", nargs=2, metavar=("HOST:PORT", "USER:PASSWORD"),
                    help="also push to a registry that requires basic auth")
    ap.add_argument("--demo-archive", metavar="PATH", help="write the demo web image as an OCI archive")
    args = ap.parse_args()
    if not (args.out or args.demo_archive):
        ap.error("nothing to do: give --out and/or --demo-archive")
    if args.out:
        lay = build(args.out)
        print(f"images: built {len(REPOS)} images into {lay.path}")
        if args.push:
            push(lay, args.push)
        if args.push_auth:
            push(lay, args.push_auth[0], args.push_auth[1])
    if args.demo_archive:
        demo_archive(args.demo_archive)


if __name__ == "__main__":
    sys.exit(main())
