"""vmtailor build --out ISO"""

from ..builder.iso import FIRMWARE, build_iso
from ..customizer.errors import UsageError
from ..output import add_json_flag, emit_json
from ..paths import output_file

NAME = "build"
HELP = "build the customization ISO (kernel + vmtailor initrd, BIOS and UEFI)"
DESCRIPTION = """\
Build the customization ISO: a cloned VM booted from it (with config media attached, see
`vmtailor media`) loads its drivers, finds its disks, mounts them per its /etc/fstab,
applies the config, prints a result record on the serial console and powers off.

The kernel is the newest Debian linux-image-amd64 installed (or --kernel, with its
modules in /lib/modules/VERSION or --modules); the initrd carries busybox, util-linux's
blkid, storage and filesystem drivers for every mainstream hypervisor, and a Python with
only the stdlib the customizer uses. lvm2 and the xfs and btrfs drivers stay on the ISO
(/files, /modules), which the initrd mounts from its CD drive when a guest needs them:
attach the ISO as a CD. The same inputs give a byte-identical ISO (timestamps from
SOURCE_DATE_EPOCH); results are cached (--cache-dir, default /var/cache/vmtailor/build),
so a rebuild with nothing changed is a copy.

examples:
  vmtailor build --out customize.iso
  vmtailor build --out customize.iso --firmware uefi --kernel /boot/vmlinuz-6.1.0-56-amd64"""


def _firmware(text: str) -> tuple[str, ...]:
    names = tuple(sorted({w.strip() for w in text.split(",") if w.strip()}))
    if not names or set(names) - set(FIRMWARE):
        raise UsageError(f"--firmware {text!r}: bios, uefi or bios,uefi")
    return names


def add_arguments(p) -> None:
    p.add_argument("--out", required=True, metavar="ISO", help="where to write the ISO")
    p.add_argument("--kernel", metavar="PATH", help="kernel image (default: newest Debian one)")
    p.add_argument("--modules", metavar="DIR", help="its modules (default /lib/modules/VERSION)")
    p.add_argument(
        "--firmware", default="bios,uefi", metavar="LIST", help="bios, uefi or bios,uefi"
    )
    p.add_argument("--cache-dir", metavar="DIR", help="build cache (default /var/cache/…)")
    p.add_argument(
        "--append", default="", metavar="ARGS", help="extra kernel arguments (vmtailor.debug)"
    )
    add_json_flag(p)


def run(args) -> int:
    result = build_iso(
        output_file(args.out),
        kernel_path=args.kernel,
        modules=args.modules,
        firmware=_firmware(args.firmware),
        cache_dir=args.cache_dir,
        cmdline=args.append,
    )
    if args.json:
        emit_json(vars(result))
        return 0
    how = "from the cache" if result.cached else "built"
    print(f"{result.iso}: {result.iso_size / 1e6:.1f} MB ({how} in {result.seconds:.1f} s)")
    print(f"kernel {result.kernel}, initrd {result.initrd_size / 1e6:.1f} MB")
    print(f"initrd manifest: {result.manifest}")
    return 0
