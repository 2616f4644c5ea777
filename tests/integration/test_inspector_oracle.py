"""virt-inspector is the oracle (issue #23): on each fixture guest that libguestfs' own
inspection finds (scripts/guest_disks/oracle.py: EL6 without os-release, split /usr,
LVM on md RAID1, btrfs with a /home subvolume and no /home directory in @, Ubuntu with
lsb-release only), `vmtailor inspect --disk --json` must agree with Debian's
virt-inspector on the OS, its version, the root and every mount point; then a small
config applied and reverted on a qcow2 overlay must leave every filesystem of the guest
as it was: kind, content, mode, owner, link target and mtime of every path.

Appliance launches (~20 s each under TCG) are shared: one virt-inspector run over all
the guests, one listing before and one after each step, one `vmtailor batch` for the
apply; inspect and revert take one launch per guest."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR, S_ISLNK, S_ISREG

import guest_disks
import pytest
from guest_disks import oracle

from tests.conftest import vmtailor

os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")

pytestmark = pytest.mark.xdist_group("inspector-oracle")  # one worker, shared launches

LAYOUTS = list(oracle.LAYOUTS)  # appliance disk order: /dev/sda is LAYOUTS[0]
VGS = {"VolGroup": "el6", "template-vg": "split-usr", "vg_md": "md-raid"}
BTRFS = {"btrfs-home"}
# What virt-inspector must make of each fixture: if it does not, the fixture is wrong.
# (distro, major, minor); Debian's minor comes from /etc/debian_version ("12.8").
ORACLE_OS = {
    "el6": ("centos", 6, 10),
    "split-usr": ("debian", 12, 8),
    "md-raid": ("debian", 12, 8),
    "btrfs-home": ("ubuntu", 22, 4),
    "ubuntu-lsb": ("ubuntu", 22, 4),
}
# virt-inspector's <distro> -> vmtailor's (family, id)
DISTROS = {
    "centos": ("rhel", "centos"),
    "rhel": ("rhel", "rhel"),
    "fedora": ("fedora", "fedora"),
    "debian": ("debian", "debian"),
    "ubuntu": ("ubuntu", "ubuntu"),
    "sles": ("suse", "sles"),
    "archlinux": ("arch", "arch"),
    "alpine": ("alpine", "alpine"),
}
HOSTNAME = "oracle01"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com"
CONFIG = {
    "hostname": HOSTNAME,
    "users": [{"name": "ops", "ssh_authorized_keys": [KEY]}],
    "files": [{"path": "/etc/vmtailor-oracle", "content": "applied\n", "permissions": "0640"}],
}


@dataclass(frozen=True)
class OS:
    """One <operatingsystem> of virt-inspector's XML, its devices named as vmtailor
    names them (see vmtailor_name)."""

    distro: str
    major: int
    minor: int
    root: str
    mounts: dict[str, str]  # mount point -> device


def vmtailor_name(device: str) -> str:
    """A virt-inspector device as `vmtailor inspect --disk` names it: /dev/sdb2 ->
    "<layout>.qcow2 partition 2", /dev/VG/LV -> "VG/LV", btrfsvol:/dev/sdd1/@home ->
    "<layout>.qcow2 partition 1 subvolume @home"."""
    subvol = ""
    if device.startswith("btrfsvol:"):
        device, _, subvol = device.removeprefix("btrfsvol:").partition("/@")
        subvol = " subvolume @" + subvol
    parts = device.split("/")
    if len(parts) == 4 and not parts[2].startswith("sd"):  # /dev/VG/LV
        return f"{parts[2]}/{parts[3]}" + subvol
    disk = device.removeprefix("/dev/sd")
    letter, number = disk[0], disk[1:]
    name = f"{LAYOUTS[ord(letter) - ord('a')]}.qcow2"
    return (f"{name} partition {number}" if number else name) + subvol


def layout_of(device: str) -> str:
    """Which fixture a device (canonical, see canonical()) is on: by its disk, or for an
    LV its VG."""
    vg = device.removeprefix("btrfsvol:").split("/")[2]
    if not vg.startswith("sd"):
        return VGS[vg]
    return LAYOUTS[ord(vg[2]) - ord("a")]


def canonical(device: str, disks: list[str]) -> str:
    """A device of a virt-inspector run over the layouts `disks` (in that order), named
    as in an appliance holding every layout in LAYOUTS order: /dev/sdaN of a run over
    [btrfs-home] alone is /dev/sddN. With one disk, whatever disk libguestfs names is
    that one (1.48 names a lone btrfs /dev/sdb1)."""
    prefix = "btrfsvol:" if device.startswith("btrfsvol:") else ""
    device = device.removeprefix(prefix)
    if not device.startswith("/dev/sd"):
        return prefix + device  # an LV: named alike in every appliance
    disk = disks[0] if len(disks) == 1 else disks[ord(device[7]) - ord("a")]
    return f"{prefix}/dev/sd{chr(ord('a') + LAYOUTS.index(disk))}{device[8:]}"


def parse_inspector(xml: str, disks: list[str]) -> tuple[dict[str, OS], dict[str, dict[str, str]]]:
    """From virt-inspector's XML over the layouts `disks`: {layout: OS}, and {layout:
    {mount point: device as libguestfs names it with every layout attached}}."""
    systems, raw = {}, {}
    for node in ET.fromstring(xml).findall("operatingsystem"):
        root = canonical(node.findtext("root"), disks)
        layout = layout_of(root)
        raw[layout] = {m.text: canonical(m.get("dev"), disks) for m in node.iter("mountpoint")}
        systems[layout] = OS(
            node.findtext("distro"),
            int(node.findtext("major_version")),
            int(node.findtext("minor_version")),
            vmtailor_name(root),
            {target: vmtailor_name(dev) for target, dev in raw[layout].items()},
        )
    return systems, raw


def vmtailor_mounts(storage: dict) -> dict[str, str]:
    """{mount point: device} from `inspect --disk --json`, a btrfs subvolume named as in
    its root ("… subvolume @home")."""
    out = {}
    for m in storage["mounts"]:
        subvol = [o.split("=", 1)[1] for o in m["options"] if o.startswith("subvol=")]
        out[m["target"]] = m["device"] + (f" subvolume {subvol[0]}" if subvol else "")
    return out


# -- reading the guests through our own libguestfs handle ------------------------------
def _mount_ro(g, device: str) -> None:
    """A virt-inspector device, mounted read-only at the appliance's /."""
    if device.startswith("btrfsvol:"):
        dev, _, subvol = device.removeprefix("btrfsvol:").partition("/@")
        g.mount_options(f"ro,subvol=@{subvol}", dev, "/")
    else:
        g.mount_ro(device, "/")


