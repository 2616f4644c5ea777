"""The guest's account databases (passwd, group, shadow, gshadow), read through a Plan so
that lookups see accounts staged earlier in the same run. Never the host's.

Also what the guest's own useradd/adduser would default to (login.defs, default/useradd,
adduser.conf), so that accounts vmtailor makes look like ones the distro made.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from .errors import PlanError
from .plan import Plan

PASSWD, GROUP, SHADOW, GSHADOW = "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"
LOGIN_DEFS, USERADD_DEFAULTS, ADDUSER_CONF = (
    "/etc/login.defs",
    "/etc/default/useradd",
    "/etc/adduser.conf",
)
# fields per line, for padding short lines before editing them
WIDTH = {PASSWD: 7, GROUP: 4, SHADOW: 9, GSHADOW: 4}


@dataclass
class Entry:
    """One line of a colon-separated database, fields kept exactly as they are."""

    fields: list[str]

    @property
    def name(self) -> str:
        return self.fields[0]

    def line(self) -> str:
        return ":".join(self.fields)


def _lines(text: str) -> list[str]:
    # split on "\n" only: str.splitlines would also split on \f, \x1c, U+2028 … inside a
    # GECOS field and so rewrite lines we never meant to touch
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_db(plan: Plan, path: str) -> list[Entry | str]:
    """Entries of a database; comment, NIS (+/-) and malformed lines are kept as strings."""
    text = plan.read_text(path)
    if text is None:
        return []
    out: list[Entry | str] = []
    for line in _lines(text):
        if not line or line.startswith(("#", "+", "-")) or ":" not in line:
            out.append(line)
        else:
            out.append(Entry(line.split(":")))
    return out


def format_db(entries: list[Entry | str]) -> str:
    return "".join((e.line() if isinstance(e, Entry) else e) + "\n" for e in entries)


def find(entries: list[Entry | str], name: str) -> Entry | None:
    for e in entries:
        if isinstance(e, Entry) and e.name == name:
            return e
    return None


def is_id(text: str) -> bool:
    """A uid/gid field as the guest's libc reads it. str.isdigit() also takes "²" and
    other digits int() chokes on, and the guest's databases are untrusted."""
    return 0 < len(text) <= 10 and text.isascii() and text.isdigit() and int(text) < 2**32 - 1


def lookup_user(plan: Plan, name: str) -> tuple[int, int] | None:
    """(uid, primary gid) of a guest user, by name or number."""
    if is_id(name):
        entry = next(
            (
                e
                for e in read_db(plan, PASSWD)
                if isinstance(e, Entry) and len(e.fields) > 3 and e.fields[2] == name
            ),
            None,
        )
        gid = entry.fields[3] if entry else ""
        return int(name), int(gid) if is_id(gid) else int(name)
    entry = find(read_db(plan, PASSWD), name)
    if entry is None or len(entry.fields) < 4:
        return None
    if not (is_id(entry.fields[2]) and is_id(entry.fields[3])):
        return None
    return int(entry.fields[2]), int(entry.fields[3])


def lookup_group(plan: Plan, name: str) -> int | None:
    if is_id(name):
        return int(name)
    entry = find(read_db(plan, GROUP), name)
    if entry is None or len(entry.fields) < 3 or not is_id(entry.fields[2]):
        return None
    return int(entry.fields[2])


# -- editing ------------------------------------------------------------------------


@dataclass
class Db:
    """One database loaded for editing; `save` writes it back only when an entry changed,
    leaving every line we did not edit byte for byte as it was."""

    path: str
    entries: list[Entry | str]
    present: bool
    _loaded: str = ""

    @classmethod
    def load(cls, plan: Plan, path: str) -> Db:
        present = plan.is_file(path)
        entries = read_db(plan, path) if present else []
        return cls(path, entries, present, format_db(entries))

    def find(self, name: str) -> Entry | None:
        return find(self.entries, name)

    def entry(self, name: str) -> Entry | None:
        """The named entry, padded to the full number of fields so it can be edited."""
        e = self.find(name)
        if e is not None and len(e.fields) < WIDTH[self.path]:
            e.fields += [""] * (WIDTH[self.path] - len(e.fields))
        return e

    def add(self, fields: list[str]) -> Entry:
        # new accounts go before the first NIS "+"/"-" line, as those end the local part
        entry = Entry(fields)
        at = next(
            (i for i, e in enumerate(self.entries) if isinstance(e, str) and e[:1] in ("+", "-")),
            len(self.entries),
        )
        self.entries.insert(at, entry)
        return entry

    def ids(self, index: int = 2) -> set[int]:
        return {
            int(e.fields[index])
            for e in self.entries
            if isinstance(e, Entry) and len(e.fields) > index and is_id(e.fields[index])
        }

    def changed(self) -> bool:
        return format_db(self.entries) != self._loaded

    def save(self, plan: Plan, secret: bool = False) -> None:
        if self.changed():
            # no mode/owner: the file keeps what it has (0640 root:shadow, 0000, …)
            plan.write(self.path, format_db(self.entries), secret=secret)
            self._loaded = format_db(self.entries)


