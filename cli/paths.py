"""Checks on the paths a command line names, made before any work starts: a build that
takes minutes must not end with "No such file or directory" for its output."""

from __future__ import annotations

import os

from .customizer.errors import UsageError


def output_file(path: str, option: str = "--out") -> str:
    """`path` can be created: its folder exists, and it is not itself a folder."""
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise UsageError(f"{option} {path}: the folder {folder} {what}")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path} is a folder; give a file name in it")
    return path