def _walk(g, top: str) -> dict[str, tuple]:
    """Every path of the filesystem mounted at / (named as under `top` in the guest):
    kind, sha256 of a file or target of a link, mode, owner, size and mtime (ns). One
    call per directory, not per file: each call is a round trip to a TCG guest."""
    by_dir: dict[str, list[str]] = defaultdict(list)
    for rel in g.find("/"):
        parent, _, base = ("/" + rel).rpartition("/")
        by_dir[parent or "/"].append(base)
    stats = {"/": g.lstatns("/")}
    links = {}
    for parent, children in by_dir.items():
        paths = [f"{parent.rstrip('/')}/{child}" for child in children]
        stats.update(zip(paths, g.lstatnslist(parent, children), strict=True))
        linked = [p for p in paths if S_ISLNK(stats[p]["st_mode"])]
        if linked:
            names = [p.rpartition("/")[2] for p in linked]
            links.update(zip(linked, g.readlinklist(parent, names), strict=True))
    with tempfile.NamedTemporaryFile() as f:
        g.checksums_out("sha256", "/", f.name)
        sums = {}
        for line in Path(f.name).read_text().splitlines():
            digest, _, path = line.partition("  ")
            sums["/" + path.removeprefix("./").lstrip("/")] = digest
    out = {}
    for path, st in stats.items():
        mode = st["st_mode"]
        kind = (
            "dir"
            if S_ISDIR(mode)
            else "link"
            if S_ISLNK(mode)
            else "file"
            if S_ISREG(mode)
            else "other"
        )
        mtime = st["st_mtime_sec"] * 10**9 + st["st_mtime_nsec"]
        name = (top.rstrip("/") + path).rstrip("/") or "/"
        detail = sums.get(path) if kind == "file" else links.get(path)
        out[name] = (kind, detail, oct(mode), st["st_uid"], st["st_gid"], st["st_size"], mtime)
    return out


