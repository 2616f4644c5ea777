"""One module per command; the order here is the order `vmtailor --help` lists them."""

from . import apply, hash_password, inspect, ops, revert, schema, validate

COMMANDS = [validate, inspect, apply, revert, hash_password, ops, schema]
