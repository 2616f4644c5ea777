"""Offline customization of clone images on a utility server, through libguestfs."""
