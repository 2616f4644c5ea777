"""/etc/fstab as data: the guest's own table, parsed the way libmount reads it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape(field_text: str) -> str:
    """fstab writes blanks and backslashes as octal escapes: \\040 is a space."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field_text)


def split_options(text: str) -> tuple[str, ...]:
    """Comma-separated options; a comma inside double quotes (SELinux context=) is kept."""
    out, current, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return tuple(o for o in out if o)


@dataclass(frozen=True)
class FstabEntry:
    """One line of the guest's /etc/fstab."""

    spec: str  # what to mount: UUID=…, LABEL=…, /dev/…, a server path, "none"
    target: str  # where: "/", "/boot", "none" or "swap" for swap
    fstype: str
    options: tuple[str, ...] = ("defaults",)
    freq: int = 0
    passno: int = 0
    line: int = 0

    def has(self, option: str) -> bool:
        return option in self.options

    def value(self, name: str) -> str | None:
        """The value of a `name=value` option (the last one wins, as in mount)."""
        found = None
        for opt in self.options:
            key, sep, val = opt.partition("=")
            if sep and key == name:
                found = val
        return found

    @property
    def tag(self) -> tuple[str, str] | None:
        """("UUID", value) for a tag spec such as UUID=… (quotes stripped), else None."""
        key, sep, value = self.spec.partition("=")
        if not sep or key.upper() not in TAGS:
            return None
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        return key.upper(), value

    def describe(self) -> str:
        return f"fstab line {self.line}: {self.spec} on {self.target}"


TAGS = ("UUID", "LABEL", "PARTUUID", "PARTLABEL")


@dataclass
class Fstab:
    """The guest's /etc/fstab: its entries, and a warning for each line it ignored."""

    entries: list[FstabEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _int_field(text: str | None) -> int:
    try:
        return int(text) if text is not None else 0
    except ValueError:
        return 0


def parse_fstab(text: str) -> Fstab:
    """Parse fstab text. A line mount(8) would reject is skipped with a warning, as
    systemd's fstab generator does, rather than failing the whole table."""
    out = Fstab()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        # A trailing "# comment" after the type is tolerated, as libmount does.
        for i, f in enumerate(fields[3:], start=3):
            if f.startswith("#"):
                fields = fields[:i]
                break
        if len(fields) < 2:
            out.warnings.append(f"fstab line {number}: ignored, not 'what where [type …]': {line}")
            continue
        spec, target = unescape(fields[0]), unescape(fields[1])
        fstype = unescape(fields[2]) if len(fields) > 2 else "auto"
        options = split_options(unescape(fields[3])) if len(fields) > 3 else ("defaults",)
        out.entries.append(
            FstabEntry(
                spec=spec,
                target=target,
                fstype=fstype,
                options=options or ("defaults",),
                freq=_int_field(fields[4] if len(fields) > 4 else None),
                passno=_int_field(fields[5] if len(fields) > 5 else None),
                line=number,
            )
        )
    return out
