"""The fixture guest roots (scripts/fixture_roots): built trees match their declarations,
are internally consistent guests, agree with their own `expect`, and build reproducibly."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import fixture_roots  # noqa: E402

ALL = fixture_roots.ROOTS
SUPPORTED = [n for n in ALL if fixture_roots.describe(n)["expect"]["supported"]]
AS_ROOT = os.geteuid() == 0
HEX32 = re.compile(r"^[0-9a-f]{32}\n$")


@pytest.fixture
def scratch(request):
    """A directory on tmpfs when there is one: a tree costs ~2 ms there, ~80 ms on disk.
    (Not tmp_path: creating pytest's base temp dir also prunes old runs, slow on disk.)"""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield request.getfixturevalue("tmp_path")
        return
    top = Path(tempfile.mkdtemp(prefix="fixture-roots-", dir=shm))
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def built(scratch):
    def build(name: str) -> Path:
        return fixture_roots.build(name, scratch / name)

    return build


# -- guest-path helpers: resolve symlinks as the guest would, never via the host -------


def resolve(top: Path, path: str) -> str:
    """`path` with every symlink followed inside `top` (absolute targets restart at top)."""
    todo = [p for p in path.split("/") if p]
    done: list[str] = []
    for _ in range(200):
        if not todo:
            return "/" + "/".join(done)
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            done = done[:-1]
            continue
        host = top.joinpath(*done, part)
        if host.is_symlink():
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p] + todo
        else:
            done.append(part)
    raise AssertionError(f"symlink loop resolving {path}")


def guest(top: Path, path: str) -> Path:
    return top / resolve(top, path).lstrip("/")


def read(top: Path, path: str) -> str:
    return guest(top, path).read_text()


def os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            words = shlex.split(value)
            out[key] = words[0] if words else ""
    return out


def table(top: Path, path: str) -> dict[str, list[str]]:
    """passwd/group/shadow-style file: name -> fields."""
    rows = [line.split(":") for line in read(top, path).splitlines() if line]
    return {row[0]: row for row in rows}


# -- the build does what the declaration says ---------------------------------------------


def test_roots_are_the_agreed_set():
    assert sorted(ALL) == ALL
    assert set(ALL) == {
        "alpine-3.20", "arch", "centos-6", "centos-7", "debian-12", "debian-7",
        "fedora-40", "gentoo", "no-os", "opensuse-leap-15.5", "rocky-9", "sles-11",
        "ubuntu-22.04",
    }  # fmt: skip


@pytest.mark.parametrize("name", ALL)
def test_tree_matches_declaration(built, name):
    spec = fixture_roots.describe(name)
    top = built(name)
    for path, want in spec["files"].items():
        st = os.lstat(top / path.lstrip("/"))
        assert stat.S_ISREG(st.st_mode), path
        assert (top / path.lstrip("/")).read_bytes() == want["content"].encode(), path
        assert stat.S_IMODE(st.st_mode) == want["mode"], path
        if AS_ROOT:
            assert (st.st_uid, st.st_gid) == (want["uid"], want["gid"]), path
    for path, want in spec["dirs"].items():
        st = os.lstat(top / path.lstrip("/"))
        assert stat.S_ISDIR(st.st_mode), path
        assert stat.S_IMODE(st.st_mode) == want["mode"], path
        if AS_ROOT:
            assert (st.st_uid, st.st_gid) == (want["uid"], want["gid"]), path
    for path, target in spec["symlinks"].items():
        assert os.readlink(top / path.lstrip("/")) == target, path  # kept verbatim


@pytest.mark.parametrize("name", ALL)
def test_symlinks_resolve_inside_the_guest_or_into_run(built, name):
    """No broken link by accident: a link may dangle only into /run, empty offline."""
    top = built(name)
    for path in fixture_roots.describe(name)["symlinks"]:
        final = resolve(top, path)
        if not os.path.lexists(top / final.lstrip("/")):
            assert final.startswith("/run/"), f"{path} dangles at {final}"


@pytest.mark.parametrize("name", ALL)
def test_builds_are_identical(scratch, name):
    one = fixture_roots.build(name, scratch / "one")
    two = fixture_roots.build(name, scratch / "two")
    assert fixture_roots.manifest(one) == fixture_roots.manifest(two)
    assert all(os.lstat(p).st_mtime == fixture_roots.MTIME for p in one.rglob("*"))


