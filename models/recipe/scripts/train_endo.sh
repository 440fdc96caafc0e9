#!/usr/bin/env bash
# The endoscopy bundle models/sammix-endo-medsam from scratch (issue 18), from models/recipe:
#
#   PY=$HOME/.cache/sammix/venv/bin/python scripts/train_endo.sh [STAGE...]
#
# Stages (default: all, in this order):
#   embed   LiteMedSAM embeddings of the colonoscopy pool (first 700), validation and test sets (~30 min
#           on two idle cores; models/recipe/cache, not committed)
#   rows    SAM-Mix-K for K = 50, 5, 100 (seed 0; head with context, 800 steps of 16; decoder 550 steps of 8;
#           image labels from the first 332 embedded pool frames, as the shipped run had them), each with its
#           prompt rule chosen on the validation set and scored on the test set; SAM-PP-0 and the
#           ground-truth-box ceiling for K = 50; U-Net-50 (~20-40 min a row on one core)
#   bundle  models/sammix-endo-medsam from runs/endo-medsam-k50-s0 (the encoder's and decoder's forms those
#           of sammix-us-medsam, the same encoder graph; the classifier's chosen on validation; demo clip,
#           reference vectors)
#   runtime the bundle end to end in the runtime: `sammix eval` on the test set, `sammix run` on the demo
#           clip, then the model card (release build)
# JSON of every row is copied to checkpoints/ (weights are not: the checkpoints' 20 MB budget is the ultrasound
# model's; a row regenerates with this script). ROWS="50 5" picks rows (default 50 5 100).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
stages=${*:-embed rows bundle runtime}
run() { echo "+ $*" >&2; "$@"; }
keep() {  # the JSON files of a run into checkpoints/
    mkdir -p "checkpoints/$1"
    cp runs/"$1"/*.json "checkpoints/$1/"
}
for stage in $stages; do
    case $stage in
    embed)
        run $PY -m sammix_recipe.medsam --embed --pool 700 --sets endo-pool,endo-validation,endo-test ;;
    rows)
        for k in ${ROWS:-50 5 100}; do
            name=endo-medsam-k$k-s0
            run $PY -m sammix_recipe.medsam_train --data endo --k $k --seed 0 --head-arch context \
                --head-steps 800 --head-batch 16 --steps 550 --pool 332 --out runs/$name
            run $PY -m sammix_recipe.medsam_eval --run runs/$name --sweep
            run $PY -m sammix_recipe.medsam_eval --run runs/$name --split test
            if [ $k = 50 ]; then
                run $PY -m sammix_recipe.medsam_eval --run runs/$name --split test --sam-pp
                run $PY -m sammix_recipe.medsam_eval --run runs/$name --split test --gt-box
            fi
            keep $name
        done
        run $PY -m sammix_recipe.train_unet --data endo --k 50 --seed 0
        mkdir -p checkpoints/endo-unet-k50-s0 && cp runs/endo-unet-k50-s0/*.json checkpoints/endo-unet-k50-s0/ ;;
    bundle)
        run $PY -m sammix_recipe.medsam_bundle --run runs/endo-medsam-k50-s0 \
            --forms-from ../sammix-us-medsam/metrics.json ;;
    runtime)
        (cd ../.. && cargo build --release --quiet)
        sammix=${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}/release/sammix
        data=$(mktemp -d)
        run $PY -m sammix_recipe.export_dataset --data endo --set test --out "$data/test"
        run "$sammix" eval --bundle ../sammix-endo-medsam --data "$data/test" --out runs/endo_runtime_test.json
        run "$sammix" run --bundle ../sammix-endo-medsam --out "$data/clip" --json > runs/endo_runtime_clip.json
        run $PY -m sammix_recipe.endo_card --runtime-test runs/endo_runtime_test.json \
            --runtime-clip runs/endo_runtime_clip.json --runtime-clip-out "$data/clip"
        rm -rf "$data" ;;
    *) echo "train_endo.sh: unknown stage $stage (embed, rows, bundle, runtime)" >&2; exit 2 ;;
    esac
done
