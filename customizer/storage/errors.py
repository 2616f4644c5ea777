"""The one error storage raises: a guest whose disks vmtailor will not mount, and why."""

from ..errors import VmtailorError


class StorageError(VmtailorError):
    """The guest's disks cannot be mounted as its fstab says; nothing was written."""
