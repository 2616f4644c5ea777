"""House rules that are cheap to check: what ships in the initrd imports only the stdlib
and jinja2, the linter is clean, one run() owns subprocess, the registry is the one source
of truth for ops (schema, CLI help, README)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib

from tests.conftest import REPO, vmtailor
from vmtailor.customizer import config
from vmtailor.customizer.ops import OPERATIONS

ALLOWED_IN_CUSTOMIZER = set(sys.stdlib_module_names) | {"jinja2"}


def _imports(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_customizer_imports_only_stdlib_and_jinja2():
    bad = {
        f"{p.relative_to(REPO)}: {name}"
        for p in (REPO / "customizer").rglob("*.py")
        for name in _imports(p)
        if name not in ALLOWED_IN_CUSTOMIZER
    }
    assert not bad, f"customizer/ ships in the initrd; these imports can't: {sorted(bad)}"


def test_customizer_never_reaches_up_into_host_packages():
    for p in (REPO / "customizer").rglob("*.py"):
        depth = len(p.relative_to(REPO / "customizer").parts)  # level that is customizer/
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > depth:
                raise AssertionError(f"{p}: relative import leaves vmtailor.customizer")


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--quiet", str(REPO)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_folder_is_installed():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    mapping = pyproject["tool"]["setuptools"]["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            name = ".".join((package, *rel))
            if not any(
                name.startswith(other + ".") or name == other
                for other in mapping
                if other != package and len(other) > len(package)
            ):
                found.add(name)
    assert found == listed


def test_config_keys_and_operations_agree():
    consumed = {key for op in OPERATIONS.values() for key in op.keys}
    schema_keys = set(config.schema()["properties"])
    assert consumed == schema_keys


def test_apply_help_lists_every_operation_in_order():
    text = vmtailor("apply", "--help", check=True).stdout
    positions = [
        text.index(f"  {op.name} ") for op in sorted(OPERATIONS.values(), key=lambda o: o.order)
    ]
    assert positions == sorted(positions)


def test_readme_documents_every_command_and_operation():
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    from vmtailor.commands import COMMANDS

    for command in COMMANDS:
        assert f"vmtailor {command.NAME}" in readme, command.NAME
    for op in OPERATIONS:
        assert f"`{op}`" in readme, op


def test_only_run_imports_subprocess():
    importers = {
        str(p.relative_to(REPO))
        for folder in ("cli", "customizer", "builder", "initrd", "hypervisors")
        for p in (REPO / folder).rglob("*.py")
        if "subprocess" in set(_imports(p))
    }
    assert importers <= {"customizer/run.py"}, "use vmtailor.customizer.run.run()"


def test_renderer_table_names_every_stack_module_and_each_registers_its_name():
    # the table is read without importing the renderers; a module missing from it would
    # never be loaded, one listed under another name would be loaded for the wrong stack
    import pkgutil

    from vmtailor.customizer.network import renderers

    modules = {m.name for m in pkgutil.iter_modules(renderers.__path__)} - {"base"}
    assert set(renderers.MODULES.values()) == modules
    for name in renderers.MODULES:
        assert renderers.RENDERERS[name].name == name
    assert set(renderers.RENDERERS.loaded) == set(renderers.MODULES)


def test_the_initrds_first_imports_leave_out_the_network_machinery():
    # a config without a network (or a guest with one stack) loads no renderer it does
    # not use: the initrd imports every operation at start, under emulation
    code = (
        "import sys, vmtailor.initrd.main; "
        "print(sorted(m for m in sys.modules if m.startswith('vmtailor.customizer.network')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