READ = ("/etc/hostname", "/etc/sysconfig/network", "/etc/vmtailor-oracle")


@dataclass
class Snapshot:
    listing: dict[str, dict[str, tuple]]  # mount point -> {guest path: (kind, …)}
    text: dict[str, str]  # the files of READ that exist -> their text


def snapshot(images: list[Path], raw_devices: dict[str, dict[str, str]]) -> dict[str, Snapshot]:
    """{layout: Snapshot}: each filesystem of each guest listed on its own, so that what
    lands beneath a mount point (in the filesystem under it) shows too, through our own
    read-only handle. `raw_devices` are virt-inspector's mount points and devices."""
    import guestfs

    g = guestfs.GuestFS(python_return_dict=True)
    try:
        for image in images:
            fmt = "qcow2" if image.suffix == ".qcow2" else "raw"
            g.add_drive_opts(str(image), format=fmt, readonly=True)
        g.launch()
        out = {}
        for layout, mounts in raw_devices.items():
            shot = out[layout] = Snapshot({}, {})
            for target, device in mounts.items():
                _mount_ro(g, device)
                try:
                    listing = shot.listing[target] = _walk(g, target)
                    for path in READ:
                        if listing.get(path, ("",))[0] == "file":
                            inside = path.removeprefix(target.rstrip("/"))
                            shot.text[path] = g.cat(inside)
                finally:
                    g.umount_all()
        return out
    finally:
        g.close()


def differences(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    fields = ("kind", "content/target", "mode", "uid", "gid", "size", "mtime")
    out = []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path), after.get(path)
        if a is None or b is None:
            out.append(f"{path}: {'added' if a is None else 'removed'}")
        elif a != b:
            changed = [f"{f} {x}->{y}" for f, x, y in zip(fields, a, b, strict=True) if x != y]
            out.append(f"{path}: {', '.join(changed)}")
    return out


# -- the shared runs -----------------------------------------------------------------
@dataclass
class Fleet:
    top: Path
    bases: list[Path]
    overlays: dict[str, Path]
    oracle: dict[str, OS]
    raw_mounts: dict[str, dict[str, str]]  # layout -> mount point -> virt-inspector device
    inspect: dict[str, object]  # layout -> parsed JSON, or the failed process
    before: dict[str, Snapshot]
    applied: dict[str, dict]  # batch's record per clone
    after_apply: dict[str, Snapshot]
    reverted: dict[str, object]  # layout -> CompletedProcess of revert --disk
    after_revert: dict[str, Snapshot]


def _overlay(base: Path, path: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
                    str(path)], check=True)  # fmt: skip
    return path


def _virt_inspector(disks: list[str]) -> tuple[dict[str, OS], dict[str, dict[str, str]]]:
    argv = ["virt-inspector", "--no-applications", "--no-icon"]
    for name in disks:
        argv += ["--format=raw", "-a", str(guest_disks.image(name))]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return parse_inspector(proc.stdout, disks)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Fleet:
    top = tmp_path_factory.mktemp("oracle")
    bases = [guest_disks.image(name) for name in LAYOUTS]
    overlays = {
        name: _overlay(base, top / f"{name}.qcow2")
        for name, base in zip(LAYOUTS, bases, strict=True)
    }
    # virt-inspector 1.48 loses a btrfs root among several disks ("root device not
    # found"): the btrfs guest gets a run of its own
    systems, raw = _virt_inspector([n for n in LAYOUTS if n not in BTRFS])
    for group in [[n] for n in LAYOUTS if n in BTRFS]:
        more = _virt_inspector(group)
        systems.update(more[0])
        raw.update(more[1])
    inspect = {}
    for name in LAYOUTS:
        proc = vmtailor("inspect", "--disk", str(overlays[name]), "--json")
        inspect[name] = json.loads(proc.stdout) if proc.returncode == 0 else proc
    before = snapshot(bases, raw)

    (top / "oracle.yaml").write_text(json.dumps(CONFIG))
    clones = [{"name": n, "image": overlays[n].name, "format": "qcow2"} for n in LAYOUTS]
    (top / "site.yaml").write_text(json.dumps({"config": "oracle.yaml", "clones": clones}))
    proc = vmtailor("batch", str(top / "site.yaml"), "--json")
    assert proc.stdout, proc.stderr
    applied = {c["clone"]: c for c in json.loads(proc.stdout)["clones"]}
    after_apply = snapshot([overlays[n] for n in LAYOUTS], raw)
    reverted = {n: vmtailor("revert", "--disk", str(overlays[n])) for n in LAYOUTS}
    after_revert = snapshot([overlays[n] for n in LAYOUTS], raw)
    return Fleet(top, bases, overlays, systems, raw, inspect, before, applied, after_apply,
                 reverted, after_revert)  # fmt: skip


