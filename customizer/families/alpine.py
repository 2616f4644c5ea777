from .base import Family


class Alpine(Family):
    name = "alpine"
    ids = ("alpine",)
    hosts_address = "127.0.1.1"
    rc_local = "/etc/local.d/vmtailor-firstboot.start"
    release_files = ("/etc/alpine-release",)

    def parse_release_file(self, text):
        return "alpine", text.strip()
