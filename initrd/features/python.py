"""Python for the initrd stages and the customizer: the builder's own interpreter, the
stdlib modules these packages import (found with modulefinder from the roots), and the
vmtailor packages that run in the guest. No jinja2: the config media carries the config
rendered for its clone (vmtailor.customizer.config.parse_rendered reads it)."""

from . import Feature, PythonNeeds

FEATURE = Feature(
    name="python",
    summary="python3 with only the stdlib the customizer needs, vmtailor",
    depends=("base",),
    python=PythonNeeds(
        roots=("vmtailor.initrd.main", "vmtailor.customizer"),
        vmtailor=("customizer", "initrd"),
    ),
)
