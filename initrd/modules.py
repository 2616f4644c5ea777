"""A kernel's module index as depmod wrote it (modules.dep, .softdep, .alias). The builder
reads the host kernel's to pick the initrd's modules (vmtailor.builder.kmod adds what only
it needs); the initrd reads its own for what busybox's modprobe does not do: softdeps,
and telling which modules are on the ISO.

busybox's modprobe reads modules.dep and modules.alias only. A softdep it skips is loaded
by the kernel at first use, through a modprobe process of its own — for ext4, crc32c at
the first mount (~0.15 s under emulation). And the modules the build leaves on the ISO
(vmtailor.initrd.image.ISO_MODULES) are symlinks to where the stages mount it, which
lead nowhere until then."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def module_name(path_or_name: str) -> str:
    """A module's name from its file's path or a name: the kernel treats - and _ in module
    names as the same character."""
    return os.path.basename(path_or_name).split(".", 1)[0].replace("-", "_")


@dataclass
class ModuleIndex:
    """modules.dep, modules.softdep and modules.alias of `moddir`."""

    moddir: str
    paths: dict[str, str] = field(default_factory=dict)  # name -> path below moddir
    deps: dict[str, list[str]] = field(default_factory=dict)
    pre: dict[str, list[str]] = field(default_factory=dict)  # softdep … pre: these
    post: dict[str, list[str]] = field(default_factory=dict)  # softdep … post: these
    aliases: dict[str, list[str]] = field(default_factory=dict)  # alias (a pattern) -> names

    @classmethod
    def read(cls, moddir: str) -> ModuleIndex:
        """`moddir`'s index; OSError where a file of it cannot be read."""
        index = cls(moddir)
        with open(os.path.join(moddir, "modules.dep")) as f:
            for line in f:
                path, colon, needs = line.partition(":")
                if colon:
                    index.paths[module_name(path)] = path.strip()
                    index.deps[module_name(path)] = [module_name(n) for n in needs.split()]
        with open(os.path.join(moddir, "modules.softdep")) as f:
            for words in map(str.split, f):
                if len(words) >= 3 and words[0] == "softdep":
                    # softdep MODULE pre: A B post: C
                    to = index.pre
                    for word in words[2:]:
                        if word in ("pre:", "post:"):
                            to = index.pre if word == "pre:" else index.post
                        else:
                            to.setdefault(module_name(words[1]), []).append(word)
        with open(os.path.join(moddir, "modules.alias")) as f:
            for words in map(str.split, f):
                if len(words) == 3 and words[0] == "alias":
                    index.aliases.setdefault(words[1], []).append(module_name(words[2]))
        return index

    @classmethod
    def load(cls, moddir: str | None = None) -> ModuleIndex | None:
        """The running kernel's index (or `moddir`'s); None where there is none."""
        try:
            return cls.read(moddir or os.path.join("/lib/modules", os.uname().release))
        except OSError:
            return None

    def has(self, name: str) -> bool:
        """Can modprobe find `name` (a module or an alias) in the image?"""
        return name in self.aliases or module_name(name) in self.paths

    def with_softdeps(self, modules: Sequence[str]) -> list[str]:
        """`modules` preceded by the softdeps of them and of what they depend on, as
        kmod's modprobe loads them — only those the image has: a softdep on a module built
        into the kernel or left out is a name modprobe cannot find."""
        first: list[str] = []
        for module in modules:
            for needed in (module_name(module), *self.deps.get(module_name(module), ())):
                first += [s for s in self.pre.get(needed, ()) if s not in first and self.has(s)]
        return first + [m for m in modules if m not in first]

    def closure(self, names: Iterable[str]) -> set[str]:
        """The modules `names` (modules or aliases) load, with dependencies and softdeps."""
        todo, seen = list(names), set()
        while todo:
            name = todo.pop()
            for mod in self.aliases.get(name, [module_name(name)]):
                if mod in self.paths and mod not in seen:
                    seen.add(mod)
                    todo += self.deps.get(mod, []) + self.pre.get(mod, [])
        return seen

    def missing(self, names: Iterable[str]) -> list[str]:
        """Those of the modules `names` load whose file leads nowhere: left on the ISO,
        which is not mounted (yet)."""
        return sorted(
            mod
            for mod in self.closure(names)
            if not os.path.exists(os.path.join(self.moddir, self.paths[mod]))
        )
