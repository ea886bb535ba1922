"""keel-run's image store (lib/image through keel-image) against what podman and skopeo make.

A busybox-static rootfs becomes podman images (a base, one built FROM it with one more
layer, one whose second layer deletes files), exported as oci-archive and docker-archive by podman and as OCI layout
directories by skopeo (gzip and zstd layers). Each is imported; ids must be podman's, layers
shared, tampered blobs refused, unpacked layers must run busybox (chroot) and stack under
overlayfs with whiteouts honoured (in a private mount namespace), rm + gc must remove what
is no longer referenced, and hostile archives must be refused. Needs root, podman and skopeo.
"""

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from keelharness.oci import OciLayout, Podman, busybox_rootfs, digest, tar_bytes

pytestmark = pytest.mark.skipif(Podman.unavailable() is not None, reason=str(Podman.unavailable()))


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """podman/skopeo exports of localhost/kbase, localhost/kderived (FROM kbase + /extra) and
    localhost/kwhiteout (FROM kbase, deleting a file and replacing a directory)."""
    root = tmp_path_factory.mktemp("podman")
    pm = Podman(root / "podman")
    out = root / "out"
    out.mkdir()
    a = {"root": out}
    rootfs_tar = out / "rootfs.tar"
    rootfs_tar.write_bytes(tar_bytes(busybox_rootfs() + [
        ("etc/hello", "f", b"hello\n", None), ("data", "d", None, None), ("data/old", "f", b"old\n", None)]))
    pm.podman("import", "--change", 'CMD ["/bin/sh"]', str(rootfs_tar), "localhost/kbase")
    ctx = root / "ctx"
    ctx.mkdir()
    (ctx / "extra").write_text("extra layer\n")
    (ctx / "Containerfile").write_text("FROM localhost/kbase\nCOPY extra /extra\n")
    pm.podman("build", "--quiet", "-t", "localhost/kderived", "-f", str(ctx / "Containerfile"), str(ctx))
    # A layer that deletes: RUN under buildah's chroot isolation (no OCI runtime involved)
    (ctx / "Containerfile.rm").write_text(
        "FROM localhost/kbase\nRUN rm /etc/hello && rm -rf /data && mkdir /data && echo new > /data/new\n")
    pm.podman("build", "--quiet", "--isolation", "chroot", "--network", "host", "-t", "localhost/kwhiteout",
              "-f", str(ctx / "Containerfile.rm"), str(ctx))
    a["kwhiteout-docker-archive"] = out / "kwhiteout-docker-archive.tar"
    pm.podman("save", "--format", "docker-archive", "-o", str(a["kwhiteout-docker-archive"]), "localhost/kwhiteout")
    a.update(base_id=pm.podman("image", "inspect", "--format", "{{.Id}}", "localhost/kbase").strip(),
             derived_id=pm.podman("image", "inspect", "--format", "{{.Id}}", "localhost/kderived").strip())
    for img in ("kbase", "kderived"):
        for fmt in ("oci-archive", "docker-archive"):
            path = out / f"{img}-{fmt}.tar"
            pm.podman("save", "--format", fmt, "-o", str(path), f"localhost/{img}")
            a[f"{img}-{fmt}"] = path
    a["skopeo-storage"] = out / "skopeo-storage"
    pm.skopeo("copy", "containers-storage:localhost/kbase:latest", f"oci:{a['skopeo-storage']}:latest")
    a["skopeo-zstd"] = out / "skopeo-zstd"
    pm.skopeo("copy", "--dest-compress-format", "zstd", f"docker-archive:{a['kderived-docker-archive']}",
              f"oci:{a['skopeo-zstd']}:v1")
    yield a
    shutil.rmtree(root, ignore_errors=True)


class Store:
    """keel-image on a store of its own."""

    def __init__(self, build_dir, root):
        self.bin = Path(build_dir) / "cmd" / "keel-image" / "keel-image"
        self.root = Path(root)
        self.env = dict(os.environ, KEEL_IMAGE_ROOT=str(self.root))

    def run(self, *args, ok=True):
        p = subprocess.run([str(self.bin), *map(str, args)], env=self.env, capture_output=True, text=True,
                           timeout=300)
        if ok and p.returncode != 0:
            raise AssertionError(f"keel-image {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}")
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert marker not in p.stderr, p.stderr
        return p

    def inspect(self, ref):
        return json.loads(self.run("inspect", ref).stdout)[0]

    def images(self):
        return json.loads(self.run("list", "--format", "json").stdout)

    def blobs(self):
        return sorted(p.name for p in (self.root / "blobs" / "sha256").iterdir())

    def layer_dirs(self):
        return sorted(p.name for p in (self.root / "layers").iterdir())

    def tmp_entries(self):
        return sorted(p.name for p in (self.root / "tmp").iterdir())

    def referenced(self):
        """Every blob the images in the index reference."""
        refs = set()
        for img in self.images():
            i = self.inspect(img["Id"])
            refs |= {i["Id"], i["Digest"][7:]} | {layer["Digest"][7:] for layer in i["Layers"]}
        return refs


