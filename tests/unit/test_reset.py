"""reset items (machine-id, ssh-host-keys, persistent-net) through the real engine on small
guest trees; the first-boot scripts they queue are checked as shell and, where safe on the
host, run for real through the installed runner."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, tree_digest
from tests.unit.test_firstboot import (
    FB,
    _write,
    openrc_guest,
    run_runner,
    systemd_guest,
    sysvinit_guest,
)
from vmtailor.customizer import config, engine
from vmtailor.customizer.errors import PlanError
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.ops.reset import RESET_ITEMS
from vmtailor.customizer.ops.reset.machine_id import REFILL_SH
from vmtailor.customizer.ops.reset.ssh_host_keys import REGENERATE_SH

sys.path.insert(0, str(REPO / "scripts"))
import fixture_roots

MACHINE_ID = "0123456789abcdef0123456789abcdef\n"
KEYS = [
    "ssh_host_rsa_key",
    "ssh_host_rsa_key.pub",
    "ssh_host_ecdsa_key",
    "ssh_host_ecdsa_key.pub",
    "ssh_host_ed25519_key",
    "ssh_host_ed25519_key.pub",
    "ssh_host_ed25519_key-cert.pub",
    "ssh_host_key",
    "ssh_host_key.pub",
]
NOT_KEYS = ["sshd_config", "ssh_config", "moduli", "ssh_known_hosts", "ssh_host_keys.txt"]


def reset(top: Path, *items: str):
    return engine.apply(config.parse({"reset": list(items)}), LocalRoot(str(top)))


def queued(top: Path) -> list[str]:
    scripts = top / FB / "scripts"
    return sorted(os.listdir(scripts)) if scripts.is_dir() else []


def with_ssh_keys(top: Path) -> Path:
    for name in KEYS:
        _write(top, f"etc/ssh/{name}", "key\n", 0o600 if not name.endswith(".pub") else 0o644)
    for name in NOT_KEYS:
        _write(top, f"etc/ssh/{name}", "keep\n")
    return top


def test_every_item_has_a_summary():
    assert sorted(RESET_ITEMS) == ["machine-id", "persistent-net", "ssh-host-keys"]
    assert all(summary and summary != "TODO" for summary, _ in RESET_ITEMS.values())


# -- machine-id ----------------------------------------------------------------------------
def test_machine_id_is_emptied_keeping_mode_and_owner(tmp_path):
    top = systemd_guest(tmp_path)
    _write(top, "etc/machine-id", MACHINE_ID, 0o444)
    os.chown(top / "etc/machine-id", 0, 42)
    _write(top, "var/lib/dbus/machine-id", MACHINE_ID)
    reset(top, "machine-id")
    st = (top / "etc/machine-id").stat()
    assert (top / "etc/machine-id").read_bytes() == b""
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o444, 0, 42)
    assert not os.path.lexists(top / "var/lib/dbus/machine-id")
    assert queued(top) == []  # systemd fills the empty file at boot


def test_absent_machine_id_stays_absent(tmp_path):
    top = systemd_guest(tmp_path)
    result = reset(top, "machine-id")
    assert result.changes == []
    assert not os.path.lexists(top / "etc/machine-id")


def test_dbus_link_to_machine_id_is_kept(tmp_path):
    top = systemd_guest(tmp_path)
    _write(top, "etc/machine-id", MACHINE_ID)
    (top / "var/lib/dbus").mkdir(parents=True)
    (top / "var/lib/dbus/machine-id").symlink_to("/etc/machine-id")
    reset(top, "machine-id")
    assert os.readlink(top / "var/lib/dbus/machine-id") == "/etc/machine-id"
    assert (top / "etc/machine-id").read_bytes() == b""


def test_dbus_link_elsewhere_is_removed(tmp_path):
    top = systemd_guest(tmp_path)
    _write(top, "etc/machine-id", MACHINE_ID)
    (top / "var/lib/dbus").mkdir(parents=True)
    (top / "var/lib/dbus/machine-id").symlink_to("/nowhere/machine-id")
    reset(top, "machine-id")
    assert not os.path.lexists(top / "var/lib/dbus/machine-id")


@pytest.mark.parametrize("make", [sysvinit_guest, openrc_guest], ids=["sysvinit", "openrc"])
def test_without_systemd_a_first_boot_script_refills_machine_id(tmp_path, make):
    top = make(tmp_path)
    _write(top, "etc/machine-id", MACHINE_ID)
    reset(top, "machine-id")
    assert queued(top) == ["00-vmtailor-machine-id"]
    proc = run_runner(top)
    assert proc.returncode == 0, proc.stderr
    new = (top / "etc/machine-id").read_text()
    assert re.fullmatch(r"[0-9a-f]{32}\n", new) and new != MACHINE_ID


def test_refill_prefers_the_id_dbus_made_at_boot(tmp_path):
    top = sysvinit_guest(tmp_path)
    _write(top, "etc/machine-id", MACHINE_ID)
    reset(top, "machine-id")
    dbus_id = "fedcba9876543210fedcba9876543210\n"
    _write(top, "var/lib/dbus/machine-id", dbus_id)  # as dbus-uuidgen --ensure would
    assert run_runner(top).returncode == 0
    assert (top / "etc/machine-id").read_text() == dbus_id


# -- ssh-host-keys -------------------------------------------------------------------------
def test_host_keys_are_deleted_and_regenerated_at_first_boot(tmp_path):
    top = with_ssh_keys(systemd_guest(tmp_path))  # Debian: sshd makes no keys itself
    result = reset(top, "ssh-host-keys")
    assert not result.guest.ssh_regenerates_host_keys
    assert sorted(os.listdir(top / "etc/ssh")) == sorted(NOT_KEYS)
    assert queued(top) == ["00-vmtailor-ssh-host-keys"]
    assert (top / FB / "scripts/00-vmtailor-ssh-host-keys").read_text() == REGENERATE_SH


def test_guest_that_regenerates_keys_gets_no_script(tmp_path):
    top = with_ssh_keys(systemd_guest(tmp_path))
    _write(top, "usr/lib/systemd/system/sshd-keygen@.service", "[Unit]\n")
    result = reset(top, "ssh-host-keys")
    assert result.guest.ssh_regenerates_host_keys
    assert sorted(os.listdir(top / "etc/ssh")) == sorted(NOT_KEYS)
    assert not (top / "usr/lib/vmtailor").exists()


def test_ssh_server_without_keys_gets_them_made_at_first_boot(tmp_path):
    # keys removed already (by hand, or by a run cut off after deleting them): the clone
    # still needs keys, and a second run changes nothing more
    top = systemd_guest(tmp_path)
    _write(top, "etc/ssh/sshd_config", "Port 22\n")
    reset(top, "ssh-host-keys")
    assert queued(top) == ["00-vmtailor-ssh-host-keys"]
    assert reset(top, "ssh-host-keys").changes == []


def test_no_ssh_server_no_change(tmp_path):
    top = systemd_guest(tmp_path)
    _write(top, "etc/ssh/ssh_config", "Host *\n")  # the client alone
    result = reset(top, "ssh-host-keys")
    assert result.changes == []
    assert not (top / "usr/lib/vmtailor").exists()


def test_host_keys_on_a_guest_with_unknown_init_are_refused(tmp_path):
    _write(tmp_path, "etc/os-release", 'ID=debian\nVERSION_ID="12"\n')
    with_ssh_keys(tmp_path)
    before = tree_digest(tmp_path)
    with pytest.raises(PlanError, match="init system is unknown"):
        reset(tmp_path, "ssh-host-keys")
    assert tree_digest(tmp_path) == before


# -- persistent-net ------------------------------------------------------------------------
IFCFG = 'DEVICE=eth0\nHWADDR="52:54:00:aa:bb:cc"\nBOOTPROTO=dhcp\n  HWADDR=52:54:00:aa:bb:cc\nONBOOT=yes\n'


def test_persistent_net_rules_and_hwaddr_lines_go(tmp_path):
    top = systemd_guest(tmp_path)
    _write(top, "etc/udev/rules.d/70-persistent-net.rules", 'SUBSYSTEM=="net", NAME="eth0"\n')
    _write(top, "etc/udev/rules.d/60-other.rules", "keep\n")
    _write(top, "etc/sysconfig/network-scripts/ifcfg-eth0", IFCFG, 0o600)
    _write(top, "etc/sysconfig/network-scripts/ifcfg-lo", "DEVICE=lo\n")
    _write(top, "etc/sysconfig/network-scripts/route-eth0", "HWADDR=keep\n")
    _write(top, "etc/sysconfig/network/ifcfg-eth1", "BOOTPROTO=dhcp\nHWADDR=52:54:00:aa:bb:cd")
    result = reset(top, "persistent-net")
    assert sorted(c.path for c in result.changes) == [
        "/etc/sysconfig/network-scripts/ifcfg-eth0",
        "/etc/sysconfig/network/ifcfg-eth1",
        "/etc/udev/rules.d/70-persistent-net.rules",
    ]
    assert not (top / "etc/udev/rules.d/70-persistent-net.rules").exists()
    eth0 = top / "etc/sysconfig/network-scripts/ifcfg-eth0"
    assert eth0.read_text() == "DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\n"
    assert eth0.stat().st_mode & 0o7777 == 0o600
    assert (top / "etc/sysconfig/network/ifcfg-eth1").read_text() == "BOOTPROTO=dhcp\n"
    assert (top / "etc/sysconfig/network-scripts/route-eth0").read_text() == "HWADDR=keep\n"


def test_rules_linked_to_dev_null_are_kept(tmp_path):
    top = systemd_guest(tmp_path)
    (top / "etc/udev/rules.d").mkdir(parents=True)
    (top / "etc/udev/rules.d/70-persistent-net.rules").symlink_to("/dev/null")
    assert reset(top, "persistent-net").changes == []


# -- all items together --------------------------------------------------------------------
ALL = ("machine-id", "ssh-host-keys", "persistent-net")


def _full_guest(top: Path, make=sysvinit_guest) -> Path:
    make(top)
    with_ssh_keys(top)
    _write(top, "etc/machine-id", MACHINE_ID, 0o444)
    _write(top, "var/lib/dbus/machine-id", MACHINE_ID)
    _write(top, "etc/udev/rules.d/70-persistent-net.rules", "x\n")
    _write(top, "etc/sysconfig/network-scripts/ifcfg-eth0", IFCFG)
    return top


def test_all_items_then_idempotent_then_revert(tmp_path):
    top = _full_guest(tmp_path)
    before = tree_digest(top)
    assert reset(top, *ALL).changes
    assert queued(top) == ["00-vmtailor-machine-id", "00-vmtailor-ssh-host-keys"]
    again = reset(top, *ALL)
    assert again.changes == [] and again.already_applied
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_reset_then_firstboot_config_does_not_drop_queued_scripts(tmp_path):
    top = _full_guest(tmp_path)
    reset(top, *ALL)
    # a later run finds no keys left: it queues nothing, and removes nothing either
    engine.apply(
        config.parse({"reset": list(ALL), "firstboot": [{"name": "x", "script": "true"}]}),
        LocalRoot(str(top)),
    )
    assert queued(top) == ["00-vmtailor-machine-id", "00-vmtailor-ssh-host-keys", "50-x"]


# -- the queued scripts as shell programs --------------------------------------------------
@pytest.mark.parametrize("text", [REFILL_SH, REGENERATE_SH], ids=["machine-id", "ssh"])
def test_queued_scripts_are_valid_sh(tmp_path, text):
    path = tmp_path / "script"
    path.write_text(text)
    subprocess.run(["sh", "-n", str(path)], check=True)
    if shutil.which("busybox"):
        subprocess.run(["busybox", "sh", "-n", str(path)], check=True)
    if shutil.which("shellcheck"):
        proc = subprocess.run(["shellcheck", "-s", "sh", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout


# -- the fixture guest roots ---------------------------------------------------------------
def _fixture_roots() -> list[str]:
    out = []
    for name in fixture_roots.ROOTS:
        expect = fixture_roots.describe(name)["expect"]
        if expect.get("supported", True) and expect.get("init") in (
            "systemd",
            "sysvinit",
            "upstart",
            "openrc",
        ):
            out.append(name)
    return out


@pytest.mark.parametrize("name", _fixture_roots())
def test_fixture_root_reset_round_trip(make_root, name):
    top = make_root(name)
    spec = fixture_roots.describe(name)
    had_keys = any(re.search(r"/etc/ssh/ssh_host_.*key", p) for p in spec["files"])
    before = tree_digest(top)
    result = reset(top, *ALL)
    assert not list(top.glob("etc/ssh/ssh_host_*key*"))
    assert ("00-vmtailor-ssh-host-keys" in queued(top)) == (
        had_keys and not result.guest.ssh_regenerates_host_keys
    )
    machine_id = top / "etc/machine-id"
    if machine_id.is_file() and not machine_id.is_symlink():
        assert machine_id.read_bytes() == b""
    assert reset(top, *ALL).changes == []
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before
