#!/usr/bin/env bash
# Every training run behind the bundle's model card, then the PyTorch evaluation.
#
#   models/recipe/scripts/train_all.sh            # full size (GPU: minutes; 2-core CPU: hours)
#   SCALE=smoke models/recipe/scripts/train_all.sh   # a few steps each, to check the plumbing
#
# JOBS runs that many trainings side by side (default 1; on a GPU 6 fits easily).
# PAIRS="50:0 50:1 5:0" picks the (K, seed) runs of SAM-Mix and U-Net (default: every K x seed).
# Runs land in $SAMMIX_RUNS (default models/recipe/runs); datasets are cached in $SAMMIX_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
JOBS=${JOBS:-1}
SEEDS=${SEEDS:-"0 1 2"}
KS=${KS:-"5 50 100"}
if [ "${SCALE:-full}" = smoke ]; then
  F="--steps 20 --batch 4 --samples 256"; C="--steps 20 --batch 8"; S="--steps 10 --batch 4"; U="--steps 10 --batch 4"
else
  F=${FOUNDATION_ARGS:-}; C=${CLASSIFIER_ARGS:-}; S=${SAMMIX_ARGS:-}; U=${UNET_ARGS:-}
fi
RUNS=${SAMMIX_RUNS:-runs}
mkdir -p "$RUNS"
export SAMMIX_RUNS=$RUNS

# Datasets first (cached; later jobs only read them).
SAMPLES=$(echo "$F" | sed -n 's/.*--samples \([0-9]*\).*/\1/p'); SAMPLES=${SAMPLES:-24000}
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $PY -c "
from sammix_recipe.common import ultrasound_set, shapes_set, setup_logging
setup_logging(); ultrasound_set('pool'); ultrasound_set('test'); shapes_set($SAMPLES)"

pids=()
wait_slot() { while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done; }
run() { local name=$1; shift; wait_slot; echo "start $name"; ( OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$@" > "$RUNS/$name.log" 2>&1 || { echo "FAILED $name"; tail -20 "$RUNS/$name.log"; exit 1; } ) & pids+=($!); }
wait_all() { local ok=0; for p in "${pids[@]}"; do wait "$p" || ok=1; done; pids=(); return $ok; }

if [ -z "${PAIRS:-}" ]; then PAIRS=$(for k in $KS; do for s in $SEEDS; do echo -n "$k:$s "; done; done); fi

# Stage 1: what SAM-Mix starts from. Stage 2: SAM-Mix and the U-Net baselines (the
# U-Nets need nothing from stage 1; they wait so that a GPU gives the foundation its time).
run foundation $PY -m sammix_recipe.train_foundation $F
# one classification branch (image labels only) serves every K and seed
run classifier-s0 $PY -m sammix_recipe.train_classifier --seed 0 $C
wait_all
for ks in $PAIRS; do
  k=${ks%%:*}; s=${ks##*:}
  run sammix-k$k-s$s $PY -m sammix_recipe.train_sammix --k "$k" --seed "$s" $S
  run unet-k$k-s$s $PY -m sammix_recipe.train_unet --k "$k" --seed "$s" $U
done
wait_all
$PY -m sammix_recipe.evaluate --runs "$RUNS"
