"""What the customization image is made of, and the names the host and the initrd share.

Host side (builder, CLI, tests) and initrd side (/init, vmtailor.initrd.main) both read
these; nothing here touches the host."""

# initrd features (see vmtailor.initrd.features), in install order
FEATURES = (
    "base", "modalias", "storage", "filesystems", "blkid", "lvm", "md", "xfs-btrfs", "python"
)  # fmt: skip

# serial last: /dev/console, and so every line /init and Python print, goes to the last
# console= — the serial port the host reads. The kernel's own messages go to both.
#
# mitigations=off, init_on_alloc=0: this kernel runs vmtailor's initrd and nothing else —
# no program it did not bring, no other user — and powers off. What those defences cost
# (retpolines and RSB filling on every indirect call and context switch; every page the
# kernel allocates zeroed first, the unpacked initrd's 50 MB included) it pays in full,
# and under emulation that is ~0.3 s and ~0.15 s of a customization's boot (bench_boot).
# The guest's own disks are data to it, never code it runs.
KERNEL_CMDLINE = "console=tty0 console=ttyS0,115200 mitigations=off init_on_alloc=0"

ISO_LABEL = "VMTAILOR"  # the customization ISO's volume label
# Files the initrd leaves on the ISO (features on_media): the ISO holds them at
# iso_path(), the initrd a symlink in each one's place to where the stages mount the
# ISO, ISO_MOUNT.
ISO_MODULES = "/modules"  # kernel modules, as /lib/modules/VERSION/ holds them
ISO_FILES = "/files"  # the rest, at their path in the image
ISO_MOUNT = "/run/vmtailor/iso"


def iso_path(path: str) -> str:
    """Where the ISO holds the file the image has at `path` (ISO 9660 allows 8 levels of
    folders: a module's path in the image has 8 already)."""
    head, sep, rest = path.partition("/lib/modules/")
    if sep and head in ("", "/usr"):
        return f"{ISO_MODULES}/{rest.partition('/')[2]}"
    return f"{ISO_FILES}{path}"


CONFIG_LABEL = "VMTCONFIG"  # the config media's label (FAT allows 11 characters)

# The config media's layout: the canonical JSON, and each `source:` file under FILES_DIR
# at the path the config names (relative to the config file).
CONFIG_PATH = "/vmtailor/config.json"
FILES_DIR = "/vmtailor/files"
# Only on media `deploy` makes: this run's token for the result record (vmtailor.initrd.
# result.RUN) and whether the hypervisor stops the VM when it reboots, as JSON
# {"run": HEX, "reboot_stops": BOOL}. The initrd leaves both in /run/vmtailor for /init:
RUN_PATH = "/vmtailor/run.json"
RUN_TOKEN_FILE = "run"  # the token, for the failure record /init prints itself
REBOOT_STOPS_FILE = "reboot-stops"  # exists: reboot where power-off only halts

# The result record's markers live with its format: vmtailor.initrd.result (BEGIN, END).

# /init: kernel command line switches
TIMEOUT_ARG = "vmtailor.timeout"  # watchdog seconds (default DEFAULT_TIMEOUT)
DEBUG_ARG = "vmtailor.debug"  # a shell instead of powering off
DEFAULT_TIMEOUT = 600
