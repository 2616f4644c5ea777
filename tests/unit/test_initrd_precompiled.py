"""vmtailor.initrd.precompiled: the dataclass methods the build compiles for the initrd.
Every dataclass the stages import takes its methods from the table, and a class made
from the table behaves as one dataclasses compiles itself."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

# A few of the initrd's dataclasses, used every way dataclasses makes methods for:
# __init__ with defaults and factories, __repr__, __eq__, a frozen one's __setattr__
# and __hash__.
USE = """
import dataclasses
from vmtailor.customizer.config import parse_rendered
from vmtailor.customizer.storage.devices import BlockDevice
from vmtailor.initrd.stages import State
a = parse_rendered({"hostname": "web01", "users": [{"name": "ops"}]})
b = parse_rendered({"hostname": "web01", "users": [{"name": "ops"}]})
d = BlockDevice("/dev/vda4", fstype="ext4", uuid="1234")
try:
    d.uuid = "x"
except dataclasses.FrozenInstanceError as exc:
    frozen = type(exc).__name__
print(a == b, a != parse_rendered({}), repr(a.users[0]), repr(d), hash(d) == hash(
    BlockDevice("/dev/vda4", fstype="ext4", uuid="1234")), frozen, State().to_dict())
"""


def _python(code: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_every_dataclass_the_stages_import_comes_from_the_table(tmp_path):
    table = str(tmp_path / "table")
    recorded = _python(
        "import sys; from vmtailor.initrd.precompiled import record; "
        "print(record(sys.argv[1], ['vmtailor.initrd.main']))",
        table,
    )
    check = f"""
import dataclasses, marshal, sys
from vmtailor.initrd.precompiled import install
print(install(sys.argv[1]))
with open(sys.argv[1], "rb") as f:
    table = marshal.load(f)
table_exec, misses = dataclasses.exec, []
def counting(source, globals=None, locals=None, /):
    if source not in table:
        misses.append(source)
    return table_exec(source, globals, locals)
dataclasses.exec = counting
import vmtailor.initrd.main
print(len(misses))
{USE}
"""
    installed, missed, used = _python(check, table).splitlines()
    assert int(installed) == int(recorded) > 100
    assert missed == "0"  # no method of theirs is compiled at import
    assert used == _python(USE).strip()  # the same behaviour as dataclasses' own


def test_no_table_or_a_bad_one_changes_nothing(tmp_path):
    (tmp_path / "bad").write_bytes(b"not marshal data")
    code = (
        "import sys, dataclasses; from vmtailor.initrd.precompiled import install; "
        "print(install(sys.argv[1]), install(sys.argv[2]), hasattr(dataclasses, 'exec'))"
    )
    assert _python(code, str(tmp_path / "missing"), str(tmp_path / "bad")).split() == [
        "0",
        "0",
        "False",
    ]


def test_a_class_the_table_does_not_hold_is_compiled_as_dataclasses_would(tmp_path):
    # not the table's module's `from __future__ import annotations`: real annotations
    code = """
import dataclasses, sys
from vmtailor.initrd.precompiled import install, record
if sys.argv[1] != "-":
    record(sys.argv[1], [])
    install(sys.argv[1])
@dataclasses.dataclass(frozen=True)
class New:
    x: int
    y: str = "a"
print(New.__init__.__annotations__, New(1) == New(1), repr(New(2, "b")))
"""
    assert _python(code, str(tmp_path / "empty")) == _python(code, "-")


def test_a_table_that_is_not_a_dict_changes_nothing(tmp_path):
    import marshal

    (tmp_path / "list").write_bytes(marshal.dumps(["not", "a", "table"]))
    code = (
        "import sys, dataclasses; from vmtailor.initrd.precompiled import install; "
        "print(install(sys.argv[1]), hasattr(dataclasses, 'exec'))"
    )
    assert _python(code, str(tmp_path / "list")).split() == ["0", "False"]
