"""Hostile configs, generated: whatever the YAML text or the data in it, loading and
validating ends in a ConfigError/VmtailorError (one line) or a valid config — never
another exception, never a hang — and an apply that is refused writes nothing, in the
guest or beside it. Example counts come from the hypothesis profile in tests/conftest.py
("ci": bounded and reproducible)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import typing
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import small_guest, tree_digest, vmtailor
from vmtailor.configfile import load_config
from vmtailor.customizer import engine
from vmtailor.customizer.config.model import Config
from vmtailor.customizer.errors import VmtailorError
from vmtailor.customizer.localroot import LocalRoot

SECONDS = 4.0  # per example: the budget in sandbox.py is 5 s for one pathological render


def _keys(model: type, seen: set[type]) -> set[str]:
    if model in seen:
        return set()
    seen.add(model)
    out = set()
    hints = typing.get_type_hints(model)
    for field in dataclasses.fields(model):
        out.add(field.metadata.get("key") or field.name)
        tp = hints[field.name]
        for arg in [tp, *typing.get_args(tp), *(a for x in typing.get_args(tp) for a in
                                                 typing.get_args(x))]:  # fmt: skip
            if dataclasses.is_dataclass(arg):
                out |= _keys(arg, seen)
    return out


KEYS = sorted(_keys(Config, set()) | {"password", "ethernets", "lan0", "version"})

odd_text = st.sampled_from([
    "²", "١٢٣", "4294967295", "4294967296", "-1", "0644", "0x" + "f" * 40, "/etc/shadow",
    "../../../../etc/shadow", "/proc/self/environ", "a\nb", "$6$salt$hash ", "hunter2",
    "{{ name }}", "{{ undefined_var }}", "{% for i in range(10**5) %}{% for j in range(10**5)"
    " %}{% endfor %}{% endfor %}", "{{ 'x' * 10**9 }}", "{{ ''.__class__ }}", "{% raw %}",
    "root:root", "ssh-ed25519 AAAA x", "x" * 5000, "\u2028", "\x00", "on", "~", ".nan",
])  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), odd_text,
    st.sampled_from(KEYS),
)  # fmt: skip
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), st.none(), st.booleans(),
                 st.integers(-5, 5), st.just(float("nan")), st.text(max_size=8))  # fmt: skip
data = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=40,
)
configs = st.dictionaries(st.sampled_from(KEYS), data, max_size=6)
variables = st.one_of(st.none(), st.dictionaries(st.sampled_from(["name", "ip", "n", "x"]),
                                                 scalars, max_size=4))  # fmt: skip

# YAML text built from pieces that matter to the loader: nesting, anchors, aliases,
# tags, complex keys, odd numbers
pieces = st.sampled_from([
    "\n", "\n  ", "\n    ", "- ", ": ", "? ", "[", "]", "{", "}", ", ", "&a ", "*a", "&b ", "*b",
    "!!float ", "!!binary ", "!!timestamp ", "!!set ", "!!python/object ", "<<: ", "'", '"',
    "null", ".nan", "yes", "0x" + "f" * 5000, "9" * 5000, "²", "2020-02-30", "|\n  ",
    *[k + ": " for k in KEYS],
])  # fmt: skip
yaml_texts = st.lists(pieces, max_size=60).map("".join)


def check_load(text: str, vars_: dict | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "c.yaml")
        path.write_text(text)
        started = time.monotonic()
        try:
            load_config(str(path), vars_)
        except VmtailorError as exc:
            message = str(exc)
            assert message and "\n" not in message
        assert time.monotonic() - started < SECONDS


def dump(value: typing.Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True, default_flow_style=None)


@given(configs, variables)
def test_generated_configs_fail_only_with_config_errors(value, vars_):
    check_load(dump(value), vars_)


@given(yaml_texts, variables)
def test_generated_yaml_text_fails_only_with_config_errors(text, vars_):
    check_load(text, vars_)


@settings(max_examples=6)
@given(configs)
def test_validate_command_prints_one_line_per_problem_never_a_traceback(value):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "c.yaml")
        path.write_text(dump(value))
        result = vmtailor("validate", str(path), "--var", "name=web01")
        assert result.returncode in (0, 2), result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        # one line per problem (all of them at once), each naming the file
        lines = result.stderr.splitlines()
        assert bool(lines) == (result.returncode != 0)
        assert all(line.startswith(f"{path}: error") for line in lines)


paths = st.sampled_from([
    "/etc/motd", "/etc/evil/x", "/etc/evil", "/../outside/pwned", "/etc/../../outside/p",
    "/etc/hostname", "/etc/new/deep/file", "/root/.ssh/authorized_keys",
])  # fmt: skip
actions = st.one_of(
    st.fixed_dictionaries({"content": st.one_of(st.text(max_size=20), odd_text)}),
    st.fixed_dictionaries(
        {"source": st.sampled_from(["ok.txt", "link", "../outside/secret", "/etc/hostname", "."])}
    ),
    st.fixed_dictionaries({"append_line": st.one_of(st.text(max_size=10), odd_text)}),
    st.fixed_dictionaries({"symlink": st.sampled_from(["/", "../../outside", "/etc/hostname"])}),
    st.just({"delete": True}),
    st.just({"mkdir": True}),
)
extras = st.fixed_dictionaries({}, optional={
    "permissions": st.sampled_from(["0600", "0644", "0999"]),
    "owner": st.sampled_from(["root", "root:root", "0:0", "²", "nobody"]),
    "secret": st.booleans(),
})  # fmt: skip
file_items = st.builds(lambda path, action, extra: {"path": path, **action, **extra},
                       paths, actions, extras)  # fmt: skip


def _world(top: Path) -> tuple[Path, Path, Path]:
    guest, outside, cfg = top / "guest", top / "outside", top / "cfg"
    small_guest(guest)
    (guest / "etc/evil").symlink_to("../../outside")  # the guest is untrusted too
    outside.mkdir()
    (outside / "secret").write_text("host only\n")
    cfg.mkdir()
    (cfg / "ok.txt").write_text("fine\n")
    (cfg / "link").symlink_to("../outside/secret")
    return guest, outside, cfg


@settings(max_examples=25)
@given(st.lists(file_items, min_size=1, max_size=3), st.sampled_from([None, "web01", "bad_"]))
def test_apply_never_writes_outside_the_root_nor_anything_when_refused(items, hostname):
    with tempfile.TemporaryDirectory() as tmp:
        guest, outside, cfg = _world(Path(tmp))
        value = {"files": items, **({"hostname": hostname} if hostname else {})}
        (cfg / "c.yaml").write_text(dump(value))
        before, beside = tree_digest(guest), tree_digest(outside)
        try:
            loaded = load_config(str(cfg / "c.yaml"), {"name": "web01"})
            engine.apply(loaded.config, LocalRoot(str(guest)), sources=loaded.sources)
        except VmtailorError:
            assert tree_digest(guest) == before, "a refused config changed the guest"
        assert tree_digest(outside) == beside
        assert sorted(os.listdir(tmp)) == ["cfg", "guest", "outside"]
