"""vmtailor: customize cloned Linux virtual machines without an agent in the guest."""

__version__ = "0.1.0"
