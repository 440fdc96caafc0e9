#!/usr/bin/env bash
# SAM-Mix on LiteMedSAM, every run behind models/sammix-us-medsam/MODEL_CARD.md, on a CPU.
# Run from models/recipe with the recipe's Python (PY=...). Times are this 2-core machine's.
#
#   1. embeddings of the frozen encoder, cached as float16 (~1.5 s a frame: ~25 min for 940 frames)
#   2. per run: the presence/CAM head, then the decoder on the K masks (~10-20 min a run)
#   3. the prompt rule's parameters and the gate chosen on the pool's validation split (never the test set)
#   4. PyTorch rows on the test set; the bundle; the runtime's end-to-end rows (sammix eval) are in the card
set -euo pipefail
PY=${PY:-../../.venv/bin/python}
POOL=${POOL:-700}
HEAD_STEPS=${HEAD_STEPS:-800}
STEPS=${STEPS:-250}

$PY -m sammix_recipe.medsam --embed --pool "$POOL"
for run in "50 0" "50 1" "50 2" "5 0" "100 0"; do
    set -- $run
    $PY -m sammix_recipe.medsam_train --k "$1" --seed "$2" --head-steps "$HEAD_STEPS" --steps "$STEPS"
    $PY -m sammix_recipe.medsam_eval --run "runs/medsam-k$1-s$2" --sweep
    $PY -m sammix_recipe.medsam_eval --run "runs/medsam-k$1-s$2" --split test
done
# the rows without a lever: CAM of image labels only (no mask supervision), SAM-PP-0, the ground-truth box ceiling
$PY -m sammix_recipe.medsam_train --k 50 --seed 0 --cam gap --head-steps "$HEAD_STEPS" --steps 0 \
    --decoder-from runs/medsam-k50-s0
$PY -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0-gap --sweep
$PY -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0-gap --split test
$PY -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0 --split test --sam-pp
$PY -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0 --split test --gt-box
$PY -m sammix_recipe.medsam_bundle --run runs/medsam-k50-s0
