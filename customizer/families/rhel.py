import re
from typing import ClassVar

from .base import Family


class RHEL(Family):
    """Red Hat Enterprise Linux and its rebuilds."""

    name = "rhel"
    ids = ("rhel", "centos", "rocky", "almalinux", "ol", "scientific", "cloudlinux", "eurolinux")
    rc_local = "/etc/rc.d/rc.local"
    release_files = ("/etc/redhat-release", "/etc/centos-release", "/etc/oracle-release")
    # the first release that takes the host name from /etc/hostname rather than from
    # HOSTNAME= in /etc/sysconfig/network
    etc_hostname_since: ClassVar[int] = 7

    def current_hostname(self, plan):
        found = super().current_hostname(plan)
        text = plan.read_text("/etc/sysconfig/network") or ""
        match = re.search(r"^HOSTNAME=[\"']?([^\"'\s]+)", text, re.M)
        return found or (match.group(1) if match else None)

    def hostname_files(self, guest, plan, short, fqdn):
        # EL6 and older take the host name from /etc/sysconfig/network, not /etc/hostname
        # (made if missing); later ones get it there too when the file exists, so that no
        # stale name is left for scripts that still read it.
        path = "/etc/sysconfig/network"
        text = plan.read_text(path)
        if text is None and not self.reads_sysconfig_hostname(guest.version):
            return
        text = text or "NETWORKING=yes\n"
        line = f"HOSTNAME={fqdn}"
        if re.search(r"^HOSTNAME=.*$", text, re.M):
            text = re.sub(r"^HOSTNAME=.*$", line, text, flags=re.M)
        else:
            text = text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
        plan.write(path, text)

    def reads_sysconfig_hostname(self, version: str) -> bool:
        major = version.split(".")[0]
        return major.isdigit() and int(major) < self.etc_hostname_since

    def parse_release_file(self, text):
        ids = {"centos": "centos", "red hat": "rhel", "oracle": "ol", "scientific": "scientific"}
        lowered = text.lower()
        os_id = next((v for k, v in ids.items() if k in lowered), "rhel")
        match = re.search(r"release (\d+(?:\.\d+)*)", text)
        return os_id, match.group(1) if match else ""
