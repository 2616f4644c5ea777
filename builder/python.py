"""Python in the initrd: the interpreter the builder runs on, only the stdlib modules the
shipped packages import (found by modulefinder over the staged packages, plus what the
interpreter itself loads at start-up), third-party packages copied whole, and bytecode
compiled ahead so the guest never parses source (slow under emulation)."""

from __future__ import annotations

import importlib.util
import logging
import modulefinder
import os
import sys
import sysconfig
import tempfile

from ..customizer.errors import VmtailorError
from ..customizer.run import run
from ..initrd import precompiled
from . import elf
from .installer import Installer

log = logging.getLogger("vmtailor.builder")

# Where the vmtailor packages (and any third-party ones) go; /init puts it on PYTHONPATH.
SITE = "/usr/lib/vmtailor"

# Not shipped, though modulefinder reaches them:
NOT_SHIPPED = (
    # optional accelerators the stdlib falls back from, whose libraries would dwarf the
    # rest (libcrypto alone is 4.5 MB): hashlib uses its built-in _sha256/_md5/… instead
    "_hashlib", "_ssl", "ssl",
    # developer tools
    "doctest", "unittest", "test", "pdb", "pydoc", "asyncio",
    # reached only from stdlib functions the customizer never calls — installed packages'
    # metadata and resources (and the email and csv parsers they need), shutil's archive
    # functions, the stdlib modules' own command-line main()s, random's self-test, the
    # tracemalloc hint in warnings (which copes with its absence), platform.mac_ver:
    # 2.9 MB of the 5.2 MB of bytecode, every MB of which the VM loads and unpacks
    "importlib.metadata", "importlib.resources", "email", "csv",
    "tarfile", "zipfile", "gzip", "bz2", "lzma", "_compression",
    "argparse", "getopt", "gettext",
    "statistics", "decimal", "_pydecimal", "fractions",
    "tracemalloc", "pickle", "pprint", "plistlib",
    "calendar", "_strptime", "datetime", "urllib", "pathlib",
)  # fmt: skip

# Imported by name at run time, which no import scan can see: a codec is looked up by its
# name the first time something encodes or decodes with it. The initrd's Python runs with
# PYTHONUTF8=1 and vmtailor reads and writes UTF-8: these few, not the stdlib's 120.
CODECS = ("utf_8", "utf_8_sig", "ascii", "latin_1", "idna", "punycode", "raw_unicode_escape",
          "unicode_escape")  # fmt: skip
RUNTIME_IMPORTED = tuple(f"encodings.{codec}" for codec in CODECS)

INIT_PY = b'"""vmtailor inside the initrd: the customizer and the initrd stages only."""\n'


def interpreter() -> str:
    """The interpreter running the builder (the venv's base), which is the one shipped:
    modulefinder then searches the very stdlib the guest will run."""
    return os.path.realpath(sys.executable)


def _stdlib() -> tuple[str, str]:
    paths = sysconfig.get_paths()
    return paths["stdlib"], os.path.join(paths["platstdlib"], "lib-dynload")


def package_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise VmtailorError(f"Python package {name} is not installed in the build environment")
    return next(iter(spec.submodule_search_locations))


# Host-side parts of the shipped packages: they import what the initrd has not (jinja2's
# sandbox renders templates before the config reaches any media; the initrd reads the
# rendered config), so they are left out rather than imported at build time and failing.
HOST_ONLY = ("customizer/config/sandbox.py",)


def _copy_package(inst: Installer, src: str, dest: str) -> list[str]:
    """Copy a package's .py and extension files; returns their module names' files."""
    copied = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            rel_to_repo = os.path.relpath(os.path.join(dirpath, name), os.path.dirname(src))
            if rel_to_repo in HOST_ONLY:
                continue
            if name.endswith((".py", ".so")):
                rel = os.path.relpath(os.path.join(dirpath, name), src)
                copied.append(inst.file(os.path.join(dirpath, name), f"{dest}/{rel}", 0o644))
    return copied


def _module_names(files: list[str]) -> list[str]:
    out = []
    for path in files:
        if not path.endswith(".py"):
            continue
        rel = os.path.relpath(path, SITE)[: -len(".py")].split("/")
        if rel[-1] == "__init__":
            rel = rel[:-1]
        out.append(".".join(rel))
    return sorted(out)


