#!/usr/bin/env bash
# The mask decoder three ways on the same graphs and input shapes, back to
# back, one thread each: native (sammix::decoder) and tract from the
# criterion bench `benches/decoder.rs`, onnxruntime from
# `scripts/bench_decoder_ort.py`; then a table of medians (ms).
#
#   scripts/bench_decoders.sh [--quick] [--pipeline]
#
#   --quick      criterion's short run (fewer samples; noisier)
#   --pipeline   also `sammix bench --json` on the bundle's demo clip: both
#                decoders inside the whole pipeline, on real embeddings
#
# Graphs: the bundle's decoder, and models/vit-b-random/{,int8/}decoder.onnx
# when present (see benches/decoder.rs for how to make them). Run it on an
# idle machine: on a shared 2-core VM the numbers move by 10-20 %.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
quick=()
pipeline=0
for a in "$@"; do
  case "$a" in
    --quick) quick=(--quick) ;;
    --pipeline) pipeline=1 ;;
    *) echo "usage: $0 [--quick] [--pipeline]" >&2; exit 2 ;;
  esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== criterion: native and tract (cargo bench --bench decoder)" >&2
cargo bench --bench decoder -- "${quick[@]}" >&2

echo "== onnxruntime (scripts/bench_decoder_ort.py)" >&2
"$PY" scripts/bench_decoder_ort.py >"$tmp/ort.json"

if [ "$pipeline" = 1 ]; then
  echo "== sammix bench --json (the pipeline, both decoders)" >&2
  cargo build --release --quiet
  ./target/release/sammix bench --json >"$tmp/pipeline.json"
fi

"$PY" - "$tmp" <<'EOF'
import json, sys
from pathlib import Path

tmp = Path(sys.argv[1])
crit = Path("target/criterion/decoder")
ort = json.loads((tmp / "ort.json").read_text())

def median_ms(group_dir):
    f = group_dir / "new" / "estimates.json"
    return json.loads(f.read_text())["median"]["point_estimate"] / 1e6 if f.is_file() else None

native_dirs = sorted(d for d in crit.glob("native_*") if d.is_dir()) if crit.is_dir() else []
kernels = ", ".join(d.name[len("native_"):] for d in native_dirs) or "?"
print(f"cpu: {ort['cpu']} ({ort['cores_visible']} cores visible); one thread each; "
      f"native kernels: {kernels}; {ort['engine']}")
print(f"{'graph':<14} {'GMAC':>7} {'onnxruntime':>12} {'tract':>9} {'native':>9} {'tract/native':>13} {'ort/native':>11}")
for r in ort["results"]:
    g = r["graph"]
    tract = median_ms(crit / "tract" / g)
    native = next((median_ms(d / g) for d in native_dirs if (d / g).is_dir()), None)
    fmt = lambda v: f"{v:9.2f}" if v is not None else f"{'-':>9}"
    ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
    print(f"{g:<14} {r['gmac']:>7.3f} {r['median_ms']:>12.2f} {fmt(tract)} {fmt(native)} "
          f"{ratio(tract, native):>13} {ratio(r['median_ms'], native):>11}")
for s in ort["skipped"]:
    print(f"{s['graph']:<14} skipped: {s['file']} is absent")

p = tmp / "pipeline.json"
if p.is_file():
    v = json.loads(p.read_text())
    d = v["decoder_median_ms"]
    a = v["agreement"]
    print(f"pipeline ({v['bundle']}, {v['iterations']} frames of {v['source']}): decoder median "
          f"native {d['native']:.2f} ms, tract {d['tract']:.2f} ms; kernels {v['kernels']['name']}; "
          f"masks on {a['frames']} segmented frames: IoU min {a['min_mask_iou']:.4f}")
EOF
