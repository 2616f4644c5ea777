"""What an apply means to do must survive a cut between the change that destroys the
evidence of it and the change that carries it out: the re-run plans from the guest as
the cut left it. One test per operation that plans from something it deletes or rewrites
(tests/stress/test_cut_steps.py cuts after every change of a large config)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO, tree_digest
from tests.unit.test_firstboot import FB, _write, systemd_guest
from tests.unit.test_selinux import _guest as selinux_guest
from vmtailor.customizer import config, engine
from vmtailor.customizer.localroot import LocalRoot

sys.path.insert(0, str(REPO / "scripts"))
import fixture_roots

JOURNAL = ("var/lib/vmtailor",)


class Cut(Exception):
    pass


def cut_then_rerun(top, cfg: dict, after: str):
    """Apply cut right after the change to `after`, re-run; return the uninterrupted
    apply's tree and the re-run's (journal left out: it tells the two runs apart)."""
    done = top.parent / (top.name + "-done")
    subprocess.run(["cp", "-a", str(top), str(done)], check=True)  # owners too
    engine.apply(config.parse(cfg), LocalRoot(str(done)))

    def fault(step: str) -> None:
        if step == f"apply {after}":
            raise Cut(step)

    with pytest.raises(Cut):
        engine.apply(config.parse(cfg), LocalRoot(str(top)), fault=fault)
    engine.apply(config.parse(cfg), LocalRoot(str(top)))
    return tree_digest(done, skip=JOURNAL), tree_digest(top, skip=JOURNAL)


def test_cut_after_deleting_ssh_host_keys_still_queues_their_regeneration(tmp_path):
    top = systemd_guest(tmp_path / "g")  # Debian: nothing makes missing keys at boot
    _write(top, "usr/sbin/sshd", "", 0o755)
    _write(top, "etc/ssh/sshd_config", "Port 22\n")
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
        _write(top, f"etc/ssh/{name}", "key\n", 0o600)
    want, got = cut_then_rerun(
        top, {"reset": ["ssh-host-keys"]}, "/etc/ssh/ssh_host_ed25519_key.pub"
    )
    assert got == want
    assert (top / FB / "scripts/00-vmtailor-ssh-host-keys").is_file()


def test_cut_after_writing_hostname_still_takes_the_old_name_out_of_hosts(tmp_path):
    top = systemd_guest(tmp_path / "g")
    _write(top, "etc/hostname", "template\n")
    _write(top, "etc/hosts", "127.0.0.1\tlocalhost template\n127.0.1.1\ttemplate\n")
    want, got = cut_then_rerun(top, {"hostname": "web01"}, "/etc/hostname")
    assert got == want
    assert "template" not in (top / "etc/hosts").read_text()


def test_cut_before_the_relabel_marker_still_asks_for_relabelling(tmp_path):
    top = selinux_guest(tmp_path / "g")
    cfg = {"files": [{"path": "/etc/motd", "content": "hi\n"},
                     {"path": "/etc/hostname", "content": "web01\n"}]}  # fmt: skip
    want, got = cut_then_rerun(top, cfg, "/etc/hostname")
    assert got == want
    assert (top / ".autorelabel").exists()


def test_cut_after_removing_the_templates_netplan_still_writes_netplan(tmp_path):
    # "/etc/netplan has config" is how the guest says netplan is its stack
    top = fixture_roots.build("ubuntu-22.04", tmp_path / "g")
    net = {"version": 2, "ethernets": {"lan0": {"match": {"macaddress": "52:54:00:12:34:56"},
                                                "dhcp4": True}}}  # fmt: skip
    want, got = cut_then_rerun(top, {"network": net}, "/etc/netplan/50-cloud-init.yaml")
    assert got == want
    assert (top / "etc/netplan/90-vmtailor.yaml").is_file()
