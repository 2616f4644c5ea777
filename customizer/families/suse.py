import re

from .base import Family


class SUSE(Family):
    name = "suse"
    ids = ("sles", "sled", "opensuse", "opensuse-leap", "opensuse-tumbleweed", "suse")
    hosts_address = "127.0.0.2"
    # SysV-init SUSE (SLES 11) runs /etc/init.d/after.local, not rc.local, at the end of
    # boot; systemd releases use the first-boot unit instead.
    rc_local = "/etc/init.d/after.local"
    release_files = ("/etc/SuSE-release",)

    def current_hostname(self, plan):
        return super().current_hostname(plan) or (
            (plan.read_text("/etc/HOSTNAME") or "").strip() or None
        )

    def hostname_files(self, guest, plan, short, fqdn):
        # SUSE releases before systemd (SLES 11) read /etc/HOSTNAME (the FQDN) only, even
        # when a template lacks it; newer ones keep it as a symlink to /etc/hostname,
        # which plan.write follows.
        before_systemd = guest.init != "systemd"
        if before_systemd or plan.exists("/etc/HOSTNAME") or plan.root.lexists("/etc/HOSTNAME"):
            plan.write("/etc/HOSTNAME", fqdn + "\n")

    def parse_release_file(self, text):
        os_id = "opensuse" if "opensuse" in text.lower() else "sles"
        version = re.search(r"^VERSION\s*=\s*(\S+)", text, re.M)
        patch = re.search(r"^PATCHLEVEL\s*=\s*(\d+)", text, re.M)
        ver = version.group(1) if version else ""
        if patch and patch.group(1) != "0":
            ver += "." + patch.group(1)
        return os_id, ver
