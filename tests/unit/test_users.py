"""The users operation, driven through the real engine over small guest trees built here
(and over the shared fixture roots when they exist). Results are read back from disk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import crypt_r
import pytest

from tests.conftest import tree_digest
from vmtailor.customizer import accounts, config, engine
from vmtailor.customizer.errors import PlanError
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.plan import Plan

EPOCH = 1_700_000_000
TODAY = str(EPOCH // 86400)  # 19675
OLD_HASH = crypt_r.crypt("old password", "$6$oldsaltoldsalt12")
NEW_HASH = crypt_r.crypt("new password", "$6$newsaltnewsalt12")
KEY1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1 ops@laptop"
KEY2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQKey2 ops@desk"
OLD_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOld debian@old"
SHADOW_GID = 42


@pytest.fixture(autouse=True)
def _fixed_date(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))


def put(
    top: Path, path: str, content: str | bytes = "", mode: int = 0o644, uid: int = 0, gid: int = 0
) -> None:
    p = top / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    p.write_bytes(content)
    os.chown(p, uid, gid)
    os.chmod(p, mode)


def mkdir(top: Path, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
    p = top / path.lstrip("/")
    p.mkdir(parents=True, exist_ok=True)
    os.chown(p, uid, gid)
    os.chmod(p, mode)


PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    "debian:x:1000:1000:Debian,,,:/home/debian:/bin/bash\n"
)
SHADOW = (
    "root:*:19000:0:99999:7:::\n"
    "daemon:*:19000:0:99999:7:::\n"
    "nobody:*:19000:0:99999:7:::\n"
    f"debian:{OLD_HASH}:19000:0:99999:7:::\n"
)
GROUP = (
    "root:x:0:\n"
    "daemon:x:1:\n"
    "shadow:x:42:\n"
    "sudo:x:27:debian\n"
    "wheel:x:10:\n"
    "users:x:100:\n"
    "nogroup:x:65534:\n"
    "debian:x:1000:\n"
)
GSHADOW = (
    "root:*::\n"
    "daemon:*::\n"
    "shadow:*::\n"
    "sudo:*::debian\n"
    "wheel:*::\n"
    "users:*::\n"
    "nogroup:*::\n"
    "debian:!::\n"
)
OS_RELEASE = {
    "debian": 'ID=debian\nVERSION_ID="12"\n',
    "rhel": 'ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n',
    "alpine": "ID=alpine\nVERSION_ID=3.20.0\n",
}
LOGIN_DEFS = {
    # as shipped: Debian 12 has no HOME_MODE, RHEL 9 says 0700
    "debian": "UMASK\t\t022\nUID_MIN\t\t\t 1000\nUID_MAX\t\t\t60000\nGID_MIN\t\t\t 1000\n"
    "GID_MAX\t\t\t60000\n#SYS_UID_MIN\t\t  100\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\n"
    "PASS_WARN_AGE\t7\n",
    "rhel": "UMASK\t\t022\nHOME_MODE\t0700\nUID_MIN                  1000\nUID_MAX  60000\n"
    "SYS_UID_MIN               201\nSYS_UID_MAX               999\nGID_MIN 1000\n"
    "GID_MAX 60000\nSYS_GID_MIN 201\nSYS_GID_MAX 999\nCREATE_HOME\tyes\n",
    "alpine": None,
}
SUDOERS = {
    "debian": "Defaults\tenv_reset\nroot\tALL=(ALL:ALL) ALL\n%sudo\tALL=(ALL:ALL) ALL\n"
    "@includedir /etc/sudoers.d\n",
    "rhel": "Defaults   always_set_home\nroot\tALL=(ALL) \tALL\n%wheel\tALL=(ALL)\tALL\n"
    "# %wheel\tALL=(ALL)\tNOPASSWD: ALL\n#includedir /etc/sudoers.d\n",
    "alpine": "root ALL=(ALL:ALL) ALL\n# %wheel ALL=(ALL:ALL) ALL\n",
}


def make_guest(top: Path, family: str = "debian") -> Path:
    """A small guest in the family's own formats and file modes."""
    put(top, "/etc/os-release", OS_RELEASE[family])
    put(top, "/etc/passwd", PASSWD)
    put(top, "/etc/passwd-", PASSWD)
    put(top, "/etc/group", GROUP)
    if family == "rhel":
        put(top, "/etc/shadow", SHADOW, 0o000)
        put(top, "/etc/gshadow", GSHADOW, 0o000)
    elif family == "debian":
        put(top, "/etc/shadow", SHADOW, 0o640, 0, SHADOW_GID)
        put(top, "/etc/shadow-", SHADOW, 0o600)
        put(top, "/etc/gshadow", GSHADOW, 0o640, 0, SHADOW_GID)
        put(top, "/etc/adduser.conf", "DSHELL=/bin/bash\n#DIR_MODE=0700\nSKEL=/etc/skel\n")
        put(top, "/etc/default/useradd", "SHELL=/bin/sh\n")
    else:  # alpine: busybox, no gshadow, sshd without PAM
        put(top, "/etc/shadow", SHADOW, 0o640, 0, SHADOW_GID)
        put(top, "/etc/ssh/sshd_config", "#UsePAM no\nPermitRootLogin prohibit-password\n")
    if LOGIN_DEFS[family]:
        put(top, "/etc/login.defs", LOGIN_DEFS[family])
    put(top, "/etc/sudoers", SUDOERS[family], 0o440)
    for shell in ("/bin/bash", "/bin/sh"):
        if family != "alpine" or shell == "/bin/sh":
            put(top, shell, "", 0o755)
    put(top, "/etc/skel/.bashrc", "# bashrc\n")
    put(top, "/etc/skel/.profile", "# profile\n")
    put(top, "/etc/skel/bin/hello", "#!/bin/sh\necho hi\n", 0o755)
    os.chmod(top / "etc/skel/bin", 0o700)
    os.symlink(".bashrc", top / "etc/skel/.bash_login")
    mkdir(top, "/root", 0o700)
    mkdir(top, "/home/debian", 0o700, 1000, 1000)
    put(top, "/home/debian/.bashrc", "# mine\n", 0o644, 1000, 1000)
    mkdir(top, "/home/debian/.ssh", 0o700, 1000, 1000)
    put(top, "/home/debian/.ssh/authorized_keys", OLD_KEY + "\n", 0o600, 1000, 1000)
    mkdir(top, "/var/lib")
    return top


