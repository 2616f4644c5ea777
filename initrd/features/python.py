"""Python for the initrd stages and the customizer: the builder's own interpreter, the
stdlib modules these packages import (found with modulefinder from the roots), jinja2 and
markupsafe from the build environment, and the vmtailor packages that run in the guest."""

from . import Feature, PythonNeeds

FEATURE = Feature(
    name="python",
    summary="python3 with only the stdlib the customizer needs, jinja2, vmtailor",
    depends=("base",),
    python=PythonNeeds(
        roots=("vmtailor.initrd.main", "vmtailor.customizer"),
        packages=("jinja2", "markupsafe"),
        vmtailor=("customizer", "initrd"),
    ),
)
