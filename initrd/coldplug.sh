#!/bin/sh
# vmtailor-coldplug: load the drivers the hardware needs, without udev.
#
# Every device in /sys names the driver it wants in its modalias; modprobe resolves those
# through modules.alias. Loading a controller's driver makes new devices appear (the disks
# and CD behind it), so go round again until two rounds in a row find nothing new.
# Safe to run again later (the initrd stages may, before looking for disks).

STATE=/run/vmtailor
mkdir -p $STATE
seen=$STATE/modalias.seen
now=$STATE/modalias.now
# busybox grep -f with an empty pattern file matches nothing, even with -v: never empty
sentinel=vmtailor:none
[ -e $seen ] || echo $sentinel >$seen
quiet=0
round=0
while [ $round -lt 20 ] && [ $quiet -lt 2 ]; do
    round=$((round + 1))
    {
        echo $sentinel
        # every device with a modalias sits on a bus: a glob, much cheaper than find
        cat /sys/bus/*/devices/*/modalias 2>/dev/null
    } | sort -u >$now
    new=$(grep -vxF -f $seen $now)
    mv $now $seen
    if [ -z "$new" ]; then
        quiet=$((quiet + 1))
        sleep 0.1
        continue
    fi
    quiet=0
    printf '%s\n' "$new" | xargs modprobe -a -b -q 2>/dev/null
done
exit 0
