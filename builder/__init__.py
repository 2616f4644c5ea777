"""Host-side builders: the initrd (features resolved through one installer, cpio, lz4),
the customization ISO (pycdlib, El Torito BIOS + EFI), config media (ISO, floppy, vfat),
with caching and reproducible output. Entry points: iso.build_iso(), media.write_media()."""
