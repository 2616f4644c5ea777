"""What a network renderer is: a pure function of the network state and a few facts about
the guest, giving the files to write; plus a clean-up of the template's own config for
the NICs it now configures (staged in the plan, so journaled and revertible)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import PlanError
from ...plan import Plan
from ..state import NetworkState


@dataclass(frozen=True)
class File:
    """One file a renderer writes: its text and mode."""

    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class GuestFacts:
    """What renderers may know of the guest — decided by the network operation from the
    guest's own files, so that renderers stay pure and testable."""

    family: str = "debian"
    version: str = ""
    # netplan's backend: "networkd" or "NetworkManager" (what the guest has enabled)
    netplan_backend: str = "networkd"
    # /etc/resolv.conf: "file", "symlink" (owned by resolved/NM/resolvconf) or "absent"
    resolv_conf: str = "file"
    # systemd-resolved is enabled: DNS goes to a resolved.conf drop-in
    resolved: bool = False
    extra: dict[str, str] = field(default_factory=dict)


class Renderer:
    name: str = ""
    summary: str = ""

    # route options (table, from, scope, type, mtu, ...) and routing-policy
    policy_routing = False
    # the netplan keys of Device.extras this stack writes (dhcp4-overrides, link-local, ...)
    extras: tuple[str, ...] = ()

    def check(self, state: NetworkState, facts: GuestFacts) -> None:
        """Refuse, before anything in the guest is touched, a config this stack can't be
        made to mean: one line naming the key and the stack."""
        for dev in state.devices:
            where = f"network.{dev.kind}s.{dev.key}"
            for key in dev.extras:
                if key not in self.extras:
                    raise PlanError(
                        f"{where}.{key}: vmtailor does not write {key} for the {self.name} "
                        "stack yet"
                    )
            if self.policy_routing:
                continue
            if dev.rules:
                raise PlanError(f"{where}.routing-policy: {self.no_policy}")
            for i, route in enumerate(dev.routes):
                if route.options:
                    raise PlanError(
                        f"{where}.routes[{i}]: route {', '.join(route.options)}: {self.no_policy}"
                    )

    @property
    def no_policy(self) -> str:
        return (
            f"vmtailor does not write route options and routing-policy for the {self.name} "
            "stack yet (netplan, networkd and NetworkManager have them)"
        )

    def render(self, state: NetworkState, facts: GuestFacts) -> dict[str, File]:
        """{guest path: File} for this stack. Pure: no guest access."""
        raise NotImplementedError

    def clean_stale(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> None:
        """Stage the removal (or disabling) of the template's configuration for the NICs
        this config now owns, and of MAC pins to NICs the clone doesn't have."""

    def warnings(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> list[str]:
        """What the guest lacks for this config to work (a package the stack needs, a
        feature its version doesn't have): told to the user, the config still written."""
        return []