@pytest.fixture
def guest(tmp_path):
    return make_guest(tmp_path / "guest")


def apply(top: Path, users: list[dict], **other):
    return engine.apply(config.parse({"users": users, **other}), LocalRoot(str(top)))


def lines(top: Path, path: str) -> list[str]:
    return (top / path.lstrip("/")).read_text().splitlines()


def meta(top: Path, path: str) -> tuple[int, int, int]:
    st = os.lstat(top / path.lstrip("/"))
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def line_of(top: Path, path: str, name: str) -> str:
    return next(ln for ln in lines(top, path) if ln.split(":")[0] == name)


# -- new users ----------------------------------------------------------------------


def test_new_user_on_debian(guest):
    before = {p: (guest / p).read_bytes() for p in ("etc/passwd", "etc/shadow", "etc/group")}
    result = apply(
        guest,
        [
            {
                "name": "ops",
                "gecos": "Ops Person",
                "password_hash": NEW_HASH,
                "ssh_authorized_keys": [KEY1, KEY2],
            }
        ],
    )
    assert result.changes and not result.warnings

    assert line_of(guest, "/etc/passwd", "ops") == "ops:x:1001:1001:Ops Person:/home/ops:/bin/bash"
    assert line_of(guest, "/etc/shadow", "ops") == f"ops:{NEW_HASH}:{TODAY}:0:99999:7:::"
    assert line_of(guest, "/etc/group", "ops") == "ops:x:1001:"
    assert line_of(guest, "/etc/gshadow", "ops") == "ops:!::"
    # every other line byte for byte, the new one appended
    for path, old in before.items():
        assert (guest / path).read_bytes().startswith(old)
        assert (guest / path).read_bytes().count(b"\n") == old.count(b"\n") + 1
    # the databases keep their modes and owners; backups are untouched
    assert meta(guest, "/etc/passwd") == (0o644, 0, 0)
    assert meta(guest, "/etc/shadow") == (0o640, 0, SHADOW_GID)
    assert meta(guest, "/etc/gshadow") == (0o640, 0, SHADOW_GID)
    assert (guest / "etc/passwd-").read_text() == PASSWD
    assert (guest / "etc/shadow-").read_text() == SHADOW
    assert meta(guest, "/etc/shadow-") == (0o600, 0, 0)

    # home: adduser.conf's default 0700 (Debian 12), skel copied with modes, owned by ops
    assert meta(guest, "/home/ops") == (0o700, 1001, 1001)
    assert (guest / "home/ops/.bashrc").read_text() == "# bashrc\n"
    assert meta(guest, "/home/ops/.bashrc") == (0o644, 1001, 1001)
    assert meta(guest, "/home/ops/bin") == (0o700, 1001, 1001)
    assert meta(guest, "/home/ops/bin/hello") == (0o755, 1001, 1001)
    assert os.readlink(guest / "home/ops/.bash_login") == ".bashrc"
    assert meta(guest, "/home/ops/.ssh") == (0o700, 1001, 1001)
    assert meta(guest, "/home/ops/.ssh/authorized_keys") == (0o600, 1001, 1001)
    assert lines(guest, "/home/ops/.ssh/authorized_keys") == [KEY1, KEY2]


