"""`vmtailor batch`, `apply/inspect/revert --disk` on real clone images (scripts/
guest_images.py masters, as qcow2 overlays) in real libguestfs appliances. What was
written is read back through a separate read-only handle that mounts the known root
devices directly — not through vmtailor's own guest finding.

One fleet, customized once per module (appliance launches are ~20 s each under TCG):
four guest layouts, a second Debian clone with the very same filesystem UUIDs as the first
(overlays of one master: the trap that makes virt-customize's inspection pick the wrong
disk), and four clones that must be refused or fail without touching anything."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import guest_images  # scripts/, put on sys.path by tests/conftest.py
import pytest

from tests.conftest import vmtailor

os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")

pytestmark = pytest.mark.xdist_group("batch")  # one worker runs the whole module

CONFIG = """\
hostname: "{{ hostname }}"
network:
  version: 2
  ethernets:
    lan0:
      match: {macaddress: "{{ mac }}"}
      addresses: ["{{ ip }}/24"]
      routes: [{to: default, via: 192.0.2.1}]
users:
  - {name: root, ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com"]}
files:
  - {path: /etc/vmtailor-clone, content: "{{ name }}\\n"}
firstboot:
  - {name: register, script: "echo registered > /root/registered"}
"""

# layout -> (root device given the layout's first appliance disk, mount options)
ROOTS = {
    "debian": ("{disk}2", ""),
    "lvm": ("/dev/vmtvg/root", ""),
    "btrfs": ("{disk}1", "subvol=@"),
    "two-disk": ("{disk}1", ""),
}
GOOD = {"web01": "debian", "web02": "debian", "rocky": "lvm", "ubuntu": "btrfs",
        "alpine": "two-disk"}  # fmt: skip


def overlay(master: Path, path: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(master), "-F",
                    "raw", str(path)], check=True)  # fmt: skip
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_back(guests: list[tuple[str, list[Path], str]], path: str) -> dict[str, str]:
    """{clone: text of `path` in its root filesystem}, read through a read-only handle."""
    import guestfs

    g = guestfs.GuestFS(python_return_dict=True)
    for _, images, _ in guests:
        for image in images:
            fmt = "qcow2" if image.suffix == ".qcow2" else "raw"
            g.add_drive_opts(str(image), format=fmt, readonly=True)
    g.launch()
    try:
        disks = iter(g.list_devices())
        out = {}
        for name, images, layout in guests:
            first = next(next(disks) for _ in images)
            device, options = ROOTS[layout]
            if layout == "lvm":
                g.vg_activate_all(True)
            g.mount_options(",".join(filter(None, ["ro", options])),
                            device.format(disk=first), "/")  # fmt: skip
            out[name] = g.cat(path) if g.is_file(path) else None
            g.umount_all()
            if layout == "lvm":
                g.vg_activate_all(False)
        return out
    finally:
        g.shutdown()
        g.close()


class Fleet:
    def __init__(self, top: Path):
        self.top = top
        self.inventory = top / "site.yaml"
        self.held: subprocess.Popen | None = None
        self.images: dict[str, list[Path]] = {}

    def guests(self, names) -> list[tuple[str, list[Path], str]]:
        return [(n, self.images[n], GOOD[n]) for n in names]

    def batch(self, *args: str) -> tuple[int, dict]:
        proc = vmtailor("batch", str(self.inventory), "--json", *args)
        assert proc.stdout, proc.stderr
        return proc.returncode, {c["clone"]: c for c in json.loads(proc.stdout)["clones"]}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    top = tmp_path_factory.mktemp("fleet")
    f = Fleet(top)
    (top / "web.yaml").write_text(CONFIG)
    f.images["web01"] = [top / "web01.qcow2"]  # made from the master by batch
    f.images["web02"] = [top / "web02.qcow2"]
    f.images["rocky"] = [overlay(guest_images.disks("lvm")[0], top / "rocky.qcow2")]
    f.images["ubuntu"] = [overlay(guest_images.disks("btrfs")[0], top / "ubuntu.qcow2")]
    f.images["alpine"] = [overlay(d, top / f"alpine-{i}.qcow2")
                          for i, d in enumerate(guest_images.disks("two-disk"), 1)]  # fmt: skip
    f.images["data"] = [overlay(guest_images.disks("data")[0], top / "data.qcow2")]
    f.images["corrupt"] = [top / "corrupt.qcow2"]
    subprocess.run(["cp", str(guest_images.disks("corrupt")[0]), str(top / "corrupt.qcow2")],
                   check=True)  # fmt: skip
    (top / "corrupt.qcow2").chmod(0o644)
    f.images["busy"] = [overlay(guest_images.disks("debian")[0], top / "busy.qcow2")]
    f.images["readonly"] = [overlay(guest_images.disks("debian")[0], top / "readonly.qcow2")]
    (top / "readonly.qcow2").chmod(0o444)
    clones = []
    for i, name in enumerate(["web01", "web02", "rocky", "ubuntu", "alpine", "data", "corrupt",
                              "busy", "readonly"]):  # fmt: skip
        rel = [p.name for p in f.images[name]]
        where = {"image": rel[0]} if len(rel) == 1 else {"images": rel}
        clones.append(
            {
                "name": name,
                **where,
                "vars": {
                    "hostname": f"{name}-new",
                    "ip": f"192.0.2.{10 + i}",
                    "mac": f"52:54:00:be:00:{i:02x}",
                },
            }
        )
    f.inventory.write_text(json.dumps({"config": "web.yaml",
                                       "master": str(guest_images.disks("debian")[0]),
                                       "clones": clones}))  # fmt: skip
    # a running VM holds busy.qcow2 the way QEMU holds every disk: with a write lock
    f.held = subprocess.Popen(
        ["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none", "-S",
         "-blockdev", f"driver=qcow2,node-name=d0,file.driver=file,"
         f"file.filename={top / 'busy.qcow2'}"])  # fmt: skip
    try:
        for _ in range(50):
            if subprocess.run(["qemu-img", "info", str(top / "busy.qcow2")],
                              capture_output=True).returncode:  # fmt: skip
                break
            subprocess.run(["sleep", "0.1"])
        f.refused_before = {n: sha(f.images[n][0]) for n in ("data", "corrupt", "busy",
                                                             "readonly")}  # fmt: skip
        f.status, f.first = f.batch("--jobs", "2")
        yield f
    finally:
        f.held.kill()
        f.held.wait()


def test_every_fit_clone_gets_its_own_config(fleet):
    assert fleet.status == 1  # some clones failed
    for name in GOOD:
        assert fleet.first[name]["status"] == "ok", fleet.first[name]
        assert fleet.first[name]["changes"] > 0
    assert fleet.first["web01"]["created"] and fleet.first["web02"]["created"]
    assert not fleet.first["rocky"]["created"]
    hostnames = read_back(fleet.guests(GOOD), "/etc/hostname")
    # web01 and web02 share every filesystem UUID, and still each got its own
    assert hostnames == {name: f"{name}-new\n" for name in GOOD}
    marks = read_back(fleet.guests(GOOD), "/etc/vmtailor-clone")
    assert marks == {name: f"{name}\n" for name in GOOD}


def test_unfit_images_are_refused_and_left_untouched(fleet):
    reasons = {n: fleet.first[n]["reason"] for n in fleet.refused_before}
    assert all(fleet.first[n]["status"] == "failed" for n in reasons), reasons
    assert "in use" in reasons["busy"]
    assert "read-only" in reasons["readonly"]
    assert "damaged" in reasons["corrupt"] or "not a disk image" in reasons["corrupt"]
    assert "root" in reasons["data"]  # opened, searched, no guest in it
    assert {n: sha(fleet.images[n][0]) for n in reasons} == fleet.refused_before


def test_a_rerun_skips_what_is_done(fleet):
    status, second = fleet.batch()
    assert status == 1
    assert {n: second[n]["status"] for n in GOOD} == dict.fromkeys(GOOD, "skipped")
    assert second["busy"]["status"] == "failed"


def test_inspect_apply_and_revert_on_disk_images(fleet):
    rocky = [str(p) for p in fleet.images["rocky"]]
    proc = vmtailor("inspect", "--disk", *rocky, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["family"], info["network_renderer"]["name"]) == ("rhel", "networkmanager")
    assert info["storage"]["root"] == "vmtvg/root"
    assert {m["target"]: m["device"] for m in info["storage"]["mounts"]} == {
        "/": "vmtvg/root",
        "/boot": "rocky.qcow2 partition 1",
        "/var": "vmtvg/var",
    }

    web01 = str(fleet.images["web01"][0])
    proc = vmtailor("revert", "--disk", web01)
    assert proc.returncode == 0, proc.stderr
    master = read_back([("master", guest_images.disks("debian"), "debian")], "/etc/hostname")
    after = read_back(fleet.guests(["web01"]), "/etc/hostname")
    assert after["web01"] == master["master"]
    assert read_back(fleet.guests(["web01"]), "/etc/vmtailor-clone") == {"web01": None}

    # apply --disk with --var puts it back; the clone is one disk image like any other
    proc = vmtailor("apply", str(fleet.top / "web.yaml"), "--disk", web01, "--var",
                    "hostname=again", "--var", "ip=192.0.2.99", "--var", "mac=52:54:00:be:00:99",
                    "--var", "name=web01")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert read_back(fleet.guests(["web01"]), "/etc/hostname") == {"web01": "again\n"}


def test_an_image_in_use_is_refused_by_disk_commands_too(fleet):
    before = sha(fleet.images["busy"][0])
    proc = vmtailor("apply", str(fleet.top / "web.yaml"), "--disk", str(fleet.images["busy"][0]),
                    "--var", "hostname=x", "--var", "ip=192.0.2.5", "--var", "mac=52:54:00:00:00:05",
                    "--var", "name=busy")  # fmt: skip
    assert proc.returncode != 0
    assert "in use" in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
    assert sha(fleet.images["busy"][0]) == before
