"""Shared test helpers: fixture guest roots, tree digests, and running the real CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))


def _hypothesis_profiles() -> None:
    """Fuzz tests (hypothesis) run a bounded, reproducible number of examples in `make
    test` ("ci"); HYPOTHESIS_PROFILE=deep runs many more, with fresh randomness."""
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci",
        max_examples=100,
        deadline=4000,  # ms per example: a hostile config must fail fast, not hang
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.register_profile("deep", parent=settings.get_profile("ci"), max_examples=5000,
                              derandomize=False)  # fmt: skip
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_hypothesis_profiles()


def tree_digest(top: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Everything about a tree that vmtailor could change: kind, content hash, mode, owner,
    link target, SELinux label — keyed by path relative to `top`."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            path = Path(dirpath, name)
            rel = str(path.relative_to(top))
            if rel.startswith(skip):
                continue
            st = path.lstat()
            try:
                label = os.getxattr(path, "security.selinux", follow_symlinks=False)
            except OSError:
                label = None
            if path.is_symlink():
                detail = ("link", os.readlink(path))
            elif path.is_file():
                detail = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                detail = ("dir", None)
            out[rel] = (*detail, st.st_mode, st.st_uid, st.st_gid, label)
    return out


def small_guest(top: Path) -> Path:
    """A minimal Debian guest tree at `top`: enough for detection and owner lookups."""
    (top / "etc").mkdir(parents=True)
    (top / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n')
    (top / "etc/hostname").write_text("template\n")
    (top / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (top / "etc/group").write_text("root:x:0:\n")
    return top


@pytest.fixture
def make_root(tmp_path):
    """make_root("debian-12") -> Path of a fresh fixture guest root (scripts/fixture_roots)."""
    import fixture_roots

    def make(name: str) -> Path:
        dest = tmp_path / name
        dest.mkdir()
        return fixture_roots.build(name, dest)

    return make


def assert_same_bytes(a: str | os.PathLike, b: str | os.PathLike) -> None:
    """Two files hold the same bytes; if not, say in one line where they part (a bare
    `==` on megabytes prints a diff of screens of NUL bytes and hides which test it was)."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        da, db = fa.read(), fb.read()
    if da == db:
        return
    at = next((i for i, (x, y) in enumerate(zip(da, db, strict=False)) if x != y),
              min(len(da), len(db)))  # fmt: skip
    sha = [hashlib.sha256(d).hexdigest()[:12] for d in (da, db)]
    pytest.fail(
        f"{a} ({len(da)} bytes, sha256 {sha[0]}) and {b} ({len(db)} bytes, sha256 {sha[1]}) "
        f"differ from offset {at}: {da[at : at + 16].hex()} vs {db[at : at + 16].hex()}",
        pytrace=False,
    )


def vmtailor(*args: str, input: str | None = None, check: bool = False):
    """Run the installed `vmtailor` command line for real."""
    return subprocess.run(
        [sys.executable, "-m", "vmtailor", *args],
        capture_output=True,
        text=True,
        input=input,
        check=check,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )


def required(missing: bool, what: str):
    """Mark a test that needs a host tool `make setup` installs: a missing tool fails the
    test (it is never silently skipped)."""
    import functools

    def mark(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if missing:
                pytest.fail(f"{what} is missing: `make setup` installs it")
            return fn(*args, **kwargs)

        return wrapper

    return mark