def test_second_apply_changes_nothing(guest):
    users = [
        {
            "name": "ops",
            "groups": ["sudo", "docker"],
            "password_hash": NEW_HASH,
            "ssh_authorized_keys": [KEY1],
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
        },
        {
            "name": "debian",
            "lock_passwd": True,
            "shell": "/bin/sh",
            "gecos": "D",
            "ssh_authorized_keys": [OLD_KEY, KEY2],
            "groups": ["wheel"],
        },
        {"name": "svc", "system": True},
        {"name": "root", "ssh_authorized_keys": [KEY1]},
    ]
    assert apply(guest, users).changes
    after_first = tree_digest(guest, skip=("var/lib/vmtailor",))
    second = apply(guest, users)
    assert second.changes == []
    assert second.already_applied
    assert tree_digest(guest, skip=("var/lib/vmtailor",)) == after_first


def test_revert_restores_everything(guest):
    before = tree_digest(guest)
    apply(
        guest,
        [
            {
                "name": "ops",
                "groups": ["docker"],
                "password_hash": NEW_HASH,
                "ssh_authorized_keys": [KEY1],
                "sudo": ["ALL=(ALL) NOPASSWD:ALL"],
            },
            {"name": "debian", "password_hash": NEW_HASH, "ssh_authorized_keys": [KEY2]},
            {"name": "root", "ssh_authorized_keys": [KEY1]},
        ],
    )
    assert (guest / "home/ops/.bashrc").exists()
    engine.revert(LocalRoot(str(guest)))
    assert tree_digest(guest) == before
    assert not (guest / "home/ops").exists()


def test_uid_is_lowest_free_in_passwd_and_group(tmp_path):
    top = make_guest(tmp_path / "g")
    put(top, "/etc/passwd", PASSWD + "a:x:1002:1000::/home/a:/bin/sh\n")
    put(top, "/etc/group", GROUP + "b:x:1001:\n")
    apply(top, [{"name": "ops"}, {"name": "dev", "primary_group": "users"}])
    # 1000 and 1002 are users, 1001 a group: a user-private group wants uid == gid
    assert line_of(top, "/etc/passwd", "ops").startswith("ops:x:1003:1003:")
    assert line_of(top, "/etc/group", "ops") == "ops:x:1003:"
    # an existing primary group: the uid only needs to be free among users
    assert line_of(top, "/etc/passwd", "dev").startswith("dev:x:1001:100:")
    assert not any(ln.startswith("dev:") for ln in lines(top, "/etc/group"))


def test_login_defs_ranges_and_explicit_uid(tmp_path):
    top = make_guest(tmp_path / "g", "rhel")
    put(
        top,
        "/etc/login.defs",
        LOGIN_DEFS["rhel"].replace("UID_MIN                  1000", "UID_MIN 5000"),
    )
    apply(
        top,
        [
            {"name": "ops"},
            {"name": "svc", "system": True},
            {"name": "fixed", "uid": 4242},
            {"name": "team", "primary_group": "devs"},
        ],
    )
    assert line_of(top, "/etc/passwd", "ops").startswith("ops:x:5000:5000:")
    # system: SYS_UID_MIN 201, no home directory
    assert line_of(top, "/etc/passwd", "svc") == "svc:x:201:201::/home/svc:/bin/bash"
    assert line_of(top, "/etc/group", "svc") == "svc:x:201:"
    assert not (top / "home/svc").exists()
    # a given uid gets a private group of the same number
    assert line_of(top, "/etc/passwd", "fixed").startswith("fixed:x:4242:4242:")
    # a missing primary group is created in the GID range, lowest free
    assert line_of(top, "/etc/group", "devs") == "devs:x:1001:"
    assert line_of(top, "/etc/passwd", "team").startswith("team:x:5001:1001:")
    assert line_of(top, "/etc/gshadow", "devs") == "devs:!::"


def test_defaults_without_login_defs(tmp_path):
    top = make_guest(tmp_path / "g", "alpine")
    apply(top, [{"name": "ops", "ssh_authorized_keys": [KEY1]}, {"name": "svc", "system": True}])
    assert line_of(top, "/etc/passwd", "ops") == "ops:x:1001:1001::/home/ops:/bin/sh"
    # SYS_UID_MIN defaults to 100, but gid 100 is "users": uid and gid both free is 101
    assert line_of(top, "/etc/passwd", "svc").startswith("svc:x:101:101:")
    assert meta(top, "/home/ops") == (0o700, 1001, 1001)
    # sshd without PAM refuses keys to "!"-locked accounts: "*" is no password, unlocked
    assert line_of(top, "/etc/shadow", "ops") == f"ops:*:{TODAY}:0:99999:7:::"
    assert line_of(top, "/etc/shadow", "svc") == f"svc:!:{TODAY}:0:99999:7:::"
    assert not (top / "etc/gshadow").exists()


