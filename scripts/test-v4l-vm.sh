#!/usr/bin/env bash
# The `v4l:` capture source against real V4L2 drivers: builds
# examples/v4l_check with the `v4l` feature and runs it inside a throw-away
# qemu VM (shared/v4l-vm/run-vivid-test.sh) with two vivid instances (their
# on-screen text off, so frames repeat exactly; no capture crop, compose or
# scaler, so a TV input's size follows its standard): single-planar on
# /dev/video0, multi-planar on /dev/video1; and v4l2loopback on
# /dev/video10. The colour-bar checks switch a vivid's input, test pattern
# and quantization with v4l2-ctl inside the VM and set them back after each
# case. Exits with the checks' exit code (0: all passed; 125: the VM or a
# module failed, not the checks).
#
# For loopback_demo_clip it also builds the release `sammix` with `--features
# v4l` and copies it into the VM with the bundle (every file: the bundle check
# wants them all), its demo clip and ground truth.
#
# Environment:
#   SAMMIX_V4L_VM  the folder with run-vivid-test.sh (default ../shared/v4l-vm
#                  from the repository root, where CI and sessions have it)
#   CHECKS         names of the checks to run, space-separated (default: all;
#                  see examples/v4l_check/main.rs)
#   RUST_LOG       log filter inside the VM (default warn)
#   DEMO_FRAMES    frames of the demo clip loopback_demo_clip runs (default 40)
#   BUNDLE         the bundle it runs (default models/sammix-us-tiny)
#   MEM            the VM's memory in MiB (default 768)
#   TIMEOUT        the VM's wall-clock limit in seconds (default 300, plus
#                  120 + 10 per demo frame with loopback_demo_clip)
# Building the v4l crate's bindings needs libclang: installed with apt-get
# when it is missing. The VM needs qemu-system-x86, busybox-static, cpio,
# kmod and v4l-utils: run-vivid-test.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

vm=${SAMMIX_V4L_VM:-../shared/v4l-vm}
if [ ! -x "$vm/run-vivid-test.sh" ]; then
    echo "test-v4l-vm: $vm/run-vivid-test.sh not found: set SAMMIX_V4L_VM to the folder of the V4L2 test VM harness (shared/v4l-vm)" >&2
    exit 2
fi
if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang*.so* >/dev/null 2>&1; then
    echo "test-v4l-vm: installing libclang-dev (bindgen, for the v4l crate)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libclang-dev >/dev/null
fi

bin=$(cargo build --features v4l --example v4l_check --message-format=json-render-diagnostics \
    | sed -n 's/.*"executable":"\([^"]*v4l_check\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "test-v4l-vm: no v4l_check binary built" >&2; exit 1; }

args=()
for c in ${CHECKS:-}; do args+=(--only "$c"); done

# loopback_demo_clip: the real binary and the bundle, file by file
# (EXTRA_FILES copies files, not folders), with the libraries sammix links.
extra=()
timeout=${TIMEOUT:-300}
if [ -z "${CHECKS:-}" ] || [[ " $CHECKS " == *" loopback_demo_clip "* ]]; then
    frames=${DEMO_FRAMES:-40}
    bundle=$(cd "${BUNDLE:-models/sammix-us-tiny}" && pwd)
    built=$(cargo build --release --features v4l --bin sammix --message-format=json-render-diagnostics \
        | sed -n 's/.*"executable":"\([^"]*\/sammix\)".*/\1/p' | tail -1)
    [ -x "$built" ] || { echo "test-v4l-vm: no sammix binary built" >&2; exit 1; }
    # target/release/sammix is every release build's: set this one aside at
    # once, and make sure it is the one with the V4L2 code.
    sammix=target/v4l-vm/sammix
    mkdir -p "$(dirname "$sammix")" && cp "$built" "$sammix"
    grep -qa VIDIOC_STREAMON "$sammix" || {
        echo "test-v4l-vm: $built has no V4L2 code (a build without --features v4l replaced it meanwhile?): run again" >&2
        exit 1
    }
    [ -f "$bundle/sammix.toml" ] || { echo "test-v4l-vm: $bundle: no bundle (sammix.toml)" >&2; exit 1; }
    extra+=("$sammix:/test/sammix")
    for lib in $(ldd "$sammix" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do extra+=("$lib:$lib"); done
    while IFS= read -r -d '' f; do
        case "$f" in *[[:space:]:]*) echo "test-v4l-vm: $f: a space or colon in a bundle path" >&2; exit 1;; esac
        extra+=("$f:/test/bundle/${f#"$bundle"/}")
    done < <(find "$bundle" -type f -print0)
    args+=(--sammix /test/sammix --bundle /test/bundle --demo-frames "$frames")
    timeout=${TIMEOUT:-$((300 + 120 + 10 * frames))}
fi

MODULES="vivid v4l2loopback" \
ARGS_vivid="n_devs=2 node_types=0x1,0x1 multiplanar=1,2 ccs_cap_mode=0,0" \
ARGS_v4l2loopback="video_nr=10 card_label=loop exclusive_caps=0" \
WITH_V4L2CTL=1 \
PRE_CMD="v4l2-ctl -d /dev/video0 -c osd_text_mode=2 && v4l2-ctl -d /dev/video1 -c osd_text_mode=2" \
GUEST_ENV="RUST_LOG=${RUST_LOG:-warn}" \
EXTRA_FILES="${extra[*]}" \
MEM=${MEM:-768} \
TIMEOUT=$timeout \
    "$vm/run-vivid-test.sh" "$bin" ${args[@]+"${args[@]}"}
