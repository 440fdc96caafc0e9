#!/usr/bin/env bash
# SAM-Mix on LiteMedSAM, every run behind models/sammix-us-medsam/MODEL_CARD.md, on a CPU.
# Run from models/recipe with the recipe's Python (PY=...). Times are this 2-core machine's.
#
#   1. embeddings of the frozen encoder, cached as float16 (~1.2-1.9 s a frame: 20-30 min for 940 frames)
#   2. per run: the presence/CAM head (+ 4 augmented copies of each labelled frame, embedded once),
#      then the decoder on the K masks and their copies
#   3. the prompt rule's parameters and the gate chosen on the pool's validation split (never the test set)
#   4. PyTorch rows on the test set; the bundle; the runtime's end-to-end rows (sammix eval) are in the card
#
# The committed seed-0 checkpoint (checkpoints/medsam-k50-s0) was made in two stages, as below: the decoder's
# first 250 steps (decoder_train.json: no copies, the head of that time, trained while only 372 pool frames
# were embedded, so a rerun of stage 1 gives a similar, not the same, decoder), then the head and 300 more
# decoder steps from it (train.json; ~14 min here).
set -euo pipefail
PY=${PY:-../../.venv/bin/python}
POOL=${POOL:-700}

$PY -m sammix_recipe.medsam --embed --pool "$POOL"
# stage 1: the decoder from LiteMedSAM's, 250 steps
$PY -m sammix_recipe.medsam_train --k 50 --seed 0 --head-steps 300 --head-batch 32 --no-negative-pixels --aug 0 \
    --steps 250 --out runs/medsam-k50-s0-stage1
# stage 2: the head (negative frames as background, augmented copies) and 300 decoder steps more
$PY -m sammix_recipe.medsam_train --k 50 --seed 0 --head-steps 800 --head-batch 16 --steps 300 \
    --decoder-from runs/medsam-k50-s0-stage1
$PY -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0 --sweep
$PY -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0 --split test
# the rows without training and the ceiling
$PY -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0 --split test --sam-pp
$PY -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0 --split test --gt-box
$PY -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0 --split test --levers
$PY -m sammix_recipe.medsam_bundle --run runs/medsam-k50-s0
