"""Choose the confidence flag's thresholds (the manifest's ``[confidence]``) on validation frames.

The flag should find the frames a clinician must look at: those whose mask scores Dice < 0.7. Its
signals are what the runtime already knows about a frame (``sammix eval`` writes them per image):
how near the presence probability came to the gate, the CAM's peak, the decoder's predicted IoU.
The rule is the runtime's (``src/pipeline/confidence.rs``), mirrored in ``review`` below; the
thresholds are the grid point with the best precision among those whose recall is at least
``--min-recall`` on the validation frames (fewest flags on a tie). Agreement with the previous frame
needs a stream: still frames cannot choose it, so it stays 0 (off).

    sammix eval --bundle models/sammix-us-medsam --data /tmp/us-val --out /tmp/eval-val.json
    python -m sammix_recipe.confidence --eval /tmp/eval-val.json --bundle ../sammix-us-medsam

writes the thresholds into the bundle's ``metrics.json`` (``bundle.chosen.confidence``, with the
validation numbers) and rewrites its manifest; then ``sammix eval`` on the test frames measures them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .common import save_json

BAD_DICE = 0.7


def review(row: dict, c: dict, gate: float) -> str | None:
    """The runtime's rule for one ``sammix eval`` image row (the first rule failed, or None)."""
    outcome = row["outcome"]
    if outcome == "invalid":
        return "invalid"
    if abs(row["presence"] - gate) < c["presence_margin"]:
        return "near_gate"
    if outcome == "no_prompt":
        return "no_prompt"
    segmented = outcome == "segmented"
    if segmented and row.get("cam_peak") is not None and row["cam_peak"] < c["min_cam_peak"]:
        return "weak_cam"
    if segmented and row.get("iou_prediction") is not None and row["iou_prediction"] < c["min_iou_prediction"]:
        return "low_iou"
    return None


def score(rows: list[dict], c: dict, gate: float) -> dict:
    flags = np.array([review(r, c, gate) is not None for r in rows])
    bad = np.array([r["dice"] < BAD_DICE for r in rows])
    tp = int((flags & bad).sum())
    return {
        "frames": len(rows), "bad_frames": int(bad.sum()), "flagged": int(flags.sum()), "flagged_bad": tp,
        "precision": tp / flags.sum() if flags.sum() else None,
        "recall": tp / bad.sum() if bad.sum() else None,
    }


def grid(rows: list[dict]) -> list[dict]:
    seg = [r for r in rows if r["outcome"] == "segmented"]
    quant = lambda key: sorted({0.0} | {round(float(q), 4) for q in  # noqa: E731
                                np.quantile([r[key] for r in seg if r.get(key) is not None] or [0.0],
                                            np.linspace(0.05, 0.95, 19))})
    out = []
    for margin in (0.0, 0.02, 0.05, 0.1, 0.15, 0.2):
        for iou in quant("iou_prediction"):
            for cam in quant("cam_peak"):
                out.append({"presence_margin": margin, "min_iou_prediction": iou, "min_cam_peak": cam,
                            "min_agreement": 0.0})
    return out


def choose(rows: list[dict], gate: float, min_recall: float) -> tuple[dict, dict]:
    """The thresholds with the best validation precision at recall >= min_recall (else the best recall)."""
    best = None
    for c in grid(rows):
        s = score(rows, c, gate)
        recall, precision = s["recall"] or 0.0, s["precision"] or 0.0
        key = (recall >= min_recall, precision if recall >= min_recall else recall, -s["flagged"])
        if best is None or key > best[0]:
            best = (key, c, s)
    return best[1], best[2]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval", required=True, help="sammix eval --out JSON on the validation frames")
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--min-recall", type=float, default=0.8)
    args = ap.parse_args(argv)
    report = json.loads(Path(args.eval).read_text())
    bundle = Path(args.bundle)
    metrics_path = bundle / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    chosen = metrics["bundle"]["chosen"]
    gate = chosen["presence_threshold"]
    rows = report["images"]
    c, s = choose(rows, gate, args.min_recall)
    print(json.dumps({"confidence": c, "validation": s}, indent=1))
    chosen["confidence"] = c
    metrics["confidence"] = {
        "rule": f"best precision at recall >= {args.min_recall} on the validation frames; bad frame: Dice < {BAD_DICE}",
        "data": report["data"], "validation": s,
    }
    save_json(metrics_path, metrics)
    from .medsam_bundle import refresh_manifest
    refresh_manifest(bundle)


if __name__ == "__main__":
    main()
