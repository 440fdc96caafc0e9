#!/usr/bin/env bash
# The report pages in a real browser: `sammix eval --report` on the
# reference frames of the bundled model (with ground truth and one simulated
# click), `sammix bench --report` on its demo clip; each page opened in
# headless Chromium (Debian's chromium-headless-shell), screenshotted, and its
# rendered numbers checked against the JSON they came from
# (scripts/check_report.py). Screenshots land in $REPORT_SHOTS if set.
set -euo pipefail
cd "$(dirname "$0")/.."
browser=$(command -v chromium-headless-shell || command -v chromium || true)
[ -n "$browser" ] || { echo "no headless Chromium (apt-get install chromium-headless-shell)" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sammix/target}"
PYTHON="${PYTHON:-${VENV:-.venv}/bin/python}"
cargo build --quiet
sammix="$CARGO_TARGET_DIR/debug/sammix"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the default bundle's reference frames (reference/index.json) and the
# reference pipeline's masks as ground truth
"$PYTHON" - "$tmp/data" <<'PY'
import json, shutil, sys
from pathlib import Path
import numpy as np
from PIL import Image
ref, out = Path("models/sammix-us-tiny/reference"), Path(sys.argv[1])
(out / "images").mkdir(parents=True); (out / "masks").mkdir()
frames = [f["name"] for f in json.loads((ref / "index.json").read_text())["frames"]]
assert len(frames) >= 2, f"{ref}/index.json: expected at least 2 reference frames, found {len(frames)}"
for f in frames:
    shutil.copy(ref / f"{f}_frame.png", out / "images" / f"{f}.png")
    mask = np.load(ref / f / "final_mask.npy")
    Image.fromarray(((mask > 0) * 255).astype(np.uint8)).save(out / "masks" / f"{f}.png")
PY
n_frames=$(ls "$tmp/data/images" | wc -l)

render() {  # page, name
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2400 \
        --screenshot="$tmp/$2.png" "file://$1" >/dev/null 2>&1
    "$browser" --headless --no-sandbox --disable-gpu --dump-dom "file://$1" 2>/dev/null >"$tmp/$2-dom.html"
    size=$(stat -c %s "$tmp/$2.png")
    [ "$size" -gt 20000 ] || { echo "$2: screenshot of $size bytes: the page did not render" >&2; exit 1; }
    echo "  ok   $2 page rendered by $("$browser" --version 2>/dev/null | head -1): screenshot $size bytes"
    if [ -n "${REPORT_SHOTS:-}" ]; then mkdir -p "$REPORT_SHOTS"; cp "$tmp/$2.png" "$REPORT_SHOTS/"; fi
}

"$sammix" eval --data "$tmp/data" --clicks 1 --report "$tmp/eval" --out "$tmp/eval.json" >/dev/null
render "$tmp/eval/index.html" eval
python3 scripts/check_report.py "$tmp/eval-dom.html" "$tmp/eval/report.json" --min-numbers 20 \
    --same-as "$tmp/eval.json"
[ "$(ls "$tmp/eval/worst" | wc -l)" -eq $((3 * n_frames)) ] || { echo "eval: expected $n_frames frames x 3 pictures in worst/" >&2; exit 1; }

"$sammix" bench --iterations 12 --warmup 2 --report "$tmp/bench" --json >"$tmp/bench.json"
render "$tmp/bench/index.html" bench
python3 scripts/check_report.py "$tmp/bench-dom.html" "$tmp/bench/report.json" --min-numbers 60 \
    --same-as "$tmp/bench.json"

# the check itself: a page showing one number that is not the JSON's fails it
sed -E '0,/data-key="\/summary\/dice_all" data-decimals="3">[0-9.]+</s//data-key="\/summary\/dice_all" data-decimals="3">0.123</' \
    "$tmp/eval-dom.html" >"$tmp/tampered.html"
if python3 scripts/check_report.py "$tmp/tampered.html" "$tmp/eval/report.json" 2>/dev/null; then
    echo "check_report.py passed a page whose Dice was changed" >&2
    exit 1
fi
echo "  ok   a page showing a number the JSON does not have fails the check"