def test_rhel_formats_and_home_mode(tmp_path):
    top = make_guest(tmp_path / "g", "rhel")
    apply(top, [{"name": "ops", "groups": ["wheel"], "lock_passwd": True}])
    assert meta(top, "/etc/shadow") == (0o000, 0, 0)
    assert meta(top, "/etc/gshadow") == (0o000, 0, 0)
    assert meta(top, "/home/ops") == (0o700, 1001, 1001)
    assert line_of(top, "/etc/shadow", "ops") == f"ops:!:{TODAY}:0:99999:7:::"
    assert line_of(top, "/etc/group", "wheel") == "wheel:x:10:ops"
    assert line_of(top, "/etc/gshadow", "wheel") == "wheel:*::ops"


@pytest.mark.parametrize(
    ("defs", "adduser", "mode"),
    [
        ("UMASK 077\n", None, 0o700),  # Arch, CentOS 7
        ("UMASK 022\n", None, 0o755),  # useradd on a guest without HOME_MODE
        ("UMASK 022\nHOME_MODE 0750\n", None, 0o750),
        ("UMASK 022\nHOME_MODE 0750\n", "DIR_MODE=0750\n", 0o750),  # Ubuntu 22.04
        ("UMASK 022\n", "DIR_MODE=0755\n", 0o755),  # Debian 11's adduser
        ("UMASK 022\n", "#DIR_MODE=0700\n", 0o700),  # Debian 12's adduser
        ("", None, 0o700),
    ],
)
def test_home_mode(tmp_path, defs, adduser, mode):
    top = make_guest(tmp_path / "g", "rhel")
    put(top, "/etc/login.defs", defs)
    if adduser is not None:
        put(top, "/etc/adduser.conf", adduser)
    apply(top, [{"name": "ops"}])
    assert meta(top, "/home/ops") == (mode, 1001, 1001)


def test_shell_defaults(tmp_path):
    top = make_guest(tmp_path / "g")
    apply(top, [{"name": "a"}, {"name": "b", "shell": "/bin/sh"}])
    assert line_of(top, "/etc/passwd", "a").endswith(":/bin/bash")  # adduser's DSHELL
    assert line_of(top, "/etc/passwd", "b").endswith(":/bin/sh")
    (top / "etc/adduser.conf").unlink()
    apply(top, [{"name": "c"}])
    assert line_of(top, "/etc/passwd", "c").endswith(":/bin/sh")  # default/useradd SHELL=
    (top / "etc/default/useradd").unlink()
    apply(top, [{"name": "d"}])
    assert line_of(top, "/etc/passwd", "d").endswith(":/bin/bash")  # it exists
    (top / "bin/bash").unlink()
    result = apply(top, [{"name": "e"}, {"name": "f", "shell": "/bin/zsh"}])
    assert line_of(top, "/etc/passwd", "e").endswith(":/bin/sh")
    assert line_of(top, "/etc/passwd", "f").endswith(":/bin/zsh")
    assert result.warnings == ["users[1] (f): shell /bin/zsh does not exist in the guest"]


@pytest.mark.parametrize("group", ["100", "users"])
def test_shared_group_without_usergroups(tmp_path, group):
    # SUSE: USERGROUPS_ENAB no, and new users join GROUP= from /etc/default/useradd
    top = make_guest(tmp_path / "g", "rhel")
    put(top, "/etc/login.defs", LOGIN_DEFS["rhel"] + "USERGROUPS_ENAB no\n")
    put(top, "/etc/default/useradd", f"GROUP={group}\nHOME=/home\n")
    apply(top, [{"name": "ops"}, {"name": "dev", "primary_group": "devs"}])
    assert line_of(top, "/etc/passwd", "ops").startswith("ops:x:1001:100:")
    assert not any(ln.startswith("ops:") for ln in lines(top, "/etc/group"))
    assert meta(top, "/home/ops") == (0o700, 1001, 100)
    assert line_of(top, "/etc/passwd", "dev").startswith("dev:x:1002:1001:")


