#!/usr/bin/env bash
# The C API as firmware uses it: include/sammix.h is what cbindgen makes
# from capi/src/lib.rs; examples/c/segment_clip.c, built with the system C
# compiler against libsammix_c.a, segments the bundled demo clip and its
# masks are compared with `sammix run`'s, byte for byte. Then the same on
# aarch64 (Debian's cross compilers, run under qemu) on the first frames,
# against the aarch64 `sammix` binary of the same build.
#
#   scripts/test-capi.sh [--x86-only]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sammix/target}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
clip=models/sammix-us-tiny/demo/clip.y4m

command -v cbindgen >/dev/null || cargo install --locked cbindgen --version 0.29.2
cbindgen --config capi/cbindgen.toml --crate sammix-capi --output "$tmp/sammix.h" 2>/dev/null
if ! diff -u include/sammix.h "$tmp/sammix.h"; then
    echo "include/sammix.h is not what cbindgen makes from capi/src/lib.rs: regenerate it (see its first lines)" >&2
    exit 1
fi
echo "  ok   include/sammix.h is up to date"

# compare DIR_PGM DIR_PNG N: each of the first N masks identical
compare() {
    python3 - "$@" <<'PY'
import sys
from pathlib import Path

sys.path.insert(0, "scripts")
from mask_iou import png_gray  # the PNG reader scripts/test-gst.sh uses too

def pgm(path):
    data = Path(path).read_bytes()
    head = data.split(b"\n", 3)
    w, h = map(int, head[1].split())
    return w, h, head[3]

pgms, pngs, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
bad = 0
for i in range(n):
    a, b = pgm(pgms / f"{i:06}.pgm"), png_gray(pngs / f"{i:06}.png")
    if a != b:
        bad += 1
        print(f"  frame {i}: the C API's mask differs from sammix run's", file=sys.stderr)
print(f"  {n - bad} of {n} masks identical")
sys.exit(1 if bad else 0)
PY
}

# x86-64
cargo build --quiet --release --locked -p sammix-capi
cargo build --quiet --release --locked --bin sammix
lib="$CARGO_TARGET_DIR/release/libsammix_c.a"
cc -std=c99 -O2 -Wall -Wextra -Werror -Iinclude examples/c/segment_clip.c "$lib" -lpthread -ldl -lm \
    -Wl,-z,noexecstack -o "$tmp/segment_clip"
mkdir -p "$tmp/c"
"$tmp/segment_clip" models/sammix-us-tiny "$clip" "$tmp/c" >"$tmp/c.txt"
n=$(wc -l <"$tmp/c.txt")
total=$(grep -c FRAME "$clip")
[ "$n" -eq "$total" ] || { echo "the C example segmented $n frames of $total" >&2; exit 1; }
"$CARGO_TARGET_DIR/release/sammix" run --controls off --out "$tmp/cli" -q >/dev/null
compare "$tmp/c" "$tmp/cli/masks" "$n"
echo "  ok   x86-64: examples/c/segment_clip.c through libsammix_c.a, $n frames, masks identical to sammix run's"

# the C API refuses bad input with a message, and does not crash
if "$tmp/segment_clip" "$tmp/no-such-bundle" "$clip" "$tmp/c" 2>"$tmp/err.txt"; then
    echo "the C example opened a bundle that is not there" >&2; exit 1
fi
grep -q "no-such-bundle" "$tmp/err.txt" || { echo "sammix_open's message does not name the folder: $(cat "$tmp/err.txt")" >&2; exit 1; }
echo "  ok   sammix_open names the folder it cannot open: $(head -c 160 "$tmp/err.txt")"

[ "${1:-}" = "--x86-only" ] && exit 0

# aarch64 under qemu, against the aarch64 CLI of the same target folder
triple=aarch64-unknown-linux-gnu
# the folder and profile of scripts/test-aarch64.sh: its dependencies (built
# optimized in the dev profile) are reused, only sammix and the C API build
adir="${AARCH64_TARGET_DIR:-$CARGO_TARGET_DIR/aarch64}"
frames=${CAPI_AARCH64_FRAMES:-4}
arm_build() {
    RUSTC="${RUSTC_AARCH64:-/usr/bin/rustc}" CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        nice cargo build --quiet --locked --target "$triple" --target-dir "$adir" "$@"
}
arm_build -p sammix-capi
arm_build --bin sammix
aarch64-linux-gnu-gcc -std=c99 -O2 -Wall -Wextra -Werror -Iinclude examples/c/segment_clip.c \
    "$adir/$triple/debug/libsammix_c.a" -lpthread -ldl -lm -Wl,-z,noexecstack -o "$tmp/segment_clip_arm"
run_arm() { QEMU_CPU=cortex-a53 qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib "$@"; }
mkdir -p "$tmp/c-arm"
run_arm "$tmp/segment_clip_arm" models/sammix-us-tiny "$clip" "$tmp/c-arm" "$frames" >/dev/null
run_arm "$adir/$triple/debug/sammix" run --controls off --frames "$frames" --out "$tmp/cli-arm" -q >/dev/null
compare "$tmp/c-arm" "$tmp/cli-arm/masks" "$frames"
echo "  ok   aarch64 (qemu, Cortex-A53): the C example's masks identical to the aarch64 sammix run's on $frames frames"
