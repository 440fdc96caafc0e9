#!/usr/bin/env bash
# The frame watchdog against the kernel's real softdog driver: builds
# examples/watchdog_check and runs it inside the throw-away qemu VM of
# shared/v4l-vm (run-vivid-test.sh) with softdog loaded as
# `soft_margin=3 soft_noboot=1` (it logs instead of resetting the VM).
# Healthy frames keep it fed, a stalled pipeline stops petting it and it
# fires, frames again feed it, a clean shutdown disarms it
# (examples/watchdog_check.rs). Exits with the checks' exit code (125: the VM
# or a module failed, not the checks).
#
# Environment: SAMMIX_V4L_VM (the harness folder, default ../shared/v4l-vm),
# TIMEOUT (the VM's limit in seconds, default 240).
set -euo pipefail
cd "$(dirname "$0")/.."

vm=${SAMMIX_V4L_VM:-../shared/v4l-vm}
if [ ! -x "$vm/run-vivid-test.sh" ]; then
    echo "test-watchdog-vm: $vm/run-vivid-test.sh not found: set SAMMIX_V4L_VM to the folder of the VM harness (shared/v4l-vm)" >&2
    exit 2
fi
bin=$(cargo build --example watchdog_check --message-format=json-render-diagnostics \
    | sed -n 's/.*"executable":"\([^"]*watchdog_check\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "test-watchdog-vm: no watchdog_check binary built" >&2; exit 1; }

MODULES="softdog vivid" \
ARGS_softdog="soft_margin=3 soft_noboot=1" \
ARGS_vivid="n_devs=1 node_types=0x1" \
TIMEOUT=${TIMEOUT:-240} \
    "$vm/run-vivid-test.sh" "$bin"
