"""One module per command; the order here is the order `vmtailor --help` lists them."""

from . import (
    apply,
    batch,
    build,
    completion,
    deploy,
    hash_password,
    inspect,
    man,
    media,
    ops,
    revert,
    schema,
    validate,
)

COMMANDS = [
    validate, inspect, apply, revert, hash_password, ops, schema, build, media, batch, deploy,
    completion, man,
]  # fmt: skip
