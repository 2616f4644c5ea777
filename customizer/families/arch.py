from .base import Family


class Arch(Family):
    name = "arch"
    ids = ("arch", "archarm", "manjaro", "endeavouros")
    release_files = ("/etc/arch-release",)

    def parse_release_file(self, text):
        return "arch", ""