@dataclass
class Accounts:
    """The guest's four account databases, loaded through the plan."""

    passwd: Db
    shadow: Db
    group: Db
    gshadow: Db

    @classmethod
    def load(cls, plan: Plan) -> Accounts:
        dbs = cls(*(Db.load(plan, p) for p in (PASSWD, SHADOW, GROUP, GSHADOW)))
        for db in (dbs.passwd, dbs.group):
            if not db.present:
                raise PlanError(f"the guest has no {db.path}")
        return dbs

    def save(self, plan: Plan) -> None:
        self.group.save(plan)
        self.gshadow.save(plan, secret=True)
        self.shadow.save(plan, secret=True)
        self.passwd.save(plan)

    def add_member(self, group: str, user: str) -> None:
        """Add `user` to a group's member list (group, and gshadow when it has one)."""
        self.shadow_group(group)
        for db in (self.group, self.gshadow):
            entry = db.entry(group)
            if entry is None:
                continue
            members = [m for m in entry.fields[3].split(",") if m]
            if user not in members:
                entry.fields[3] = ",".join([*members, user])

    def add_group(self, name: str, gid: int) -> None:
        self.group.add([name, "x", str(gid), ""])
        stale = self.gshadow.entry(name)  # left behind by a groupdel that missed it
        if stale is not None:
            stale.fields[1:4] = ["!", "", ""]
        self.shadow_group(name)

    def shadow_group(self, name: str) -> None:
        """Give a group its gshadow line when the guest keeps a gshadow without one (as
        grpconv would: no password, the same members)."""
        group = self.group.entry(name)
        if self.gshadow.present and group is not None and self.gshadow.find(name) is None:
            self.gshadow.add([name, "!", "", group.fields[3]])

    def groups_of(self, user: str) -> set[str]:
        """Groups that list `user` as a member."""
        return {
            e.name
            for e in self.group.entries
            if isinstance(e, Entry) and len(e.fields) > 3 and user in e.fields[3].split(",")
        }


# -- what the guest's useradd would do ----------------------------------------------


@dataclass
class Defaults:
    """The guest's defaults for new accounts (login.defs, useradd): ids, ageing, home, shell."""

    uid: tuple[int, int] = (1000, 60000)
    gid: tuple[int, int] = (1000, 60000)
    sys_uid: tuple[int, int] = (100, 999)
    sys_gid: tuple[int, int] = (100, 999)
    pass_min: str = "0"
    pass_max: str = "99999"
    pass_warn: str = "7"
    home_base: str = "/home"
    skel: str = "/etc/skel"
    shell: str | None = None  # None: /bin/bash when the guest has it, else /bin/sh
    # USERGROUPS_ENAB no (SUSE): new users share this group (name or gid) instead of
    # getting a group of their own
    shared_group: str | None = None
    home_mode: int = 0o700
    evidence: dict[str, str] = field(default_factory=dict)


def parse_login_defs(text: str) -> dict[str, str]:
    out = {}
    for line in _lines(text):
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            out[words[0]] = words[1]
    return out


def parse_shell_vars(text: str) -> dict[str, str]:
    """KEY=VALUE lines as in /etc/default/useradd and /etc/adduser.conf."""
    out = {}
    for line in _lines(text):
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value, comments=True)
        except ValueError:
            words = [value.strip().strip("\"'")]
        out[key.strip()] = words[0] if words else ""
    return out


def _int(value: str | None, default: int, base: int = 10) -> int:
    try:
        return int(value, base) if value is not None else default
    except ValueError:
        return default


def load_defaults(plan: Plan) -> Defaults:
    d = Defaults()
    defs = parse_login_defs(plan.read_text(LOGIN_DEFS) or "")
    uid_min = _int(defs.get("UID_MIN"), 1000)
    gid_min = _int(defs.get("GID_MIN"), 1000)
    d.uid = (uid_min, _int(defs.get("UID_MAX"), 60000))
    d.gid = (gid_min, _int(defs.get("GID_MAX"), 60000))
    d.sys_uid = (_int(defs.get("SYS_UID_MIN"), 100), _int(defs.get("SYS_UID_MAX"), uid_min - 1))
    d.sys_gid = (_int(defs.get("SYS_GID_MIN"), 100), _int(defs.get("SYS_GID_MAX"), gid_min - 1))
    d.pass_min = str(_int(defs.get("PASS_MIN_DAYS"), 0))
    d.pass_max = str(_int(defs.get("PASS_MAX_DAYS"), 99999))
    d.pass_warn = str(_int(defs.get("PASS_WARN_AGE"), 7))

    useradd = parse_shell_vars(plan.read_text(USERADD_DEFAULTS) or "")
    d.home_base = useradd.get("HOME") or d.home_base
    d.skel = useradd.get("SKEL") or d.skel
    d.shell = useradd.get("SHELL") or None
    if defs.get("USERGROUPS_ENAB", "").lower() == "no":
        d.shared_group = useradd.get("GROUP") or "100"

    # Debian and Ubuntu make accounts with adduser, not useradd: where its config is
    # present, its login shell (bash, where useradd says sh) and home mode (0700 since
    # Debian 12, where useradd would take 0755 from UMASK 022) are the distro's intent.
    adduser = plan.read_text(ADDUSER_CONF)
    if adduser is not None:
        conf = parse_shell_vars(adduser)
        d.shell = conf.get("DSHELL") or d.shell
        d.skel = conf.get("SKEL") or d.skel
        d.home_mode = _int(conf.get("DIR_MODE"), 0o700, 8) & 0o7777
        d.evidence["home_mode"] = f"{ADDUSER_CONF} DIR_MODE"
    elif "HOME_MODE" in defs:
        d.home_mode = _int(defs["HOME_MODE"], 0o700, 8) & 0o7777
        d.evidence["home_mode"] = f"{LOGIN_DEFS} HOME_MODE"
    elif "UMASK" in defs:
        d.home_mode = 0o777 & ~_int(defs["UMASK"], 0o077, 8)
        d.evidence["home_mode"] = f"{LOGIN_DEFS} UMASK"
    return d


def free_id(used: set[int], lo: int, hi: int) -> int | None:
    """The lowest id in lo..hi not in `used`."""
    for candidate in range(lo, hi + 1):
        if candidate not in used:
            return candidate
    return None
