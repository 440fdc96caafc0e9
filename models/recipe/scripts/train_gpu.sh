#!/usr/bin/env bash
# Every training run behind the model card on one GPU, in about 8 minutes of wall time:
# the datasets, then the foundation and the classifier side by side, then SAM-Mix and
# U-Net for each (K, seed) side by side, then the evaluation on the held-out set.
#
#   models/recipe/scripts/train_gpu.sh          # runs land in $SAMMIX_RUNS (default runs)
#
# Each run has a wall-clock budget (--time-budget): after its first timed steps it
# lowers its step count to fit, and its train.json records the steps it ran, so
# `--steps N` without a budget repeats it on any machine. Measured on one H200 with
# 16 CPU cores (the model card's training table names the device of every run).
set -euo pipefail
cd "$(dirname "$0")/.."
export SAMMIX_RUNS=${SAMMIX_RUNS:-runs}
export JOBS=${JOBS:-12}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export PAIRS=${PAIRS:-"50:0 50:1 50:2 5:0 100:0"}
export FOUNDATION_ARGS=${FOUNDATION_ARGS:-"--steps 20000 --batch 128 --samples 48000 --time-budget 190"}
export CLASSIFIER_ARGS=${CLASSIFIER_ARGS:-"--steps 1600 --batch 64 --time-budget 200"}
export SAMMIX_ARGS=${SAMMIX_ARGS:-"--steps 4000 --batch 16 --time-budget 150"}
export UNET_ARGS=${UNET_ARGS:-"--steps 4000 --batch 16 --time-budget 150"}
exec scripts/train_all.sh
