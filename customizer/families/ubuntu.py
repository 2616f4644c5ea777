from .debian import Debian


class Ubuntu(Debian):
    name = "ubuntu"
    ids = ("ubuntu", "linuxmint", "pop")
    # Before os-release (12.04 and older) Ubuntu says what it is in lsb-release only; its
    # debian_version names the Debian release it branched from ("wheezy/sid").
    release_files = ("/etc/lsb-release",)

    def parse_release_file(self, text):
        info = _lsb_release(text)
        os_id = info.get("DISTRIB_ID", "").lower()
        if os_id not in self.ids:
            return None  # another distribution's lsb-release: the next file decides
        return os_id, info.get("DISTRIB_RELEASE", "")

    def release_pretty_name(self, text):
        return _lsb_release(text).get("DISTRIB_DESCRIPTION") or super().release_pretty_name(text)


def _lsb_release(text: str) -> dict[str, str]:
    # here, not at the top: detect imports the families
    from ..detect import parse_os_release

    return parse_os_release(text)
