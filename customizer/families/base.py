"""What every distribution family shares; a family overrides only what differs."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ..detect import Guest
    from ..plan import Plan


class Family:
    name: ClassVar[str] = ""
    # os-release IDs this family claims (ID first, then ID_LIKE entries are matched)
    ids: ClassVar[tuple[str, ...]] = ()
    # group whose members may use sudo out of the box
    admin_group: ClassVar[str] = "wheel"
    # address /etc/hosts maps the machine's own name to
    hosts_address: ClassVar[str] = "127.0.1.1"
    # the rc.local the init system runs (a symlink may point at it)
    rc_local: ClassVar[str] = "/etc/rc.local"
    # legacy release files that identify the family when there is no os-release
    release_files: ClassVar[tuple[str, ...]] = ()

    def current_hostname(self, plan: Plan) -> str | None:
        """The template's own host name, as this family stores it."""
        return (plan.read_text("/etc/hostname") or "").strip() or None

    def hostname_files(self, guest: Guest, plan: Plan, short: str, fqdn: str) -> None:
        """Write the host name where this family keeps it, beyond /etc/hostname."""

    def parse_release_file(self, text: str) -> tuple[str, str] | None:
        """(os id, version) from a legacy release file's text; None when the file, shared
        by several distributions (lsb-release), names another one."""
        import re

        match = re.search(r"(\d+(?:\.\d+)*)", text)
        return self.ids[0], match.group(1) if match else ""

    def release_pretty_name(self, text: str) -> str:
        """The name a legacy release file gives the release, for `inspect`."""
        lines = text.strip().splitlines()
        return lines[0] if lines else ""
