"""Disk and CD controllers of every mainstream hypervisor; modalias loading picks the ones
the virtual hardware needs at boot — but the floppy driver, which the config stage loads
only when no CD or disk holds the config media (etc/modprobe.conf)."""

from . import Feature

FEATURE = Feature(
    name="storage",
    summary="storage drivers: KVM/QEMU, Xen, VMware, Hyper-V, NVMe, SATA/IDE, CD-ROM, floppy",
    depends=("modalias",),
    data=(("etc/modprobe.conf", "/etc/modprobe.d/vmtailor.conf", 0o644),),
    kernel_modules=(
        # KVM / QEMU / Proxmox
        "virtio_pci",
        "virtio_blk",
        "virtio_scsi",
        # Xen
        "xen_blkfront",
        # VMware
        "vmw_pvscsi",
        "mptspi",
        "BusLogic",
        # Hyper-V
        "hv_vmbus",
        "hv_storvsc",
        # NVMe, SATA, IDE (every hypervisor emulates some of these)
        "nvme",
        "ahci",
        "ata_piix",
        "ata_generic",
        # disks and CDs on any SCSI-like controller above; floppy for config media
        "sd_mod",
        "sr_mod",
        "cdrom",
        "floppy",
    ),
)