def _inspected(fleet: Fleet, layout: str) -> dict:
    info = fleet.inspect[layout]
    assert isinstance(info, dict), f"vmtailor inspect --disk failed: {info.stderr.strip()}"
    return info


# -- the tests -------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_virt_inspector_finds_the_fixture(fleet, layout):
    """The oracle itself: each fixture is what it stands for, in libguestfs' eyes."""
    found = fleet.oracle.get(layout)
    assert found is not None, f"virt-inspector found no OS in {layout}: {fleet.oracle}"
    assert (found.distro, found.major, found.minor) == ORACLE_OS[layout]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_os_and_version_agree(fleet, layout):
    oracle_os = fleet.oracle[layout]
    info = _inspected(fleet, layout)
    assert (info["family"], info["id"]) == DISTROS[oracle_os.distro]
    major, _, minor = str(info["version"]).partition(".")
    assert int(major) == oracle_os.major, info["version"]
    if minor:  # os-release's VERSION_ID may carry the major only (Debian: "12")
        assert int(minor.split(".")[0]) == oracle_os.minor, info["version"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_root_and_mount_points_agree(fleet, layout):
    oracle_os = fleet.oracle[layout]
    storage = _inspected(fleet, layout)["storage"]
    assert storage["root"] == oracle_os.root
    assert vmtailor_mounts(storage) == oracle_os.mounts, (storage["skipped"], storage["warnings"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_apply_writes_where_the_guest_reads(fleet, layout):
    record = fleet.applied[layout]
    assert record["status"] == "ok", record
    before, after = fleet.before[layout], fleet.after_apply[layout]
    assert set(after.listing) == set(before.listing)  # the same filesystems, nothing else
    assert after.text["/etc/vmtailor-oracle"] == "applied\n"
    assert after.listing["/"]["/etc/vmtailor-oracle"][2] == oct(0o100640)
    # the home is made in the filesystem the guest mounts at /home, where it has one
    home_fs = "/home" if "/home" in after.listing else "/"
    assert after.listing[home_fs]["/home/ops/.ssh/authorized_keys"][0] == "file"
    if home_fs != "/":
        # (the mount point itself may be made, journaled: revert must take it away)
        hidden = [p for p in after.listing["/"] if p.startswith("/home/")]
        assert not hidden, f"written in the root filesystem beneath /home's mount point: {hidden}"


def test_el6_takes_its_hostname_from_sysconfig_network(fleet):
    """EL6 (and Fedora before 18) read HOSTNAME= in /etc/sysconfig/network, and nothing
    reads /etc/hostname there: the new name must be in the one place that counts."""
    after = fleet.after_apply["el6"].text
    lines = after.get("/etc/sysconfig/network", "").splitlines()
    names = [line.partition("=")[2].strip("\"'") for line in lines if line.startswith("HOSTNAME=")]
    assert names == [HOSTNAME], lines
    assert "NETWORKING=yes" in lines  # the rest of the file kept


@pytest.mark.parametrize("layout", [n for n in LAYOUTS if n != "el6"])
def test_hostname_lands_in_etc_hostname(fleet, layout):
    assert fleet.after_apply[layout].text.get("/etc/hostname") == f"{HOSTNAME}\n"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_revert_leaves_the_image_as_it_was(fleet, layout):
    assert fleet.applied[layout]["status"] == "ok", fleet.applied[layout]
    proc = fleet.reverted[layout]
    assert proc.returncode == 0, proc.stderr
    before, after = fleet.before[layout].listing, fleet.after_revert[layout].listing
    assert set(after) == set(before)
    diffs = [d for fs in before for d in differences(before[fs], after[fs])]
    assert not diffs, "\n".join(diffs[:40])
