"""The README's "Python API" section, run as it stands: its `# NAME` YAML blocks are
written to files, its Python blocks run in order in one namespace, and the text block
after a Python block is what that block must print — so the README cannot drift from
what vmtailor.api does."""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


def api_blocks() -> list[tuple[str, str]]:
    """(language, text) of each fenced block in the README's "## Python API" section."""
    text = README.read_text()
    start = text.index("\n## Python API\n")
    end = text.index("\n## ", start + 1)
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text[start:end])]


def run_readme(cwd: Path, wanted: Callable[[str], bool] = lambda code: True) -> int:
    """Run the section's Python blocks that `wanted` picks, in `cwd`; returns how many ran.
    A block's output must equal the text block that follows it, exactly."""
    blocks = api_blocks()
    namespace: dict[str, object] = {"__name__": "readme"}
    ran = 0
    old = os.getcwd()
    os.chdir(cwd)
    try:
        for i, (lang, body) in enumerate(blocks):
            if lang == "yaml" and body.startswith("# "):
                name = body.splitlines()[0][2:].strip()
                Path(name).write_text(body)
            if lang != "python" or not wanted(body):
                continue
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(body, f"README.md Python API block {i}", "exec"), namespace)
            ran += 1
            if i + 1 < len(blocks) and blocks[i + 1][0] == "text":
                assert out.getvalue() == blocks[i + 1][1], f"README block {i} printed:\n" + (
                    out.getvalue()
                )
    finally:
        os.chdir(old)
    return ran
