#!/usr/bin/env bash
# Before/after timing of the native decoder between two commits, on this
# machine: builds the `native_decoder` test binary of each commit (git
# worktrees sharing one target folder), then runs their `timing_native_vit_b`
# alternately, so that a machine whose speed drifts over minutes slows both
# alike. Prints, per graph, every run's median and the median of those.
#
#   scripts/ab_decoder.sh REV_BEFORE REV_AFTER [ROUNDS]   (default 6 rounds)
#
# Needs the ViT-B-size graphs in models/vit-b-random (not committed; see
# benches/README.md for the command that exports them). SAMMIX_REPS sets the
# calls per run (default 40).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
before=${1:?usage: $0 REV_BEFORE REV_AFTER [ROUNDS]}
after=${2:?usage: $0 REV_BEFORE REV_AFTER [ROUNDS]}
rounds=${3:-6}
[ -f "$root/models/vit-b-random/decoder.onnx" ] ||
    { echo "models/vit-b-random/decoder.onnx is not here (benches/README.md says how to export it)" >&2; exit 2; }

work=$(mktemp -d)
trap 'for w in "$work"/wt-*; do git -C "$root" worktree remove --force "$w" 2>/dev/null || true; done; rm -rf "$work"' EXIT

build() { # REV LABEL: the test binary of REV, copied to $work/LABEL
    local wt="$work/wt-$2"
    git -C "$root" worktree add -q --detach "$wt" "$1"
    ln -s "$root/models/vit-b-random" "$wt/models/vit-b-random"
    local bin
    bin=$(cd "$wt" && CARGO_TARGET_DIR="$root/target" cargo test --release --test native_decoder --no-run 2>&1 |
        sed -n 's/.*(\(.*native_decoder-[0-9a-f]*\)).*/\1/p' | tail -1)
    [ -x "$bin" ] || { echo "no test binary built for $1" >&2; exit 1; }
    cp "$bin" "$work/$2"
}
build "$before" before
build "$after" after

for _ in $(seq "$rounds"); do
    for label in before after; do
        SAMMIX_REPS=${SAMMIX_REPS:-40} "$work/$label" timing_native_vit_b --ignored --nocapture 2>&1 |
            sed -n "s/^vit-b \(.*\): native median \([0-9.]*\) ms.*/$label|\1|\2/p"
    done
done | sort -t'|' -k2,2 -k1,1 -k3,3n | awk -F'|' '
    { key = $2 " " $1; v[key] = v[key] " " $3; n[key]++; all[key, n[key]] = $3 }
    END { for (k in v) { m = all[k, int((n[k] + 1) / 2)]; printf "%-34s median %6s ms  runs:%s\n", k, m, v[k] } }' | sort
