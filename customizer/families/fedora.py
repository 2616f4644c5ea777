from .rhel import RHEL


class Fedora(RHEL):
    name = "fedora"
    ids = ("fedora",)
    release_files = ("/etc/fedora-release",)
    etc_hostname_since = 18

    def hostname_files(self, guest, plan, short, fqdn):
        # Fedora 18 moved the name to /etc/hostname and reads nothing from
        # /etc/sysconfig/network since; before, HOSTNAME= there is the only place.
        if self.reads_sysconfig_hostname(guest.version):
            super().hostname_files(guest, plan, short, fqdn)

    def parse_release_file(self, text):
        return "fedora", text.split("release", 1)[-1].split()[0] if "release" in text else ""