def test_existing_home_and_group_are_reused(tmp_path):
    top = make_guest(tmp_path / "g")
    mkdir(top, "/home/ops", 0o755, 0, 0)
    put(top, "/etc/group", GROUP + "ops:x:2000:\n")
    apply(top, [{"name": "ops"}])
    # a group of the user's name is taken as its own, and its number as the uid
    assert line_of(top, "/etc/passwd", "ops").startswith("ops:x:2000:2000:")
    assert [ln for ln in lines(top, "/etc/group") if ln.startswith("ops:")] == ["ops:x:2000:"]
    assert meta(top, "/home/ops") == (0o755, 0, 0)  # left alone: no chown, no skel
    assert not (top / "home/ops/.bashrc").exists()


def test_stale_shadow_and_gshadow_lines_are_replaced(tmp_path):
    top = make_guest(tmp_path / "g")
    put(top, "/etc/shadow", SHADOW + "ops:$6$stale$stale:1:2:3:4:::\n", 0o640, 0, SHADOW_GID)
    put(top, "/etc/gshadow", GSHADOW + "ops:x:adm:someone\n", 0o640, 0, SHADOW_GID)
    apply(top, [{"name": "ops"}])
    assert [ln for ln in lines(top, "/etc/shadow") if ln.startswith("ops:")] == [
        f"ops:!:{TODAY}:0:99999:7:::"
    ]
    assert [ln for ln in lines(top, "/etc/gshadow") if ln.startswith("ops:")] == ["ops:!::"]


def test_other_lines_are_kept_byte_for_byte(tmp_path):
    top = make_guest(tmp_path / "g")
    odd = (
        "# local accounts\n"
        "root:x:0:0:root:/root:/bin/bash\n"
        "debian:x:1000:1000:D\x0cform\u2028feed:/home/debian:/bin/bash\n"
        "\n"
        "short:x:1500\n"
        "+@netgroup::::::\n"
        "+::::::"  # NIS, and no newline at the end
    )
    put(top, "/etc/passwd", odd)
    apply(top, [{"name": "ops"}])
    text = (top / "etc/passwd").read_text()
    # new accounts go before the NIS lines; the file ends with a newline
    assert (
        text == odd.replace("+@netgroup", "ops:x:1001:1001::/home/ops:/bin/bash\n+@netgroup") + "\n"
    )


# -- existing users -----------------------------------------------------------------


def test_update_existing_user(guest):
    put(guest, "/etc/skel/.new-in-skel", "x\n")
    put(guest, "/home/debian/.ssh/authorized_keys", OLD_KEY + "\n" + KEY1, 0o644, 1000, 1000)
    result = apply(
        guest,
        [
            {
                "name": "debian",
                "gecos": "Debian User",
                "shell": "/bin/sh",
                "groups": ["wheel", "new"],
                "password_hash": NEW_HASH,
                "ssh_authorized_keys": [KEY1, KEY2, KEY2],
            }
        ],
    )
    assert not result.warnings
    assert line_of(guest, "/etc/passwd", "debian") == (
        "debian:x:1000:1000:Debian User:/home/debian:/bin/sh"
    )
    assert line_of(guest, "/etc/shadow", "debian") == f"debian:{NEW_HASH}:{TODAY}:0:99999:7:::"
    assert line_of(guest, "/etc/group", "wheel") == "wheel:x:10:debian"
    assert line_of(guest, "/etc/gshadow", "wheel") == "wheel:*::debian"
    assert line_of(guest, "/etc/group", "sudo") == "sudo:x:27:debian"  # no duplicate
    assert line_of(guest, "/etc/group", "new") == "new:x:1001:debian"
    assert line_of(guest, "/etc/gshadow", "new") == "new:!::debian"
    # existing home: not re-filled from skel; keys merged, file mode fixed for sshd
    assert not (guest / "home/debian/.new-in-skel").exists()
    assert lines(guest, "/home/debian/.ssh/authorized_keys") == [OLD_KEY, KEY1, KEY2]
    assert meta(guest, "/home/debian/.ssh/authorized_keys") == (0o600, 1000, 1000)
    # only the lines that changed differ
    old = PASSWD.splitlines()
    assert [a for a, b in zip(old, lines(guest, "/etc/passwd"), strict=True) if a != b] == [old[3]]


def test_config_that_sets_nothing_changes_nothing(guest):
    before = tree_digest(guest)
    result = apply(guest, [{"name": "debian"}])
    assert result.changes == []
    assert tree_digest(guest) == before


