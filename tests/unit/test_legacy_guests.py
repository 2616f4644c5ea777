"""Guests from before os-release and /etc/hostname: recognised by their own release
files, and given the new host name where their init scripts read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmtailor.customizer import config, engine
from vmtailor.customizer.detect import detect
from vmtailor.customizer.localroot import LocalRoot

UBUNTU_1204 = """\
DISTRIB_ID=Ubuntu
DISTRIB_RELEASE=12.04
DISTRIB_CODENAME=precise
DISTRIB_DESCRIPTION="Ubuntu 12.04.5 LTS"
"""


def guest(top: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text(text)
    return top


def test_ubuntu_without_os_release_is_ubuntu(tmp_path):
    """debian_version says "wheezy/sid" on Ubuntu 12.04; lsb-release says what it is. An
    lsb-release naming another distribution leaves it to the next file (Debian's own)."""
    ubuntu = {"etc/lsb-release": UBUNTU_1204, "etc/debian_version": "wheezy/sid\n"}
    found = detect(LocalRoot(str(guest(tmp_path / "u", ubuntu))))
    assert (found.family.name, found.os_id, found.version) == ("ubuntu", "ubuntu", "12.04")
    assert found.pretty_name == "Ubuntu 12.04.5 LTS"
    assert found.evidence["os"] == "/etc/lsb-release (no os-release)"
    lsb = "DISTRIB_ID=Debian\nDISTRIB_RELEASE=7.11\n"
    debian = {"etc/lsb-release": lsb, "etc/debian_version": "7.11\n"}
    found = detect(LocalRoot(str(guest(tmp_path / "d", debian))))
    assert (found.family.name, found.os_id, found.version) == ("debian", "debian", "7")


def test_fedora_without_fedora_release_is_fedora(tmp_path):
    """Only a redhat-release saying Fedora: Fedora 14, not RHEL 14; an EL one stays EL."""
    fedora = {"etc/redhat-release": "Fedora release 14 (Laughlin)\n"}
    found = detect(LocalRoot(str(guest(tmp_path / "f", fedora))))
    assert (found.family.name, found.os_id, found.version) == ("fedora", "fedora", "14")
    el = {"etc/redhat-release": "Red Hat Enterprise Linux Server release 6.10 (Santiago)\n"}
    found = detect(LocalRoot(str(guest(tmp_path / "el", el))))
    assert (found.family.name, found.os_id, found.version) == ("rhel", "rhel", "6.10")


def rename(top: Path) -> None:
    engine.apply(config.parse({"hostname": "web01", "domain": "example.com"}), LocalRoot(str(top)))


STALE = "NETWORKING=yes\nHOSTNAME=fedora.invalid\n"
FEDORA = {"17 (Beefy Miracle)": STALE, "14 (Laughlin)": None}  # None: made, as anaconda does


@pytest.mark.parametrize("release", FEDORA)
def test_fedora_before_18_reads_sysconfig_network(tmp_path, release):
    """Before 18 HOSTNAME= there is the name; 18 reads /etc/hostname only, and its
    sysconfig/network is then left as it is."""
    files = {"etc/fedora-release": f"Fedora release {release}\n", "etc/hosts": "127.0.0.1 x\n"}
    if FEDORA[release] is not None:
        files["etc/sysconfig/network"] = FEDORA[release]
    top = guest(tmp_path, files)
    (top / "etc/sysconfig").mkdir(exist_ok=True)
    rename(top)
    network = (top / "etc/sysconfig/network").read_text()
    assert network == "NETWORKING=yes\nHOSTNAME=web01.example.com\n"
    assert (top / "etc/hostname").read_text() == "web01\n"
    f18 = {"etc/fedora-release": "Fedora release 18\n", "etc/sysconfig/network": STALE}
    later = guest(tmp_path / "f18", f18)
    rename(later)
    assert (later / "etc/sysconfig/network").read_text() == STALE


def test_sles_11_without_etc_hostname_file_gets_one(tmp_path):
    """SLES 11 (SysV init) reads /etc/HOSTNAME only; a template that lost it still gets
    the new name there."""
    suse_release = "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n"
    top = guest(tmp_path, {"etc/SuSE-release": suse_release, "etc/inittab": "id:3:initdefault:\n"})
    (top / "sbin").mkdir()
    (top / "sbin/init").write_text("")
    assert detect(LocalRoot(str(top))).init == "sysvinit"
    rename(top)
    assert (top / "etc/HOSTNAME").read_text() == "web01.example.com\n"
