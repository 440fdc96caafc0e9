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
    if row.get("agreement") is not None and row["agreement"] < c.get("min_agreement", 0.0):
        return "unstable"
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


def read_stream(path: Path) -> list[dict]:
    """The frames of a ``sammix run --truth DIR --out OUT`` run (``OUT/results.jsonl``) that have a Dice."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("dice") is not None]


def choose_agreement(rows: list[dict], rules: dict, gate: float, min_recall: float) -> tuple[float, dict, dict]:
    """``min_agreement`` on stream frames, the other thresholds kept: the best precision at recall >=
    min_recall (else the best recall), 0 (off) among the candidates. Returns (value, its score, off's)."""
    values = sorted({r["agreement"] for r in rows if r.get("agreement") is not None})
    cands = [0.0] + sorted({round(float(q), 4) for q in np.quantile(values, np.linspace(0.05, 0.95, 19))} if values
                           else set())
    off = score(rows, {**rules, "min_agreement": 0.0}, gate)
    best = None
    for a in cands:
        s = score(rows, {**rules, "min_agreement": a}, gate)
        recall, precision = s["recall"] or 0.0, s["precision"] or 0.0
        key = (recall >= min_recall, precision if recall >= min_recall else recall, -s["flagged"], -a)
        if best is None or key > best[0]:
            best = (key, a, s)
    return best[1], best[2], off


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval", help="sammix eval --out JSON on the validation frames (without it, the still "
                                   "frames' thresholds already in metrics.json are kept)")
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--min-recall", type=float, default=0.8)
    ap.add_argument("--streams", nargs="*", default=[],
                    help="results.jsonl of `sammix run --truth` on validation clips (export_dataset --set clip-val):"
                         " min_agreement is chosen on them, the other thresholds kept")
    args = ap.parse_args(argv)
    bundle = Path(args.bundle)
    metrics_path = bundle / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    chosen = metrics["bundle"]["chosen"]
    gate = chosen["presence_threshold"]
    if args.eval:
        report = json.loads(Path(args.eval).read_text())
        c, s = choose(report["images"], gate, args.min_recall)
        print(json.dumps({"confidence": c, "validation": s}, indent=1))
        metrics["confidence"] = {
            "rule": f"best precision at recall >= {args.min_recall} on the validation frames; bad frame: Dice < {BAD_DICE}",
            "data": report["data"], "validation": s,
        }
    elif "confidence" in chosen and "confidence" in metrics:
        c = {k: v for k, v in chosen["confidence"].items() if k != "min_agreement"}
    else:
        raise SystemExit(f"{metrics_path}: no thresholds chosen on still frames yet: give --eval")
    if args.streams:
        rows = [r for p in args.streams for r in read_stream(Path(p))]
        a, s_on, s_off = choose_agreement(rows, c, gate, args.min_recall)
        c = {**c, "min_agreement": a}
        print(json.dumps({"min_agreement": a, "validation_clips": s_on, "without_agreement": s_off}, indent=1))
        metrics["confidence"]["streams"] = {
            "rule": f"min_agreement: best precision at recall >= {args.min_recall} on the validation clips' frames, "
                    "the other thresholds as chosen on the still frames",
            "data": list(args.streams), "validation_clips": s_on, "without_agreement": s_off,
        }
    chosen["confidence"] = c
    save_json(metrics_path, metrics)
    from .medsam_bundle import refresh_manifest
    refresh_manifest(bundle)


if __name__ == "__main__":
    main()
