#!/usr/bin/env bash
# make demo: build a small Debian guest tree, customize it with the example config, show
# what changed, and revert it. Runs against a fixture root (no disk images needed).
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
printf '\nThe guest tree is in %s\n' "$demo/guest"
