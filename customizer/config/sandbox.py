"""The jinja2 environment config templates render in: sandboxed (no attribute games, no
file access) and bounded, since a config may come from someone else and a few lines of
template can otherwise loop for hours or build strings of gigabytes.

One Budget is shared by every template of one config render: loop iterations, calls,
filter calls and operators each cost a step, and each step checks the clock. The time
limit is checked in that budget rather than with signal.alarm: batch and deploy render
clones' configs in worker threads, and only the main thread can receive a signal.

Growth is stopped before it is paid for where one operation can blow up (padding widths,
printf widths, `*`, `**`, replace, join), and every string or list an operator, call or
filter returns is measured; what a template finally yields is counted chunk by chunk."""

from __future__ import annotations

import functools
import re
import time
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_STEPS = 1_000_000  # loop iterations + calls + filters + operators, per config render
MAX_SIZE = 1 << 20  # characters (or items) of any one string or list a template builds
MAX_SECONDS = 5.0  # wall time of one config render
MAX_INT_BITS = 4096  # numbers made by * and ** (2**4096 has 1234 digits)

# str methods and filters whose integer arguments are sizes of what they produce
_WIDTH_TAKERS = {"center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap",
                 "slice", "batch", "truncate"}  # fmt: skip
# a printf width or precision of 7+ digits, or taken from the arguments (*)
_WIDE_PRINTF = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d{7,}|\d*\.(\*|\d{7,}))")
# the same for str.format: {:>9999999}, or a nested {…} taking it from the arguments
_WIDE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*(\d{7,}|\{)")
_ITERATE = "vmtailor_iterate"  # internal filters the template's tree is rewritten to call
_SIZED = "vmtailor_sized"


class TemplateLimit(Exception):
    """A template went past one of the limits above."""


class Budget:
    def __init__(self) -> None:
        self.left = self.steps = MAX_STEPS
        self.seconds = MAX_SECONDS
        self.deadline = time.monotonic() + self.seconds

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def charge(self, n: int = 1) -> None:
        self.left -= n
        if self.left < 0:
            raise TemplateLimit(f"more than {self.steps} loop iterations and calls")
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"rendering took longer than {self.seconds:g} s")


def sized(value: Any) -> Any:
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_SIZE:
        raise TemplateLimit(f"a value longer than {MAX_SIZE} characters or items")
    return value


def _check_printf(fmt: Any, wide: re.Pattern[str]) -> None:
    if isinstance(fmt, str) and wide.search(fmt):
        raise TemplateLimit("a format width of a million or more, or taken from a value")


def _check_sizes(name: str, subject: Any, args: tuple, kwargs: dict) -> None:
    """Before a call that could build something huge: refuse it if it would."""
    values = [*args, *kwargs.values()]
    if name in _WIDTH_TAKERS:
        if any(isinstance(a, int) and a > MAX_SIZE for a in values):
            raise TemplateLimit(f"{name}() with a size over {MAX_SIZE}")
        # these two add their width once per line (per tab): a modest width over many
        # lines is as big
        each = {"indent": "\n", "expandtabs": "\t"}.get(name)
        if each and isinstance(subject, str) and values:
            width = len(values[0]) if isinstance(values[0], str) else values[0]
            if isinstance(width, int) and len(subject) + subject.count(each) * width > MAX_SIZE:
                raise TemplateLimit(f"{name}() would make more than {MAX_SIZE} characters")
    elif name == "replace" and isinstance(subject, str) and len(values) >= 2:
        old, new = values[0], values[1]
        if isinstance(old, str) and isinstance(new, str):
            hits = subject.count(old) if old else len(subject) + 1
            if len(subject) + hits * len(new) > MAX_SIZE:
                raise TemplateLimit(f"replace() would make more than {MAX_SIZE} characters")
    elif name == "join":
        # "sep".join(items) or items|join(sep)
        sep, items = (subject, values[0] if values else ()) if isinstance(subject, str) else (
            values[0] if values else "", subject)  # fmt: skip
        if isinstance(sep, str) and isinstance(items, list | tuple):
            total = len(sep) * len(items) + sum(len(x) for x in items if isinstance(x, str))
            if total > MAX_SIZE:
                raise TemplateLimit(f"join() would make more than {MAX_SIZE} characters")
    elif name in ("format", "format_map"):  # the format filter is printf-style
        _check_printf(subject, _WIDE_PRINTF)
        _check_printf(subject, _WIDE_FORMAT)


def _check_binop(op: str, left: Any, right: Any) -> None:
    if op == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
        if right > 0 and right * left.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"a number of more than {MAX_INT_BITS} bits")
    if op == "*":
        for a, b in ((left, right), (right, left)):
            if isinstance(a, str | list | tuple) and isinstance(b, int) and len(a) * b > MAX_SIZE:
                raise TemplateLimit(f"a value longer than {MAX_SIZE} characters or items")
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateLimit(f"a number of more than {MAX_INT_BITS} bits")
    if op == "%" and isinstance(left, str):
        _check_printf(left, _WIDE_PRINTF)


def _guard(node: nodes.Node) -> None:
    """Rewrite a parsed template so that every for loop's iterable goes through the
    budget, and every `~` concatenation is measured."""
    for field in node.fields:
        value = getattr(node, field, None)
        items = value if isinstance(value, list) else [value]
        for i, child in enumerate(items):
            if not isinstance(child, nodes.Node):
                continue
            _guard(child)
            if isinstance(child, nodes.Concat):
                wrapped = nodes.Filter(child, _SIZED, [], [], None, None, lineno=child.lineno)
                if isinstance(value, list):
                    value[i] = wrapped
                else:
                    setattr(node, field, wrapped)
    if isinstance(node, nodes.For):
        node.iter = nodes.Filter(node.iter, _ITERATE, [], [], None, None, lineno=node.lineno)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, budget: Budget | None = None):
        super().__init__(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
        self.budget = budget or Budget()
        self.globals.pop("lipsum", None)  # lipsum(n=10**9): text for web page mock-ups
        self.globals["range"] = self._range
        self.filters = {name: self._bounded(name, f) for name, f in self.filters.items()}
        self.filters[_ITERATE] = self._iterate
        self.filters[_SIZED] = sized

    def _parse(self, source, name, filename):  # type: ignore[override]
        tree = super()._parse(source, name, filename)
        _guard(tree)
        return tree

    def _iterate(self, iterable: Any):
        for item in iterable:
            self.budget.charge()
            yield item

    def _range(self, *args: int) -> range:
        from jinja2.sandbox import safe_range  # MAX_RANGE items at most

        self.budget.charge()
        return safe_range(*args)

    def _bounded(self, name: str, f: Any) -> Any:
        @functools.wraps(f)  # keeps jinja2's pass_context/pass_environment marks
        def bounded(*args: Any, **kwargs: Any) -> Any:
            self.budget.charge()
            # after the context or environment jinja2 passes to some filters: the value
            values = args[1:] if getattr(f, "jinja_pass_arg", None) else args
            _check_sizes(name, values[0] if values else None, values[1:], kwargs)
            return sized(f(*args, **kwargs))

        return bounded

    def call_binop(self, context, operator, left, right):  # type: ignore[override]
        self.budget.charge()
        _check_binop(operator, left, right)
        return sized(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # type: ignore[override]
        __self.budget.charge()
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str | list | tuple):
            _check_sizes(getattr(target, "__name__", ""), owner, args, kwargs)
        return sized(super().call(__context, __obj, *args, **kwargs))
