from .rhel import RHEL


class Fedora(RHEL):
    name = "fedora"
    ids = ("fedora",)
    release_files = ("/etc/fedora-release",)

    def hostname_files(self, guest, plan, short, fqdn):
        pass

    def parse_release_file(self, text):
        return "fedora", text.split("release", 1)[-1].split()[0] if "release" in text else ""
