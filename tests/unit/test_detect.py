"""Detection reads the guest only: every fixture root is detected as its YAML expects."""

from __future__ import annotations

import fixture_roots
import pytest

from vmtailor.customizer.detect import DetectError, detect, parse_os_release
from vmtailor.customizer.localroot import LocalRoot

SUPPORTED = [n for n in fixture_roots.ROOTS if fixture_roots.describe(n)["expect"]["supported"]]


@pytest.mark.parametrize("name", SUPPORTED)
def test_detects_what_the_root_is(make_root, name):
    expect = fixture_roots.describe(name)["expect"]
    guest = detect(LocalRoot(str(make_root(name))))
    assert guest.family.name == expect["family"]
    assert guest.os_id == expect["id"]
    assert guest.version == (expect["version"] or "")
    assert guest.init == expect["init"]
    assert (guest.selinux or False) == expect["selinux"]
    assert guest.ssh_regenerates_host_keys == expect["ssh_regenerates_host_keys"]
    assert guest.family.admin_group == expect["admin_group"]
    enabled = [n["stack"] for n in guest.network if n["enabled"]]
    assert enabled == expect["network"], guest.network
    assert all(n["evidence"] for n in guest.network)


def test_unsupported_guest_is_named(make_root):
    with pytest.raises(DetectError, match=r"unsupported guest: /etc/os-release says ID=gentoo"):
        detect(LocalRoot(str(make_root("gentoo"))))


def test_not_a_guest(make_root):
    with pytest.raises(DetectError, match="no Linux guest found"):
        detect(LocalRoot(str(make_root("no-os"))))


def test_id_like_fallback(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID=pop\nID_LIKE="ubuntu debian"\n')
    assert detect(LocalRoot(str(tmp_path))).family.name == "ubuntu"
    (tmp_path / "etc/os-release").write_text('ID=mycorp\nID_LIKE="rhel fedora"\n')
    guest = detect(LocalRoot(str(tmp_path)))
    assert guest.family.name == "rhel" and "ID_LIKE=rhel" in guest.evidence["os"]


def test_detection_ignores_the_host(tmp_path):
    """The host has /lib/systemd/systemd; a guest whose /sbin/init points there by an
    absolute link but lacks the file must not be taken for systemd."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "sbin").mkdir()
    (tmp_path / "etc/os-release").write_text("ID=debian\n")
    (tmp_path / "sbin/init").symlink_to("/lib/systemd/systemd")
    assert detect(LocalRoot(str(tmp_path))).init == "unknown"


def test_parse_os_release_quoting():
    info = parse_os_release("NAME=\"Fedora Linux\"\nID=fedora\n# c\nVERSION_ID=40\nX='a b'\n")
    assert info == {"NAME": "Fedora Linux", "ID": "fedora", "VERSION_ID": "40", "X": "a b"}
