#!/usr/bin/env python3
"""Benchmark of offline batch customization, both sides measured in one run on this machine:

20 qcow2 overlay clones of one Debian master (the debootstrap fixture of scripts/guest_disks),
each given the same four things: a hostname, a static IPv4 address on one NIC, an ssh key
for root and a first-boot command —
  (a) the baseline: a loop of `virt-customize --no-network` over pre-made overlays, the
      static address written as an ifupdown file with `--write`;
  (b) `vmtailor batch` over an inventory naming the master, which makes the overlays itself.
Reported: wall time of each, the ratio (target: vmtailor >= 15x faster), and the peak memory
of each (the sum of the resident sets of the whole process tree, sampled every 0.2 s).
Both sides are then read back, so a fast wrong answer does not count.

Usage: scripts/bench_batch.py [--clones N] [--jobs N]"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import guest_disks  # noqa: E402

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bench@example.com"
FIRSTBOOT = "echo registered > /root/registered"
CONFIG = f"""\
hostname: "{{{{ hostname }}}}"
network:
  version: 2
  ethernets:
    lan0:
      match: {{macaddress: "{{{{ mac }}}}"}}
      addresses: ["{{{{ ip }}}}/24"]
      routes: [{{to: default, via: 192.0.2.1}}]
users:
  - {{name: root, ssh_authorized_keys: ["{KEY}"]}}
firstboot:
  - {{name: register, script: "{FIRSTBOOT}"}}
"""
INTERFACES = """\
auto eth0
iface eth0 inet static
    address {ip}/24
    gateway 192.0.2.1
"""
ENV = {**os.environ, "LIBGUESTFS_BACKEND": "direct",
       "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg", "LC_ALL": "C.UTF-8"}  # fmt: skip


def clone_vars(i: int) -> dict:
    return {
        "hostname": f"clone{i:02d}",
        "ip": f"192.0.2.{10 + i}",
        "mac": f"52:54:00:be:00:{i:02x}",
    }


class PeakMemory:
    """The largest sum of VmRSS over a process and all its descendants, sampled."""

    def __init__(self, pid: int):
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += children.get(pid, [])
        return out

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, sum(self._rss(p) for p in self._tree()))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def timed(argv: list[str], **kwargs) -> tuple[float, int, subprocess.CompletedProcess]:
    """Run `argv`; (seconds, peak bytes, completed process). Fails loudly on a non-zero exit."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)  # fmt: skip
    memory = PeakMemory(proc.pid)
    out, err = proc.communicate()
    peak = memory.stop()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
    return seconds, peak, subprocess.CompletedProcess(argv, 0, out, err)


def overlay(master: Path, clone: Path) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(master), "-F", "raw",
                    str(clone)], check=True)  # fmt: skip


def baseline(master: Path, work: Path, n: int) -> tuple[float, int]:
    """A loop of virt-customize, one clone after another, each its own appliance."""
    key = work / "key.pub"
    key.write_text(KEY + "\n")
    total, peak = 0.0, 0
    for i in range(1, n + 1):
        v = clone_vars(i)
        image = work / f"vc-{v['hostname']}.qcow2"
        overlay(master, image)
        argv = ["virt-customize", "-q", "--no-network", "-a", str(image),
                "--hostname", v["hostname"],
                "--ssh-inject", f"root:file:{key}",
                "--write", "/etc/network/interfaces.d/90-static:" + INTERFACES.format(**v),
                "--firstboot-command", FIRSTBOOT]  # fmt: skip
        seconds, rss, _ = timed(argv)
        total, peak = total + seconds, max(peak, rss)
        print(f"  virt-customize {v['hostname']}: {seconds:.1f} s", flush=True)
    return total, peak


def vmtailor_batch(master: Path, work: Path, n: int, jobs: int) -> tuple[float, int, dict]:
    (work / "bench.yaml").write_text(CONFIG)
    clones = [{"name": v["hostname"], "image": f"vt-{v['hostname']}.qcow2", "vars": v}
              for v in map(clone_vars, range(1, n + 1))]  # fmt: skip
    inventory = {"config": "bench.yaml", "master": str(master), "clones": clones}
    (work / "inventory.json").write_text(json.dumps(inventory))  # JSON is YAML
    argv = [str(Path(sys.executable).with_name("vmtailor")), "batch", "--json",
            "--jobs", str(jobs), str(work / "inventory.json")]  # fmt: skip
    seconds, peak, proc = timed(argv)
    return seconds, peak, json.loads(proc.stdout)


def check(work: Path, n: int) -> None:
    """Read both sides' clones back: hostname, key and address are where they belong."""
    for i in sorted({1, n}):
        v = clone_vars(i)
        for side, files in (("vc", ["/etc/hostname", "/root/.ssh/authorized_keys",
                                    "/etc/network/interfaces.d/90-static"]),
                            ("vt", ["/etc/hostname", "/root/.ssh/authorized_keys",
                                    "/etc/network/interfaces.d/90-vmtailor"])):  # fmt: skip
            image = work / f"{side}-{v['hostname']}.qcow2"
            text = subprocess.run(["virt-cat", "-a", str(image), *files], env=ENV, check=True,
                                  capture_output=True, text=True).stdout  # fmt: skip
            for want in (v["hostname"], KEY, v["ip"]):
                if want not in text:
                    raise SystemExit(f"{image.name}: {want!r} is not in {files}:\n{text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clones", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="vmtailor batch --jobs (default: one per core)")  # fmt: skip
    args = parser.parse_args()
    for tool in ("virt-customize", "virt-cat", "qemu-img"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: `make setup` installs it")
    master = guest_disks.image("debian")
    print(f"master: {master} ({master.stat().st_size >> 20} MiB raw)", flush=True)
    with tempfile.TemporaryDirectory(prefix="vmtailor-bench-batch-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        print(f"(b) vmtailor batch, {args.clones} clones, --jobs {args.jobs}", flush=True)
        vt_s, vt_peak, result = vmtailor_batch(master, work, args.clones, args.jobs)
        launches = ", ".join(f"{a['launch_seconds']} s" for a in result["appliances"])
        print(f"  {vt_s:.1f} s; appliance launches {launches}; "
              f"{result['failed']} failed", flush=True)  # fmt: skip
        print(f"(a) virt-customize loop, {args.clones} clones", flush=True)
        vc_s, vc_peak = baseline(master, work, args.clones)
        check(work, args.clones)
    print(f"\n{'':16}{'wall':>9}{'per clone':>11}{'peak RSS':>11}")
    for name, s, peak in (("virt-customize", vc_s, vc_peak), ("vmtailor batch", vt_s, vt_peak)):
        print(f"{name:16}{s:8.1f}s{s / args.clones:10.2f}s{peak / 2**20:8.0f} MiB")
    print(
        f"vmtailor batch is {vc_s / vt_s:.1f}x faster than the virt-customize loop "
        f"(target >= 15x) on {args.clones} clones, --jobs {args.jobs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