@pytest.fixture
def store(build_dir, tmp_path):
    return Store(build_dir, tmp_path / "store")


def in_private_mount_ns(script, timeout=120):
    """Run a shell script in a new mount namespace: its mounts die with it."""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-euc", script],
                          capture_output=True, text=True, timeout=timeout)


def test_import_podman_oci_archive(store, archives):
    out = store.run("import", archives["kbase-oci-archive"]).stdout
    assert "Loaded image: localhost/kbase:latest" in out
    img = store.inspect("localhost/kbase")
    assert img["Id"] == archives["base_id"]  # the config digest, as podman names it
    assert img["Config"]["Cmd"] == ["/bin/sh"]
    assert img["Layers"][0]["MediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert img["RootFS"]["Layers"] == [img["Layers"][0]["DiffID"]]
    table = store.run("list").stdout.splitlines()
    assert table[0].split() == ["NAME", "TAG", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:3] == ["localhost/kbase", "latest", archives["base_id"][:12]]
    assert store.tmp_entries() == []


def test_import_podman_docker_archives(store, archives):
    store.run("import", archives["kbase-docker-archive"])
    store.run("import", archives["kderived-docker-archive"])
    assert store.inspect("kbase")["Id"] == archives["base_id"]
    derived = store.inspect("localhost/kderived:latest")
    assert derived["Id"] == archives["derived_id"]
    assert len(derived["Layers"]) == 2
    # docker-archive layers are plain tars: the blob is its own diff_id
    assert all(layer["Digest"] == layer["DiffID"] for layer in derived["Layers"])
    # the docker archives carry podman's legacy <id>/layer.tar symlinks too: stored are only
    # the base's manifest, config and layer, and the derived one's manifest, config and top
    # layer (its base layer is the same blob)
    assert set(store.blobs()) == store.referenced()
    assert len(store.blobs()) == 6


def test_import_skopeo_oci_directories(store, archives):
    store.run("import", archives["skopeo-storage"], "skopeo/base:1")
    img = store.inspect("skopeo/base:1")
    assert img["Id"] == archives["base_id"]
    # skopeo's oci:DIR:TAG writes a bare tag: without a NAME the image stays unnamed
    out = store.run("import", archives["skopeo-zstd"]).stdout
    assert out.startswith("Loaded image: sha256:")
    zimg = store.inspect(archives["derived_id"])
    assert zimg["RepoTags"] == []
    assert {layer["MediaType"] for layer in zimg["Layers"]} == {"application/vnd.oci.image.layer.v1.tar+zstd"}


def test_layers_are_shared_between_images(store, archives):
    store.run("import", archives["kbase-oci-archive"])
    before = set(store.blobs())
    store.run("import", archives["kderived-oci-archive"])
    added = set(store.blobs()) - before
    base, derived = store.inspect("kbase"), store.inspect("kderived")
    assert derived["Layers"][0]["Digest"] == base["Layers"][0]["Digest"]
    # the derived image brought its manifest, config and own layer, not the base layer again
    assert added == {derived["Digest"][7:], derived["Id"], derived["Layers"][1]["Digest"][7:]}
    base_dirs = store.run("layers", "kbase").stdout.split()
    derived_dirs = store.run("layers", "kderived").stdout.split()
    assert derived_dirs[0] == base_dirs[0]
    assert len(store.layer_dirs()) == 2


def test_tampered_blob_is_refused(store, archives, tmp_path):
    layout = tmp_path / "tampered"
    shutil.copytree(archives["skopeo-storage"], layout)
    big = max((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(big.read_bytes())
    data[len(data) // 2] ^= 0x01
    big.write_bytes(bytes(data))
    p = store.run("import", layout, "t:1", ok=False)
    assert p.returncode == 1
    assert "digest mismatch" in p.stderr and big.name in p.stderr
    assert store.images() == [] and store.blobs() == [] and store.tmp_entries() == []

    # the same inside an oci-archive tarball
    archive = tmp_path / "tampered.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(layout, arcname=".")
    p = store.run("import", archive, ok=False)
    assert p.returncode == 1 and "digest mismatch" in p.stderr
    assert store.blobs() == [] and store.tmp_entries() == []


def test_unpacked_rootfs_runs_busybox(store, archives):
    store.run("import", archives["kbase-docker-archive"])
    dirs = store.run("layers", "kbase").stdout.split()
    assert len(dirs) == 1
    rootfs = Path(dirs[0])
    assert (rootfs / "bin" / "busybox").stat().st_mode & 0o111
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    p = subprocess.run(["chroot", str(rootfs), "/bin/busybox", "echo", "hello from keel"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == "hello from keel\n"
    # cached: asking again unpacks nothing new
    assert store.run("layers", "kbase").stdout.split() == dirs


def test_two_podman_layers_stack_under_overlayfs(store, archives, tmp_path):
    store.run("import", archives["kderived-oci-archive"])
    lowerdir = store.run("layers", "--lowerdir", "kderived").stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = in_private_mount_ns(f"mount -t overlay overlay -o ro,lowerdir={lowerdir} {mnt}; "
                            f"chroot {mnt} /bin/cat /extra")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "extra layer\n"
    assert not os.path.ismount(mnt)


def test_podman_whiteouts_hide_deleted_files_under_overlayfs(store, archives, tmp_path):
    store.run("import", archives["kwhiteout-docker-archive"])
    lowerdir = store.run("layers", "--lowerdir", "kwhiteout").stdout.strip()
    top, base = lowerdir.split(":")
    assert (Path(base) / "etc" / "hello").is_file() and (Path(base) / "data" / "old").is_file()
    assert (Path(top) / "etc" / "hello").is_char_device()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = in_private_mount_ns(f"mount -t overlay overlay -o ro,lowerdir={lowerdir} {mnt}; "
                            f"chroot {mnt} /bin/ls -a /etc; echo ---; chroot {mnt} /bin/ls -a /data; "
                            f"chroot {mnt} /bin/cat /data/new")
    assert p.returncode == 0, p.stderr
    etc, rest = p.stdout.split("---\n")
    assert "hello" not in etc.split() and "hosts" in etc.split()
    assert rest.split() == [".", "..", "new", "new"]  # ls, then cat's "new"
    assert not os.path.ismount(mnt)


def test_whiteouts_hide_deleted_files_under_overlayfs(store, tmp_path):
    base = busybox_rootfs() + [
        ("etc/keep", "f", b"keep\n", None), ("etc/deleted", "f", b"gone\n", None),
        ("data", "d", None, None), ("data/old1", "f", b"1", None), ("data/old2", "f", b"2", None),
    ]
    top = [
        ("etc", "d", None, 0o755), ("etc/.wh.deleted", "f", b"", None),
        ("data", "d", None, 0o755), ("data/.wh..wh..opq", "f", b"", None), ("data/new", "f", b"new\n", None),
    ]
    layout = OciLayout(tmp_path / "wh")
    layout.add(layout.image([tar_bytes(base), tar_bytes(top)], compress=True), ref_name="test/whiteouts:1")
    store.run("import", layout.finish())
    lowerdir = store.run("layers", "--lowerdir", "test/whiteouts:1").stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = in_private_mount_ns(f"mount -t overlay overlay -o ro,lowerdir={lowerdir} {mnt}; "
                            f"chroot {mnt} /bin/ls -a /etc; echo ---; chroot {mnt} /bin/ls -a /data")
    assert p.returncode == 0, p.stderr
    etc, data = p.stdout.split("---\n")
    assert "keep" in etc.split() and "deleted" not in etc.split()
    assert sorted(data.split()) == [".", "..", "new"]
    assert not os.path.ismount(mnt)
    # without overlayfs the top layer holds the overlay markers, not the OCI ones
    top_dir = Path(lowerdir.split(":")[0])
    assert (top_dir / "etc" / "deleted").is_char_device()
    assert os.getxattr(top_dir / "data", "trusted.overlay.opaque") == b"y"


def test_rm_and_gc_remove_unreferenced_blobs(store, archives):
    store.run("import", archives["kbase-oci-archive"])
    store.run("import", archives["kderived-oci-archive"])
    store.run("layers", "kderived")
    base = store.inspect("kbase")
    out = store.run("rm", "kderived").stdout
    assert out.splitlines() == ["Untagged: localhost/kderived:latest", f"Deleted: {archives['derived_id']}"]
    # rm leaves the blobs to gc
    assert len(store.blobs()) == 6
    out = store.run("gc").stdout
    assert out.startswith("Removed 3 blobs") and "1 unpacked layers" in out
    assert set(store.blobs()) == {base["Id"], base["Digest"][7:], base["Layers"][0]["Digest"][7:]}
    assert store.layer_dirs() == [base["Layers"][0]["DiffID"][7:]]
    store.run("rm", archives["base_id"][:12])
    store.run("gc")
    assert store.blobs() == [] and store.layer_dirs() == [] and store.images() == []
    p = store.run("rm", "kbase", ok=False)
    assert p.returncode == 1 and "image not known" in p.stderr


def test_rm_by_id_of_an_image_with_several_names_needs_force(store, archives):
    store.run("import", archives["kbase-oci-archive"])
    store.run("import", archives["kbase-docker-archive"], "other/name:2")
    p = store.run("rm", archives["base_id"], ok=False)
    assert p.returncode == 1 and "--force" in p.stderr
    out = store.run("rm", "--force", archives["base_id"]).stdout
    assert "Untagged: other/name:2" in out and f"Deleted: {archives['base_id']}" in out


def test_path_traversal_in_a_layer_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep\n")
    cases = {
        "dotdot": [("../../../../../../../../tmp/keel-evil", "f", b"x", None)],
        "symlink": [("esc", "l", str(outside), None), ("esc/evil", "f", b"x", None)],
        "relsymlink": [("esc", "l", "../../../../../../../../" + str(outside), None), ("esc/evil", "f", b"x", None)],
        "hardlink": [("grab", "h", str(outside / "precious"), None)],
        "whiteout": [("esc", "l", str(outside), None), ("esc/.wh.precious", "f", b"", None)],
    }
    for name, entries in cases.items():
        layout = OciLayout(tmp_path / name)
        layout.add(layout.image([tar_bytes(entries)]), ref_name=f"evil/{name}:1")
        store.run("import", layout.finish())  # importing checks digests, not content
        p = store.run("layers", f"evil/{name}:1", ok=False)
        assert p.returncode == 1, name
        assert "leaves" in p.stderr or "symlink" in p.stderr or "hardlink" in p.stderr, p.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    assert (outside / "precious").read_text() == "keep\n" and (outside / "precious").stat().st_nlink == 1
    assert not Path("/tmp/keel-evil").exists()
    assert store.layer_dirs() == [] and store.tmp_entries() == []


def test_hostile_archives_are_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    # an oci-archive whose tar climbs out
    bad = tmp_path / "dotdot.tar"
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo(f"../../../../../../../..{outside}/evil")
        tar.addfile(info, None)
    p = store.run("import", bad, ok=False)
    assert p.returncode == 1 and "leaves" in p.stderr
    # a docker-archive whose manifest points outside, by path and by symlink
    for layer_path, extra in (("../../../../../../../etc/passwd", []),
                              ("layer.tar", [("layer.tar", "l", "/etc/passwd", None)])):
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [digest(b"x")]}}).encode()
        manifest = json.dumps([{"Config": "config.json", "RepoTags": ["evil:1"], "Layers": [layer_path]}]).encode()
        archive = tmp_path / "docker-evil.tar"
        archive.write_bytes(tar_bytes([("manifest.json", "f", manifest, None),
                                       ("config.json", "f", config, None)] + extra))
        p = store.run("import", archive, ok=False)
        assert p.returncode == 1 and "outside the image archive" in p.stderr, p.stderr
    assert list(outside.iterdir()) == []
    assert store.images() == [] and store.blobs() == [] and store.tmp_entries() == []


def test_multi_platform_index_picks_the_host_platform(store, tmp_path):
    layout = OciLayout(tmp_path / "multi")
    per_arch = {}
    for arch in ("arm64", "amd64", "s390x"):
        d = layout.image([tar_bytes([("arch", "f", arch.encode(), None)])], arch=arch)
        per_arch[arch] = d
    layout.add(layout.nested_index(list(per_arch.values())), ref_name="multi/app:1")
    layout.finish()
    store.run("import", layout.root)
    assert store.inspect("multi/app:1")["Architecture"] == "amd64"
    store.run("import", "--platform", "linux/arm64", layout.root, "multi/app:arm")
    assert store.inspect("multi/app:arm")["Architecture"] == "arm64"
    p = store.run("import", "--platform", "linux/riscv64", layout.root, ok=False)
    assert p.returncode == 1
    assert "no image for linux/riscv64" in p.stderr and "linux/s390x" in p.stderr


def test_concurrent_imports_and_gc_keep_the_store_consistent(store, archives):
    cmds = [[str(store.bin), "import", archives[k]] for k in
            ("kbase-oci-archive", "kderived-oci-archive", "kbase-docker-archive", "kderived-docker-archive")]
    cmds.append([str(store.bin), "gc"])
    procs = [subprocess.Popen(c, env=store.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in cmds]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    names = {n for img in store.images() for n in img["Names"]}
    assert names == {"localhost/kbase:latest", "localhost/kderived:latest"}
    assert store.referenced() <= set(store.blobs())
    assert store.tmp_entries() == []
    store.run("gc")
    assert store.referenced() == set(store.blobs())


def test_cli_usage_errors(store):
    assert store.run("frobnicate", ok=False).returncode == 2
    assert store.run("import", ok=False).returncode == 2
    assert store.run("list", "--format", "yaml", ok=False).returncode == 2
    p = store.run("inspect", "nothing:here", ok=False)
    assert p.returncode == 1 and "image not known: nothing:here" in p.stderr
    assert store.run("--help").returncode == 0
    assert "--platform" in store.run("import", "--help").stdout
