"""A guest's own account databases are untrusted: ids written with non-ASCII digits, too
large for the kernel, or negative give a clean error or are passed over — never a crash."""

from __future__ import annotations

import pytest

from tests.conftest import tree_digest
from vmtailor.customizer import config, engine
from vmtailor.customizer.errors import VmtailorError
from vmtailor.customizer.localroot import LocalRoot

CONFIG = {
    "users": [{"name": "ops", "groups": ["adm"]}],
    "files": [
        {"path": "/etc/motd", "content": "hi\n", "owner": "ops:adm"},
        {"path": "/etc/issue", "content": "hi\n", "owner": "svc"},
    ],
}

BAD_IDS = ["²", "١٢", "99999999999999999999", "4294967295", "-1", "", "1e3", "0x10"]


def _guest(top, uid: str) -> None:
    (top / "etc").mkdir(parents=True)
    (top / "home").mkdir()
    (top / "etc/os-release").write_text("ID=debian\n")
    (top / "etc/passwd").write_text(
        f"root:x:0:0:root:/root:/bin/sh\nsvc:x:{uid}:{uid}::/:/bin/sh\nops:x:{uid}:100::/home/ops:/bin/sh\n"
    )
    (top / "etc/group").write_text(f"root:x:0:\nadm:x:{uid}:\nusers:x:100:\n")
    (top / "etc/shadow").write_text("root:*:1::::::\nsvc:*:1::::::\nops:*:1::::::\n")


@pytest.mark.parametrize("uid", BAD_IDS)
def test_bad_ids_in_the_guest_databases_are_clean_errors(tmp_path, uid):
    top = tmp_path / "g"
    _guest(top, uid)
    before = tree_digest(top)
    try:
        engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    except VmtailorError as exc:
        assert "\n" not in str(exc)
        assert tree_digest(top) == before
