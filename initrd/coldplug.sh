#!/bin/sh
# vmtailor-coldplug: load the drivers the hardware needs, without udev.
#
# Every device in /sys names the driver it wants in its modalias; modprobe resolves those
# through modules.alias. Loading a controller's driver makes new devices appear (the disks
# and CD behind it), so go round again until two rounds in a row find nothing new.
# Safe to run again later (the initrd stages may, before looking for disks): what was
# seen is kept in $STATE.
#
# Shell builtins only, but for modprobe: under emulation each other process (cat, sort,
# grep …) costs ~10 ms, and a round used to start five.

# (the two paths can be pointed elsewhere, as tests do with a fake /sys)
SYS=${VMTAILOR_SYS:-/sys}
STATE=${VMTAILOR_STATE:-/run/vmtailor}
mkdir -p "$STATE"
SEEN=$STATE/modalias.seen
seen=' '
if [ -e "$SEEN" ]; then
    while read -r alias; do seen="$seen$alias "; done <"$SEEN"
fi
quiet=0
round=0
while [ $round -lt 20 ] && [ $quiet -lt 2 ]; do
    round=$((round + 1))
    new=
    # every device with a modalias sits on a bus: a glob, much cheaper than find
    for file in "$SYS"/bus/*/devices/*/modalias; do
        # 2> first: a device gone since the glob is no error on the console
        read -r alias 2>/dev/null <"$file" || continue
        [ -n "$alias" ] || continue
        case "$seen" in *" $alias "*) continue ;; esac
        seen="$seen$alias "
        new="$new $alias"
    done
    if [ -z "$new" ]; then
        quiet=$((quiet + 1))
        # time for a device to appear late; none after the last round
        [ $quiet -lt 2 ] && sleep 0.1
        continue
    fi
    quiet=0
    set -f # a modalias is a word (no blanks), never a pattern to expand
    # shellcheck disable=SC2086
    modprobe -a -b -q $new 2>/dev/null
    set +f
done
set -f
for alias in $seen; do printf '%s\n' "$alias"; done >"$SEEN"
exit 0
