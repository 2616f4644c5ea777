"""`python3 -m vmtailor.initrd`: what /init runs — the stages of vmtailor.initrd.main.

Three things first, for the imports the stages start with (most of Python's start-up
under emulation): modules they name but seldom use wait for their first use (vmtailor.
initrd.deferred), the cyclic garbage collector is off while they run — it would only walk,
again and again, the classes and functions they create, which live as long as the
process — and dataclasses takes the methods the build compiled (vmtailor.initrd.
precompiled). Then what the imports made is frozen out of the collector's way and it
runs as usual. At the end the process leaves without tearing the interpreter down: the
stages have unmounted everything and written the result, and what is left is memory."""

import gc
import os
import sys

from .deferred import defer

defer()  # before dataclasses (which precompiled imports) imports inspect
gc.disable()
from .precompiled import install  # noqa: E402

install()
from .main import main  # noqa: E402  (after the three above: they are for its imports)

gc.freeze()
gc.enable()
status = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
