#!/usr/bin/env python3
"""mypy over vmtailor, as `make lint` runs it: strict on the public API (vmtailor.api),
the configured lenient level (pyproject.toml [tool.mypy]) on the rest.

mypy cannot follow setuptools' package-dir mapping (cli/ is the `vmtailor` package,
customizer/ is `vmtailor.customizer`, …), nor the editable install's import hook; so it
checks a tree of symlinks laid out as the import names are, built from pyproject.toml's
own mapping so that a new folder is checked without editing this script."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TREE = REPO / "build" / "typecheck"
STRICT = ["vmtailor.api"]


def build_tree() -> Path:
    """build/typecheck/vmtailor/… : symlinks to the folders and files of each package."""
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    top = TREE / "vmtailor"
    if TREE.exists():
        for link in sorted(TREE.rglob("*"), reverse=True):
            if link.is_symlink():
                link.unlink()
    top.mkdir(parents=True, exist_ok=True)
    # the top package's folder holds its subpackages' links: link its entries one by one
    for entry in (REPO / mapping["vmtailor"]).iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
    for package, folder in mapping.items():
        if package != "vmtailor":
            (TREE / package.replace(".", "/")).symlink_to(REPO / folder)
    return TREE


def main() -> int:
    tree = build_tree()
    mypy = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
            "--cache-dir", str(REPO / "build" / "mypy-cache")]  # fmt: skip
    runs = [
        # only the API's own errors: the modules it imports are held to the lenient level
        [*mypy, "--strict", "--follow-imports=silent", *(f"-m{m}" for m in STRICT)],
        [*mypy, "-p", "vmtailor"],
    ]
    for argv in runs:
        status = subprocess.run(argv, cwd=tree, env={**os.environ, "MYPYPATH": ""}).returncode
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
