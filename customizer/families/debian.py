from .base import Family


class Debian(Family):
    name = "debian"
    ids = ("debian", "raspbian", "devuan")
    admin_group = "sudo"
    release_files = ("/etc/debian_version",)

    def parse_release_file(self, text: str) -> tuple[str, str]:
        return "debian", text.strip().split(".")[0] if text.strip()[:1].isdigit() else ""