def test_shadow_owner_and_mode_as_declared(built):
    debian = built("debian-12")
    st = os.stat(debian / "etc/shadow")
    assert stat.S_IMODE(st.st_mode) == 0o640
    if AS_ROOT:
        assert (st.st_uid, st.st_gid) == (0, int(table(debian, "/etc/group")["shadow"][2]))
    assert stat.S_IMODE(os.stat(built("rocky-9") / "etc/shadow").st_mode) == 0o000
    assert stat.S_IMODE(os.stat(built("arch") / "etc/shadow").st_mode) == 0o600


def test_dangling_and_chained_links(built):
    ubuntu = built("ubuntu-22.04")
    assert os.readlink(ubuntu / "etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"
    assert not (ubuntu / "etc/resolv.conf").exists()
    fedora = built("fedora-40")
    assert resolve(fedora, "/etc/os-release") == "/usr/lib/os.release.d/os-release-cloud"
    debian = built("debian-12")
    # Absolute target: only correct when resolved inside the guest, never on the host.
    assert os.readlink(debian / "usr/sbin/init") == "/lib/systemd/systemd"
    assert resolve(debian, "/sbin/init") == "/usr/lib/systemd/systemd"


def test_describe_returns_a_copy():
    fixture_roots.describe("debian-12")["expect"]["id"] = "changed"
    fixture_roots.describe("debian-12")["files"].clear()
    again = fixture_roots.describe("debian-12")
    assert again["expect"]["id"] == "debian" and again["files"]


def test_build_refuses_a_non_empty_destination(scratch):
    (scratch / "left-over").write_text("x")
    with pytest.raises(fixture_roots.FixtureError, match="not empty"):
        fixture_roots.build("no-os", scratch)


def test_unknown_root():
    with pytest.raises(fixture_roots.FixtureError, match="unknown fixture root 'plan9'"):
        fixture_roots.describe("plan9")
    with pytest.raises(fixture_roots.FixtureError):
        fixture_roots.describe("_fhs")  # a base, not a root


# -- the trees are the guests their `expect` says ------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_os_identity(built, name):
    expect = fixture_roots.describe(name)["expect"]
    top = built(name)
    if (top / "etc/os-release").is_symlink() or (top / "etc/os-release").exists():
        fields = os_release(read(top, "/etc/os-release"))
        assert fields["ID"] == expect["id"]
        assert fields.get("VERSION_ID") == expect["version"]
        return
    # No os-release: the legacy release file must say the same thing.
    legacy = {
        "debian-7": ("/etc/debian_version", "7."),
        "centos-6": ("/etc/redhat-release", "CentOS release 6.10 (Final)"),
        "sles-11": ("/etc/SuSE-release", "SUSE Linux Enterprise Server 11"),
    }
    if name in legacy:
        path, text = legacy[name]
        assert read(top, path).startswith(text)
    else:
        assert expect["id"] is None
        assert not [p for p in top.rglob("*") if p.name.endswith("-release")]


@pytest.mark.parametrize("name", SUPPORTED)
def test_accounts_are_consistent(built, name):
    expect = fixture_roots.describe(name)["expect"]
    top = built(name)
    passwd, group = table(top, "/etc/passwd"), table(top, "/etc/group")
    shadow = table(top, "/etc/shadow")
    assert set(shadow) == set(passwd)
    assert {row[3] for row in passwd.values()} <= {row[2] for row in group.values()}
    if guest(top, "/etc/gshadow").exists():
        assert set(table(top, "/etc/gshadow")) == set(group)
    assert expect["admin_group"] in group
    user = expect["user"]
    row = passwd[user["name"]]
    assert (int(row[2]), int(row[3]), row[5]) == (user["uid"], user["gid"], user["home"])
    home = guest(top, user["home"])
    assert home.is_dir()
    if AS_ROOT:
        assert (home.stat().st_uid, home.stat().st_gid) == (user["uid"], user["gid"])
    assert shadow["root"][1] in {"*", "!", "!!", "!locked"} or shadow["root"][1].startswith("$")


@pytest.mark.parametrize("name", SUPPORTED)
def test_hostname_and_machine_id(built, name):
    expect = fixture_roots.describe(name)["expect"]
    top = built(name)
    sources = ["/etc/hostname", "/etc/HOSTNAME", "/etc/sysconfig/network"]
    texts = [read(top, p) for p in sources if guest(top, p).is_file()]
    assert any(re.search(rf"(^|=){expect['hostname']}(\.|$)", t, re.M) for t in texts)
    # RHEL-likes ship /etc/hosts without the host's own name; everyone else adds it.
    assert expect["hostname"] in read(top, "/etc/hosts") or expect["family"] in ("rhel", "fedora")
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        if guest(top, path).is_file():
            assert HEX32.match(read(top, path)), path


@pytest.mark.parametrize("name", ALL)
def test_init_markers(built, name):
    init = fixture_roots.describe(name)["expect"]["init"]
    top = built(name)
    if init == "systemd":
        assert resolve(top, "/sbin/init") == "/usr/lib/systemd/systemd"
        assert guest(top, "/usr/lib/systemd/systemd").stat().st_mode & 0o111
        wants = guest(top, "/etc/systemd/system/multi-user.target.wants")
        for link in wants.iterdir():
            assert guest(top, resolve(top, str(link.relative_to(top)))).is_file(), link
    elif init in ("sysvinit", "upstart"):
        assert guest(top, "/sbin/init").is_file() and not (top / "sbin/init").is_symlink()
        assert "initdefault" in read(top, "/etc/inittab")
        if init == "upstart":
            assert guest(top, "/sbin/initctl").is_file() and guest(top, "/etc/init").is_dir()
    elif init == "openrc":
        assert guest(top, "/sbin/openrc").is_file()
        assert guest(top, "/etc/runlevels/default/sshd").is_file()
    else:
        assert not guest(top, "/sbin/init").exists()


@pytest.mark.parametrize("name", SUPPORTED)
def test_ssh_host_keys_and_regeneration(built, name):
    expect = fixture_roots.describe(name)["expect"]
    top = built(name)
    keys = sorted((guest(top, "/etc/ssh")).glob("ssh_host_*_key"))
    assert keys
    groups = {row[2]: row[0] for row in table(top, "/etc/group").values()}
    for key in keys:
        st, pub = key.stat(), key.with_name(key.name + ".pub").stat()
        assert stat.S_IMODE(pub.st_mode) == 0o644
        assert stat.S_IMODE(st.st_mode) in (0o600, 0o640), key
        if stat.S_IMODE(st.st_mode) == 0o640 and AS_ROOT:
            assert groups[str(st.st_gid)] == "ssh_keys", key  # EL7-EL9 only
    assert "PermitRootLogin" in read(top, "/etc/ssh/sshd_config")
    regen = [
        "/usr/lib/systemd/system/sshd-keygen@.service",  # RHEL 9, Fedora
        "/usr/lib/systemd/system/sshd-keygen.service",  # CentOS 7
        "/usr/lib/systemd/system/sshdgenkeys.service",  # Arch
        "/usr/sbin/sshd-gen-keys-start",  # openSUSE
    ]
    found = [p for p in regen if guest(top, p).is_file()]
    for script in ("/etc/init.d/sshd", "/etc/rc.d/init.d/sshd"):  # SysV/OpenRC scripts
        if guest(top, script).is_file() and "ssh-keygen" in read(top, script):
            found.append(script)
    assert bool(found) == expect["ssh_regenerates_host_keys"], found
    if "/usr/sbin/sshd-gen-keys-start" in found:
        assert "ExecStartPre=/usr/sbin/sshd-gen-keys-start" in read(
            top, "/usr/lib/systemd/system/sshd.service"
        )


NETWORK_MARKERS = {
    "ifupdown": ["/etc/network/interfaces", "/sbin/ifup"],
    "netplan": ["/usr/sbin/netplan", "/etc/netplan/50-cloud-init.yaml"],
    "networkmanager": [
        "/usr/sbin/NetworkManager",
        "/etc/systemd/system/multi-user.target.wants/NetworkManager.service",
    ],
    "networkd": ["/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"],
    "network-scripts": ["/etc/sysconfig/network-scripts/ifcfg-eth0", "/etc/init.d/network"],
    "wicked": ["/etc/sysconfig/network/ifcfg-eth0", "/etc/sysconfig/network/config"],
    "alpine": ["/etc/network/interfaces", "/etc/runlevels/boot/networking"],
}


@pytest.mark.parametrize("name", SUPPORTED)
def test_network_stack(built, name):
    expect = fixture_roots.describe(name)["expect"]
    top = built(name)
    assert expect["network"]
    for stack in expect["network"]:
        for marker in NETWORK_MARKERS[stack]:
            assert guest(top, marker).is_file(), (stack, marker)
    if "networkmanager" in expect["network"]:
        profiles = list(guest(top, "/etc/NetworkManager/system-connections").iterdir())
        assert profiles and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in profiles)
    if "wicked" in expect["network"]:
        assert "NETCONFIG_DNS_STATIC_SERVERS=" in read(top, "/etc/sysconfig/network/config")
    mac = expect["nic"]["mac"]
    if mac:  # the pin is somewhere under /etc, in whatever case the distro writes it
        texts = [p.read_text() for p in (top / "etc").rglob("*") if p.is_file()]
        assert any(mac.lower() in t.lower() for t in texts)


