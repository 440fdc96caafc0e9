#!/usr/bin/env bash
# Soak: `sammix run` on the synthetic phantom for many frames (live: the
# phantom plays at 25 fps and the newest frame wins, as from a capture card)
# while the process's resident memory is sampled, to show that it stays flat.
#
#   scripts/soak.sh [FRAMES] [OUT_DIR]      (defaults: 100000, target/soak)
#
# FRAMES counts processed frames (`--frames`). Writes OUT_DIR/rss.csv
# (seconds since start, VmRSS kB, VmHWM kB, one row per SOAK_EVERY seconds,
# default 5) and OUT_DIR/summary.json (`sammix run --json`), then prints RSS
# after warm-up (the first sample past SOAK_WARMUP seconds, default 60), at
# the end, the largest, and the least-squares slope after warm-up in kB per
# hour. Uses target/release/sammix (built here when missing) and the default
# bundle; extra `sammix run` arguments go in SOAK_ARGS.
set -euo pipefail

frames="${1:-100000}"
out="${2:-target/soak}"
every="${SOAK_EVERY:-5}"
warmup="${SOAK_WARMUP:-60}"
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release/sammix"
[ -x "$bin" ] || cargo build --release --quiet
mkdir -p "$out"

# shellcheck disable=SC2086
"$bin" run --source synthetic:1 --frames "$frames" --json ${SOAK_ARGS:-} >"$out/summary.json" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' INT TERM
start=$(date +%s)
echo "seconds,rss_kb,hwm_kb" >"$out/rss.csv"
while kill -0 "$pid" 2>/dev/null; do
    if status=$(cat "/proc/$pid/status" 2>/dev/null); then
        rss=$(awk '/^VmRSS:/ {print $2}' <<<"$status")
        hwm=$(awk '/^VmHWM:/ {print $2}' <<<"$status")
        [ -z "$rss" ] || echo "$(( $(date +%s) - start )),$rss,$hwm" >>"$out/rss.csv"
    fi
    sleep "$every"
done
wait "$pid"
elapsed=$(( $(date +%s) - start ))

awk -F, -v warm="$warmup" -v elapsed="$elapsed" -v frames="$frames" '
    NR == 1 { next }
    { if ($2 > max) max = $2 }
    $1 >= warm {
        if (!n) first = $2
        n++; last = $2; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2
    }
    END {
        if (n < 2) { printf "soak: %d frames in %d s; too short for a trend (fewer than 2 samples after %d s)\n", frames, elapsed, warm; exit }
        slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
        printf "soak: %d frames in %d s; RSS after warm-up %d kB, at the end %d kB, largest %d kB; trend after warm-up %+.0f kB/h (%d samples)\n", frames, elapsed, first, last, max, slope * 3600, n
    }' "$out/rss.csv"