@pytest.mark.parametrize(
    ("old", "settings", "new", "lastchg"),
    [
        (OLD_HASH, {"lock_passwd": True}, "!" + OLD_HASH, "19000"),
        ("!" + OLD_HASH, {"lock_passwd": False}, OLD_HASH, "19000"),
        ("!!" + OLD_HASH, {"lock_passwd": False}, OLD_HASH, "19000"),
        ("!" + OLD_HASH, {"password_hash": OLD_HASH}, OLD_HASH, "19000"),
        ("!" + OLD_HASH, {"password_hash": NEW_HASH}, NEW_HASH, TODAY),
        ("!", {"lock_passwd": False}, "*", "19000"),  # never "": that is no password at all
        ("", {"lock_passwd": True}, "!", "19000"),
        ("*", {"lock_passwd": True}, "!*", "19000"),
        (OLD_HASH, {"password_hash": "!"}, "!", TODAY),
    ],
)
def test_password_lock_and_last_change(tmp_path, old, settings, new, lastchg):
    top = make_guest(tmp_path / "g")
    put(top, "/etc/shadow", SHADOW.replace(OLD_HASH, old), 0o640, 0, SHADOW_GID)
    apply(top, [{"name": "debian", **settings}])
    assert line_of(top, "/etc/shadow", "debian") == f"debian:{new}:{lastchg}:0:99999:7:::"


def test_password_moves_out_of_passwd(tmp_path):
    top = make_guest(tmp_path / "g")
    put(top, "/etc/passwd", PASSWD.replace("debian:x:", f"debian:{OLD_HASH}:"))
    put(top, "/etc/shadow", "\n".join(SHADOW.splitlines()[:3]) + "\n", 0o640, 0, SHADOW_GID)
    apply(top, [{"name": "debian", "password_hash": NEW_HASH}])
    assert line_of(top, "/etc/passwd", "debian").startswith("debian:x:1000:")
    assert line_of(top, "/etc/shadow", "debian") == f"debian:{NEW_HASH}:{TODAY}:0:99999:7:::"


def test_root_keys_go_to_root(guest):
    apply(guest, [{"name": "root", "ssh_authorized_keys": [KEY1]}])
    assert lines(guest, "/root/.ssh/authorized_keys") == [KEY1]
    assert meta(guest, "/root/.ssh") == (0o700, 0, 0)
    assert meta(guest, "/root/.ssh/authorized_keys") == (0o600, 0, 0)
    assert not (guest / "root/.bashrc").exists()


def test_existing_user_without_home_gets_one(tmp_path):
    # e.g. a run cut off after the account was written: the next run finishes the home
    top = make_guest(tmp_path / "g")
    put(top, "/etc/passwd", PASSWD + "late:x:1001:1000::/home/late:/bin/bash\n")
    apply(top, [{"name": "late"}, {"name": "daemon", "ssh_authorized_keys": [KEY1]}])
    assert meta(top, "/home/late") == (0o700, 1001, 1000)
    assert (top / "home/late/.profile").exists()
    # a system account gets a home only when its keys need one
    assert meta(top, "/usr/sbin/.ssh/authorized_keys") == (0o600, 1, 1)


# -- sudo ---------------------------------------------------------------------------


def test_sudoers_file(tmp_path):
    top = make_guest(tmp_path / "g", "rhel")
    result = apply(
        top,
        [
            {"name": "ops", "sudo": "ALL=(ALL) NOPASSWD:ALL"},
            {"name": "plain"},
            {"name": "dev", "sudo": ["ALL=(ALL)   /usr/bin/systemctl", "ALL=(root) /bin/ls"]},
            # the distro's %wheel rule already grants this one
            {"name": "admin", "groups": ["wheel"], "sudo": "ALL=(ALL) ALL"},
        ],
    )
    assert not result.warnings
    assert (top / "etc/sudoers.d/90-vmtailor-users").read_text().splitlines()[1:] == [
        "ops ALL=(ALL) NOPASSWD:ALL",
        "dev ALL=(ALL) /usr/bin/systemctl",
        "dev ALL=(root) /bin/ls",
    ]
    assert meta(top, "/etc/sudoers.d/90-vmtailor-users") == (0o440, 0, 0)
    assert meta(top, "/etc/sudoers.d") == (0o750, 0, 0)


def test_admin_group_rule_is_not_duplicated_on_debian(guest):
    apply(
        guest,
        [
            {"name": "debian", "sudo": "ALL=(ALL:ALL) ALL"},
            {"name": "ops", "groups": ["sudo"], "sudo": "ALL=(ALL) ALL"},
        ],
    )
    assert not (guest / "etc/sudoers.d/90-vmtailor-users").exists()
    assert not (guest / "etc/sudoers.d").exists()


def test_sudoers_removed_when_no_user_has_sudo(guest):
    apply(guest, [{"name": "ops", "sudo": "ALL=(ALL) NOPASSWD:ALL"}])
    assert (guest / "etc/sudoers.d/90-vmtailor-users").exists()
    apply(guest, [{"name": "ops"}])
    assert not (guest / "etc/sudoers.d/90-vmtailor-users").exists()


