"""Where does a SAM-Mix run lose Dice: the CAM prompt or SAM itself?

    python -m sammix_recipe.diagnose --runs runs --k 50 --seed 0 [--frames 100]

On the first N lesion-bearing test frames, the run's SAM gets four prompt
sets: the CAM's box and dense prompt (what runs on the device), the ground
truth's largest-component box with the CAM's dense prompt, the CAM's box with
the ground truth as dense prompt, and both from the ground truth. Mean Dice of
each; a CAM with no prompt scores 0 in the first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from .common import RUNS_DIR, setup_logging, ultrasound_set
from .metrics import dice
from .model import DecoderHead, normalize
from .prompt import EIGHT_CONNECTED, PromptParams, mask_to_dense
from .segment import choose_masks, prompts_from_cams, run_sam
from .train_classifier import load_classifier
from .train_sammix import load_sammix


def ground_truth_prompts(masks: np.ndarray, params: PromptParams, size: int, e4: int):
    boxes = np.zeros((len(masks), 2, 2), np.float32)
    dense = np.zeros((len(masks), 1, e4, e4), np.float32)
    margin = params.box_margin * size
    for i, m in enumerate(masks):
        lab, _ = ndimage.label(m, EIGHT_CONNECTED)
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        ys, xs = np.nonzero(lab == sizes.argmax())
        boxes[i] = [[max(xs.min() - margin, 0), max(ys.min() - margin, 0)],
                    [min(xs.max() + margin, size - 1), min(ys.max() + margin, size - 1)]]
        dense[i, 0] = mask_to_dense(m, e4, params.dense_logit)
    return boxes, dense


@torch.no_grad()
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(RUNS_DIR))
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args(argv)
    setup_logging()
    runs, dev, params = Path(args.runs), torch.device("cpu"), PromptParams()
    run = runs / f"sammix-k{args.k}-s{args.seed}"
    sam, cfg = load_sammix(runs / "foundation" / "foundation.pt", run / "sammix.pt", dev)
    clf_run = json.loads((run / "train.json").read_text()).get("classifier_run", "classifier-s0")
    clf = load_classifier(runs / clf_run / "classifier.pt", dev)
    head = DecoderHead(sam)
    test = ultrasound_set("test")
    pos = np.nonzero(test["present"])[0][: args.frames]
    scores: dict[str, list[float]] = {k: [] for k in ("cam", "gt_box+cam_dense", "cam_box+gt_dense", "gt_box+gt_dense")}
    for i in range(0, len(pos), 20):
        img, gt = test["images"][pos[i : i + 20]], test["masks"][pos[i : i + 20]]
        x = normalize(torch.from_numpy(img), cfg)
        _, cam = clf(x)
        boxes, dense, valid = prompts_from_cams(cam.numpy(), cfg, params)
        gt_boxes, gt_dense = ground_truth_prompts(gt, params, cfg.img_size, 4 * cfg.embedding_size)
        sets = {"cam": (boxes, dense), "gt_box+cam_dense": (gt_boxes, dense),
                "cam_box+gt_dense": (boxes, gt_dense), "gt_box+gt_dense": (gt_boxes, gt_dense)}
        for name, (b, d) in sets.items():
            low, iou = run_sam(sam, head, x, b, d)
            pred = choose_masks(low, iou, cfg.img_size).numpy()
            for p, g, v in zip(pred, gt, valid):
                scores[name].append(dice(p, g) if v or name.startswith("gt_box+gt") else 0.0)
    print(json.dumps({k: round(float(np.mean(v)), 4) for k, v in scores.items()} | {"frames": len(pos)}))


if __name__ == "__main__":
    main()
