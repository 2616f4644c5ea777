"""`files[].source` reads only regular files inside the config's folder (or --sources
DIR): never a host file by absolute path, .., a symlink, /proc, a FIFO or a device —
refused in validation, before any guest is touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import small_guest, tree_digest, vmtailor
from vmtailor.configfile import load_config
from vmtailor.customizer.config import ConfigError
from vmtailor.offline.inventory import load_inventory


def config_with_source(folder: Path, source: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "c.yaml"
    path.write_text(f"files:\n  - path: /etc/x\n    source: {source!r}\n")
    return str(path)


def source_error(folder: Path, source: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(config_with_source(folder, source), {})
    message = str(info.value)
    assert message.startswith("error at files[0].source: line 3: "), message
    return message


@pytest.mark.parametrize(
    "source, expected",
    [
        ("/etc/shadow", "must be a path relative to"),
        ("/etc/hostname", "must be a path relative to"),
        ("../../../../../../etc/hostname", "leads out of"),
        ("sub/../../outside.txt", "leads out of"),
        ("/proc/self/environ", "must be a path relative to"),
        ("missing.txt", "No such file or directory"),
        ("", "must be a path relative to"),
    ],
)
def test_sources_outside_the_folder_are_refused(tmp_path, source, expected):
    (tmp_path / "outside.txt").write_text("host secret\n")
    assert expected in source_error(tmp_path / "cfg", source)


def test_symlinks_are_followed_only_inside_the_folder(tmp_path):
    (tmp_path / "outside.txt").write_text("host secret\n")
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "shadow").symlink_to("/etc/hostname")
    (folder / "up").symlink_to(tmp_path / "outside.txt")
    (folder / "proc").symlink_to("/proc/self")
    (folder / "real.txt").write_text("inside\n")
    (folder / "alias.txt").symlink_to("real.txt")
    assert "leads out of" in source_error(folder, "shadow")
    assert "leads out of" in source_error(folder, "up")
    assert "leads out of" in source_error(folder, "proc/environ")
    loaded = load_config(config_with_source(folder, "alias.txt"), {})
    assert loaded.sources("alias.txt") == b"inside\n"


def test_only_regular_files(tmp_path):
    folder = tmp_path / "cfg"
    (folder / "dir").mkdir(parents=True)
    os.mkfifo(folder / "fifo")  # opened, it would block validation for ever
    (folder / "null").symlink_to("/dev/null")  # outside anyway, and a device
    assert "is a folder, not a file" in source_error(folder, "dir")
    assert "is not a regular file" in source_error(folder, "fifo")
    assert "leads out of" in source_error(folder, "null")


def test_size_is_capped(tmp_path, monkeypatch):
    from vmtailor import configfile

    monkeypatch.setattr(configfile, "MAX_SOURCE_BYTES", 1024)
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "big").write_bytes(b"x" * 2048)
    assert "is larger than" in source_error(folder, "big")


def test_sources_dir_replaces_the_config_folder(tmp_path):
    cfg = config_with_source(tmp_path / "cfg", "motd")
    (tmp_path / "cfg/motd").write_text("beside the config\n")
    (tmp_path / "files").mkdir()
    (tmp_path / "files/motd").write_text("from --sources\n")
    assert load_config(cfg, {}).sources("motd") == b"beside the config\n"
    loaded = load_config(cfg, {}, str(tmp_path / "files"))
    assert loaded.sources("motd") == b"from --sources\n"
    with pytest.raises(ConfigError, match="leads out of"):
        load_config(
            config_with_source(tmp_path / "cfg2", "../cfg/motd"), {}, str(tmp_path / "files")
        )
    ok = vmtailor("validate", cfg, "--sources", str(tmp_path / "files"))
    assert ok.returncode == 0, ok.stderr
    bad = vmtailor("validate", cfg, "--sources", str(tmp_path / "nope"))
    assert bad.returncode == 2 and "not a folder" in bad.stderr


def test_apply_with_a_host_file_as_source_touches_nothing(tmp_path):
    guest = small_guest(tmp_path / "guest")
    before = tree_digest(guest)
    cfg = config_with_source(tmp_path / "cfg", "../../../../../../../etc/hostname")
    result = vmtailor("apply", cfg, "--root", str(guest))
    assert result.returncode == 2
    assert "error at files[0].source: line 3: source" in result.stderr
    assert result.stderr.count("\n") == 1
    assert tree_digest(guest) == before


def test_batch_inventory_checks_each_clone_s_rendered_source(tmp_path):
    (tmp_path / "ok.txt").write_text("fine\n")
    (tmp_path / "c.yaml").write_text("files:\n  - {path: /etc/x, source: '{{ src }}'}\n")
    (tmp_path / "inv.yaml").write_text(
        "config: c.yaml\nclones:\n"
        "  - {name: a, image: a.img, vars: {src: ok.txt}}\n"
        "  - {name: b, image: b.img, vars: {src: /etc/shadow}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_inventory(str(tmp_path / "inv.yaml"))
    assert "error at files[0].source: line 2: clone b: source '/etc/shadow' must be" in str(
        info.value
    )
