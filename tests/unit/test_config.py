"""Config validation: typed models, located one-line errors, templates, the schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import REPO, vmtailor
from vmtailor.configfile import load_config
from vmtailor.customizer import config
from vmtailor.customizer.config import ConfigError, Deferred

EXAMPLES = sorted((REPO / "configs/examples").glob("*.yaml"))
EXAMPLE_VARS = {"hostname": "web01", "ip": "192.0.2.10/24"}


def error_of(tmp_path: Path, text: str, variables=None) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path), variables)
    return str(info.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "hostname: web01\nusers:\n  - name: ok\n  - name: ops\n    password: hunter2\n",
            "error at users[1].password: line 5: plain-text passwords are not accepted — use "
            "password_hash (see `vmtailor hash-password`)",
        ),
        (
            "hostnmae: x\n",
            "error at hostnmae: line 1: unknown key 'hostnmae' in the top level "
            "(did you mean 'hostname'?)",
        ),
        ("hostname: -bad-\n", "error at hostname: line 1: '-bad-' is not valid here"),
        ("users:\n  - gecos: x\n", "error at users[0]: line 2: missing required key 'name'"),
        ("users:\n  - name: a\n  - name: a\n", "error at users[1].name: line 3: 'a' is already"),
        ("users: {name: a}\n", "error at users: line 1: expected a list, got a mapping"),
        (
            "users:\n  - name: a\n    password_hash: secret\n",
            "error at users[0].password_hash: line 3:",
        ),
        (
            "users:\n  - name: a\n    ssh_authorized_keys: [nonsense]\n",
            "error at users[0].ssh_authorized_keys[0]: line 3:",
        ),
        (
            "files:\n  - path: etc/motd\n    content: x\n",
            "error at files[0].path: line 2: 'etc/motd' must be an absolute path",
        ),
        (
            "files:\n  - {path: /x, content: a, delete: true}\n",
            "error at files[0]: line 2: choose one action per item, not content and delete",
        ),
        ("files:\n  - {path: /x}\n", "error at files[0]: line 2: nothing to do"),
        (
            "files:\n  - {path: /x, permissions: 0644}\n",
            "error at files[0].permissions: line 2: expected a string, got the number 420 — "
            'quote it: "0644"',
        ),
        ("files:\n  - {path: /x, permissions: '999'}\n", "is not an octal mode"),
        (
            "files:\n  - {path: /x, replace: {pattern: '(', with: y}}\n",
            "error at files[0].replace.pattern: line 2: bad regular expression",
        ),
        (
            "firstboot:\n  - {name: a, script: x, priority: 100}\n",
            "error at firstboot[0].priority: line 2: 100 is above the maximum 99",
        ),
        (
            "reset: [machine-idd]\n",
            "error at reset[0]: line 1: unknown value 'machine-idd' (did you mean 'machine-id'?)",
        ),
        (
            "hostname: web01.example.com\ndomain: example.com\n",
            "error at hostname: line 1: 'web01.example.com' is already fully qualified",
        ),
        ("hostname: [web01\n", "error: line 2: not valid YAML"),
        ("hostname: a\nhostname: b\n", "error at hostname: line 2: key 'hostname' appears twice"),
        ("hostname: '{{ name }'\n", "error at hostname: line 1: template syntax error"),
        (
            "network: {version: 3}\n",
            "error at network.version: line 1: network version 3: "
            "versions 1 (cloud-init network-config v1) and 2 (netplan) are accepted",
        ),
        (
            "network:\n  version: 1\n  config:\n    - {type: physical, name: eth0, subnets: "
            "[{type: static, address: 10.0.0.300/8}]}\n",
            "error at network.config[0].subnets[0].address: line 4:",
        ),
    ],
)
def test_errors_name_path_and_line(tmp_path, text, expected):
    message = error_of(tmp_path, text)
    assert message.startswith(expected) or expected in message
    assert "\n" not in message


def test_undefined_template_variable_when_vars_given(tmp_path):
    message = error_of(tmp_path, "hostname: '{{ name }}'\n", {"other": 1})
    assert message.startswith("error at hostname: line 1: uses undefined variable 'name'")
    assert "--var" in message


def test_templates_are_deferred_without_vars_and_checked_with_them():
    cfg = config.parse({"hostname": "{{ name }}-web"})
    assert isinstance(cfg.hostname, Deferred)
    assert config.parse({"hostname": "{{ name }}-web"}, {"name": "db"}).hostname == "db-web"
    with pytest.raises(ConfigError, match="not valid here"):
        config.parse({"hostname": "{{ name }}"}, {"name": "bad_name!"})


def test_secrets_never_echoed_in_errors(tmp_path):
    message = error_of(tmp_path, "users:\n  - name: a\n    password: hunter2secret\n")
    assert "hunter2secret" not in message


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(example):
    loaded = load_config(str(example), EXAMPLE_VARS)
    assert loaded.config.hostname
    load_config(str(example), None)  # templates deferred


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_the_published_schema(example):
    schema = json.loads((REPO / "configs/vmtailor.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(example.read_text()), schema)


def test_published_schema_is_generated_from_the_models():
    shipped = json.loads((REPO / "configs/vmtailor.schema.json").read_text())
    assert shipped == config.schema(), "run `make schema` to regenerate it"
    assert json.loads(vmtailor("schema", check=True).stdout) == shipped


def test_published_schema_rejects_what_validate_rejects():
    schema = json.loads((REPO / "configs/vmtailor.schema.json").read_text())
    for bad in (
        {"hostnmae": "x"},
        {"users": [{"name": "a", "password": "x"}]},
        {"reset": ["nope"]},
        {"files": [{"path": "/x", "permissions": 420}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_canonical_json_is_stable_and_sorted():
    a = config.parse({"hostname": "h", "users": [{"name": "u", "groups": ["g"]}]})
    text = config.canonical_json(a)
    assert text == '{"hostname":"h","users":[{"groups":["g"],"name":"u"}]}'
    assert config.parse(json.loads(text)) == a
    assert config.digest(a) == config.digest(config.parse(json.loads(text)))
