#!/usr/bin/env bash
# The GPU backend on a real Vulkan implementation: Mesa's lavapipe (a CPU
# Vulkan driver, Debian's mesa-vulkan-drivers; .ci/run installs it), or
# whatever Vulkan device the machine has.
#
#  1. clippy and the tests of the `gpu` build (tests/gpu_backend.rs: the
#     student's encoder and head on the device against the CPU, the pipeline
#     on 30 demo-clip frames, a graph it lacks refused);
#  2. `sammix run --backend gpu` on the default bundle's demo clip: every
#     mask against the CPU run's (IoU >= 0.98, scripts/mask_iou.py), the
#     summary naming the GPU;
#  3. no Vulkan device (the loader pointed at no driver): `--backend gpu`
#     falls back to the CPU with one warning, `--backend-required` refuses
#     before the first frame (exit status 2).
#
#   scripts/test-gpu.sh [FRAMES]     (default: the whole clip, 100 frames)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sammix/target}"
# lavapipe asks for a runtime directory it does not need; quiet it
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
frames=${1:-100}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cargo clippy --quiet --features gpu --all-targets -- -D warnings
cargo test --quiet --features gpu --test gpu_backend 2>&1 | grep -E "^test |test result"
cargo build --quiet --features gpu --bin sammix
bin="$CARGO_TARGET_DIR/debug/sammix"

"$bin" run --backend gpu --frames "$frames" --json --overlay none --controls off \
    --out "$tmp/gpu" >"$tmp/gpu.json" 2>"$tmp/gpu.err"
"$bin" run --backend cpu --frames "$frames" --json --overlay none --controls off \
    --out "$tmp/cpu" >"$tmp/cpu.json" 2>"$tmp/cpu.err"
python3 - "$tmp/gpu.json" "$frames" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["encoder_backend"] == "gpu", s
assert s["encoder_backend_name"].startswith("GPU (Vulkan: "), s
assert s["encoder_fallback"] is None, s
assert s["frames"] == int(sys.argv[2]) and s["segmented"] > 0, s
print(f"  ok   sammix run --backend gpu: {s['frames']} frames ({s['segmented']} segmented) on "
      f"{s['encoder_backend_name']}, {s['fps']:.2f} FPS")
PY
python3 scripts/mask_iou.py "$tmp/cpu/masks" "$tmp/gpu/masks" --min 0.98

# No Vulkan driver: the loader finds none.
export VK_ICD_FILENAMES="$tmp/none.json" VK_DRIVER_FILES="$tmp/none.json"
"$bin" run --backend gpu --frames 2 --json --overlay none --controls off \
    >"$tmp/fallback.json" 2>"$tmp/fallback.err"
grep -q "encoder backend gpu cannot start: no Vulkan adapter" "$tmp/fallback.err" \
    || { echo "no fallback warning naming the missing adapter:" >&2; cat "$tmp/fallback.err" >&2; exit 1; }
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["encoder_backend"]=="cpu" and s["frames"]==2, s' "$tmp/fallback.json"
echo "  ok   no Vulkan device: --backend gpu falls back to the CPU with one warning"
set +e
"$bin" run --backend gpu --backend-required --frames 2 --overlay none --controls off \
    >/dev/null 2>"$tmp/required.err"
rc=$?
set -e
if [ "$rc" -ne 2 ] || ! grep -q "no Vulkan adapter" "$tmp/required.err"; then
    echo "--backend-required without a device: expected exit 2 naming the adapter, got $rc:" >&2
    cat "$tmp/required.err" >&2
    exit 1
fi
echo "  ok   no Vulkan device: --backend gpu --backend-required refuses (exit 2)"
