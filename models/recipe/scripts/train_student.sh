#!/usr/bin/env bash
# The real-time student bundle (issue "Real time on a CPU core") from the cached LiteMedSAM embeddings, from
# models/recipe:
#
#   PY=$HOME/.cache/sammix/venv/bin/python scripts/train_student.sh [STAGE...]
#
# Needs the teacher's embeddings of all 2,000 pool frames and the test set (`python -m sammix_recipe.medsam
# --embed --pool 2000 --sets pool,test`, ~1.5 h on two cores; models/recipe/cache, not committed).
#
# Stages (default: all but distill, in this order):
#   distill   the student (size s: 0.59 GMAC, 0.91 M parameters) on the teacher's embeddings averaged to 32×32,
#             MSE, 6,000 steps of 16 frames of the pool (validation split held out): ~55 min on two cores.
#             Its weights are committed (checkpoints/student-s/student.pt, fp16): the stages below start from
#             them (copied to runs/student-s when missing).
#   finetune  the student and SAM-Mix's presence/CAM head (context) trained together on K = 50 masks (4 augmented
#             copies each) and the pool's image labels, the MSE to the teacher kept as a term (~15 min)
#   decoder   LiteMedSAM's prompt encoder and mask decoder on the fine-tuned student's E = 32 embeddings (the
#             fine-tune's head's prompts half the time, jittered ground-truth boxes the other half), 1,200 steps
#             of 8 (~20 min), then the prompt rule and gate chosen on validation, the test set, the
#             ground-truth-box ceiling, the demo clip (PyTorch)
#   head      a fresh presence/CAM head (context) on the fine-tuned student's embeddings, the student frozen,
#             1,600 steps of 16 (~6 min), with the decoder stage's decoder; evaluated as above. On validation
#             it beats the head trained together with the student (Dice+ 0.789 against 0.765)
#   frozen    a head and decoder on the distilled student left frozen (the row without fine-tuning)
#   bundle    the bundle from the head run (forms chosen on validation in onnxruntime)
#   runtime   the bundle end to end in the runtime: `sammix eval` on the test set, `sammix run` on its demo
#             clip, `sammix bench --json` (release build)
# JSON of every run is copied to checkpoints/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
BUNDLE=${BUNDLE:-../sammix-us-tiny}
stages=${*:-finetune decoder head frozen bundle runtime}
run() { echo "+ $*" >&2; "$@"; }
keep() {  # the JSON files of a run into checkpoints/
    mkdir -p "checkpoints/$1"
    cp runs/"$1"/*.json "checkpoints/$1/"
}
rows() {  # $1: the student run the SAM-Mix run sits on; $2: the SAM-Mix run; $3...: extra medsam_train flags
    local student=$1 name=$2
    shift 2
    run $PY -m sammix_recipe.medsam_train --encoder student:$student --k 50 --seed 0 --batch 8 "$@" \
        --out runs/$name
    run $PY -m sammix_recipe.medsam_eval --run runs/$name --sweep
    run $PY -m sammix_recipe.medsam_eval --run runs/$name --split test
    run $PY -m sammix_recipe.medsam_eval --run runs/$name --split test --gt-box
    run $PY -m sammix_recipe.medsam_eval --run runs/$name --split clip
    keep $name
}
if [ ! -f runs/student-s/student.pt ] && [ -f checkpoints/student-s/student.pt ]; then
    mkdir -p runs/student-s && cp checkpoints/student-s/student.pt runs/student-s/
fi
for stage in $stages; do
    case $stage in
    distill)
        run $PY -m sammix_recipe.student --distill --size s --steps 6000 --batch 16 --lr 2e-3 --out runs/student-s
        mkdir -p checkpoints/student-s && cp runs/student-s/student.pt runs/student-s/distill.json checkpoints/student-s/ ;;
    finetune)
        run $PY -m sammix_recipe.student --finetune runs/student-s --k 50 --seed 0 --steps 800 --batch 16 \
            --lr 3e-4 --distill-weight 50 --out runs/student-s-ft-k50-s0
        keep student-s-ft-k50-s0 ;;
    decoder)
        rows student-s-ft-k50-s0 student-s-ft-k50-s0-dec1200 --head-from runs/student-s-ft-k50-s0 --steps 1200 ;;
    head)
        rows student-s-ft-k50-s0 student-s-ft-k50-s0-head1600 --head-arch context --head-steps 1600 \
            --head-batch 16 --decoder-from runs/student-s-ft-k50-s0-dec1200 --steps 0 ;;
    frozen)
        rows student-s student-s-medsam-k50-s0 --head-arch context --head-steps 800 --head-batch 16 --steps 300 ;;
    bundle)
        run $PY -m sammix_recipe.medsam_bundle --run runs/student-s-ft-k50-s0-head1600 --out "$BUNDLE" \
            --name "$(basename "$BUNDLE")" ;;
    runtime)
        (cd ../.. && cargo build --release --quiet)
        sammix=${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}/release/sammix
        data=$(mktemp -d)
        run $PY -m sammix_recipe.export_dataset --set test --out "$data/test"
        run "$sammix" eval --bundle "$BUNDLE" --data "$data/test" --out runs/student_runtime_test.json
        run "$sammix" run --bundle "$BUNDLE" --out "$data/clip" --json > runs/student_runtime_clip.json
        run "$sammix" bench --bundle "$BUNDLE" --json > runs/student_bench.json
        rm -rf "$data" ;;
    *) echo "train_student.sh: unknown stage $stage (distill, finetune, decoder, head, frozen, bundle, runtime)" >&2
       exit 2 ;;
    esac
done
