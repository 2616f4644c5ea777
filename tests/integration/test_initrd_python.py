"""The customizer runs on the initrd's own Python. The builder ships only the stdlib
modules an import scan reaches, minus what builder.python.NOT_SHIPPED leaves out; an
import that only runs on some path (a renderer, an operation) would fail in the guest
alone. So: the built initrd, unpacked, applies the golden config to every family's
fixture root with its own interpreter and stdlib, reading the config as the config stage
does (canonical JSON and files, as `vmtailor media` lays them out) and with the
dataclass methods the build compiled (vmtailor.initrd.precompiled) and the stdlib modules
it defers (vmtailor.initrd.deferred) — the result is the golden one, a second apply
changes nothing, and revert restores the tree. And the stages import none of those."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest

from tests.conftest import tree_digest
from tests.e2e.conftest import build_cached
from tests.unit.test_golden import CONFIG, GOLDEN, SUPPORTED, VARS, _manifest
from vmtailor.builder.media import media_files
from vmtailor.configfile import load_config

GUEST = """
import json, os, sys
from vmtailor.initrd.deferred import defer
defer()
from vmtailor.initrd.precompiled import install
assert install(os.environ["TABLE"]) > 100  # the dataclass methods the build compiled
from vmtailor.customizer import engine
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.initrd.stages.config import load_config, source_reader
media, root, what = sys.argv[1:]
if what == "revert":
    engine.revert(LocalRoot(root))
    print("[]")
else:
    result = engine.apply(load_config(media), LocalRoot(root), sources=source_reader(media))
    print(json.dumps([[c.action, c.path] for c in result.changes]))
    assert "jinja2" not in sys.modules and sys.path[-1].endswith("lib-dynload"), sys.path
"""


@pytest.fixture(scope="module")
def initrd_tree(tmp_path_factory):
    top = tmp_path_factory.mktemp("initrd")
    raw = subprocess.run(["lz4", "-dc", build_cached().initrd], capture_output=True, check=True)
    subprocess.run(["cpio", "-idm", "--quiet"], input=raw.stdout, cwd=top, check=True)
    return top


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    loaded = load_config(str(CONFIG), VARS)
    top = tmp_path_factory.mktemp("media")
    for path, data in media_files(loaded.config, loaded.sources).items():
        (top / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (top / path.lstrip("/")).write_bytes(data)
    return top


# as __main__ starts the stages: which of the deferred modules did their imports load?
IMPORTS = """
import json, os, sys
from vmtailor.initrd.deferred import MODULES, Deferred, defer
assert defer() == list(MODULES)
from vmtailor.initrd.precompiled import install
install(os.environ["TABLE"])
import vmtailor.initrd.main
print(json.dumps([n for n in MODULES if not isinstance(sys.modules[n], Deferred)]))
"""


def _guest(tree, *args: str, code: str = GUEST) -> list:
    # the image's interpreter finds its stdlib beside it; -S: no site-packages either
    proc = subprocess.run(
        [tree / "usr/bin/python3", "-S", "-c", code, *map(str, args)],
        env={
            "PYTHONPATH": str(tree / "usr/lib/vmtailor"),
            "TABLE": str(tree / "usr/lib/vmtailor/dataclasses.marshal"),
            "SOURCE_DATE_EPOCH": "1700000000",
        },
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", SUPPORTED)
def test_golden_config_with_the_initrds_python(initrd_tree, media, make_root, name):
    top = make_root(name)
    pristine = tree_digest(top)
    changes = [
        SimpleNamespace(action=a, path=p) for a, p in _guest(initrd_tree, media, top, "apply")
    ]
    manifest, files = _manifest(top, changes)
    assert manifest == (GOLDEN / name / "MANIFEST").read_text()
    for path, data in files.items():
        assert data == (GOLDEN / name / "files" / path.lstrip("/")).read_bytes(), path
    assert _guest(initrd_tree, media, top, "apply") == []
    _guest(initrd_tree, media, top, "revert")
    assert tree_digest(top) == pristine


def test_the_stages_import_none_of_the_deferred_modules(initrd_tree):
    # inspect comes back with a dataclass that has no docstring (dataclasses writes one
    # from inspect.signature); difflib or ipaddress with a module-level use
    assert _guest(initrd_tree, code=IMPORTS) == []
