#!/usr/bin/env bash
# make demo: (1) a small Debian guest tree customized with the example config, what changed,
# and a revert; (2) the real thing: the customization ISO built, a small Debian guest disk
# made (debootstrap, cached in /var/cache/vmtailor/guests), its qcow2 clone customized by
# booting it once from the ISO under QEMU (vmtailor deploy, qemu driver), and the result
# read back from the clone's disk with libguestfs' virt-cat.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=${VMTAILOR_DEMO_DIR:-/tmp/vmtailor-demo}
rm -rf "$demo"
mkdir -p "$demo"
python scripts/fixture_roots.py debian-12 "$demo/guest" >/dev/null
config=configs/examples/web-server.yaml
vars=(--var hostname=web01 --var ip=192.0.2.10/24)

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "What is this guest?" vmtailor inspect --root "$demo/guest"
step "Validate the config" vmtailor validate "$config" "${vars[@]}"
step "What would change (nothing is written)" \
    vmtailor apply "$config" --root "$demo/guest" "${vars[@]}" --dry-run --diff
step "Customize" vmtailor -v apply "$config" --root "$demo/guest" "${vars[@]}"
step "The result" sh -c "cd '$demo/guest' && head -n 3 etc/hostname etc/hosts && \
    grep ^ops: etc/passwd && ls -l home/ops/.ssh && cat etc/sudoers.d/90-vmtailor-users && \
    ls -l usr/lib/vmtailor/firstboot/scripts"
step "Again: nothing left to do" vmtailor apply "$config" --root "$demo/guest" "${vars[@]}"
step "Undo it all" vmtailor revert --root "$demo/guest"

# -- (2) a real clone booted once from the customization ISO ---------------------------
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
# deploy's record of which VMs are done lives with the demo's files: the clone is made
# afresh each run, and a record from the last run would skip it as "already customized"
export VMTAILOR_STATE_DIR="$demo/state"
step "Build the customization ISO (cached: seconds the second time)" \
    vmtailor build --out "$demo/customize.iso"
step "Make a small Debian guest disk (debootstrap; cached after the first time)" \
    python scripts/guest_disks debian
template=$(python -c 'import sys; sys.path.insert(0, "scripts"); import guest_disks; print(guest_disks.image("debian"))')
qemu-img create -q -f qcow2 -b "$template" -F raw "$demo/web01.qcow2"
# the guest is minimal Debian (no sshd): identity, network, a user with a key, a first boot
cat >"$demo/clone.yaml" <<'YAML'
hostname: "{{ hostname }}"
domain: example.com
network:
  version: 2
  ethernets:
    lan0:
      match: {macaddress: "52:54:00:12:34:56"}
      set-name: lan0
      addresses: ["{{ ip }}"]
      routes: [{to: default, via: 192.0.2.1}]
users:
  - name: ops
    groups: [adm]
    ssh_authorized_keys:
      - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com"
files:
  - {path: /etc/motd, content: "{{ hostname }}: managed by vmtailor\n"}
firstboot:
  - {name: hello, script: "echo first boot of {{ hostname }} > /root/first-boot"}
YAML
cat >"$demo/site.yaml" <<YAML
# QEMU started by vmtailor itself (TCG here), the clone's disk on virtio
hypervisor: {driver: qemu, run_dir: $demo/run}
config: clone.yaml
iso: customize.iso
vms:
  - name: web01
    qemu: [-machine, pc, -accel, tcg, -m, "512", -display, none,
           -drive, "file=$demo/web01.qcow2,if=none,id=d0,format=qcow2",
           -device, "virtio-blk-pci,drive=d0,bootindex=0"]
    vars: {hostname: web01, ip: 192.0.2.10/24}
YAML
step "The inventory" cat "$demo/site.yaml"
step "Customize the clone: attach, boot from CD, wait for power-off, detach, restore" \
    vmtailor deploy "$demo/site.yaml"
step "Its disk now (read with libguestfs' virt-cat, not vmtailor)" sh -c "\
    virt-cat -a '$demo/web01.qcow2' /etc/hostname /etc/motd \
    /etc/network/interfaces.d/90-vmtailor /home/ops/.ssh/authorized_keys \
    /var/lib/vmtailor/result.json"
printf '\nThe guest tree is in %s, the customized clone is %s\n' "$demo/guest" "$demo/web01.qcow2"
