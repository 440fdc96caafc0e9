"""The review flag's rule (mirrored from src/pipeline/confidence.rs), its threshold search, and the
shipped bundle's thresholds."""

import json
import tomllib
from pathlib import Path

from sammix_recipe.confidence import choose, review, score

RULES = {"presence_margin": 0.1, "min_iou_prediction": 0.8, "min_cam_peak": 0.3, "min_agreement": 0.0}


def row(presence=0.9, outcome="segmented", iou=0.9, cam=0.9, dice=0.9):
    return {"presence": presence, "outcome": outcome, "iou_prediction": iou, "cam_peak": cam, "dice": dice}


def test_each_rule_in_the_runtime_s_order():
    gate = 0.5
    assert review(row(), RULES, gate) is None
    assert review(row(outcome="invalid", presence=0.55), RULES, gate) == "invalid"
    assert review(row(presence=0.55, iou=0.1), RULES, gate) == "near_gate"  # before low_iou
    assert review(row(outcome="no_prompt", iou=None), RULES, gate) == "no_prompt"
    assert review(row(cam=0.2, iou=0.1), RULES, gate) == "weak_cam"  # before low_iou
    assert review(row(iou=0.5), RULES, gate) == "low_iou"
    # an absent frame far from the gate is not judged by its CAM or IoU
    assert review(row(presence=0.1, outcome="absent", cam=0.0, iou=None), RULES, gate) is None


def test_the_search_keeps_recall_and_maximises_precision():
    # bad frames have low predicted IoU; two good ones too (the flag's false alarms)
    rows = ([row(iou=0.5, dice=0.2) for _ in range(8)] + [row(iou=0.7, dice=0.3) for _ in range(2)]
            + [row(iou=0.75, dice=0.9) for _ in range(2)] + [row(iou=0.95, dice=0.95) for _ in range(20)])
    c, s = choose(rows, 0.5, 0.8)
    assert s["recall"] >= 0.8
    # no false alarm, and no more flags than recall 0.8 needs (the 8 frames of IoU 0.5)
    assert s["precision"] == 1.0 and s["flagged"] == 8 and s["recall"] == 0.8, (c, s)
    assert score(rows, c, 0.5) == s


def test_the_shipped_bundle_carries_the_chosen_thresholds():
    bundle = Path(__file__).resolve().parents[2] / "sammix-us-medsam"
    manifest = tomllib.loads((bundle / "sammix.toml").read_text())
    chosen = json.loads((bundle / "metrics.json").read_text())["bundle"]["chosen"]["confidence"]
    assert manifest["confidence"] == chosen


def test_agreement_is_chosen_on_streams_only_where_it_finds_bad_frames():
    from sammix_recipe.confidence import choose_agreement

    # bad frames disagree with their predecessor; good ones agree; nothing else flags them
    rows = ([dict(row(iou=0.95, dice=0.2), agreement=0.1) for _ in range(10)]
            + [dict(row(iou=0.95, dice=0.9), agreement=0.9) for _ in range(30)])
    a, on, off = choose_agreement(rows, RULES, 0.5, 0.8)
    assert off["flagged"] == 0 and 0.1 < a <= 0.9, (a, on)
    assert on["precision"] == 1.0 and on["recall"] == 1.0
    assert review(dict(row(), agreement=0.05), {**RULES, "min_agreement": a}, 0.5) == "unstable"
    # agreement that says nothing about the frames: off, and no more flags than without it
    flat = [dict(row(iou=0.95, dice=d), agreement=0.5) for d in [0.2] * 10 + [0.9] * 30]
    a, on, off = choose_agreement(flat, RULES, 0.5, 0.8)
    assert a == 0.0 and on == off
