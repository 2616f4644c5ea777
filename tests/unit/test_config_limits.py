"""A hostile config fails fast with one located line: YAML nesting and aliases, numbers
out of range, keys that are not text, templates that loop, grow or run for ever."""

from __future__ import annotations

import dataclasses
import time
import typing
from pathlib import Path

import pytest

from vmtailor.configfile import load_config
from vmtailor.customizer import config
from vmtailor.customizer.config import ConfigError, sandbox
from vmtailor.customizer.config.model import Config
from vmtailor.offline.inventory import InventorySpec


def error_of(tmp_path: Path, text: str, variables=None, seconds: float = 3.0) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(str(path), variables)
    assert time.monotonic() - started < seconds
    message = str(info.value)
    assert "\n" not in message
    return message


def laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hostname: " + "[" * 5000 + "]" * 5000 + "\n", "error: line 1: nested deeper than 100"),
        ("hostname: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "nested deeper than 100"),
        (
            "users:\n  - &u {name: a, groups: [*u]}\n",
            "error at users[0].groups[0]: line 2: an alias",
        ),
        (laughs(), "aliases expand to more than 100000 values"),
        ("hostname: x\n? null\n: 1\n", "error: line 2: a key must be text, not null"),
        (
            "network:\n  ethernets:\n    ? .nan\n    : {}\n",
            "error at network.ethernets: line 3: a key must be text, not the number nan",
        ),
        (
            "users:\n  - name: a\n    yes: 1\n",
            "error at users[0]: line 3: a key must be text, not true",
        ),
        ("? [a]\n: 1\n", "a key must be text, not a mapping or list"),
        ("hostname: !!float\n", "error at hostname: line 1: not valid YAML: not a float value"),
        ("reset: [!!timestamp 2020-02-30]\n", "error at reset[0]: line 1: not valid YAML: day is"),
        (
            "hostname: " + "9" * 5000 + "\n",
            "error at hostname: line 1: not valid YAML: a number too",
        ),
        (
            "hostname: 0x" + "f" * 5000 + "\n",
            "error at hostname: line 1: expected a string, got a number of about 6021 digits",
        ),
        (
            "users:\n  - {name: a, uid: 4294967295}\n",
            "error at users[0].uid: line 2: 4294967295 is above the maximum 4294967294",
        ),
        (
            "users:\n  - {name: a, uid: 0x" + "f" * 3000 + "}\n",
            "a number of about 3613 digits is above the maximum",
        ),
        (
            "files:\n  - {path: /x, content: a, owner: '²'}\n",
            "error at files[0].owner: line 2: numeric ids are ASCII digits",
        ),
        ("files:\n  - {path: /x, content: a, owner: 'root:4294967295'}\n", "numeric ids are"),
        ("files:\n  - {path: /x, content: a, owner: '1" + "0" * 5000 + "'}\n", "numeric ids are"),
        (
            "files:\n  - {path: /x, replace: {pattern: a, with: b, count: 9999999999999999999999}}\n",
            "error at files[0].replace.count: line 2: 9999999999999999999999 is above",
        ),
        (
            "network:\n  version: 2\n  ethernets:\n    e0:\n      routes: [{to: default, via: 10.0.0.1,"
            " metric: 4294967296}]\n",
            "error at network.ethernets.e0.routes[0].metric: line 5",
        ),
        (
            'files:\n  - {path: /etc/x, append_line: "a\\nb"}\n',
            "error at files[0].append_line: line 2: one line only",
        ),
        ('files:\n  - {path: /etc/x, append_line: "a\\u2028b"}\n', "one line only"),
    ],
)
def test_hostile_yaml_is_one_located_line(tmp_path, text, expected):
    message = error_of(tmp_path, text)
    assert message.startswith(expected) or expected in message, message


def test_limits_hold_in_vars_files_and_inventories_too(tmp_path):
    from vmtailor.configfile import parse_vars
    from vmtailor.offline.inventory import load_inventory

    (tmp_path / "v.yaml").write_text(laughs())
    with pytest.raises(ConfigError, match="aliases expand"):
        parse_vars(None, [str(tmp_path / "v.yaml")])
    (tmp_path / "c.yaml").write_text("hostname: x\n")
    (tmp_path / "inv.yaml").write_text(
        "config: c.yaml\nclones:\n  - {name: a, image: a.img, vars: "
        + "[" * 500
        + "]" * 500
        + "}\n"
    )
    with pytest.raises(ConfigError, match="line 3: nested deeper than 100"):
        load_inventory(str(tmp_path / "inv.yaml"))


