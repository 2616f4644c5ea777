"""systemd-style INI files (.network, .netdev, .link, resolved.conf): repeated keys are
normal there, so configparser can't read them; this keeps every (key, value) in order."""

from __future__ import annotations


def parse(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(section, [(key, value), ...]), ...] in file order; comments dropped."""
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1], []))
        elif "=" in line and sections:
            key, _, value = line.partition("=")
            sections[-1][1].append((key.strip(), value.strip()))
    return sections


def values(text: str, section: str, key: str) -> list[str]:
    """Every value of `key` in every `section` (space-separated lists are split)."""
    out = []
    for name, items in parse(text):
        if name == section:
            for k, v in items:
                if k == key:
                    out.extend(v.split())
    return out


def render(sections: list[tuple[str, list[tuple[str, object]]]], header: str = "") -> str:
    """Sections to text; None values are left out, booleans become yes/no."""
    chunks = [header] if header else []
    for name, items in sections:
        lines = [f"[{name}]"]
        for key, value in items:
            if value is None:
                continue
            if isinstance(value, bool):
                value = "yes" if value else "no"
            lines.append(f"{key}={value}")
        if len(lines) > 1:
            chunks.append("\n".join(lines) + "\n")
    return "\n".join(chunks)
