"""Evaluate trained runs (PyTorch) on the held-out test set and aggregate over seeds.

    python -m sammix_recipe.evaluate --runs runs --out runs/eval.json

Methods: ``sammix-k{K}`` (classifier-gated, CAM-prompted, trained SAM),
``sam-pp-0`` (the foundation SAM prompted by the same CAMs, no segmentation
training), ``unet-k{K}``. Every frame of the test set counts; see
:mod:`metrics` for the empty-mask conventions.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from .common import RUNS_DIR, log, pick_device, save_json, setup_logging, ultrasound_set
from .metrics import summarize
from .model import DecoderHead
from .prompt import PromptParams
from .segment import predict
from .train_classifier import load_classifier
from .train_sammix import load_foundation, load_sammix
from .train_unet import predict_unet

PRESENCE_THRESHOLD = 0.5
AGG_KEYS = ("dice_positive", "dice_all", "iou_positive", "hd95_px", "presence_accuracy")


def evaluate_runs(runs: Path, device_name: str = "auto") -> dict:
    dev = pick_device(device_name)
    test = ultrasound_set("test")
    images, gts = test["images"], test["masks"]
    params = PromptParams()
    foundation = runs / "foundation" / "foundation.pt"
    rows = []
    for run in sorted(runs.iterdir()):
        m = re.fullmatch(r"(sammix|unet)-k(\d+)-s(\d+)", run.name)
        c = re.fullmatch(r"classifier-s(\d+)", run.name)
        if m and m.group(1) == "sammix" and (run / "sammix.pt").exists():
            k, seed = int(m.group(2)), int(m.group(3))
            sam, cfg = load_sammix(foundation, run / "sammix.pt", dev)
            clf_run = json.loads((run / "train.json").read_text()).get("classifier_run", f"classifier-s{seed}")
            clf = load_classifier(runs / clf_run / "classifier.pt", dev)
            pred = predict(clf, sam, DecoderHead(sam), images, cfg, params, PRESENCE_THRESHOLD, dev)
            res = summarize(pred.masks, gts, pred.presence >= PRESENCE_THRESHOLD)
            rows.append({"method": f"sammix-k{k}", "k": k, "seed": seed, **res})
        elif m and m.group(1) == "unet" and (run / "unet.pt").exists():
            k, seed = int(m.group(2)), int(m.group(3))
            pred = predict_unet(run / "unet.pt", images, dev)
            rows.append({"method": f"unet-k{k}", "k": k, "seed": seed, **summarize(pred, gts)})
        elif c and (run / "classifier.pt").exists() and foundation.exists():
            seed = int(c.group(1))
            sam, cfg = load_foundation(foundation, dev)
            clf = load_classifier(run / "classifier.pt", dev)
            pred = predict(clf, sam.eval(), DecoderHead(sam), images, cfg, params, PRESENCE_THRESHOLD, dev)
            res = summarize(pred.masks, gts, pred.presence >= PRESENCE_THRESHOLD)
            rows.append({"method": "sam-pp-0", "k": 0, "seed": seed, **res})
        else:
            continue
        log.info("%s s%d: dice+ %.4f dice %.4f", rows[-1]["method"], rows[-1]["seed"],
                 rows[-1]["dice_positive"], rows[-1]["dice_all"])
    return {"test_set": test_description(test), "rows": rows, "summary": aggregate(rows)}


def test_description(test: dict) -> dict:
    return {
        "generator": "sammix_recipe.data.ultrasound.generate_frame",
        "seeds": [int(test["seeds"][0]), int(test["seeds"][-1])],
        "frames": int(len(test["seeds"])),
        "positive_frames": int(test["present"].sum()),
        "size": list(test["images"].shape[1:]),
    }


def aggregate(rows: list[dict]) -> dict:
    by = defaultdict(list)
    for r in rows:
        by[r["method"]].append(r)
    out = {}
    for method, rs in sorted(by.items()):
        agg = {"seeds": sorted(r["seed"] for r in rs)}
        for key in AGG_KEYS:
            vals = [r[key] for r in rs if r.get(key) is not None]
            if vals:
                agg[key] = {"mean": float(np.mean(vals)), "std": float(np.std(vals))}
        out[method] = agg
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(RUNS_DIR))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    setup_logging()
    runs = Path(args.runs)
    result = evaluate_runs(runs, args.device)
    save_json(Path(args.out or runs / "eval.json"), result)
    for method, agg in result["summary"].items():
        d = agg.get("dice_positive", {})
        log.info("%-12s dice+ %.4f ± %.4f  (%d seeds)", method, d.get("mean", float("nan")),
                 d.get("std", float("nan")), len(agg["seeds"]))


if __name__ == "__main__":
    main()
