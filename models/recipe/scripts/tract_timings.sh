#!/usr/bin/env bash
# Time every exported graph form in tract (one thread, median of N runs) and print
# JSON {form: {role: {median_ms, ...}}}, which `bundle.py --tract-timings` reads to
# pick the int8 form tract runs fastest.
#
#   scripts/tract_timings.sh runs/export > runs/tract_timings.json
#
# Built with -C target-cpu=native (tract's integer kernels need it to beat f32;
# a board build names its CPU instead), in its own target directory.
set -euo pipefail
EXPORT=$(cd "${1:?usage: tract_timings.sh EXPORT_DIR}" && pwd)
ITERS=${ITERS:-30}
cd "$(dirname "$0")/../../.."
export CARGO_TARGET_DIR=${NATIVE_TARGET_DIR:-target/native}
RUSTFLAGS="-C target-cpu=native" cargo build --quiet --release --example graph_timing
BIN=$CARGO_TARGET_DIR/release/examples/graph_timing
ois=$(mktemp --suffix=.npy)
python3 - "$ois" <<'PY'
import struct, sys
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
header += " " * (63 - len(header) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack("<2f", 256, 256))
PY
echo "{"
first_form=1
for form in f32 dynamic qdq; do
  [ -d "$EXPORT/$form" ] || continue
  [ $first_form = 1 ] || echo ","; first_form=0
  printf '  "%s": {' "$form"
  first=1
  for role in classifier encoder decoder; do
    extra=()
    if [ $role = decoder ]; then
      extra=(--const "orig_im_size=$ois" --shape point_coords=1,2,2 --shape point_labels=1,2)
    fi
    line=$("$BIN" "$EXPORT/$form/$role.onnx" "${extra[@]}" --iters "$ITERS" --warmup 3)
    [ $first = 1 ] || printf ','; first=0
    printf '\n    "%s": %s' "$role" "$line"
  done
  printf '\n  }'
done
echo
echo "}"
rm -f "$ois"
