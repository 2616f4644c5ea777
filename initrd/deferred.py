"""Standard modules the initrd's imports name but a customization rarely uses, imported at
their first use instead.

dataclasses imports inspect (and with it ast, dis, tokenize …) for one call, the
signature it writes into a dataclass that has no docstring — vmtailor's all have one.
logging imports traceback (linecache, tokenize, textwrap) to format an exception. The
config schema imports difflib to suggest a key for a misspelt one, the network models
ipaddress to check addresses. Together a fifth of the time Python takes to import the
stages, which under emulation is most of its start-up.

defer() puts a stand-in module under each name in sys.modules: `import inspect` finds it
there and binds it. The first attribute anything reads from it imports the real module,
which then takes the name in sys.modules, and copies the real module's namespace into
the stand-in, so that later reads through it cost nothing extra. Nothing changes for a
program that uses them — only when they are imported."""

from __future__ import annotations

import sys
import types

MODULES = ("inspect", "traceback", "difflib", "ipaddress")


class Deferred(types.ModuleType):
    """A module not imported yet: reading any attribute imports it."""

    def __getattr__(self, attr: str):
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = __import__(name)  # top-level names only: the module itself
        vars(self).update(vars(real))
        return getattr(real, attr)


def defer(names: tuple[str, ...] = MODULES) -> list[str]:
    """Stand-ins for those of `names` not imported yet; returns them. Call it before the
    imports that name them."""
    deferred = []
    for name in names:
        if name not in sys.modules:
            # ModuleType sets __spec__ to None: what `import` reads of a module it finds
            # in sys.modules (is it still being imported?) is there, and loads nothing
            sys.modules[name] = Deferred(name)
            deferred.append(name)
    return deferred