def test_sudoers_warnings(tmp_path):
    top = make_guest(tmp_path / "g", "alpine")
    result = apply(top, [{"name": "ops", "sudo": "ALL=(ALL) ALL"}])
    assert len(result.warnings) == 1
    assert "has no '@includedir /etc/sudoers.d' line" in result.warnings[0]
    (top / "etc/sudoers").unlink()
    result = apply(top, [{"name": "ops", "sudo": "ALL=(ALL) NOPASSWD:ALL"}])
    assert "no /etc/sudoers" in result.warnings[0]


# -- errors: nothing written, one line naming the user, never a hash ----------------


@pytest.mark.parametrize(
    ("users", "message"),
    [
        (
            [
                {"name": "ops", "password_hash": NEW_HASH},
                {"name": "dev", "uid": 1000, "password_hash": NEW_HASH},
            ],
            "users[1] (dev): uid 1000 already belongs to debian",
        ),
        (
            [{"name": "debian", "uid": 1005, "password_hash": NEW_HASH}],
            "users[0] (debian): uid 1005 asked for, but the guest's debian has uid 1000",
        ),
        (
            [{"name": "debian", "homedir": "/srv/debian"}],
            "users[0] (debian): homedir /srv/debian asked for, but the guest's debian has "
            "/home/debian",
        ),
        (
            [{"name": "debian", "primary_group": "users"}],
            "users[0] (debian): primary_group users asked for, but the guest's debian has gid 1000",
        ),
        (
            [{"name": "ops", "homedir": "/etc/passwd", "password_hash": NEW_HASH}],
            "users[0] (ops): home /etc/passwd is a file in the guest, not a directory",
        ),
        (
            [{"name": "ops", "gecos": "a:b"}],
            "users[0] (ops): gecos cannot contain ':' or a newline in /etc/passwd",
        ),
        (
            [{"name": "ops", "sudo": "ALL=(ALL) ALL\nops2 ALL=(ALL) ALL"}],
            "users[0] (ops): a sudo rule must be one non-empty line",
        ),
    ],
)
def test_errors_leave_the_guest_untouched(guest, users, message):
    before = tree_digest(guest)
    with pytest.raises(PlanError) as exc:
        apply(guest, users)
    text = str(exc.value)
    assert text.startswith(message)
    assert "\n" not in text
    assert NEW_HASH not in text and OLD_HASH not in text and "$6$" not in text
    assert tree_digest(guest) == before


@pytest.mark.parametrize("link", [".ssh", ".ssh/authorized_keys"])
def test_keys_are_not_written_through_symlinks(guest, link):
    # a guest user could point these at /etc/shadow; root would then write (and chown) it
    target = guest / "home/debian" / link
    target.rename(target.with_name("real"))
    os.symlink("/etc/shadow" if link.endswith("keys") else "/etc", target)
    before = tree_digest(guest)
    with pytest.raises(PlanError) as exc:
        apply(guest, [{"name": "debian", "ssh_authorized_keys": [KEY1]}])
    assert str(exc.value).startswith(
        f"users[0] (debian): /home/debian/{link} is a symlink in the guest"
    )
    assert tree_digest(guest) == before


def test_no_free_gid_for_primary_group(tmp_path):
    top = make_guest(tmp_path / "g", "rhel")
    put(top, "/etc/login.defs", "GID_MIN 1000\nGID_MAX 1000\n")
    before = tree_digest(top)
    with pytest.raises(
        PlanError,
        match=r"^users\[0\] \(ops\): group staff is missing and there "
        r"is no free gid in 1000\.\.1000 to create it",
    ):
        apply(top, [{"name": "ops", "primary_group": "staff", "password_hash": NEW_HASH}])
    assert tree_digest(top) == before


def test_hashes_stay_out_of_the_journal_log_and_diff(guest, caplog):
    caplog.set_level("DEBUG", logger="vmtailor")
    result = engine.apply(
        config.parse({"users": [{"name": "ops", "password_hash": NEW_HASH}]}),
        LocalRoot(str(guest)),
        diff=True,
    )
    assert NEW_HASH not in caplog.text
    assert NEW_HASH not in result.diff
    assert NEW_HASH not in " ".join(result.warnings)
    assert NEW_HASH not in (guest / "var/lib/vmtailor/journal.json").read_text()


# -- accounts helpers ---------------------------------------------------------------


def test_login_defs_and_defaults(tmp_path):
    top = make_guest(tmp_path / "g", "rhel")
    put(top, "/etc/default/useradd", 'HOME="/srv/home"\nSHELL=/bin/sh\nSKEL=/etc/skel\n')
    d = accounts.load_defaults(Plan(LocalRoot(str(top))))
    assert (d.uid, d.gid, d.sys_uid, d.sys_gid) == ((1000, 60000),) * 2 + ((201, 999),) * 2
    assert (d.home_base, d.shell, d.home_mode) == ("/srv/home", "/bin/sh", 0o700)
    apply(top, [{"name": "ops"}])
    assert line_of(top, "/etc/passwd", "ops") == "ops:x:1001:1001::/srv/home/ops:/bin/sh"


