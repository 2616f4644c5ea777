"""Driver loading without udev: modprobe every modalias the kernel exposes in /sys, again
after each round has made new devices appear (a disk behind a new controller), until
nothing new shows up. Which modules exist is up to the storage and filesystem features."""

from . import Feature

FEATURE = Feature(
    name="modalias",
    summary="load drivers by modalias from /sys (coldplug rounds, no udev)",
    depends=("base",),
    data=(("coldplug.sh", "/usr/sbin/vmtailor-coldplug", 0o755),),
)
