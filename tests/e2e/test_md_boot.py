"""The md RAID guest (tests/integration/md_guest.py: root on LVM on a RAID1, /srv on a
second RAID1) customized by booting the ISO: mdadm and the md drivers come from the ISO,
the arrays are assembled from the guest's own members read-only and switched to
read-write for the mounts — and afterwards the members' superblocks (read on the host)
say clean, at one event count per array: nothing resynced, no member left behind."""

from __future__ import annotations

from tests.e2e.qemu import boot
from tests.integration import md_guest
from vmtailor.builder.media import write_media
from vmtailor.customizer.config import parse


def test_md_guest_customized_from_the_iso(customization_iso, tmp_path):
    image = tmp_path / "md-guest.raw"
    md_guest.build(image)
    before = md_guest.superblocks(image)
    media = tmp_path / "config.iso"
    cfg = parse({"hostname": "md-e2e", "files": [{"path": "/srv/from-iso", "content": "hi\n"}]}, {})
    write_media(cfg, lambda source: b"", str(media))
    vm = boot(customization_iso.iso, disks=[str(image)], cdroms=[str(media)], timeout=900)
    assert vm.powered_off and vm.result is not None, vm.log[-4000:]
    assert vm.result["status"] == "ok", vm.result
    assert vm.result["root"] == "/dev/mapper/vmt--md-root"
    mounts = {m["target"]: m["device"] for m in vm.result["mounts"]}
    assert mounts["/srv"].startswith("/dev/md")  # the array itself, by /dev/md/vmtsrv
    assert {"action": "create", "path": "/srv/from-iso"} in vm.result["changes"]
    assert "from the ISO on /dev/sr0: mdadm" in vm.log
    timings = vm.result["timings"]
    print(
        f"md guest from the ISO: {vm.seconds:.0f} s to power-off, disks stage {timings['disks']} s"
    )
    after = md_guest.superblocks(image)
    for a, b in ((1, 2), (5, 6)):
        assert after[a].state == after[b].state == "clean", after
        assert after[a].events == after[b].events, after
        assert int(after[a].events) > int(before[a].events)  # written, as arrays
