"""What the guest is, read from the guest root only — never from the host running us."""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass, field

from .errors import VmtailorError
from .families import LEGACY_RELEASE_FILES, OS_RELEASE_FILES, Family, by_os_id, supported_ids
from .root import Root, RootError


class DetectError(VmtailorError):
    """The guest is not one vmtailor can customize (or not a Linux guest at all)."""


@dataclass
class Guest:
    """What detect() found out about the guest: family, release, init, network stacks."""

    family: Family
    os_id: str
    version: str
    pretty_name: str
    init: str  # systemd, sysvinit, upstart, openrc or unknown
    selinux: str | None  # enforcing, permissive, disabled, or None when not installed
    network: list[dict] = field(default_factory=list)  # [{stack, enabled, evidence}]
    ssh_regenerates_host_keys: bool = False
    evidence: dict[str, str] = field(default_factory=dict)

    def selinux_active(self) -> bool:
        return self.selinux in ("enforcing", "permissive")

    def to_dict(self) -> dict:
        return {
            "family": self.family.name,
            "id": self.os_id,
            "version": self.version,
            "pretty_name": self.pretty_name,
            "init": self.init,
            "selinux": self.selinux,
            "network": self.network,
            "ssh_regenerates_host_keys": self.ssh_regenerates_host_keys,
            "evidence": self.evidence,
        }


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        out[key.strip()] = parts[0] if parts else ""
    return out


def _read(root: Root, path: str) -> str | None:
    try:
        return root.read_text_or(path)
    except RootError:
        return None


def detect(root: Root) -> Guest:
    """Detect the guest's OS, init system, SELinux mode and network stacks."""
    evidence: dict[str, str] = {}
    family, os_id, version, pretty = _detect_os(root, evidence)
    guest = Guest(
        family=family,
        os_id=os_id,
        version=version,
        pretty_name=pretty,
        init=_detect_init(root, evidence),
        selinux=_detect_selinux(root),
        evidence=evidence,
    )
    guest.network = detect_network_stacks(root, guest)
    guest.ssh_regenerates_host_keys = _ssh_regenerates_host_keys(root, evidence)
    return guest


def _detect_os(root: Root, evidence: dict[str, str]) -> tuple[Family, str, str, str]:
    for path in OS_RELEASE_FILES:
        text = _read(root, path)
        if text is None:
            continue
        info = parse_os_release(text)
        os_id = info.get("ID", "linux").lower()
        version = info.get("VERSION_ID", "")
        pretty = info.get("PRETTY_NAME", os_id)
        for candidate in [os_id, *info.get("ID_LIKE", "").lower().split()]:
            family = by_os_id(candidate)
            if family is not None:
                how = "ID" if candidate == os_id else "ID_LIKE"
                evidence["os"] = f"{path}: {how}={candidate}"
                return family, os_id, version, pretty
        raise DetectError(
            f"unsupported guest: {path} says ID={os_id}"
            + (f" ID_LIKE={info['ID_LIKE']}" if info.get("ID_LIKE") else ""),
            hint="supported: " + ", ".join(supported_ids()),
        )
    for path, cls in LEGACY_RELEASE_FILES:
        text = _read(root, path)
        if text is None:
            continue
        if cls is None:
            first = text.strip().splitlines()[0][:80] if text.strip() else ""
            raise DetectError(
                f"unsupported guest: no os-release, and {path} says {first!r}",
                hint="supported: " + ", ".join(supported_ids()),
            )
        family = cls()
        parsed = family.parse_release_file(text)
        if parsed is None:
            continue
        os_id, version = parsed
        evidence["os"] = f"{path} (no os-release)"
        return family, os_id, version, family.release_pretty_name(text) or os_id
    raise DetectError(
        "no Linux guest found: the root has no /etc/os-release nor any known release file",
        hint="is this the guest's root filesystem?",
    )


def _detect_init(root: Root, evidence: dict[str, str]) -> str:
    try:
        init = root.resolve("/sbin/init")
    except RootError:
        init = ""
    has_init = bool(init) and root.is_file(init)
    if has_init and posixpath.basename(init) == "systemd":
        evidence["init"] = f"/sbin/init -> {init}"
        return "systemd"
    if not has_init:
        for path in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd"):
            if root.is_file(path):
                evidence["init"] = f"no /sbin/init; {path} present"
                return "systemd"
    for path in ("/sbin/openrc", "/usr/sbin/openrc", "/sbin/openrc-run"):
        if root.is_file(path):
            evidence["init"] = f"{path} present"
            return "openrc"
    if root.is_file("/sbin/initctl") and root.is_dir("/etc/init"):
        evidence["init"] = "/sbin/initctl and /etc/init present (upstart)"
        return "upstart"
    if has_init and root.is_file("/etc/inittab"):
        evidence["init"] = "/sbin/init with /etc/inittab"
        return "sysvinit"
    evidence["init"] = "no systemd, OpenRC, upstart or sysvinit found"
    return "unknown"


