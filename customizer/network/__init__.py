"""Network configuration for the guest: a typed state built from the config, one pure
renderer per network stack, the stack chosen from what the guest has."""
