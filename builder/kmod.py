"""Kernel modules for the initrd: names, aliases and modaliases resolved to .ko files with
their dependencies (modules.dep) and soft dependencies (modules.softdep, which depmod fills
from each module's own `softdep` modinfo — that is where ext4's crc32c comes from)."""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field

from ..customizer.errors import VmtailorError

log = logging.getLogger("vmtailor.builder")


def _norm(name: str) -> str:
    # the kernel treats - and _ in module names as the same character
    return name.replace("-", "_")


def _modname(path: str) -> str:
    base = os.path.basename(path)
    for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    return _norm(base)


@dataclass
class ModuleIndex:
    """What depmod knows about one kernel's modules (its /lib/modules/VERSION)."""

    moddir: str
    paths: dict[str, str] = field(default_factory=dict)  # name -> path relative to moddir
    deps: dict[str, list[str]] = field(default_factory=dict)
    softdeps: dict[str, list[str]] = field(default_factory=dict)  # pre and post alike
    aliases: list[tuple[str, str]] = field(default_factory=list)  # (pattern, module)
    builtin: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, moddir: str) -> ModuleIndex:
        index = cls(moddir)
        for line in index._lines("modules.dep"):
            target, _, rest = line.partition(":")
            name = _modname(target)
            index.paths[name] = target
            index.deps[name] = [_modname(d) for d in rest.split()]
        for line in index._lines("modules.softdep"):
            words = line.split()
            if len(words) < 3 or words[0] != "softdep":
                continue
            index.softdeps.setdefault(_norm(words[1]), []).extend(
                w for w in words[2:] if w not in ("pre:", "post:")
            )
        for line in index._lines("modules.alias"):
            words = line.split()
            if len(words) == 3 and words[0] == "alias":
                index.aliases.append((words[1], _norm(words[2])))
        index.builtin = {_modname(p) for p in index._lines("modules.builtin", required=False)}
        return index

    def _lines(self, name: str, required: bool = True) -> list[str]:
        path = os.path.join(self.moddir, name)
        try:
            with open(path, encoding="utf-8") as f:
                return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
        except FileNotFoundError:
            if required:
                raise VmtailorError(
                    f"{path} not found", hint="is this a kernel modules directory (run depmod)?"
                ) from None
            return []

    def lookup(self, name: str) -> list[str]:
        """Module names that `name` (a module name, alias or modalias) stands for; [] when
        it is built into the kernel. Raises when the kernel knows nothing of it."""
        norm = _norm(name)
        if norm in self.paths:
            return [norm]
        if norm in self.builtin:
            return []
        found = sorted({mod for pattern, mod in self.aliases if fnmatch.fnmatchcase(name, pattern)})
        if found:
            return found
        raise VmtailorError(f"kernel module {name!r} not found in {self.moddir}")

    def closure(self, names: list[str]) -> list[str]:
        """Every module `names` need, dependencies first; softdeps are followed but may be
        missing (a softdep can name something built in or absent on this kernel)."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(mod: str) -> None:
            if mod in seen:
                return
            seen.add(mod)
            for dep in self.deps.get(mod, []):
                visit(dep)
            for soft in self.softdeps.get(mod, []):
                try:
                    resolved = self.lookup(soft)
                except VmtailorError:
                    log.debug("softdep %s of %s: not on this kernel", soft, mod)
                    continue
                for dep in resolved:
                    visit(dep)
            order.append(mod)

        for name in names:
            for mod in self.lookup(name):
                visit(mod)
        return order

    def path(self, mod: str) -> str:
        return os.path.join(self.moddir, self.paths[mod])
