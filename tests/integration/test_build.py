"""The real customization ISO build: what the initrd holds (checked against the kernel's
own module index and the manifest), that it is reproducible and cached, and that the ISO
is bootable both ways (El Torito BIOS + EFI entries)."""

from __future__ import annotations

import io
import os
import stat
import subprocess

import pycdlib
import pytest

from tests.conftest import REPO, assert_same_bytes
from tests.e2e.conftest import build_cached
from vmtailor.builder.iso import build_iso
from vmtailor.builder.kmod import ModuleIndex
from vmtailor.initrd import features
from vmtailor.initrd import result as result_format
from vmtailor.initrd.image import FEATURES, iso_path

EPOCH = 1700000000
MAX_INITRD = 20_000_000


@pytest.fixture(scope="module")
def built():
    return build_cached()


@pytest.fixture(scope="module")
def manifest(built) -> dict[str, tuple[str, str]]:
    rows = {}
    with open(built.manifest) as f:
        for line in f:
            if not line.startswith("#"):
                path, package, origin = line.rstrip("\n").split("\t")
                rows[path] = (package, origin)
    return rows


def _cpio_entries(data: bytes):
    """(name, mode, uid, gid, mtime, size) of each newc entry."""
    offset = 0
    while True:
        head = data[offset : offset + 110]
        assert head[:6] == b"070701"
        f = [int(head[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        namesize, size = f[11], f[6]
        name = data[offset + 110 : offset + 110 + namesize - 1].decode()
        if name == "TRAILER!!!":
            return
        yield name, f[1], f[2], f[3], f[5], size
        offset += 110 + namesize
        offset += -offset % 4
        offset += size + (-size % 4)


@pytest.fixture(scope="module")
def cpio_entries(built):
    raw = subprocess.run(["lz4", "-dc", built.initrd], capture_output=True, check=True).stdout
    return list(_cpio_entries(raw))


def test_initrd_size_and_iso(built):
    print(f"initrd {built.initrd_size / 1e6:.1f} MB, ISO {built.iso_size / 1e6:.1f} MB")
    assert built.initrd_size <= MAX_INITRD
    with open(built.iso, "rb") as f:
        f.seek(32768 + 40)
        assert f.read(8) == b"VMTAILOR"


def test_the_image_uses_every_registered_feature():
    assert set(FEATURES) == set(features.FEATURES)
    assert [f.name for f in features.resolve(["lvm"])] == ["base", "filesystems", "lvm"]


def test_every_module_with_its_dependencies_and_softdeps(built, manifest):
    index = ModuleIndex.load(built.modules)
    names = [m for f in features.resolve(FEATURES) for m in f.kernel_modules]
    version = os.path.basename(built.modules)
    for mod in index.install_order(names):
        assert f"/usr/lib/modules/{version}/{index.paths[mod]}" in manifest, mod
    kos = {os.path.basename(p) for p in manifest if p.endswith(".ko")}
    assert "ext4.ko" in kos and {"crc32c_generic.ko", "crc32c-intel.ko"} & kos
    for mod in ("virtio_blk", "xen-blkfront", "vmw_pvscsi", "hv_storvsc", "nvme", "sr_mod",
                "isofs", "floppy", "xfs", "btrfs", "vfat", "dm-mod", "BusLogic", "mptspi"):  # fmt: skip
        assert f"{mod}.ko" in kos, mod
    assert f"/usr/lib/modules/{version}/modules.dep.bin" in manifest  # depmod ran


def test_what_only_lvm_md_xfs_and_btrfs_need_is_on_the_iso(built, cpio_entries, manifest):
    # in the initrd a symlink to where the stages mount the ISO; on the ISO the file
    index = ModuleIndex.load(built.modules)
    links = {"/" + e[0] for e in cpio_entries if stat.S_ISLNK(e[1])}
    tools = ("/usr/sbin/lvm", "/usr/sbin/mdadm")
    on_iso = {p for p in links if p.endswith(".ko") or p in tools or ".so" in p}
    on_iso = {p for p in on_iso if manifest[p][0] != "-"}  # not MERGED or applet links
    names = {os.path.basename(p).split(".")[0].replace("-", "_") for p in on_iso}
    assert {"xfs", "btrfs", "zstd_compress", "raid6_pq", "dm_snapshot", "lvm"} <= names
    assert {"mdadm", "md_mod", "raid0", "raid1", "raid10", "raid456"} <= names
    assert {"libdevmapper", "libsystemd"} <= names
    resident = [f for f in features.resolve(FEATURES) if not f.on_media]
    kept = index.install_order([m for f in resident for m in f.kernel_modules])
    assert not names & set(kept)  # ext4's crc32c, dm-mod … stay in the initrd
    assert not names & {"libc", "libblkid", "ld-linux-x86-64", "python3"}
    iso = pycdlib.PyCdlib()
    iso.open(built.iso)
    try:
        for path in (*tools, next(p for p in on_iso if p.endswith("/xfs.ko"))):
            data = io.BytesIO()
            iso.get_file_from_iso_fp(data, rr_path=iso_path(path))
            source = manifest[path][1]
            if not source.startswith("/"):  # the manifest names a module by its tree path
                source = os.path.join(built.modules, index.paths["xfs"])
            with open(source, "rb") as f:
                assert data.getvalue() == f.read(), path
    finally:
        iso.close()


def test_manifest_names_debian_packages(manifest):
    assert manifest["/usr/bin/busybox"][0] == "busybox-static"
    # one modprobe, busybox's: no kmod, and no libcrypto for it to need
    assert not [p for p in manifest if p.endswith(("/kmod", "/libcrypto.so.3"))]
    assert manifest["/usr/sbin/blkid"][0] == "util-linux"
    assert manifest["/usr/sbin/lvm"][0] == "lvm2"
    assert manifest["/usr/sbin/mdadm"][0] == "mdadm"
    assert manifest["/usr/lib/x86_64-linux-gnu/libc.so.6"][0].startswith("libc6")
    assert manifest["/usr/lib/python3.11/json/__init__.pyc"][0].startswith("libpython3.11")
    assert manifest["/init"][1] == "vmtailor:init.sh"
    root_py = "/usr/lib/vmtailor/vmtailor/customizer/root.py"
    assert manifest[root_py] == ("-", "vmtailor:customizer/root.py")
    assert not [p for p, (_, origin) in manifest.items() if str(REPO) in origin]  # any checkout
    ko = next(p for p in manifest if p.endswith("/ext4.ko"))
    assert manifest[ko][0].startswith("linux-image-")


def test_python_is_the_stdlib_subset_the_code_imports(manifest):
    stdlib = [p for p in manifest if p.startswith("/usr/lib/python3.11/") and p.endswith(".pyc")]
    for needed in ("json/__init__", "re/__init__", "os", "runpy", "dataclasses",
                   "encodings/utf_8", "encodings/ascii", "logging/__init__"):  # fmt: skip
        assert f"/usr/lib/python3.11/{needed}.pyc" in manifest, needed
    # the stdlib ships as bytecode in its sources' place, attributed to the Debian package
    assert not [p for p in manifest if p.startswith("/usr/lib/python3.11/") and p.endswith(".py")]
    assert not [p for p in manifest if p.startswith("/usr/lib/python3.11/") and "__pycache__" in p]
    for unwanted in ("unittest", "tkinter", "doctest.py", "pydoc.py", "idlelib", "lib2to3",
                     "email", "zipfile.py", "encodings/cp437.py", "encodings/mac_roman.py"):  # fmt: skip
        assert not [p for p in stdlib if p.startswith(f"/usr/lib/python3.11/{unwanted}")]
    total = sum(len(fs) for _, _, fs in os.walk("/usr/lib/python3.11")) or 1
    assert len(stdlib) < total / 3
    for shipped in ("vmtailor/customizer/engine.py", "vmtailor/initrd/main.py"):
        assert f"/usr/lib/vmtailor/{shipped}" in manifest, shipped
    # the media's config is rendered already: no template engine in the guest
    assert not [p for p in manifest if p.startswith("/usr/lib/vmtailor/") and "jinja2" in p]
    assert "/usr/lib/vmtailor/vmtailor/customizer/__pycache__/engine.cpython-311.pyc" in manifest


def test_archive_is_normalised_and_matches_the_manifest(cpio_entries, manifest):
    names = [e[0] for e in cpio_entries]
    assert names == sorted(names, key=str.encode)
    assert {"/" + n for n in names} == set(manifest)
    assert all(e[2] == 0 and e[3] == 0 and e[4] == EPOCH for e in cpio_entries)
    init = next(e for e in cpio_entries if e[0] == "init")
    assert stat.S_ISREG(init[1]) and init[1] & 0o111
    links = {e[0] for e in cpio_entries if stat.S_ISLNK(e[1])}
    assert {"bin", "sbin", "lib", "lib64", "usr/bin/sh", "usr/sbin/insmod"} <= links
    # nothing at /sbin/modprobe for the kernel to run before /init links busybox there
    assert "usr/sbin/modprobe" not in names


def test_init_links_modprobe_before_anything_loads_a_module():
    folder = os.path.dirname(os.path.dirname(features.__file__))
    with open(os.path.join(folder, "init.sh")) as f:
        script = f.read()
    link = script.index("ln -s ../bin/busybox /usr/sbin/modprobe")
    assert link < min(script.index(w) for w in ("mount -t", "vmtailor-coldplug", "python3"))


def test_init_uses_the_result_markers_the_host_parses():
    folder = os.path.dirname(os.path.dirname(features.__file__))
    with open(os.path.join(folder, "init.sh")) as f:
        script = f.read()
    assert f"BEGIN='{result_format.BEGIN}'" in script
    assert f"END='{result_format.END}'" in script
    scripts = [os.path.join(folder, name) for name in ("init.sh", "coldplug.sh")]
    subprocess.run(["shellcheck", "-s", "sh", *scripts], check=True)
    for path in scripts:
        subprocess.run(["busybox", "sh", "-n", path], check=True)


def test_cached_rebuild_builds_nothing(built, tmp_path):
    # how long it takes (target: under a second) is scripts/bench_boot.py's to measure
    before = {p: os.stat(p).st_mtime_ns for p in (built.initrd, built.manifest, built.iso)}
    again = build_cached(out=str(tmp_path / "again.iso"))
    assert again.cached
    assert {p: os.stat(p).st_mtime_ns for p in before} == before  # nothing rewritten
    assert_same_bytes(tmp_path / "again.iso", built.iso)


def test_two_builds_are_byte_identical(built, tmp_path):
    fresh = build_iso(str(tmp_path / "fresh.iso"), cache_dir=str(tmp_path / "cache"), epoch=EPOCH)
    assert not fresh.cached
    print(f"cold build: {fresh.seconds:.1f} s")
    assert_same_bytes(fresh.initrd, built.initrd)
    assert_same_bytes(fresh.iso, built.iso)


def test_eltorito_bios_and_efi_entries(built, tmp_path):
    iso = pycdlib.PyCdlib()
    iso.open(built.iso)
    try:
        catalog = iso.eltorito_boot_catalog
        assert catalog.validation_entry.platform_id == 0  # x86 BIOS: isolinux
        assert catalog.initial_entry.boot_indicator == 0x88
        assert [s.platform_id for s in catalog.sections] == [0xEF]  # UEFI
        names = {c.rock_ridge.name().decode() for c in iso.list_children(rr_path="/isolinux")
                 if c.rock_ridge}  # fmt: skip
        assert {"isolinux.bin", "ldlinux.c32", "isolinux.cfg"} <= names
        efi = tmp_path / "efiboot.img"
        with open(efi, "wb") as f:
            iso.get_file_from_iso_fp(f, rr_path="/boot/efiboot.img")
    finally:
        iso.close()
    listing = subprocess.run(["mdir", "-b", "-i", str(efi), "::/EFI/BOOT"], capture_output=True,
                             text=True, check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})  # fmt: skip
    assert "BOOTX64.EFI" in listing.stdout
    info = subprocess.run(["isoinfo", "-d", "-i", built.iso], capture_output=True, text=True)
    assert "El Torito" in info.stdout


def test_cli_build(built, tmp_path, monkeypatch):
    from tests.conftest import vmtailor
    from tests.e2e.conftest import CACHE_DIR

    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))  # the same inputs: from the cache
    out = tmp_path / "cli.iso"
    proc = vmtailor("build", "--out", str(out), "--cache-dir", CACHE_DIR, "--firmware", "bios,uefi")
    assert proc.returncode == 0, proc.stderr
    assert_same_bytes(out, built.iso)
    bad = vmtailor("build", "--out", str(out), "--firmware", "coreboot")
    assert bad.returncode == 2 and "bios, uefi" in bad.stderr