@pytest.mark.parametrize("name", SUPPORTED)
def test_selinux_and_rc_local(built, name):
    expect = fixture_roots.describe(name)["expect"]
    top = built(name)
    config = guest(top, "/etc/selinux/config")
    if expect["selinux"]:
        assert re.search(rf"^SELINUX={expect['selinux']}$", config.read_text(), re.M)
    else:
        assert not config.exists()
    if expect["rc_local"]:
        assert guest(top, expect["rc_local"]).is_file()
    mode = {"centos-7": 0o644, "centos-6": 0o755, "debian-7": 0o755}.get(name)
    if mode is not None:
        assert stat.S_IMODE(guest(top, expect["rc_local"]).stat().st_mode) == mode


# -- the command line and the format's error messages -----------------------------------


def test_cli_list_runs_as_a_script():
    script = REPO / "scripts/fixture_roots.py"
    listed = subprocess.run(
        [sys.executable, str(script), "--list"], capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0 and listed.stdout.split() == ALL


def test_cli_build_and_errors(scratch, capsys):
    assert fixture_roots.main(["alpine-3.20", str(scratch / "guest")]) == 0
    assert (scratch / "guest/etc/alpine-release").read_text() == "3.20.3\n"
    assert fixture_roots.main(["plan9", str(scratch / "other")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fixture_roots: unknown fixture root 'plan9'") and err.count("\n") == 1
    assert fixture_roots.main(["--describe", "rocky-9"]) == 0
    assert '"family": "rhel"' in capsys.readouterr().out


@pytest.fixture
def fixture_dir(scratch, monkeypatch):
    """Point the loader at a scratch directory of YAML files, caches cleared around it."""
    monkeypatch.setattr(fixture_roots, "FIXTURE_DIR", scratch)
    fixture_roots._load_layer.cache_clear()
    fixture_roots._resolve.cache_clear()
    yield scratch
    fixture_roots._load_layer.cache_clear()
    fixture_roots._resolve.cache_clear()


def resolve_text(fixture_dir: Path, monkeypatch, text: str, base: str = "") -> dict:
    (fixture_dir / "t.yaml").write_text(text)
    if base:
        (fixture_dir / "_b.yaml").write_text(base)
    monkeypatch.setattr(fixture_roots, "ROOTS", ["t"])
    return fixture_roots.describe("t")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("files:\n  /etc/x: {mode: 0640}\n", r"t\.yaml: files\[/etc/x\]\.mode: .*quoted"),
        ("files:\n  etc/x: a\n", r"files\[etc/x\]: path must be absolute"),
        ("files:\n  /etc//x: a\n", r"not normalised"),
        ("files:\n  /etc/x: {owner: root}\n", r"unknown key 'owner'"),
        ("colour: red\n", r"t\.yaml: colour: unknown top-level key"),
        ("expect: {version: 12}\n", r"expect\.version: quote it"),
        ("symlinks:\n  /lib: usr/lib\nfiles:\n  /lib/x: a\n", r"/lib/x lies below symlink /lib"),
        ("inherit: [_missing]\n", r"_missing\.yaml: no such fixture"),
        ("files:\n  /x: {content_from: /y}\n", r"content_from /y is not a file"),
    ],
)
def test_format_errors_name_file_and_key(fixture_dir, monkeypatch, text, message):
    with pytest.raises(fixture_roots.FixtureError, match=message):
        resolve_text(fixture_dir, monkeypatch, text)


def test_inheritance_layers_and_remove(fixture_dir, monkeypatch):
    base = "expect: {family: x, id: a}\ndirs:\n  /bin:\n  /etc/gone:\nfiles:\n  /etc/gone/f: f\n"
    spec = resolve_text(
        fixture_dir,
        monkeypatch,
        "inherit: [_b]\nexpect: {id: b}\nremove: [/etc/gone]\nsymlinks:\n  /bin: usr/bin\n"
        "files:\n  /etc/c: {content_from: /etc/b}\n  /etc/b: hi\n",
        base=base,
    )
    assert spec["expect"] == {"family": "x", "id": "b"}
    assert spec["symlinks"] == {"/bin": "usr/bin"} and "/bin" not in spec["dirs"]
    assert "/etc/gone" not in spec["dirs"] and "/etc/gone/f" not in spec["files"]
    assert spec["files"]["/etc/c"]["content"] == "hi"
