"""The stack is chosen from what the guest has installed and enabled — never the host."""

from __future__ import annotations

import pytest

from vmtailor.customizer.detect import detect
from vmtailor.customizer.errors import PlanError
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.network.select import choose

EXPECTED = {
    "debian-12": "ifupdown",
    "debian-7": "ifupdown",
    "ubuntu-22.04": "netplan",
    "rocky-9": "networkmanager",
    "centos-7": "network-scripts",
    "centos-6": "network-scripts",
    "fedora-40": "networkmanager",
    "opensuse-leap-15.5": "wicked",
    "sles-11": "wicked",
    "arch": "networkd",
    "alpine-3.20": "alpine",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_family_gets_its_own_stack(make_root, name):
    chosen, why = choose(detect(LocalRoot(str(make_root(name)))), None)
    assert chosen == EXPECTED[name]
    assert why


def test_config_can_name_the_renderer(make_root):
    guest = detect(LocalRoot(str(make_root("debian-12"))))
    assert choose(guest, "NetworkManager")[0] == "networkmanager"
    assert choose(guest, "networkd") == ("networkd", "network.renderer in the config")


def test_unknown_stack_is_a_clear_error(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text("ID=debian\n")
    with pytest.raises(PlanError) as info:
        choose(detect(LocalRoot(str(tmp_path))), None)
    message = str(info.value)
    assert message.startswith("cannot tell which network stack the guest uses: looked for netplan")
    assert "network.renderer" in message


def test_the_config_knows_the_stacks_without_importing_renderers_or_state():
    """One record per stack (network/stacks.py) that imports nothing: the config's
    renderer choices come from it, with no config -> renderers -> state -> config cycle."""
    import subprocess
    import sys

    code = (
        "import sys, vmtailor.customizer.config as c; c.schema(); "
        "print(sorted(m for m in sys.modules if m.startswith('vmtailor.customizer.network')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (
        out.stdout.strip()
        == "['vmtailor.customizer.network', 'vmtailor.customizer.network.stacks']"
    ), out.stderr


def test_every_stack_record_is_read_by_detection_selection_and_the_registry():
    from vmtailor.customizer.network import select, stacks
    from vmtailor.customizer.network.renderers import MODULES

    assert set(MODULES) == set(stacks.BY_NAME) == set(select.PREFERENCE)
    assert select.PREFERENCE[:3] == ("netplan", "networkmanager", "networkd")
