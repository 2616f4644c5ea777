"""Operations, one module each; importing this package registers them all."""

from . import files, firstboot, hostname, network, reset, users  # noqa: F401  (registration)
from .registry import OPERATIONS, Operation, ordered

__all__ = ["OPERATIONS", "Operation", "ordered"]