def _detect_selinux(root: Root) -> str | None:
    text = _read(root, "/etc/selinux/config")
    if text is None:
        return None
    return parse_os_release(text).get("SELINUX", "disabled").lower()


SYSTEMD_UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def systemd_unit_exists(root: Root, unit: str) -> bool:
    return any(root.lexists(f"{d}/{unit}") for d in SYSTEMD_UNIT_DIRS)


def systemd_enabled(root: Root, unit: str) -> bool:
    """Enabled = linked from some target's .wants/ in /etc (or preset in /usr)."""
    for base in ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"):
        try:
            names = root.listdir(base) if root.is_dir(base) else []
        except RootError:
            continue
        for name in names:
            if name.endswith((".wants", ".requires")) and root.lexists(f"{base}/{name}/{unit}"):
                return True
    return False


def openrc_enabled(root: Root, service: str) -> bool:
    for level in ("boot", "default", "sysinit"):
        if root.lexists(f"/etc/runlevels/{level}/{service}"):
            return True
    return False


def _sysv_enabled(root: Root, script: str) -> bool:
    for d in ("/etc/rc3.d", "/etc/rc.d/rc3.d", "/etc/rc2.d", "/etc/rcS.d", "/etc/init.d/rc3.d"):
        try:
            names = root.listdir(d) if root.is_dir(d) else []
        except RootError:
            continue
        if any(n.startswith("S") and n.lstrip("S0123456789") == script for n in names):
            return True
    return False


def detect_network_stacks(root: Root, guest: Guest) -> list[dict]:
    """Installed network stacks, whether each is enabled, and why we think so — from the
    guest's own files (binaries, enabled units, init links), never the host's."""
    # here, not at the top: the initrd imports detect at start and the network package
    # only for a config with a network
    from .network.stacks import STACKS

    found = []
    for stack in STACKS:
        if "" not in stack.families and guest.family.name not in stack.families:
            continue
        present = [m for m in stack.markers if root.lexists(m)]
        if not present:
            continue
        evidence = f"{present[0]} present"
        if stack.name == "netplan":
            enabled = root.is_dir("/etc/netplan") and bool(root.listdir("/etc/netplan"))
            evidence += ", /etc/netplan has config" if enabled else ", /etc/netplan empty"
        elif guest.init == "openrc":
            enabled = openrc_enabled(root, stack.sysv or stack.name) or not stack.sysv
            evidence += ", in an OpenRC runlevel" if enabled else ""
        else:
            by_unit = [u for u in stack.units if systemd_enabled(root, u)]
            by_sysv = stack.sysv is not None and _sysv_enabled(root, stack.sysv)
            if guest.init == "systemd":
                enabled = bool(by_unit) or by_sysv
            else:
                enabled = by_sysv or not stack.sysv or guest.init in ("upstart", "unknown")
            if by_unit:
                evidence += f", {by_unit[0]} enabled"
            elif by_sysv:
                evidence += f", {stack.sysv} linked in rc3.d"
        found.append({"stack": stack.name, "enabled": enabled, "evidence": evidence})
    return found


def _ssh_regenerates_host_keys(root: Root, evidence: dict[str, str]) -> bool:
    """True when the guest makes missing ssh host keys itself at boot."""
    markers = [
        "sshd-keygen@.service",  # RHEL 8+, Fedora
        "sshd-keygen.service",  # CentOS 7
        "sshdgenkeys.service",  # Arch
    ]
    for unit in markers:
        if systemd_unit_exists(root, unit):
            evidence["ssh"] = f"{unit} regenerates host keys"
            return True
    for path in ("/usr/sbin/sshd-gen-keys-start", "/usr/libexec/openssh/sshd-keygen"):
        if root.lexists(path):
            evidence["ssh"] = f"{path} regenerates host keys"
            return True
    for path in ("/etc/init.d/sshd", "/etc/rc.d/init.d/sshd"):
        text = _read(root, path) or ""
        if "ssh-keygen" in text or "sshd-keygen" in text:
            evidence["ssh"] = f"{path} generates missing host keys"
            return True
    return False
