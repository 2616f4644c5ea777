"""users: create or update accounts, passwords, group membership, ssh keys and sudo rules,
by editing the guest's passwd/shadow/group/gshadow the way its own useradd would.

Every step is "ensure": an account, membership or key that is already there is left as
it is, so a second run with the same config stages nothing.
"""

from __future__ import annotations

import os
import posixpath
import re
import time

from .. import accounts
from ..accounts import Accounts, Defaults, Entry, free_id, is_id
from ..config.model import User
from ..context import Context
from ..errors import PlanError
from ..plan import Plan
from .registry import operation

SUDOERS_DIR = "/etc/sudoers.d"
SUDOERS_FILE = f"{SUDOERS_DIR}/90-vmtailor-users"
SUDOERS_HEADER = "# Written by vmtailor from the config's users: sudo rules. Do not edit.\n"
INCLUDEDIR = re.compile(r"^[#@]includedir\s+/etc/sudoers\.d/?\s*$", re.M)


@operation("users", ("users",), 30, "create or update users, passwords, ssh keys, sudo")
def plan(ctx: Context) -> None:
    defaults = accounts.load_defaults(ctx.plan)
    # Fix the order the journal writes the databases in (a plan keeps the order of first
    # touch, and this stages no change): a run cut off part way leaves groups and shadow
    # lines without their account, which the next run reuses, never an account whose
    # group is missing. Homes and keys come after all four, so a cut can leave an account
    # without its home (the next run makes it), never a home owned by an unknown uid.
    for path in (accounts.GROUP, accounts.GSHADOW, accounts.SHADOW, accounts.PASSWD):
        if ctx.plan.is_file(path):
            ctx.plan.set_meta(path)
    sudo_lines: list[str] = []
    for i, user in enumerate(ctx.config.users):
        where = f"users[{i}] ({user.name})"
        try:
            sudo_lines += ensure_user(ctx, defaults, user, where)
        except PlanError as exc:
            raise PlanError(f"{where}: {exc.args[0]}", hint=exc.hint) from None
    write_sudoers(ctx, sudo_lines)


def ensure_user(ctx: Context, d: Defaults, user: User, where: str) -> list[str]:
    """Stage one user's account, groups, home and keys; return its sudoers lines."""
    _check_fields(user)
    plan = ctx.plan
    dbs = Accounts.load(plan)
    entry = dbs.passwd.entry(user.name)
    created = entry is None
    if entry is None:
        entry = _create(ctx, d, dbs, user, where)
    else:
        _update(ctx, d, dbs, entry, user, where)
    for group in user.groups:
        if dbs.group.find(group) is None:
            gid = free_id(dbs.group.ids(), *d.gid)
            if gid is None:
                raise PlanError(f"no free gid in {d.gid[0]}..{d.gid[1]} for group {group}")
            dbs.add_group(group, gid)
        dbs.add_member(group, user.name)
    dbs.save(plan)

    uid, gid = _ids(entry)
    home = entry.fields[5]
    system = user.system if created else not d.uid[0] <= uid <= d.uid[1]
    if not system or user.ssh_authorized_keys:
        ensure_home(plan, d, home, uid, gid, need=bool(user.ssh_authorized_keys))
    if user.ssh_authorized_keys:
        ensure_keys(plan, home, uid, gid, user.ssh_authorized_keys)
    ctx.log.debug("users: %s %s (uid %d)", "created" if created else "updated", user.name, uid)
    return _sudo_lines(ctx, dbs, user, gid)


def _check_fields(user: User) -> None:
    for key in ("gecos", "shell", "homedir"):
        value = getattr(user, key)
        if value is not None and (":" in value or "\n" in value):
            raise PlanError(f"{key} cannot contain ':' or a newline in /etc/passwd")


def _ids(entry: Entry) -> tuple[int, int]:
    uid, gid = entry.fields[2], entry.fields[3]
    if not (is_id(uid) and is_id(gid)):
        raise PlanError(f"the guest's /etc/passwd line for {entry.name} is malformed")
    return int(uid), int(gid)


# -- accounts -----------------------------------------------------------------------


