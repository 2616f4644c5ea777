"""vmtailor.initrd.deferred: a deferred module is imported at its first use, and then
works as if it had been imported up front — through the name bound before and after."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

CODE = """
import json, sys
from vmtailor.initrd.deferred import Deferred, defer
import json as already
out = {"deferred": defer(("difflib", "inspect", "json"))}
import difflib, inspect  # bound to the stand-ins
out["before"] = [type(sys.modules[n]).__name__ for n in ("difflib", "inspect")]
out["match"] = difflib.get_close_matches("hostnme", ["hostname", "users"])
out["after"] = [isinstance(sys.modules[n], Deferred) for n in ("difflib", "inspect")]
out["same"] = difflib.SequenceMatcher is sys.modules["difflib"].SequenceMatcher
import dataclasses
@dataclasses.dataclass
class NoDoc:
    a: int
out["doc"] = NoDoc.__doc__  # dataclasses asks inspect for it
from inspect import signature
out["signature"] = str(signature(NoDoc))
out["end"] = [isinstance(sys.modules[n], Deferred) for n in ("difflib", "inspect")]
print(json.dumps(out))
"""


def test_a_deferred_module_loads_at_first_use_and_works_as_imported():
    proc = subprocess.run([sys.executable, "-c", CODE], cwd=REPO, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["deferred"] == ["difflib", "inspect"]  # json was imported already
    assert out["before"] == ["Deferred", "Deferred"]
    assert out["match"] == ["hostname"]
    assert out["after"] == [False, True]  # difflib's real module now holds its name
    assert out["end"] == [False, False]
    assert out["same"] is True
    assert out["doc"] == "NoDoc(a: int)"
    assert out["signature"] == "(a: int) -> None"
