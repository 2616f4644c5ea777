"""Every case of the netplan oracle (netplan's shipped examples and our own), written for
the stacks netplan doesn't render, read back by those stacks' own readers: libnm for
NetworkManager keyfiles, Debian's ifquery for ifupdown, ifupdown-ng's for Alpine. A stack that can't write a case
must refuse it (PlanError naming the key and the stack), never write it half."""

from __future__ import annotations

import pytest

from tests.unit.network.test_alpine import ifquery, needs_ng
from tests.unit.network.test_ifupdown import IFQUERY, ifupdown, needs_ifupdown
from tests.unit.network.test_netplan_oracle import ACCEPTED, OWN, example, needs_netplan
from tests.unit.network.test_networkmanager import libnm_read, needs_libnm
from vmtailor.customizer import config
from vmtailor.customizer.errors import PlanError
from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts
from vmtailor.customizer.network.renderers.ifupdown import OURS
from vmtailor.customizer.network.state import build_state

CASES = [*ACCEPTED, *OWN]
# the cases each stack refuses, and the key it refuses them at
NM_REFUSES = {
    "source_routing": "routing-policy",
    "link-extras": "link-local",
    "dhcp-overrides": "dhcp4-overrides.use-mtu",
}
IFUPDOWN_REFUSES = {
    "source_routing": "routing-policy", "routing": "routing-policy", "route_metric": "dhcp4-overrides",
    "windows_dhcp_server": "dhcp-identifier", "offload": "receive-checksum-offload",
    "dhcp-overrides": "dhcp4-overrides", "dhcp6-overrides": "dhcp6-overrides",
    "link-extras": "link-local", "ra-off-and-mac": None,
}  # fmt: skip


# Alpine: ifupdown's refusals, and a port's path-cost (ifupdown-ng sets it on no port)
ALPINE_REFUSES = {**IFUPDOWN_REFUSES, "bridge-bond-vlan": "parameters"}


def state_of(name: str):
    return build_state(config.parse({"network": example(name)["network"]}).network)


def written(stack: str, name: str, refuses: dict) -> dict | None:
    """The files for a case, or None once the refusal is checked."""
    state, renderer = state_of(name), RENDERERS[stack]
    if name in refuses and refuses[name] is not None:
        with pytest.raises(PlanError, match=rf"(?i)[.]{refuses[name]}\b.*{stack}"):
            renderer.check(state, GuestFacts())
        return None
    renderer.check(state, GuestFacts())
    return {p: f.content for p, f in renderer.render(state, GuestFacts()).items()}


@needs_netplan
@needs_libnm
@pytest.mark.parametrize("name", CASES)
def test_libnm_reads_and_verifies_every_keyfile(name, tmp_path):
    files = written("networkmanager", name, NM_REFUSES)
    if files is None:
        return
    from vmtailor.customizer.network.renderers.base import File

    read = libnm_read({p: File(t) for p, t in files.items()}, tmp_path)
    assert len(read) == len(state_of(name).devices)


@needs_netplan
@needs_ifupdown
@pytest.mark.parametrize("name", CASES)
def test_debian_ifquery_reads_every_stanza(name, tmp_path):
    assert IFQUERY
    files = written("ifupdown", name, IFUPDOWN_REFUSES)
    if files is None:
        return
    text = files[OURS]
    listed = [*ifupdown(tmp_path, text, "--list").split(),  # auto, then allow-hotplug
              *ifupdown(tmp_path, text, "--list", "--allow=hotplug").split()]  # fmt: skip
    assert set(listed) == {"lo", *(d.name for d in state_of(name).devices)}
    for dev in state_of(name).devices:
        ifupdown(tmp_path, text, dev.name)  # exits 0 only for a well-formed stanza


@needs_netplan
@needs_ng
@pytest.mark.parametrize("name", CASES)
def test_ifupdown_ng_reads_every_stanza(name, tmp_path):
    files = written("alpine", name, ALPINE_REFUSES)
    if files is None:
        return
    names = [d.name for d in state_of(name).devices]
    read = ifquery(tmp_path, files["/etc/network/interfaces"], "lo", *names)
    assert {"lo", *names} <= set(read)
    for dev in state_of(name).by_kind("bridge"):
        assert read[dev.name]["bridge-ports"] == [" ".join(dev.bridge_members)]


@needs_netplan
@pytest.mark.parametrize("name", CASES)
def test_the_canonical_json_on_the_media_keeps_every_case(name):
    """The initrd gets the config as canonical JSON: each case must mean the same after
    it (link-local: [] once came back as the stack's default)."""
    import json

    cfg = config.parse({"network": example(name)["network"]})
    again = config.parse(json.loads(config.canonical_json(cfg)))
    by_key = {d.key: d for d in build_state(cfg.network).devices}
    assert {d.key: d for d in build_state(again.network).devices} == by_key
