"""firstboot: scripts, runner and boot hook per init system, applied through the real engine
on small guest trees — and the installed runner run for real with /bin/sh against them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, tree_digest
from vmtailor.customizer import config, engine
from vmtailor.customizer.detect import detect
from vmtailor.customizer.errors import PlanError
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.ops import firstboot

sys.path.insert(0, str(REPO / "scripts"))
import fixture_roots

FB = "usr/lib/vmtailor/firstboot"
RUNNER = f"{FB}/run"
WANTS = "etc/systemd/system/multi-user.target.wants/vmtailor-firstboot.service"
UNIT = "etc/systemd/system/vmtailor-firstboot.service"
LOCAL_D = "etc/local.d/vmtailor-firstboot.start"
JOURNAL = ("var/lib/vmtailor",)

DEBIAN_RC_LOCAL = """#!/bin/sh -e
#
# rc.local
#
# This script is executed at the end of each multiuser runlevel.
#
# By default this script does nothing.

exit 0
"""

EL6_RC_LOCAL = """#!/bin/sh
#
# This script will be executed *after* all the other init scripts.

touch /var/lock/subsys/local
"""


# -- guest trees ---------------------------------------------------------------------------
def _write(top: Path, rel: str, text: str = "", mode: int = 0o644) -> Path:
    path = top / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def _link(top: Path, rel: str, target: str) -> None:
    path = top / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def systemd_guest(top: Path) -> Path:
    _write(top, "etc/os-release", 'ID=debian\nVERSION_ID="12"\n')
    _write(top, "lib/systemd/systemd", mode=0o755)
    _link(top, "sbin/init", "/lib/systemd/systemd")
    (top / "etc/systemd/system").mkdir(parents=True)
    (top / "var/log").mkdir(parents=True)
    return top


def sysvinit_guest(top: Path, rc_local: str | None = DEBIAN_RC_LOCAL, mode=0o644) -> Path:
    _write(top, "etc/os-release", 'ID=debian\nVERSION_ID="7"\n')
    _write(top, "sbin/init", mode=0o755)
    _write(top, "etc/inittab", "id:2:initdefault:\n")
    if rc_local is not None:
        _write(top, "etc/rc.local", rc_local, mode)
    (top / "var/log").mkdir(parents=True)
    return top


def upstart_el6_guest(top: Path) -> Path:
    _write(top, "etc/redhat-release", "CentOS release 6.10 (Final)\n")
    _write(top, "sbin/init", mode=0o755)
    _write(top, "sbin/initctl", mode=0o755)
    (top / "etc/init").mkdir(parents=True)
    _write(top, "etc/rc.d/rc.local", EL6_RC_LOCAL, 0o755)
    _link(top, "etc/rc.local", "rc.d/rc.local")
    (top / "var/log").mkdir(parents=True)
    return top


def openrc_guest(top: Path, local_enabled: bool = False) -> Path:
    _write(top, "etc/os-release", "ID=alpine\nVERSION_ID=3.20.0\n")
    _write(top, "sbin/openrc", mode=0o755)
    _write(top, "etc/init.d/local", "#!/sbin/openrc-run\n", 0o755)
    (top / "etc/runlevels/default").mkdir(parents=True)
    (top / "etc/local.d").mkdir(parents=True)
    if local_enabled:
        _link(top, "etc/runlevels/default/local", "/etc/init.d/local")
    (top / "var/log").mkdir(parents=True)
    return top


GUESTS = {
    "systemd": systemd_guest,
    "sysvinit": sysvinit_guest,
    "upstart": upstart_el6_guest,
    "openrc": openrc_guest,
}


def apply(top: Path, scripts, reset=()):
    data = {"firstboot": list(scripts), "reset": list(reset)}
    return engine.apply(config.parse(data), LocalRoot(str(top)))


def run_runner(top: Path, shell: tuple[str, ...] = ("/bin/sh",)):
    return subprocess.run(
        [*shell, str(top / RUNNER)],
        env={**os.environ, "VMTAILOR_FIRSTBOOT_ROOT": str(top)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def rc_local_of(top: Path) -> Path:
    """The guest's rc.local as the firstboot hook edits it (its family's, symlinks followed)."""
    root = LocalRoot(str(top))
    return top / root.resolve(detect(root).family.rc_local).lstrip("/")


def hook_present(top: Path, init: str) -> bool:
    if init == "systemd":
        return os.path.lexists(top / WANTS)
    if init == "openrc":
        return (top / LOCAL_D).exists()
    return firstboot.BEGIN in rc_local_of(top).read_text()


def _record(name: str, priority: int, extra: str = "") -> dict:
    body = f'echo {name} >>"$VMTAILOR_FIRSTBOOT_ROOT/order"\n{extra}'
    return {"name": name, "priority": priority, "script": body}


# scripts that prove the runner's promises: order, move-before-run, logging, failures
WHERE = """case "$0" in
    "$VMTAILOR_FIRSTBOOT_ROOT"/usr/lib/vmtailor/firstboot/scripts-done/*) echo "running from done" ;;
    *) echo "running from elsewhere: $0" ;;
esac
if [ -e "$VMTAILOR_FIRSTBOOT_ROOT/usr/lib/vmtailor/firstboot/scripts/10-first" ]; then
    echo "still queued"
fi
"""
SCRIPTS = [
    _record("last", 90),
    _record("fails", 20, "echo 'oops on stderr' >&2\nexit 3\n"),
    _record("first", 10, WHERE),
    {
        "name": "bashy",
        "priority": 50,
        "script": '#!/bin/bash\necho bashy >>"$VMTAILOR_FIRSTBOOT_ROOT/order"\necho "bash $BASH_VERSION"',
    },
]
ORDER = "first\nfails\nbashy\nlast\n"


# -- installation --------------------------------------------------------------------------
def test_systemd_installs_scripts_runner_unit_and_wants_link(tmp_path):
    top = systemd_guest(tmp_path)
    result = apply(top, SCRIPTS)
    assert result.changes
    names = sorted(os.listdir(top / f"{FB}/scripts"))
    assert names == ["10-first", "20-fails", "50-bashy", "90-last"]
    for name in names:
        st = (top / f"{FB}/scripts/{name}").stat()
        assert st.st_mode & 0o7777 == 0o755 and st.st_uid == 0
    assert (top / f"{FB}/scripts/10-first").read_text().startswith("#!/bin/sh\necho first")
    assert (top / f"{FB}/scripts/50-bashy").read_text().startswith("#!/bin/bash\n")
    assert (top / f"{FB}/scripts/90-last").read_text().endswith("\n")
    assert (top / RUNNER).stat().st_mode & 0o7777 == 0o755
    assert (top / f"{FB}/scripts").stat().st_mode & 0o7777 == 0o700
    assert (top / f"{FB}/scripts-done").is_dir()

    unit = (top / UNIT).read_text()
    for line in (
        "Type=oneshot",
        "After=network-online.target",
        "Wants=network-online.target",
        "RemainAfterExit=no",
        "TimeoutSec=0",
        "StandardOutput=journal+console",
        f"ExecStart=/{RUNNER}",
        "WantedBy=multi-user.target",
    ):
        assert line in unit.splitlines()
    assert os.readlink(top / WANTS) == f"/{UNIT}"
    # the hook is staged after the runner it starts
    paths = [c.path for c in result.changes]
    assert paths.index(f"/{RUNNER}") < paths.index(f"/{WANTS}")


@pytest.mark.parametrize("init", sorted(GUESTS))
def test_second_apply_changes_nothing(tmp_path, init):
    top = GUESTS[init](tmp_path)
    assert apply(top, SCRIPTS).changes
    again = apply(top, SCRIPTS)
    assert again.changes == []
    assert again.already_applied


@pytest.mark.parametrize("init", sorted(GUESTS))
def test_revert_restores_byte_for_byte(tmp_path, init):
    top = GUESTS[init](tmp_path)
    before = tree_digest(top)
    apply(top, SCRIPTS)
    assert tree_digest(top, JOURNAL) != before
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_changed_script_replaces_the_old_one(tmp_path):
    top = systemd_guest(tmp_path)
    apply(top, [{"name": "reg", "script": "echo one"}])
    assert (top / f"{FB}/scripts/50-reg").exists()
    result = apply(top, [{"name": "reg", "priority": 5, "script": "echo two"}])
    assert sorted(os.listdir(top / f"{FB}/scripts")) == ["05-reg"]
    assert (top / f"{FB}/scripts/05-reg").read_text() == "#!/bin/sh\necho two\n"
    assert {c.action for c in result.changes} == {"create", "delete"}


def test_unknown_init_is_refused_before_anything_is_written(tmp_path):
    _write(tmp_path, "etc/os-release", 'ID=debian\nVERSION_ID="12"\n')
    before = tree_digest(tmp_path)
    with pytest.raises(PlanError, match=r"init system is unknown \(looked for systemd, sysvinit"):
        apply(tmp_path, [{"name": "x", "script": "true"}])
    assert tree_digest(tmp_path) == before


# -- rc.local (sysvinit, upstart) ----------------------------------------------------------
def test_sysvinit_block_goes_before_exit_0_and_rc_local_becomes_executable(tmp_path):
    top = sysvinit_guest(tmp_path, mode=0o644)
    apply(top, SCRIPTS)
    text = (top / "etc/rc.local").read_text()
    assert text == DEBIAN_RC_LOCAL.replace("\nexit 0\n", "\n" + firstboot.RC_BLOCK + "exit 0\n")
    assert f"/{RUNNER} || true" in text  # rc.local runs with sh -e
    assert (top / "etc/rc.local").stat().st_mode & 0o7777 == 0o755


def test_missing_rc_local_is_created(tmp_path):
    top = sysvinit_guest(tmp_path, rc_local=None)
    apply(top, SCRIPTS)
    text = (top / "etc/rc.local").read_text()
    assert text.startswith("#!/bin/sh -e\n")
    assert text.endswith(firstboot.RC_BLOCK + "exit 0\n")
    assert (top / "etc/rc.local").stat().st_mode & 0o7777 == 0o755
    subprocess.run(["sh", "-n", str(top / "etc/rc.local")], check=True)


def test_el6_rc_local_is_edited_through_its_symlink(tmp_path):
    top = upstart_el6_guest(tmp_path)
    apply(top, SCRIPTS)
    assert os.readlink(top / "etc/rc.local") == "rc.d/rc.local"
    text = (top / "etc/rc.d/rc.local").read_text()
    assert text == EL6_RC_LOCAL + firstboot.RC_BLOCK  # no trailing exit: appended
    assert (top / "etc/rc.d/rc.local").stat().st_mode & 0o7777 == 0o755


@pytest.mark.parametrize(
    "text, expected",
    [
        ("#!/bin/sh\nexit 0\n", "#!/bin/sh\n@exit 0\n"),
        (
            "#!/bin/sh\nexit 0\n\n# trailing comment\n\n",
            "#!/bin/sh\n@exit 0\n\n# trailing comment\n\n",
        ),
        ("#!/bin/sh\nif x; then\n  exit 0\nfi\n", "#!/bin/sh\nif x; then\n  exit 0\nfi\n@"),
        ("#!/bin/sh\ntouch /x", "#!/bin/sh\ntouch /x\n@"),
        ("#!/bin/sh\n    exit 0  # done\n", "#!/bin/sh\n@    exit 0  # done\n"),
    ],
)
def test_add_rc_block(text, expected):
    out = firstboot.add_rc_block(text)
    assert out == expected.replace("@", firstboot.RC_BLOCK)
    assert firstboot.add_rc_block(out) == out  # already there: same text
    assert firstboot.strip_rc_block(out) == (text if text.endswith("\n") else text + "\n")


# -- OpenRC --------------------------------------------------------------------------------
def test_openrc_installs_local_d_and_enables_local(tmp_path):
    top = openrc_guest(tmp_path)
    apply(top, SCRIPTS)
    start = top / LOCAL_D
    assert start.stat().st_mode & 0o7777 == 0o755
    assert f"/{RUNNER}" in start.read_text()
    assert os.readlink(top / "etc/runlevels/default/local") == "/etc/init.d/local"


def test_openrc_local_already_enabled_is_left_alone(tmp_path):
    top = openrc_guest(tmp_path, local_enabled=True)
    result = apply(top, SCRIPTS)
    assert "/etc/runlevels/default/local" not in [c.path for c in result.changes]


# -- running the installed runner for real -------------------------------------------------
def _shells() -> list[tuple[str, ...]]:
    shells = [("/bin/sh",)]
    if shutil.which("bash"):
        shells.append(("bash", "--posix"))
    if shutil.which("busybox"):
        shells.append(("busybox", "sh"))
    return shells


@pytest.mark.parametrize("shell", _shells(), ids=lambda s: " ".join(s))
@pytest.mark.parametrize("init", sorted(GUESTS))
def test_runner_runs_each_script_once_in_order_and_removes_its_hook(tmp_path, init, shell):
    top = GUESTS[init](tmp_path)
    rc_local = rc_local_of(top)
    rc_before = rc_local.read_bytes() if rc_local.exists() else None
    apply(top, SCRIPTS)
    assert hook_present(top, init)

    proc = run_runner(top, shell)
    assert proc.returncode == 0, proc.stderr
    assert (top / "order").read_text() == ORDER
    assert os.listdir(top / f"{FB}/scripts") == []
    assert sorted(os.listdir(top / f"{FB}/scripts-done")) == [
        "10-first",
        "20-fails",
        "50-bashy",
        "90-last",
    ]
    assert "20-fails: exit status 3" in proc.stdout

    log = (top / "var/log/vmtailor-firstboot.log").read_text()
    assert (top / "var/log/vmtailor-firstboot.log").stat().st_mode & 0o777 == 0o600
    assert "running from done" in log and "running from elsewhere" not in log
    assert "still queued" not in log
    assert "oops on stderr" in log and "bash " in log
    for name, status in (("10-first", 0), ("20-fails", 3), ("50-bashy", 0), ("90-last", 0)):
        assert f"{name}: started ===" in log
        assert f"{name}: exit status {status} ===" in log
    assert log.index("10-first: started") < log.index("90-last: started")

    # the hook removed itself, and nothing else went with it
    assert not hook_present(top, init)
    if init == "systemd":
        assert (top / UNIT).exists()
    if init in ("sysvinit", "upstart"):
        assert rc_local.read_bytes() == rc_before
        assert os.access(rc_local, os.X_OK)
        assert not list(rc_local.parent.glob("*.vmtailor-tmp"))
    if init == "upstart":
        assert os.readlink(top / "etc/rc.local") == "rc.d/rc.local"

    # next boot: nothing left to run
    again = run_runner(top, shell)
    assert again.returncode == 0, again.stderr
    assert (top / "order").read_text() == ORDER
    assert (top / "var/log/vmtailor-firstboot.log").read_text() == log


def test_a_script_that_reboots_is_not_run_again(tmp_path):
    top = systemd_guest(tmp_path)
    reboot = _record("reboot", 20, 'kill -KILL "$PPID"\nexit 0\n')
    apply(top, [_record("before", 10), reboot, _record("after", 30)])
    first = run_runner(top)
    assert first.returncode == -9  # the "reboot" killed the runner mid-run
    assert (top / "order").read_text() == "before\nreboot\n"
    assert os.path.lexists(top / WANTS)  # the hook stays for the next boot

    second = run_runner(top)
    assert second.returncode == 0, second.stderr
    assert (top / "order").read_text() == "before\nreboot\nafter\n"
    assert not os.path.lexists(top / WANTS)


def test_scripts_queued_by_other_operations_are_installed(tmp_path):
    top = systemd_guest(tmp_path)
    _write(top, "etc/ssh/ssh_host_ed25519_key", "secret")
    apply(top, [_record("mine", 50)], reset=["ssh-host-keys"])
    assert sorted(os.listdir(top / f"{FB}/scripts")) == ["00-vmtailor-ssh-host-keys", "50-mine"]


def test_name_used_by_a_queued_script_is_refused(tmp_path):
    top = systemd_guest(tmp_path)
    _write(top, "etc/ssh/ssh_host_ed25519_key", "secret")
    with pytest.raises(PlanError, match="'vmtailor-ssh-host-keys' is used twice"):
        apply(top, [{"name": "vmtailor-ssh-host-keys", "script": "true"}], reset=["ssh-host-keys"])


# -- the runner as a shell program ---------------------------------------------------------
def _runners(tmp_path) -> list[Path]:
    out = []
    for init, make in GUESTS.items():
        top = make(tmp_path / init)
        apply(top, SCRIPTS)
        out.append(top / RUNNER)
    return out


def test_runner_is_valid_posix_sh(tmp_path):
    for runner in _runners(tmp_path):
        for shell in _shells():
            subprocess.run([*shell, "-n", str(runner)], check=True)


def test_runner_passes_shellcheck(tmp_path):
    runners = [str(r) for r in _runners(tmp_path)]
    proc = subprocess.run(["shellcheck", "-s", "sh", *runners], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


# -- the fixture guest roots ---------------------------------------------------------------
def _fixture_roots() -> list[str]:
    out = []
    for name in fixture_roots.ROOTS:
        expect = fixture_roots.describe(name)["expect"]
        if expect.get("supported", True) and expect.get("init") in GUESTS:
            out.append(name)
    return out


@pytest.mark.parametrize("name", _fixture_roots())
def test_fixture_root_round_trip(make_root, name):
    top = make_root(name)
    init = fixture_roots.describe(name)["expect"]["init"]
    before = tree_digest(top)
    result = apply(top, SCRIPTS)
    assert result.guest.init == init
    assert hook_present(top, init)
    assert apply(top, SCRIPTS).changes == []
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before

    apply(top, SCRIPTS)
    proc = run_runner(top)
    assert proc.returncode == 0, proc.stderr
    assert (top / "order").read_text() == ORDER
    assert not hook_present(top, init)


def test_sles11_hook_is_a_script_its_init_runs(make_root):
    # SLES 11's /etc/init.d/rc executes (not sources) after.local at the end of boot
    top = make_root("sles-11")
    apply(top, SCRIPTS)
    assert firstboot.BEGIN in (top / "etc/init.d/after.local").read_text()
