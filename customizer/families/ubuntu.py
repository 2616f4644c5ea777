from .debian import Debian


class Ubuntu(Debian):
    name = "ubuntu"
    ids = ("ubuntu", "linuxmint", "pop")
    release_files = ()
