"""Which guest a command works on: --root DIR (a mounted guest tree)."""

from __future__ import annotations

from .customizer.root import LocalRoot, Root


def add_target_arguments(parser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        required=True,
        help="the guest's root filesystem, mounted at DIR (with its /boot, /var … mounted "
        "beneath it as the guest's fstab has them)",
    )


def open_root(args) -> Root:
    return LocalRoot(args.root)
