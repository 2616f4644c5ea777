from .rhel import RHEL


class Fedora(RHEL):
    name = "fedora"
    ids = ("fedora",)
    # a Fedora that lost fedora-release (or a phony one) still says so in redhat-release,
    # which it reads before RHEL does
    release_files = ("/etc/fedora-release", "/etc/redhat-release")
    etc_hostname_since = 18

    def hostname_files(self, guest, plan, short, fqdn):
        # Fedora 18 moved the name to /etc/hostname and reads nothing from
        # /etc/sysconfig/network since; before, HOSTNAME= there is the only place.
        if self.reads_sysconfig_hostname(guest.version):
            super().hostname_files(guest, plan, short, fqdn)

    def parse_release_file(self, text):
        if "fedora" not in text.lower():
            return None  # an EL redhat-release: RHEL's
        return "fedora", text.split("release", 1)[-1].split()[0] if "release" in text else ""
