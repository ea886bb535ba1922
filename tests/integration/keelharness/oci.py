"""Container images for tests, made without a registry.

* `tar_bytes(entries)` - a tar (PAX) from (path, kind, data, mode) tuples, so a test
  builds exactly the layer it needs (whiteouts, hostile paths, ...);
* `busybox_rootfs()`   - the entries of a minimal rootfs around Debian's busybox-static;
* `OciLayout(dir)`     - an OCI image layout written blob by blob, with nested
  (multi-platform) indexes;
* `Podman(dir)`        - podman and skopeo with their configuration and storage under
  dir (vfs driver: no mounts), as ../shared/docs/ANCHORS.md describes, so that nothing
  goes to /etc/containers or /var/lib/containers. containers/image also keeps a blob-info
  cache in /var/lib/containers/cache when run as root, whatever the configuration says, so
  each command runs in a private mount namespace where /var/lib is an overlay whose writes
  land under dir.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = "/bin/busybox"
BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "true", "id", "hostname", "sleep", "env")


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (path, kind, data, mode) with kind 'f' (data: bytes), 'd', 'l' (symlink,
    data: target), 'h' (hardlink, data: target), 'c' (char device, data: (major, minor))."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for path, kind, data, mode in entries:
            info = tarfile.TarInfo(path)
            info.mtime = 1700000000
            info.mode = mode if mode is not None else (0o755 if kind == "d" else 0o644)
            payload = None
            if kind == "f":
                payload = data or b""
                info.size = len(payload)
            elif kind == "d":
                info.type = tarfile.DIRTYPE
            elif kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, data
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, data
            elif kind == "c":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = data
            else:
                raise ValueError(kind)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return buf.getvalue()


def busybox_rootfs():
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    entries = [("bin", "d", None, 0o755), ("bin/busybox", "f", bb, 0o755),
               ("etc", "d", None, 0o755), ("tmp", "d", None, 0o1777),
               ("proc", "d", None, 0o755), ("dev", "d", None, 0o755)]
    entries += [(f"bin/{a}", "l", "busybox", 0o777) for a in BUSYBOX_APPLETS]
    return entries


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class OciLayout:
    """An OCI image layout directory. Layers are given as uncompressed tars."""

    MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    INDEX = "application/vnd.oci.image.index.v1+json"

    def __init__(self, root):
        self.root = Path(root)
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.entries = []

    def blob(self, data):
        d = digest(data)
        (self.root / "blobs" / "sha256" / d[7:]).write_bytes(data)
        return d

    def image(self, layers, arch="amd64", config=None, compress=False):
        """Write config, layers and manifest; returns the manifest's descriptor."""
        descs = []
        for tar in layers:
            stored = gzip.compress(tar, mtime=0) if compress else tar
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else ""),
                          "digest": self.blob(stored), "size": len(stored)})
        cfg = {"created": "2024-01-02T03:04:05Z", "architecture": arch, "os": "linux",
               "config": config or {"Cmd": ["/bin/sh"]},
               "rootfs": {"type": "layers", "diff_ids": [digest(t) for t in layers]}}
        cbytes = json.dumps(cfg).encode()
        manifest = {"schemaVersion": 2, "mediaType": self.MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": self.blob(cbytes), "size": len(cbytes)},
                    "layers": descs}
        mbytes = json.dumps(manifest).encode()
        return {"mediaType": self.MANIFEST, "digest": self.blob(mbytes), "size": len(mbytes),
                "platform": {"os": "linux", "architecture": arch}}

    def nested_index(self, descriptors):
        ibytes = json.dumps({"schemaVersion": 2, "mediaType": self.INDEX,
                             "manifests": descriptors}).encode()
        return {"mediaType": self.INDEX, "digest": self.blob(ibytes), "size": len(ibytes)}

    def add(self, descriptor, ref_name=None, keep_platform=False):
        d = dict(descriptor)
        if not keep_platform:
            d.pop("platform", None)
        if ref_name:
            d["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
        self.entries.append(d)

    def finish(self):
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.entries}))
        return self.root

    def tarball(self, path):
        """The layout as an oci-archive."""
        with tarfile.open(path, "w") as tar:
            for p in sorted(self.root.rglob("*")):
                tar.add(p, arcname=str(p.relative_to(self.root)), recursive=False)
        return Path(path)


class Podman:
    """podman/skopeo confined to one directory."""

    def __init__(self, root):
        self.root = Path(root)
        for d in ("graph", "run", "tmp", "varlib-upper", "varlib-work"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "storage.conf").write_text(
            '[storage]\ndriver = "vfs"\n'
            f'graphroot = "{self.root}/graph"\nrunroot = "{self.root}/run"\n')
        (self.root / "containers.conf").write_text(
            '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{self.root}/events.log"\n'
            f'image_copy_tmp_dir = "{self.root}/tmp"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=str(self.root / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(self.root / "storage.conf"),
                        TMPDIR=str(self.root / "tmp"))

    @staticmethod
    def unavailable():
        missing = [p for p in ("podman", "skopeo") if not shutil.which(p)]
        if os.geteuid() != 0:
            return "needs root"
        return f"{', '.join(missing)} not installed (scripts/deps.txt)" if missing else None

    def run(self, *args, cwd=None):
        # The namespace and its overlay end with the command.
        script = ("mount -t overlay overlay -o lowerdir=/var/lib,upperdir=\"$1\",workdir=\"$2\" /var/lib; "
                  "shift 2; exec \"$@\"")
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-ec", script, "sh",
                str(self.root / "varlib-upper"), str(self.root / "varlib-work"), *args]
        return subprocess.run(argv, env=self.env, cwd=cwd, check=True, capture_output=True,
                              text=True, timeout=300).stdout

    def podman(self, *args, cwd=None):
        return self.run("podman", *args, cwd=cwd)

    def skopeo(self, *args):
        return self.run("skopeo", "--insecure-policy", *args)