def startup_modules(python: str) -> list[str]:
    """What the interpreter imports before running anything, started as /init starts it."""
    code = "import sys; print('\\n'.join(sorted(sys.modules)))"
    env = {"PYTHONUTF8": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    out = run([python, "-S", "-c", code], env=env).stdout.decode()
    return [*out.split(), "runpy"]  # runpy: `python -m`


def find_stdlib(staged_site: str, roots: list[str], python: str) -> list[str]:
    """Host paths of every stdlib file (source or extension) the roots import."""
    stdlib, dynload = _stdlib()
    finder = modulefinder.ModuleFinder(path=[staged_site, stdlib, dynload], excludes=NOT_SHIPPED)
    for name in [*startup_modules(python), *RUNTIME_IMPORTED, *roots]:
        try:
            finder.import_hook(name)
        except (ImportError, AttributeError) as exc:
            # AttributeError: modulefinder cannot follow a namespace package (no __init__)
            log.debug("modulefinder: %s: %s", name, exc)
    files = set()
    for module in finder.modules.values():
        path = module.__file__
        if path and (path.startswith(stdlib + "/")) and not path.startswith(staged_site):
            files.add(path)
    # the interpreter finds its prefix by this landmark, even when os is frozen
    files.add(os.path.join(stdlib, "os.py"))
    missing = sorted(n for n in finder.badmodules if n.startswith("vmtailor."))
    if missing:
        log.info("modules imported but not found: %s", ", ".join(missing))
    return sorted(files)


def install(
    inst: Installer, roots: tuple[str, ...], packages: tuple[str, ...], vmtailor: tuple[str, ...]
) -> None:
    """Install python3, the vmtailor subpackages, `packages`, and the stdlib they need."""
    python = interpreter()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    dest = inst.binary(python)
    inst.symlink("/usr/bin/python3", os.path.basename(dest))
    stdlib, dynload = _stdlib()
    # the interpreter's landmark for its exec prefix, even with no extension in it
    inst.directory(f"/usr/lib/{version}/lib-dynload")

    shipped = [inst.data(f"{SITE}/vmtailor/__init__.py", INIT_PY, origin="vmtailor")]
    for sub in vmtailor:
        src = package_dir(f"vmtailor.{sub}")
        shipped += _copy_package(inst, src, f"{SITE}/vmtailor/{sub}")
    for pkg in packages:
        shipped += _copy_package(inst, package_dir(pkg), f"{SITE}/{pkg}")

    names = [*roots, *_module_names(shipped)]
    for path in find_stdlib(os.path.join(inst.staging, SITE.lstrip("/")), names, python):
        rel = os.path.relpath(path, stdlib)
        if path.startswith(dynload + "/"):
            inst.binary(path)
            continue
        inst.file(path, f"/usr/lib/{version}/{rel}", 0o644)
    for ext in [p for p in shipped if p.endswith(".so")]:
        for lib in elf.libraries(os.path.join(inst.staging, ext.lstrip("/"))):
            inst.library(lib)
    compile_all(inst, python, [SITE])
    compile_all(inst, python, [f"/usr/lib/{version}"], sourceless=True)
    precompile_dataclasses(inst, python, [n for n in names if not n.endswith("__main__")])


def precompile_dataclasses(inst: Installer, python: str, modules: list[str]) -> None:
    """The table of dataclass methods vmtailor.initrd.precompiled installs at boot: made by
    importing every shipped module with the shipped interpreter (the table is marshal
    data, for that interpreter alone), from the staged tree."""
    with tempfile.TemporaryDirectory(prefix="vmtailor-dataclasses-") as tmp:
        out = os.path.join(tmp, "table")
        code = f"from vmtailor.initrd.precompiled import record; record({out!r}, {modules!r})"
        site = os.path.join(inst.staging, SITE.lstrip("/"))
        env = {"PYTHONPATH": site, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        run([python, "-S", "-c", code], env=env)
        with open(out, "rb") as f:
            inst.data(precompiled.TABLE, f.read())


def compile_all(inst: Installer, python: str, folders: list[str], sourceless: bool = False) -> None:
    """Bytecode for every .py, byte-identical from build to build: hash-based pycs (no
    source mtime inside), a fixed hash seed (set and frozenset constants are marshalled in
    hash order), and the in-image path as each code object's file name.

    sourceless: the bytecode takes the source's place (x.py becomes x.pyc beside it) — for
    the stdlib, whose sources are a sixth of the compressed initrd and a tenth of what the
    kernel unpacks; vmtailor's own keep theirs, so its tracebacks show the lines."""
    staged = [os.path.join(inst.staging, f.lstrip("/")) for f in folders]
    argv = [python, "-I", "-m", "compileall", "-q", "-r", "100", *(["-b"] if sourceless else []),
            "--invalidation-mode", "unchecked-hash", "-s", inst.staging, "-p", "/", *staged]  # fmt: skip
    run(argv, env={"PYTHONHASHSEED": "0"})
    if sourceless:
        for top in staged:
            for dirpath, _, filenames in os.walk(top):
                for name in filenames:
                    if name.endswith(".py") and os.path.exists(os.path.join(dirpath, name + "c")):
                        os.unlink(os.path.join(dirpath, name))