def _create(ctx: Context, d: Defaults, dbs: Accounts, user: User, where: str) -> Entry:
    if not dbs.shadow.present:
        raise PlanError("the guest has no /etc/shadow (vmtailor keeps hashes out of /etc/passwd)")
    uid, gid = _allocate(d, dbs, user)
    home = posixpath.normpath(user.homedir or posixpath.join(d.home_base, user.name))
    entry = dbs.passwd.add(
        [user.name, "x", str(uid), str(gid), user.gecos or "", home, _shell(ctx, d, user, where)]
    )
    if user.password_hash is not None:
        field = user.password_hash
    elif user.lock_passwd is False or (user.ssh_authorized_keys and _sshd_without_pam(ctx.plan)):
        # "*": no password, yet not locked; sshd without PAM refuses keys to "!" accounts
        field = "*"
    else:
        field = "!"
    if user.lock_passwd:
        field = _locked(field)
    fields = [user.name, field, _today(), d.pass_min, d.pass_max, d.pass_warn, "", "", ""]
    stale = dbs.shadow.entry(user.name)  # left behind by a userdel that missed it
    if stale is None:
        dbs.shadow.add(fields)
    else:
        stale.fields[:] = fields
    return entry


def _allocate(d: Defaults, dbs: Accounts, user: User) -> tuple[int, int]:
    """(uid, gid) for a new user, creating its primary group when that is missing."""
    uid_range = d.sys_uid if user.system else d.uid
    gid_range = d.sys_gid if user.system else d.gid
    used_uids, used_gids = dbs.passwd.ids(), dbs.group.ids()
    uid = user.uid
    if uid is not None:
        owner = next(
            (e for e in dbs.passwd.entries if isinstance(e, Entry) and e.fields[2:3] == [str(uid)]),
            None,
        )
        if owner is not None:
            raise PlanError(f"uid {uid} already belongs to {owner.name}")

    group = _shared_group(dbs, d) if user.primary_group is None else None
    private = user.primary_group is None and group is None
    group_name = group.name if group else user.primary_group or user.name
    group = group or dbs.group.entry(group_name)
    if group is not None:
        if not is_id(group.fields[2]):
            raise PlanError(f"the guest's /etc/group line for {group_name} is malformed")
        gid = int(group.fields[2])
        if private:
            # the user's own group is already there (say, a run was cut off after it):
            # take it, and its number for the uid when that is free
            dbs.shadow_group(group_name)
            if uid is None and gid not in used_uids and uid_range[0] <= gid <= uid_range[1]:
                uid = gid
    else:
        if uid is None and private:
            # a user-private group gets the same number as the user, as useradd does
            uid = free_id(used_uids | used_gids, *uid_range)
        maybe = uid if private and uid is not None and uid not in used_gids else None
        maybe = maybe if maybe is not None else free_id(used_gids, *gid_range)
        if maybe is None:
            raise PlanError(
                f"group {group_name} is missing and there is no free gid in "
                f"{gid_range[0]}..{gid_range[1]} to create it"
            )
        gid = maybe
        dbs.add_group(group_name, gid)
    if uid is None:
        uid = free_id(used_uids, *uid_range)
        if uid is None:
            raise PlanError(f"no free uid in {uid_range[0]}..{uid_range[1]}")
    return uid, gid


def _shared_group(dbs: Accounts, d: Defaults) -> Entry | None:
    """The group new users share on a guest without user-private groups, if it exists."""
    if d.shared_group is None:
        return None
    index = 2 if is_id(d.shared_group) else 0
    return next(
        (
            e
            for e in dbs.group.entries
            if isinstance(e, Entry) and e.fields[index : index + 1] == [d.shared_group]
        ),
        None,
    )


def _shell(ctx: Context, d: Defaults, user: User, where: str) -> str:
    if user.shell:
        if not ctx.plan.exists(user.shell):
            ctx.warnings.append(f"{where}: shell {user.shell} does not exist in the guest")
        return user.shell
    for shell in (d.shell, "/bin/bash"):
        if shell and ctx.plan.exists(shell):
            return shell
    return "/bin/sh"


def _update(ctx: Context, d: Defaults, dbs: Accounts, entry: Entry, user: User, where: str) -> None:
    uid, gid = _ids(entry)
    if user.uid is not None and user.uid != uid:
        raise PlanError(
            f"uid {user.uid} asked for, but the guest's {user.name} has uid {uid}",
            hint="vmtailor does not renumber existing users",
        )
    group = dbs.group.find(user.primary_group) if user.primary_group else None
    if user.primary_group is not None and (group is None or group.fields[2:3] != [str(gid)]):
        raise PlanError(
            f"primary_group {user.primary_group} asked for, but the guest's {user.name} has "
            f"gid {gid}",
            hint="vmtailor does not change an existing user's primary group",
        )
    if user.homedir is not None and not _same_path(user.homedir, entry.fields[5]):
        raise PlanError(
            f"homedir {user.homedir} asked for, but the guest's {user.name} has "
            f"{entry.fields[5] or 'none'}",
            hint="vmtailor does not move existing home directories",
        )
    if user.gecos is not None:
        entry.fields[4] = user.gecos
    if user.shell is not None:
        entry.fields[6] = _shell(ctx, d, user, where)
    if user.password_hash is not None or user.lock_passwd is not None:
        _set_password(dbs, d, entry, user)


