#!/usr/bin/env bash
# Each graph of a bundle in the runtime and in onnxruntime, back to back, one
# thread each: `sammix bench --json` (the native kernels or tract for the
# classifier and the encoder, as the release build picks them, the
# native and the tract decoder, on the bundle's demo clip) and
# `scripts/bench_bundle_ort.py` (the same graphs on the same clip's frames);
# then a table of medians (ms) and their ratios.
#
#   scripts/bench_bundle.sh [BUNDLE] [ITERATIONS]
#
# BUNDLE: default models/sammix-us-tiny; ITERATIONS: sammix bench's timed
# frames (default 100; onnxruntime runs each graph on 20 frames, the decoder
# with one box). Run it on an idle machine: on a shared 2-core VM the numbers
# move by 10-20 %. KEEP=DIR keeps both JSON files there (sammix.json, ort.json).
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
bundle=${1:-models/sammix-us-tiny}
iters=${2:-100}
[ -f "$bundle/sammix.toml" ] || { echo "$bundle: no sammix.toml (expected a bundle folder)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== sammix bench --json ($bundle, $iters frames)" >&2
cargo build --release --quiet
"${CARGO_TARGET_DIR:-target}/release/sammix" bench --json --bundle "$bundle" --iterations "$iters" >"$tmp/sammix.json"
echo "== onnxruntime (scripts/bench_bundle_ort.py)" >&2
"$PY" scripts/bench_bundle_ort.py "$bundle" >"$tmp/ort.json"
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$tmp/sammix.json" "$tmp/ort.json" "$KEEP/"; fi

"$PY" - "$tmp" <<'EOF'
import json, sys
from pathlib import Path

tmp = Path(sys.argv[1])
s = json.loads((tmp / "sammix.json").read_text())
o = json.loads((tmp / "ort.json").read_text())
stages = s["stages"]["native"]
print(f"{s['bundle']} ({s['precision']}); cpu {s['cpu']}, one thread each; {s['engine']}; "
      f"native kernels {s['kernels']['name']}; onnxruntime {o['onnxruntime']} (qdq fusion {o['qdq_fusion']})")
print(f"{'graph':<12} {'sammix':>9} {'engine':>8} {'onnxruntime':>12} {'ort / sammix':>13}")
rows = [("classifier", stages["classifier_ms"]["p50"], "native" if "native" in s.get("classifier_backend", "") else "tract"),
        ("encoder", stages["encoder_ms"]["p50"], "native" if "native" in s.get("encoder_backend", "") else "tract"),
        ("decoder", s["decoder_median_ms"]["native"], "native"),
        ("decoder", s["decoder_median_ms"]["tract"], "tract")]
for graph, ms, engine in rows:
    ort_ms = o[graph]["median_ms"]
    print(f"{graph:<12} {ms:>9.2f} {engine:>8} {ort_ms:>12.2f} {ort_ms / ms:>12.2f}x")
seg, gated = stages["frame_segmented_ms"], stages["frame_gated_ms"]
print(f"frames (native decoder): segmented {seg['n']}, median {seg['p50']:.2f} ms; "
      f"gated out {gated['n']}, median {gated['p50']:.2f} ms")
EOF
