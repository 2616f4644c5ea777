"""Every operation on every family's fixture root, compared with golden files.

tests/golden/<root>/MANIFEST lists each change (action, path, kind, mode, owner, link
target) and tests/golden/<root>/files/ holds the content of each written file. Regenerate
with VMTAILOR_UPDATE_GOLDEN=1 after a deliberate change, and read the diff.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, tree_digest
from vmtailor.configfile import load_config
from vmtailor.customizer import engine
from vmtailor.customizer.localroot import LocalRoot

GOLDEN = REPO / "tests/golden"
CONFIG = REPO / "configs/examples/web-server.yaml"
VARS = {"hostname": "web01", "ip": "192.0.2.10/24"}
SUPPORTED = [
    "debian-12",
    "debian-7",
    "ubuntu-22.04",
    "rocky-9",
    "centos-7",
    "centos-6",
    "fedora-40",
    "opensuse-leap-15.5",
    "sles-11",
    "arch",
    "alpine-3.20",
]
UPDATE = os.environ.get("VMTAILOR_UPDATE_GOLDEN") == "1"


def _manifest(top: Path, changes) -> tuple[str, dict[str, bytes]]:
    lines, files = [], {}
    for change in changes:
        if change.action == "delete":
            lines.append(f"delete {change.path}")
            continue
        host = top / change.path.lstrip("/")
        st = host.lstat()
        kind = "link" if host.is_symlink() else "dir" if host.is_dir() else "file"
        line = (
            f"{change.action} {change.path} {kind} {st.st_mode & 0o7777:04o} "
            f"{st.st_uid}:{st.st_gid}"
        )
        if kind == "link":
            line += f" -> {os.readlink(host)}"
        if kind == "file":
            files[change.path] = host.read_bytes()
        lines.append(line)
    return "\n".join(lines) + "\n", files


@pytest.fixture(autouse=True)
def _reproducible(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


@pytest.mark.parametrize("name", SUPPORTED)
def test_golden(make_root, name):
    top = make_root(name)
    pristine = tree_digest(top)
    loaded = load_config(str(CONFIG), VARS)
    result = engine.apply(loaded.config, LocalRoot(str(top)), sources=loaded.sources)
    manifest, files = _manifest(top, result.changes)
    where = GOLDEN / name
    if UPDATE:
        shutil.rmtree(where, ignore_errors=True)
        for path, data in files.items():
            dest = where / "files" / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        (where / "MANIFEST").write_text(manifest)
    assert manifest == (where / "MANIFEST").read_text()
    for path, data in files.items():
        assert data == (where / "files" / path.lstrip("/")).read_bytes(), path
    golden_files = {
        "/" + str(p.relative_to(where / "files"))
        for p in (where / "files").rglob("*")
        if p.is_file()
    }
    assert golden_files == set(files)

    again = engine.apply(loaded.config, LocalRoot(str(top)), sources=loaded.sources)
    assert again.changes == [], "a second apply must change nothing"

    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == pristine
