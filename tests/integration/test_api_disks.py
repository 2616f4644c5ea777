"""vmtailor.api.open_disks as the README shows it: the README's disk example run as it
stands on a qcow2 clone of the cached Debian fixture disk, then reverted through the API
in the same appliance: the journal is gone and the config would change the guest again."""

from __future__ import annotations

import subprocess

from tests.readme_api import run_readme
from vmtailor import api


def test_readme_disk_example_runs_as_shown(tmp_path, guest_image):
    # a copy-on-write clone: the cached image is only read (its backing file)
    clone = tmp_path / "web01.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                    str(guest_image("debian")), str(clone)], check=True)  # fmt: skip

    ran = run_readme(tmp_path, lambda code: "load_config" in code or "open_disks" in code)
    assert ran == 2

    with api.open_disks([clone]) as guest:
        assert api.inspect(guest).vmtailor["state"] == "applied"
        undone = api.revert(guest)
        assert {"/etc/hostname", "/etc/motd"} <= {*undone.restored, *undone.removed}
        assert api.inspect(guest).vmtailor is None
        # the hostname is back: applying again would change it
        config = api.load_config(tmp_path / "web.yaml", {"hostname": "web01"})
        again = api.apply(config, guest, dry_run=True)
        assert "/etc/hostname" in [c.path for c in again.changes]