def test_lookup_helpers_see_staged_users(guest):
    plan = Plan(LocalRoot(str(guest)))
    assert accounts.lookup_user(plan, "debian") == (1000, 1000)
    assert accounts.lookup_user(plan, "nobody-here") is None
    assert accounts.lookup_group(plan, "sudo") == 27
    plan.write("/etc/passwd", PASSWD + "ops:x:1001:27::/home/ops:/bin/sh\n")
    assert accounts.lookup_user(plan, "ops") == (1001, 27)
    assert accounts.lookup_user(plan, "1001") == (1001, 27)


# -- the shared fixture roots -------------------------------------------------------


def _supported_roots() -> list[str]:
    import fixture_roots

    return [n for n in fixture_roots.ROOTS if fixture_roots.describe(n)["expect"]["supported"]]


@pytest.mark.parametrize("name", _supported_roots())
def test_fixture_roots(make_root, name):
    import fixture_roots

    expect = fixture_roots.describe(name)["expect"]
    top = make_root(name)
    before = tree_digest(top)
    admin = expect.get("admin_group") or "wheel"
    users = [
        {
            "name": "ops",
            "groups": [admin, "vmtailor-test"],
            "password_hash": NEW_HASH,
            "ssh_authorized_keys": [KEY1],
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
        },
        {"name": "root", "ssh_authorized_keys": [KEY2]},
    ]
    template = (expect.get("user") or {}).get("name")
    if template:
        users.append({"name": template, "ssh_authorized_keys": [KEY1], "lock_passwd": True})
    first = apply(top, users)
    assert first.changes
    shadow_meta = meta(top, "/etc/shadow")
    entry = line_of(top, "/etc/passwd", "ops").split(":")
    uid, gid, home = int(entry[2]), int(entry[3]), entry[5]
    assert line_of(top, "/etc/shadow", "ops").split(":")[1] == NEW_HASH
    assert "ops" in line_of(top, "/etc/group", admin).split(":")[3].split(",")
    assert meta(top, home + "/.ssh/authorized_keys") == (0o600, uid, gid)
    assert lines(top, "/root/.ssh/authorized_keys")[-1] == KEY2
    assert apply(top, users).changes == []
    assert meta(top, "/etc/shadow") == shadow_meta
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


# -- a run cut off anywhere ---------------------------------------------------------


class Cut(Exception):
    pass


def _cut_at(step: int):
    calls = {"n": 0}

    def fault(name: str) -> None:
        if calls["n"] == step:
            raise Cut(name)
        calls["n"] += 1

    return fault


CUT_USERS = [
    {
        "name": "ops",
        "groups": ["docker", "sudo"],
        "password_hash": NEW_HASH,
        "ssh_authorized_keys": [KEY1],
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
    },
    {"name": "debian", "password_hash": NEW_HASH, "ssh_authorized_keys": [KEY2]},
    {"name": "svc", "system": True},
]


def _cut_guest(top: Path) -> Path:
    # a full skel: a home cut off half way through its skel copy is finished on re-run
    # (the journal says vmtailor made it), while a home the guest had is left alone
    return make_guest(top)


def test_cut_anywhere_then_rerun_or_revert(tmp_path):
    cfg = config.parse({"users": CUT_USERS})
    steps: list[str] = []
    done = _cut_guest(tmp_path / "done")
    engine.apply(cfg, LocalRoot(str(done)), fault=steps.append)
    want = tree_digest(done, skip=("var/lib/vmtailor",))
    pristine = tree_digest(_cut_guest(tmp_path / "pristine"))
    applied = [s.removeprefix("apply ") for s in steps if s.startswith("apply ")]
    assert len(applied) > 10
    # group files first and passwd last, then homes, then sudoers
    assert applied[:4] == ["/etc/group", "/etc/gshadow", "/etc/shadow", "/etc/passwd"]
    assert applied[-1] == "/etc/sudoers.d/90-vmtailor-users"
    for k, step in enumerate(steps[:-1]):
        cut = _cut_guest(tmp_path / f"cut{k}")
        with pytest.raises(Cut):
            engine.apply(cfg, LocalRoot(str(cut)), fault=_cut_at(k))
        engine.apply(cfg, LocalRoot(str(cut)))
        assert tree_digest(cut, skip=("var/lib/vmtailor",)) == want, f"re-run after {step}"
        engine.revert(LocalRoot(str(cut)))
        assert tree_digest(cut) == pristine, f"revert after {step}"
