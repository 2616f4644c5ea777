"""SELinux guests: replaced files keep their label; new files trigger /.autorelabel."""

from __future__ import annotations

import os

from tests.conftest import tree_digest
from vmtailor.customizer import config, engine
from vmtailor.customizer.localroot import LocalRoot

LABEL = b"system_u:object_r:hostname_etc_t:s0\0"


def _guest(top, selinux="enforcing"):
    (top / "etc/selinux").mkdir(parents=True)
    (top / "etc/os-release").write_text(
        'ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n'
    )
    (top / "etc/selinux/config").write_text(f"SELINUX={selinux}\nSELINUXTYPE=targeted\n")
    (top / "etc/hostname").write_text("template\n")
    (top / "etc/hosts").write_text("127.0.0.1 localhost\n")
    os.setxattr(top / "etc/hostname", "security.selinux", LABEL)
    return top


def test_replaced_file_keeps_label_and_new_file_asks_for_relabel(tmp_path):
    top = _guest(tmp_path / "g")
    before = tree_digest(top)
    cfg = config.parse({"hostname": "web01", "files": [{"path": "/etc/motd", "content": "hi\n"}]})
    result = engine.apply(cfg, LocalRoot(str(top)))
    assert (top / "etc/hostname").read_text() == "web01\n"
    assert os.getxattr(top / "etc/hostname", "security.selinux") == LABEL
    assert (top / ".autorelabel").exists()
    assert any("autorelabel" in w for w in result.warnings)
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_modifying_only_needs_no_relabel(tmp_path):
    top = _guest(tmp_path / "g")
    engine.apply(config.parse({"hostname": "web01"}), LocalRoot(str(top)))
    assert not (top / ".autorelabel").exists()


def test_disabled_selinux_gets_no_relabel(tmp_path):
    top = _guest(tmp_path / "g", selinux="disabled")
    cfg = config.parse({"files": [{"path": "/etc/motd", "content": "hi\n"}]})
    engine.apply(cfg, LocalRoot(str(top)))
    assert not (top / ".autorelabel").exists()
