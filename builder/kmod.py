"""Kernel modules for the initrd: names, aliases and modaliases resolved to .ko files with
their dependencies (modules.dep) and soft dependencies (modules.softdep, which depmod fills
from each module's own `softdep` modinfo — that is where ext4's crc32c comes from)."""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field

from ..customizer.errors import VmtailorError
from ..initrd import modules

log = logging.getLogger("vmtailor.builder")


def _norm(name: str) -> str:
    # the kernel treats - and _ in module names as the same character
    return name.replace("-", "_")


@dataclass
class ModuleIndex(modules.ModuleIndex):
    """What depmod knows about one kernel's modules (its /lib/modules/VERSION): the index
    the initrd reads too, and the modules built into the kernel."""

    builtin: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, moddir: str) -> ModuleIndex:
        try:
            index = cls.read(moddir)
        except FileNotFoundError as exc:
            raise VmtailorError(
                f"{exc.filename} not found", hint="is this a kernel modules directory (run depmod)?"
            ) from None
        try:
            with open(os.path.join(moddir, "modules.builtin"), encoding="utf-8") as f:
                index.builtin = {modules.module_name(line) for line in f if line.strip()}
        except FileNotFoundError:
            pass
        return index

    def lookup(self, name: str) -> list[str]:
        """Module names that `name` (a module name, alias or modalias) stands for; [] when
        it is built into the kernel. Raises when the kernel knows nothing of it."""
        norm = _norm(name)
        if norm in self.paths:
            return [norm]
        if norm in self.builtin:
            return []
        found = sorted(
            {m for pattern, mods in self.aliases.items() if fnmatch.fnmatchcase(name, pattern)
             for m in mods}
        )  # fmt: skip
        if found:
            return found
        raise VmtailorError(f"kernel module {name!r} not found in {self.moddir}")

    def install_order(self, names: list[str]) -> list[str]:
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
            for soft in (*self.pre.get(mod, ()), *self.post.get(mod, ())):
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
