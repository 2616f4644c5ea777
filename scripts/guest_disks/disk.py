"""Host-side plumbing for building and reading fixture disks: commands, loop devices
(with partitions added by partx: `losetup -P` makes none on this kernel), mounts that
are always undone, and GPT layouts by sgdisk."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

VERBOSE = os.environ.get("VMTAILOR_DISKS_VERBOSE") == "1"


def sh(*argv: str, input: bytes | None = None, check: bool = True, **kw) -> str:
    """Run a command; its output comes back as text, its failure as one clear error."""
    argv = [str(a) for a in argv]
    if VERBOSE:
        print("+", shlex.join(argv), file=sys.stderr)
    stdin = kw.pop("stdin", None if input is not None else subprocess.DEVNULL)
    stdout = kw.pop("stdout", subprocess.PIPE)
    proc = subprocess.run(
        argv,
        input=input,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"},
        **kw,
    )
    out = (proc.stdout or b"").decode(errors="replace")
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip() or out
        raise RuntimeError(f"{shlex.join(argv)} failed ({proc.returncode}): {err[-2000:]}")
    return out


@dataclass(frozen=True)
class Loop:
    device: str  # /dev/loop3
    seq: str  # the kernel's diskseq of this attachment: it changes at every attach and detach

    def part(self, number: int) -> str:
        return f"{self.device}p{number}"

    def part_start(self, number: int) -> int:
        """Byte offset of a partition on the disk."""
        name = os.path.basename(self.device)
        with open(f"/sys/class/block/{name}/{name}p{number}/start") as f:
            return int(f.read()) * 512


def _wait_for(paths: Sequence[str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(p) for p in paths):
        if time.monotonic() > deadline:
            raise RuntimeError(f"device nodes did not appear: {', '.join(paths)}")
        time.sleep(0.05)


@contextlib.contextmanager
def attached(
    image: str, *, readonly: bool = False, offset: int = 0, size: int = 0
) -> Iterator[Loop]:
    """A loop device for `image` with its partitions, detached afterwards however the
    block ends."""
    argv = ["losetup", "-f", "--show"]
    if readonly:
        argv.append("-r")
    if offset:
        argv += ["-o", str(offset)]
    if size:
        argv += ["--sizelimit", str(size)]
    device = sh(*argv, image).strip()
    loop = Loop(device, disk_seq(device))
    try:
        if not offset:
            sh("partx", "-a", device, check=False)  # no partition table is fine too
            name = os.path.basename(device)
            parts = [p for p in os.listdir(f"/sys/class/block/{name}") if p.startswith(name + "p")]
            _wait_for([f"/dev/{p}" for p in parts])
        yield loop
    finally:
        detach(loop)


def disk_seq(device: str) -> str:
    """The kernel's sequence number of what `device` holds now, "" if there is no such
    device."""
    try:
        with open(f"/sys/class/block/{os.path.basename(device)}/diskseq") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def detach(loop: Loop) -> None:
    """Detach and wait until the kernel has let go. `losetup -d` of a device that a
    just-unmounted filesystem still holds only marks it to go when last closed, and
    then another process (another test worker) may attach an image to the same
    device at once: so it is asked once only, and the wait ends when the device holds
    nothing or holds something else (a new diskseq)."""
    device = loop.device
    sh("partx", "-d", device, check=False)
    sh("losetup", "-d", device)
    backing = f"/sys/class/block/{os.path.basename(device)}/loop/backing_file"
    for _ in range(100):
        if not os.path.exists(backing) or disk_seq(device) != loop.seq:
            return
        time.sleep(0.1)
    raise RuntimeError(f"cannot detach {device}: something still holds it")


@contextlib.contextmanager
def mounted(
    device: str, at: str | None = None, options: str = "", fstype: str | None = None
) -> Iterator[str]:
    """Mount `device` at `at` (default: a fresh temporary directory, removed afterwards)
    and unmount it when the block ends."""
    where = at or tempfile.mkdtemp(prefix="vmt-disk-")
    argv = ["mount"]
    if fstype:
        argv += ["-t", fstype]
    if options:
        argv += ["-o", options]
    try:
        os.makedirs(where, exist_ok=True)
        sh(*argv, device, where)
        try:
            yield where
        finally:
            sh("umount", where)
    finally:
        if at is None:
            os.rmdir(where)


@contextlib.contextmanager
def chroot_mounts(root: str) -> Iterator[None]:
    """/dev, /proc and /sys inside `root` while chrooted tools (grub, initramfs) run."""
    with contextlib.ExitStack() as stack:
        for fs in ("dev", "proc", "sys"):
            target = os.path.join(root, fs)
            os.makedirs(target, exist_ok=True)
            sh("mount", "--bind", f"/{fs}", target)
            stack.callback(sh, "umount", "-l", target)
        yield


def new_image(path: str, size_mib: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)


def gpt(image: str, disk_guid: str, parts: Sequence[tuple[str, str, str, str]]) -> None:
    """Partition `image`: parts are (size like "+32M" or "0" for the rest, type code,
    name, partition GUID), numbered in order, 1 MiB aligned."""
    argv = ["sgdisk", "-o", "-U", disk_guid]
    for i, (size, code, name, guid) in enumerate(parts, start=1):
        argv += [f"-n{i}:0:{size}", f"-t{i}:{code}", f"-c{i}:{name}", f"-u{i}:{guid}"]
    sh(*argv, image)


def copy_tree(src: str, dst: str, *, exclude: Sequence[str] = ()) -> None:
    """Copy a directory tree keeping owners, modes, links, hard links and xattrs."""
    argv = ["tar", "--numeric-owner", "--xattrs", "-cpf", "-", "-C", src]
    argv += [f"--exclude=./{e}" for e in exclude]
    tar = subprocess.Popen([*argv, "."], stdout=subprocess.PIPE)
    try:
        sh("tar", "--numeric-owner", "--xattrs", "-xpf", "-", "-C", dst, stdin=tar.stdout)
    finally:
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError(f"tar of {src} failed")


def fixed_uuid(*names: str) -> str:
    """A UUID that is the same on every build: cached images are comparable, and tests
    can name the filesystems they expect."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "vmtailor-fixture:" + "/".join(names)))


def write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