def _same_path(a: str, b: str) -> bool:
    return bool(b) and posixpath.normpath(a) == posixpath.normpath(b)


def _set_password(dbs: Accounts, d: Defaults, entry: Entry, user: User) -> None:
    if not dbs.shadow.present:
        raise PlanError("the guest has no /etc/shadow (vmtailor keeps hashes out of /etc/passwd)")
    shadow = dbs.shadow.entry(user.name)
    if shadow is None:
        # a passwd field other than "x" is the password itself (no shadow entry yet)
        old = entry.fields[1] if entry.fields[1] != "x" else "!"
        shadow = dbs.shadow.add(
            [user.name, old, _today(), d.pass_min, d.pass_max, d.pass_warn, "", "", ""]
        )
    old = shadow.fields[1]
    new = user.password_hash if user.password_hash is not None else old
    if user.lock_passwd:
        new = _locked(new)
    elif user.lock_passwd is False:
        new = _unlocked(new)
    if new != old:
        if _unlocked(new) != _unlocked(old):
            shadow.fields[2] = _today()  # a new password, not just a lock or unlock
        shadow.fields[1] = new
    entry.fields[1] = "x"


def _locked(field: str) -> str:
    return field if field.startswith("!") else "!" + field


def _unlocked(field: str) -> str:
    # an account with no password behind the "!" becomes "*" (no password, not locked),
    # never "" (no password needed at all)
    return field.lstrip("!") or "*"


