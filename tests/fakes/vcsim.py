"""Build (once, cached) and start vcsim from scripts/vcsim/main.go.

The binary is cached outside the repo under /var/cache/vmtailor/vcsim (or
$XDG_CACHE_HOME/vmtailor/vcsim when that isn't writable), keyed by main.go and the govmomi
and Go package versions, so only the first run pays the ~20 s offline build. A lock keeps
parallel test workers from building it twice."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

MAIN_GO = Path(__file__).resolve().parents[2] / "scripts" / "vcsim" / "main.go"
GOPATH = "/usr/share/gocode"
PACKAGES = ("golang-github-vmware-govmomi-dev", "golang-go")


def _cache_root() -> Path:
    for base in (Path("/var/cache/vmtailor"), _user_cache()):
        try:
            base.mkdir(parents=True, exist_ok=True)
            if os.access(base, os.W_OK):
                return base / "vcsim"
        except OSError:
            continue
    raise RuntimeError("no writable cache directory for the vcsim build")


def _user_cache() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "vmtailor"


def _versions() -> str:
    out = []
    for package in PACKAGES:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True
        )
        if result.returncode != 0 or not result.stdout:
            raise RuntimeError(
                f"vcsim needs the Debian package {package} (make setup installs it: "
                f"apt-get install {' '.join(PACKAGES)})"
            )
        out.append(f"{package}={result.stdout}")
    return "\n".join(out)


def build() -> Path:
    """The vcsim binary for this main.go and these packages, building it if needed."""
    key = hashlib.sha256(MAIN_GO.read_bytes() + _versions().encode()).hexdigest()[:16]
    root = _cache_root()
    binary = root / key / "vcsim"
    if binary.exists():
        return binary
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():  # another worker built it while we waited
            return binary
        work = root / f".build-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        shutil.copy(MAIN_GO, work / "main.go")
        env = {
            **os.environ,
            "GOPATH": GOPATH,
            "GO111MODULE": "off",
            "GOCACHE": str(root / "gocache"),
            "GOFLAGS": "",
            "CGO_ENABLED": "0",
        }
        result = subprocess.run(
            ["go", "build", "-o", "vcsim", "main.go"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building vcsim failed:\n{result.stderr}")
        binary.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / "vcsim", binary)
        shutil.rmtree(work, ignore_errors=True)
    return binary


@contextlib.contextmanager
def running(vms_per_host: int = 2) -> Iterator[str]:
    """Start vcsim on 127.0.0.1 with a random port; yields its URL with credentials
    (https://user:pass@127.0.0.1:PORT/sdk). It exits when its stdin closes."""
    proc = subprocess.Popen(
        [str(build()), "-l", "127.0.0.1:0", "-vm", str(vms_per_host)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        if not url:
            raise RuntimeError(f"vcsim exited ({proc.wait()}) before serving")
        yield url
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