def _int_fields(model: type, seen: set) -> typing.Iterator[tuple[str, dataclasses.Field]]:
    if model in seen:
        return
    seen.add(model)
    hints = typing.get_type_hints(model)
    for field in dataclasses.fields(model):
        tp = hints[field.name]
        args = typing.get_args(tp) or (tp,)
        for arg in [*args, *(a for x in args for a in typing.get_args(x))]:
            if arg is int:
                yield f"{model.__name__}.{field.name}", field
            elif dataclasses.is_dataclass(arg):
                yield from _int_fields(arg, seen)


def test_every_integer_of_the_config_has_a_range():
    fields = list(_int_fields(Config, set())) + list(_int_fields(InventorySpec, set()))
    assert len(fields) >= 4  # uid, count, priority, mtu, metric, vlan id, …
    for name, field in fields:
        assert field.metadata.get("minimum") is not None, name
        assert field.metadata.get("maximum") is not None, name


@pytest.mark.parametrize(
    "template, expected",
    [
        (
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            "more than 1000000 loop iterations and calls",
        ),
        ("{% for a in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output longer than"),
        ("{{ 'a' * 10**10 }}", "a value longer than 1048576"),
        ("{{ 'a'|center(10**10) }}", "center() with a size over"),
        ("{{ 'a'.ljust(10**10) }}", "ljust() with a size over"),
        ("{{ '%0999999999d'|format(1) }}", "a format width of a million"),
        ("{{ '{:>999999999}'.format(1) }}", "a format width of a million"),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
            "{% endfor %}",
            "a value longer than",
        ),
        (
            "{% set ns = namespace(n=3) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}"
            "{% endfor %}",
            "a number of more than 4096 bits",
        ),
        ("{{ 2 ** (10 ** 9) }}", "a number of more than 4096 bits"),
        ("{% set s = 'x' * 100000 %}{{ s.replace('x', s) }}", "replace() would make more"),
        ("{% set s = 'x' * 100000 %}{{ ([s] * 100000)|join }}", "join() would make more"),
        ("{{ [1]|slice(10**9)|list }}", "slice() with a size over"),
        ("{{ ('\\n' * 100000)|indent(1000) }}", "indent() would make more than"),
        ("{{ ('\\t' * 100000).expandtabs(1000) }}", "expandtabs() would make more than"),
    ],
)
def test_templates_are_bounded(tmp_path, template, expected):
    text = f"files:\n  - path: /etc/x\n    content: {template!r}\n"
    message = error_of(tmp_path, text, {"n": 1})
    assert message.startswith("error at files[0].content: line 3: template stopped: "), message
    assert expected in message


def test_template_time_is_bounded(tmp_path, monkeypatch):
    # 2**40 macro calls: each is cheap and makes no output, only the clock stops it
    monkeypatch.setattr(sandbox, "MAX_SECONDS", 0.5)
    monkeypatch.setattr(sandbox, "MAX_STEPS", 10**12)
    macro = "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    message = error_of(tmp_path, f"hostname: {macro!r}\n", {"n": 1}, seconds=2.0)
    assert (
        "error at hostname: line 1: template stopped: rendering took longer than 0.5 s" in message
    )


def test_the_budget_is_shared_by_a_config_s_templates_and_ordinary_ones_fit():
    loop = "{% for a in range(100000) %}{% endfor %}x"
    config.parse({"files": [{"path": f"/f{i}", "content": loop} for i in range(9)]}, {})
    with pytest.raises(ConfigError, match=r"error at files\[9\].content: template stopped"):
        config.parse({"files": [{"path": f"/f{i}", "content": loop} for i in range(11)]}, {})
    # what real configs do stays well inside the limits
    data = {
        "hostname": "{{ name }}-{{ range(3)|join('') }}",
        "files": [
            {
                "path": "/etc/motd",
                "content": "{% for u in users %}{{ u|upper|center(8) }}\n{% endfor %}",
            },
            {
                "path": "/etc/x",
                "content": "{{ '%05d'|format(uid) }} {{ '{:>4}'.format(7) }} {{ 2**10 }}",
            },
        ],
    }
    cfg = config.parse(data, {"name": "web", "users": ["a", "b"], "uid": 4000000000})
    assert cfg.hostname == "web-012"
    assert cfg.files[0].content == "   A    \n   B    \n"
    assert cfg.files[1].content == "4000000000    7 1024"


def test_per_member_bridge_numbers_are_ranged_too():
    net = {"version": 2, "ethernets": {"eth0": {}},
           "bridges": {"br0": {"interfaces": ["eth0"],
                               "parameters": {"port-priority": {"eth0": 2**40}}}}}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        config.parse({"network": net})
    assert "network.bridges.br0.parameters.port-priority.eth0" in str(err.value)
    assert "above the maximum 63" in str(err.value)
