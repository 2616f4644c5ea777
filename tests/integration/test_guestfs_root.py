"""The engine on a libguestfs Root gives exactly what it gives on a local directory:
same changes, same bytes, modes and owners, and a revert that restores the original."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, tree_digest
from tests.integration import guestfs_handle
from vmtailor.configfile import load_config
from vmtailor.customizer import engine
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.root import RootError
from vmtailor.offline.guestfs_root import GuestfsRoot

CONFIG = REPO / "configs/examples/web-server.yaml"
VARS = {"hostname": "web01", "ip": "192.0.2.10/24"}


@pytest.fixture(autouse=True)
def _reproducible(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def _digest(top):
    return tree_digest(top, skip=("var/lib/vmtailor",))


@pytest.mark.parametrize("name", ["rocky-9", "debian-12", "alpine-3.20"])
def test_same_result_as_a_local_root(g, make_root, tmp_path, name):
    loaded = load_config(str(CONFIG), VARS)
    local = make_root(name)
    guestfs_handle.fresh_guest(g, local)
    pristine = guestfs_handle.download(g, tmp_path / "pristine")
    assert tree_digest(pristine) == tree_digest(local)

    root = GuestfsRoot(g, name)
    remote = engine.apply(loaded.config, root, sources=loaded.sources)
    here = engine.apply(loaded.config, LocalRoot(str(local)), sources=loaded.sources)
    assert [(c.action, c.path) for c in remote.changes] == [
        (c.action, c.path) for c in here.changes
    ]
    after = guestfs_handle.download(g, tmp_path / "after")
    assert _digest(after) == _digest(local)

    assert engine.apply(loaded.config, GuestfsRoot(g, name), sources=loaded.sources).changes == []
    engine.revert(GuestfsRoot(g, name))
    reverted = guestfs_handle.download(g, tmp_path / "reverted")
    assert tree_digest(reverted) == tree_digest(pristine)


def test_symlinks_resolve_inside_the_image(g, tmp_path):
    tree = tmp_path / "t"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text("ID=debian\n")
    (tree / "etc/hostname").symlink_to("../../../../etc/shadow")
    (tree / "loop").symlink_to("loop")
    guestfs_handle.fresh_guest(g, tree)
    root = GuestfsRoot(g)
    assert root.resolve("/etc/hostname") == "/etc/shadow"
    root.write_bytes("/etc/hostname", b"web01\n")
    assert g.read_file("/etc/shadow") == b"web01\n"
    assert g.is_symlink("/etc/hostname")
    with pytest.raises(RootError, match="too many levels"):
        root.resolve("/loop/x")
    with pytest.raises(RootError, match="is not a directory"):
        root.write_bytes("/etc/os-release/x", b"")


@pytest.mark.parametrize("where", ["guestfs", "local"])
def test_times_are_the_paths_own_never_a_links_target(g, tmp_path, where):
    tree = tmp_path / "t"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/file").write_text("x\n")
    (tree / "etc/link").symlink_to("file")
    if where == "guestfs":
        guestfs_handle.fresh_guest(g, tree)
        root = GuestfsRoot(g)
    else:
        root = LocalRoot(str(tree))
    file_times = root.times("/etc/file")
    root.set_times("/etc/link", 1_000_000_000_123_456_789, 990_000_000_987_654_321)
    assert root.times("/etc/link") == (1_000_000_000_123_456_789, 990_000_000_987_654_321)
    assert root.times("/etc/file") == file_times
    root.set_times("/", 5, -7_000_000_001)  # the guest's root folder; before 1970 too
    assert root.times("/") == (5, -7_000_000_001)
    assert root.times("/etc/missing") is None
