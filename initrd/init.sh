#!/bin/sh
# /init of the vmtailor customization initrd (busybox sh, PID 1).
#
# Mount the API filesystems, arm a watchdog, load drivers by modalias and meanwhile start
# the Python stages (vmtailor.initrd.main). Whatever happens — success, a Python error, a
# crash, a hang — the VM ends powered off: a hypervisor driver waits for exactly that.
#
# Contract with vmtailor.initrd.main: it prints the result record itself (between the
# markers below) and writes /run/vmtailor/result.json, on success and on failure alike;
# it looks for devices only once the file $VMTAILOR_DRIVERS_LOADED names exists. When it
# exits non-zero without having written result.json, this script prints a failure
# record in its place (with the run token main left in /run/vmtailor/run, if any).
# Powering off is this script's job, not Python's.
#
# Every record is printed after the disks are synced: a host that reads it may stop the
# VM a few seconds later without waiting for the power-off. Without ACPI the kernel can't
# power off, only halt; when the host made a reboot stop this VM (/run/vmtailor/
# reboot-stops, from the config media of `vmtailor deploy`), a reboot ends the boot
# instead, so the VM still stops by itself.
#
# Kernel command line: vmtailor.timeout=SECONDS (watchdog, default 600),
# vmtailor.debug (a shell at the end instead of powering off, no watchdog).

# Only now is there a /sbin/modprobe for the kernel to run (see initrd/features/base.py):
# what it asked for while it initialised is nothing this initrd has.
ln -s ../bin/busybox /usr/sbin/modprobe

export PATH=/usr/sbin:/usr/bin
export HOME=/root
BEGIN='-----BEGIN VMTAILOR RESULT-----'
END='-----END VMTAILOR RESULT-----'
STATE=/run/vmtailor

mkdir -p /proc /sys /dev /run
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /dev/pts /dev/shm $STATE /run/lvm /run/lock/lvm
exec </dev/console >/dev/console 2>&1

# Nothing here reads /dev/urandom: before the kernel's RNG is ready, the first read makes
# the kernel gather jitter entropy, a busy loop of about a second under TCG on a VM
# without RDRAND. Python would read it at start for its hash seed, so give it one from
# the kernel's non-blocking pool (/proc/sys/kernel/random/uuid never waits). Nothing the
# customization writes needs entropy: the clone makes its own machine-id at next boot.
read -r uuid </proc/sys/kernel/random/uuid
seed=${uuid%%-*} # 8 hex digits: within PYTHONHASHSEED's 0..4294967295
case "$seed" in ????????) ;; *) seed=x ;; esac
case "$seed" in *[!0-9a-f]*) seed=0 ;; *) seed=$((0x$seed)) ;; esac
export PYTHONHASHSEED=$seed

timeout=600
debug=
read -r cmdline </proc/cmdline
for arg in $cmdline; do
    case "$arg" in
        vmtailor.timeout=*) timeout="${arg#*=}" ;;
        vmtailor.debug | vmtailor.debug=1 | vmtailor.debug=yes) debug=1 ;;
    esac
done
case "$timeout" in '' | *[!0-9]*) timeout=600 ;; esac

json_string() {
    # one JSON string: escape \ and ", drop control characters
    printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

report_error() {
    # the failure record, on the serial console (the host parses it) and on the screen
    run=
    [ -r $STATE/run ] && read -r run <$STATE/run
    case "$run" in '' | *[!0-9a-f]*) run= ;; *) run=", \"run\": \"$run\"" ;; esac
    record="{\"reason\": $(json_string "$1")$run, \"status\": \"error\"}"
    printf '%s\n' "$record" >$STATE/result.json
    for tty in /dev/console /dev/tty0; do
        [ -w "$tty" ] && printf '%s\n%s\n%s\n' "$BEGIN" "$record" "$END" >"$tty" 2>/dev/null
    done
}

end_boot() {
    # /sys/firmware/acpi is there when the kernel runs ACPI, which is how a PC powers off
    if [ ! -d /sys/firmware/acpi ] && [ -e $STATE/reboot-stops ]; then
        reboot -f
    fi
    poweroff -f
}

power_off() {
    if [ -n "$debug" ]; then
        echo "vmtailor.debug: a shell instead of powering off (exit it to power off)"
        setsid cttyhack sh
        sync
    fi
    end_boot
    # still here: ask the kernel directly, sync and remount read-only first
    for key in s u o; do echo "$key" >/proc/sysrq-trigger; sleep 1; done
    while :; do sleep 60; done # PID 1 must never exit: that would be a kernel panic
}

if [ -z "$debug" ]; then
    (
        sleep "$timeout"
        # sync and remount read-only before the record: the host may stop the VM on it
        for key in s u; do echo "$key" >/proc/sysrq-trigger; sleep 1; done
        report_error "watchdog: no result after $timeout s (vmtailor.timeout); powered off"
        end_boot
        echo o >/proc/sysrq-trigger
    ) &
fi

# Drivers load in the background while Python starts: both take about a second under
# TCG, and loading drivers waits on the hardware (bus resets, device scans) — time Python
# fills with its imports. The config stage waits for DRIVERS_LOADED before it looks for
# any device.
DRIVERS_LOADED=$STATE/drivers.loaded
(
    vmtailor-coldplug
    : >$DRIVERS_LOADED
) &

# stderr goes to the console live and to a file, so a failure record can quote its end
mkfifo $STATE/stderr.pipe
tee $STATE/python.err <$STATE/stderr.pipe >&2 &
tee_pid=$!
VMTAILOR_DRIVERS_LOADED=$DRIVERS_LOADED \
    PYTHONPATH=/usr/lib/vmtailor PYTHONUNBUFFERED=1 PYTHONUTF8=1 PYTHONDONTWRITEBYTECODE=1 \
    python3 -S -m vmtailor.initrd 2>$STATE/stderr.pipe
status=$?
wait $tee_pid
sync # main unmounted and synced; after a crash, this is all there is before the record
if [ "$status" -ne 0 ] && [ ! -e $STATE/result.json ]; then
    last=$(grep -v '^[[:space:]]*$' $STATE/python.err | tail -n 1)
    report_error "vmtailor.initrd.main failed (exit status $status): ${last:-no error output}"
fi
power_off