def _today() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    seconds = int(epoch) if is_id(epoch) else int(time.time())
    return str(seconds // 86400)


def _sshd_without_pam(plan: Plan) -> bool:
    """Whether the guest's sshd runs without PAM, and so refuses key logins to accounts
    whose password is locked with "!" (Alpine's openssh)."""
    texts = [plan.read_text(p) for p in ("/etc/ssh/sshd_config", "/usr/etc/ssh/sshd_config")]
    for d in ("/etc/ssh/sshd_config.d", "/usr/etc/ssh/sshd_config.d"):
        if plan.is_dir(d):
            texts += [plan.read_text(f"{d}/{n}") for n in plan.listdir(d) if n.endswith(".conf")]
    found = [t for t in texts if t is not None]
    use_pam = re.compile(r"^\s*UsePAM\s+yes\b", re.M | re.I)
    return bool(found) and not any(use_pam.search(t) for t in found)


# -- home and keys ------------------------------------------------------------------


def ensure_home(plan: Plan, d: Defaults, home: str, uid: int, gid: int, need: bool) -> None:
    """Make a missing home directory and fill it from the guest's skel; an existing home is
    left as it is."""
    if not home.startswith("/"):
        if need:
            raise PlanError("has no home directory in /etc/passwd to put ssh keys in")
        return
    st = plan.stat(home)
    if st is not None:
        if st.kind != "dir":
            raise PlanError(f"home {home} is a {st.kind} in the guest, not a directory")
        if plan.resolve(home) in plan.unfinished and plan.is_dir(d.skel):
            # an earlier run made this home and was cut off while filling it
            with plan.group("skel"):
                copy_tree(plan, plan.resolve(d.skel), plan.resolve(home), uid, gid, missing=True)
        return
    plan.mkdir(home, d.home_mode, uid, gid)
    if plan.is_dir(d.skel):
        with plan.group("skel"):
            copy_tree(plan, plan.resolve(d.skel), home, uid, gid)


def copy_tree(plan: Plan, src: str, dst: str, uid: int, gid: int, missing: bool = False) -> None:
    """Copy files, directories and symlinks (not followed) keeping modes, owned by uid:gid;
    with `missing`, only what `dst` lacks."""
    for name in plan.listdir(src):
        source, target = f"{src}/{name}", f"{dst}/{name}"
        kind, link = _lkind(plan, source)
        if missing and kind != "dir" and _lkind(plan, target)[0] is not None:
            continue
        if kind == "symlink":
            plan.symlink(target, link or "")
        elif kind == "dir":
            plan.mkdir(target, plan.stat(source).mode, uid, gid)
            copy_tree(plan, source, target, uid, gid, missing)
        elif kind == "file":
            data = plan.read_bytes(source) or b""
            plan.write(target, data, plan.stat(source).mode, uid, gid)


def _lkind(plan: Plan, path: str) -> tuple[str | None, str | None]:
    """(kind, symlink target) of a guest path itself, seeing staged edits; the parent
    must already be resolved."""
    staged = plan.staged(path)
    if staged is not None:
        return (None, None) if staged.kind == "absent" else (staged.kind, staged.target)
    st = plan.root.lstat(path)
    if st is None:
        return None, None
    return st.kind, plan.root.readlink(path) if st.kind == "symlink" else None


def ensure_keys(plan: Plan, home: str, uid: int, gid: int, keys: list[str]) -> None:
    """~/.ssh (0700) and ~/.ssh/authorized_keys (0600), owned by the user; keys already
    there are kept and the missing ones appended."""
    ssh = posixpath.join(plan.resolve(home), ".ssh")
    path = f"{ssh}/authorized_keys"
    for p in (ssh, path):
        # a symlink here could point anywhere in the guest, e.g. at /etc/shadow
        if _lkind(plan, p)[0] == "symlink":
            raise PlanError(f"{p} is a symlink in the guest; vmtailor won't write through it")
    kind = _lkind(plan, ssh)[0]
    if kind is None:
        plan.mkdir(ssh, 0o700, uid, gid)
    elif kind != "dir":
        raise PlanError(f"{ssh} is a {kind} in the guest, not a directory")
    else:
        plan.set_meta(ssh, 0o700, uid, gid)

    kind = _lkind(plan, path)[0]
    if kind not in (None, "file"):
        raise PlanError(f"{path} is a {kind} in the guest, not a file")
    text = plan.read_text(path) or ""
    have = {line.strip() for line in text.split("\n")}
    missing = []
    for key in keys:
        if key.strip() not in have:
            missing.append(key.strip())
            have.add(key.strip())
    if missing:
        text += ("\n" if text and not text.endswith("\n") else "") + "\n".join(missing) + "\n"
        plan.write(path, text, 0o600, uid, gid)
    else:
        plan.set_meta(path, 0o600, uid, gid)


# -- sudo ---------------------------------------------------------------------------


def _sudo_lines(ctx: Context, dbs: Accounts, user: User, gid: int) -> list[str]:
    if not user.sudo:
        return []
    rules = [user.sudo] if isinstance(user.sudo, str) else list(user.sudo)
    for rule in rules:
        if not rule.strip() or "\n" in rule or "\r" in rule:
            raise PlanError("a sudo rule must be one non-empty line")
    admin = ctx.guest.family.admin_group
    admin_entry = dbs.group.find(admin)
    in_admin = admin in dbs.groups_of(user.name) or (
        admin_entry is not None and admin_entry.fields[2:3] == [str(gid)]
    )
    granted = _group_rules(ctx.plan, admin) if in_admin else set()
    return [f"{user.name} {_norm(r)}" for r in rules if not _covered(_norm(r), granted)]


def _norm(rule: str) -> str:
    return " ".join(rule.split())


def _covered(rule: str, granted: set[str]) -> bool:
    """Whether the distro's own rule for the admin group already grants `rule`."""
    return rule in granted or rule.replace("(ALL)", "(ALL:ALL)") in granted


def _group_rules(plan: Plan, group: str) -> set[str]:
    text = plan.read_text("/etc/sudoers") or ""
    out = set()
    for line in text.split("\n"):
        words = line.split(None, 1)
        if len(words) == 2 and words[0] == f"%{group}":
            out.add(_norm(words[1]))
    return out


def write_sudoers(ctx: Context, lines: list[str]) -> None:
    """One file for every configured user's rules; removed when no user has any."""
    plan = ctx.plan
    if not lines:
        if plan.exists(SUDOERS_FILE):
            plan.delete(SUDOERS_FILE)
        return
    if not plan.is_dir(SUDOERS_DIR):
        plan.mkdir(SUDOERS_DIR, 0o750, 0, 0)
    plan.write(SUDOERS_FILE, SUDOERS_HEADER + "\n".join(lines) + "\n", 0o440, 0, 0)
    sudoers = plan.read_text("/etc/sudoers")
    if sudoers is None:
        ctx.warnings.append(
            f"users: the guest has no /etc/sudoers (is sudo installed?); {SUDOERS_FILE} "
            "takes effect once it is"
        )
    elif not INCLUDEDIR.search(sudoers):
        ctx.warnings.append(
            f"users: the guest's /etc/sudoers has no '@includedir /etc/sudoers.d' line, so "
            f"sudo ignores {SUDOERS_FILE}"
        )
