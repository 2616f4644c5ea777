"""files: ordered file items — write, replace by regex, append a line, delete, mkdir,
symlink, or change mode/owner — each seeing the result of the items before it."""

from __future__ import annotations

import base64
import posixpath
import re

from ..accounts import lookup_group, lookup_user
from ..config.model import FileItem
from ..context import Context
from ..errors import PlanError
from .registry import operation


def resolve_owner(ctx: Context, owner: str | None) -> tuple[int | None, int | None]:
    """Guest uid/gid for "user[:group]", looked up in the guest's own databases."""
    if owner is None:
        return None, None
    user, _, group = owner.partition(":")
    ids = lookup_user(ctx.plan, user)
    if ids is None:
        raise PlanError(f"owner {user!r} is not a user in the guest's /etc/passwd")
    uid, gid = ids
    if group:
        found = lookup_group(ctx.plan, group)
        if found is None:
            raise PlanError(f"group {group!r} is not a group in the guest's /etc/group")
        gid = found
    return uid, gid


def _content(ctx: Context, item: FileItem) -> bytes:
    if item.source is not None:
        return ctx.sources(item.source)
    assert item.content is not None
    if item.encoding in ("b64", "base64"):
        try:
            return base64.b64decode(item.content, validate=True)
        except ValueError:
            raise PlanError("content is not valid base64") from None
    return item.content.encode()


def _ensure_parent(ctx: Context, path: str) -> None:
    parent = posixpath.dirname(ctx.plan.resolve(path))
    if not ctx.plan.exists(parent):
        ctx.plan.mkdir(parent)


def _existing_text(ctx: Context, path: str) -> str:
    text = ctx.plan.read_text(path)
    if text is None:
        what = "is not a regular file" if ctx.plan.exists(path) else "does not exist"
        raise PlanError(f"{path} {what} in the guest")
    return text


SECRET_MODE = 0o600


def _new_file_mode(ctx: Context, item: FileItem, mode: int | None) -> int | None:
    """A secret file the item creates is root's alone unless `permissions` say otherwise;
    a file that exists keeps its mode (it may be shared on purpose, e.g. 0640 root:ssl)."""
    if mode is None and item.secret and not ctx.plan.exists(item.path):
        return SECRET_MODE
    return mode


def plan_item(ctx: Context, item: FileItem) -> None:
    mode = int(item.permissions, 8) if item.permissions else None
    uid, gid = resolve_owner(ctx, item.owner)
    action = item.action()
    path = item.path
    if action in ("content", "source"):
        _ensure_parent(ctx, path)
        mode = _new_file_mode(ctx, item, mode)
        ctx.plan.write(path, _content(ctx, item), mode, uid, gid, secret=item.secret)
        return
    if action == "replace":
        assert item.replace is not None
        text = _existing_text(ctx, path)
        new, count = re.subn(
            item.replace.pattern,
            item.replace.with_,
            text,
            count=item.replace.count,
            flags=re.MULTILINE,
        )
        if count == 0:
            ctx.warnings.append(f"files: {path}: pattern {item.replace.pattern!r} matched nothing")
        ctx.plan.write(path, new, secret=item.secret)
    elif action == "append_line":
        line = item.append_line or ""
        if not ctx.plan.exists(path):
            _ensure_parent(ctx, path)
            mode = _new_file_mode(ctx, item, mode)
            ctx.plan.write(path, line + "\n", mode, uid, gid, secret=item.secret)
            return
        text = _existing_text(ctx, path)
        if line not in text.splitlines():
            sep = "" if text == "" or text.endswith("\n") else "\n"
            ctx.plan.write(path, f"{text}{sep}{line}\n", secret=item.secret)
    elif action == "delete":
        ctx.plan.delete(path)
        return
    elif action == "symlink":
        _ensure_parent(ctx, path)
        ctx.plan.symlink(path, item.symlink or "")
        return
    elif action == "mkdir":
        if not ctx.plan.is_dir(path):
            ctx.plan.mkdir(path, 0o755 if mode is None else mode, uid or 0, gid or 0)
            return
    if mode is not None or uid is not None:
        ctx.plan.set_meta(path, mode, uid, gid)


@operation("files", ("files",), 40, "write, edit, delete, link files and directories")
def plan(ctx: Context) -> None:
    for i, item in enumerate(ctx.config.files):
        try:
            plan_item(ctx, item)
        except PlanError as exc:
            raise PlanError(f"files[{i}] ({item.path}): {exc}") from None
