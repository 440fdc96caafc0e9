"""Build the bundle ``models/sammix-us-scratch`` from trained runs.

    python -m sammix_recipe.bundle --runs runs --k 50 --seed 0 --out ../sammix-us-scratch \
        [--tract-timings runs/tract_timings.json]

1. Export the three graphs in f32 (LoRA merged), and each in two int8 forms
   (dynamic MatMulInteger/ConvInteger, static QDQ).
2. Evaluate the onnxruntime pipeline on the held-out test set: all f32, each
   part int8 alone, all int8. A part whose int8 form costs more than 1 Dice
   point stays f32. The int8 form shipped is the one tract ran faster
   (``--tract-timings``, written by ``scripts/tract_timings.sh``); without
   timings, dynamic (DESIGN "What we measured").
3. Write the demo clip with its masks, reference vectors for the Rust tests,
   ``metrics.json``, ``MODEL_CARD.md`` and ``sammix.toml`` (checksums last).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from .common import CLIP_SEED, RUNS_DIR, log, pick_device, save_json, setup_logging, ultrasound_set
from .export import export_classifier, export_decoder, export_encoder, quantize_dynamic_graph, quantize_qdq_graph
from .manifest import verify_manifest, write_manifest
from .metrics import dice, summarize
from .model_card import write_model_card
from .onnx_pipeline import OrtSamMix
from .prompt import PromptParams
from .reference import write_reference
from .train_classifier import load_classifier
from .train_sammix import load_sammix

ROLES = ("classifier", "encoder", "decoder")
PRESENCE_THRESHOLD = 0.5
MAX_INT8_DICE_LOSS = 0.01
CLIP_FRAMES = 160


def build_graphs(runs: Path, k: int, seed: int, work: Path) -> None:
    dev = pick_device("cpu")
    sam, cfg = load_sammix(runs / "foundation" / "foundation.pt", runs / f"sammix-k{k}-s{seed}" / "sammix.pt", dev)
    clf = load_classifier(runs / f"classifier-s{seed}" / "classifier.pt", dev)
    f32 = work / "f32"
    export_classifier(clf, cfg, f32 / "classifier.onnx")
    export_encoder(sam, cfg, f32 / "encoder.onnx")
    export_decoder(sam, cfg, f32 / "decoder.onnx")
    log.info("exported f32 graphs to %s", f32)


def pipeline(paths: dict[str, Path], cfg) -> OrtSamMix:
    return OrtSamMix(paths["classifier"], paths["encoder"], paths["decoder"], cfg.img_size,
                     cfg.pixel_mean[0], cfg.pixel_std[0], PromptParams(), PRESENCE_THRESHOLD)


def calibration_feeds(work: Path, cfg, n: int = 24) -> dict[str, list[dict]]:
    """Inputs of each graph on ``n`` pool frames (never test frames) for static QDQ."""
    pool = ultrasound_set("pool")
    pipe = pipeline({r: work / "f32" / f"{r}.onnx" for r in ROLES}, cfg)
    feeds = {r: [] for r in ROLES}
    idx = np.nonzero(pool["present"])[0][:n]
    for i in idx:
        r = pipe(pool["images"][i], force_segment=True)
        t = r.tensors
        feeds["classifier"].append({"image": t["input"]})
        feeds["encoder"].append({"image": t["input"]})
        if "image_embeddings" in t:
            feeds["decoder"].append({k: t[k] for k in ("image_embeddings", "point_coords", "point_labels",
                                                        "mask_input", "has_mask_input", "orig_im_size")})
    return feeds


def quantize_all(work: Path, cfg) -> None:
    feeds = calibration_feeds(work, cfg)
    for role in ROLES:
        src = work / "f32" / f"{role}.onnx"
        (work / "dynamic").mkdir(exist_ok=True)
        (work / "qdq").mkdir(exist_ok=True)
        quantize_dynamic_graph(src, work / "dynamic" / f"{role}.onnx")
        quantize_qdq_graph(src, work / "qdq" / f"{role}.onnx", feeds[role])
    log.info("quantized (dynamic, qdq) into %s", work)


def evaluate_precisions(work: Path, cfg, int8_form: str) -> dict:
    """Dice of the onnxruntime pipeline on the test set for each precision mix."""
    test = ultrasound_set("test")
    combos = {"f32": {}}
    for role in ROLES:
        combos[f"{role}-int8"] = {role: int8_form}
    combos["all-int8"] = {r: int8_form for r in ROLES}
    out = {}
    for name, forms in combos.items():
        paths = {r: work / forms.get(r, "f32") / f"{r}.onnx" for r in ROLES}
        masks, probs = pipeline(paths, cfg).run_set(test["images"])
        out[name] = summarize(masks, test["masks"], probs >= PRESENCE_THRESHOLD)
        log.info("onnxruntime %-16s dice+ %.4f dice %.4f", name, out[name]["dice_positive"], out[name]["dice_all"])
    return out


def choose_precision(evals: dict, int8_form: str) -> dict[str, str]:
    base = evals["f32"]["dice_positive"]
    return {
        role: int8_form if base - evals[f"{role}-int8"]["dice_positive"] <= MAX_INT8_DICE_LOSS else "f32"
        for role in ROLES
    }


def write_clip(bundle: Path, pipe, threshold: float = PRESENCE_THRESHOLD, n_frames: int = CLIP_FRAMES) -> dict:
    """The demo clip and its masks into ``bundle/demo``; ``pipe`` (any pipeline with ``run_set``) scored on it."""
    from .data.clip import generate_clip, write_y4m

    frames, masks = generate_clip(CLIP_SEED, n_frames=n_frames, size=(256, 256))
    demo = bundle / "demo"
    if demo.exists():
        shutil.rmtree(demo)
    (demo / "masks").mkdir(parents=True)
    write_y4m(demo / "clip.y4m", frames, fps=25)
    for i, m in enumerate(masks):
        Image.fromarray((m > 0).astype(np.uint8) * 255).save(demo / "masks" / f"{i:06d}.png", optimize=True)
    pred, probs = pipe.run_set(frames)
    return score_clip(pred, probs, masks, threshold)


def score_clip(pred: np.ndarray, probs: np.ndarray, masks: np.ndarray, threshold: float) -> dict:
    """A clip's summary, per-frame Dice and flicker (mask pixels changed from one frame to the next, and the
    ground truth's)."""
    res = summarize(pred, masks, probs >= threshold)
    res["per_frame_dice"] = [round(dice(p, g), 4) for p, g in zip(pred, masks)]
    res["flicker_px"] = float(np.mean([np.logical_xor(a, b).sum() for a, b in zip(pred[1:], pred[:-1])]))
    res["flicker_ground_truth_px"] = float(np.mean([np.logical_xor(a > 0, b > 0).sum()
                                                    for a, b in zip(masks[1:], masks[:-1])]))
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(RUNS_DIR))
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "sammix-us-scratch"))
    ap.add_argument("--tract-timings", default=None, help="JSON from scripts/tract_timings.sh")
    ap.add_argument("--skip-export", action="store_true", help="reuse graphs already in runs/export")
    args = ap.parse_args(argv)
    setup_logging()
    runs, bundle = Path(args.runs), Path(args.out)
    work = runs / "export"
    from .train_sammix import load_foundation

    _, cfg = load_foundation(runs / "foundation" / "foundation.pt", pick_device("cpu"))
    if not args.skip_export:
        build_graphs(runs, args.k, args.seed, work)
        quantize_all(work, cfg)
    timings = json.loads(Path(args.tract_timings).read_text()) if args.tract_timings else None
    int8_form = pick_int8_form(timings)
    evals = evaluate_precisions(work, cfg, int8_form)
    precision = choose_precision(evals, int8_form)
    log.info("shipping precision %s", precision)

    bundle.mkdir(parents=True, exist_ok=True)
    for old in bundle.glob("*.onnx"):
        old.unlink()
    graphs = {}
    for role in ROLES:
        form = precision[role]
        shutil.copy(work / form / f"{role}.onnx", bundle / f"{role}.onnx")
        graphs[role] = {"file": f"{role}.onnx", "precision": "f32" if form == "f32" else f"int8-{form}"}
    pipe = pipeline({r: bundle / f"{r}.onnx" for r in ROLES}, cfg)
    clip = write_clip(bundle, pipe)
    log.info("demo clip: dice+ %.4f dice %.4f", clip["dice_positive"], clip["dice_all"])
    write_reference(bundle, pipe, cfg, PromptParams())
    torch_eval = json.loads((runs / "eval.json").read_text()) if (runs / "eval.json").exists() else None
    metrics = {
        "bundle": {"k": args.k, "seed": args.seed, "precision": precision, "int8_form": int8_form},
        "onnxruntime_test": evals,
        "demo_clip": clip,
        "pytorch_test": torch_eval,
        "tract_timings": timings,
    }
    save_json(bundle / "metrics.json", metrics)
    meta = manifest_meta(cfg)
    write_model_card(bundle / "MODEL_CARD.md", metrics, meta, runs)
    write_manifest(bundle, meta, graphs)
    problems = verify_manifest(bundle)
    if problems:
        raise SystemExit("bundle check failed:\n" + "\n".join(problems))
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    log.info("bundle %s: %.1f MB", bundle, size / 1e6)


def pick_int8_form(timings: dict | None) -> str:
    if not timings:
        return "dynamic"
    total = {form: sum(timings[form][r]["median_ms"] for r in ROLES) for form in ("dynamic", "qdq")}
    return min(total, key=total.get)


def manifest_meta(cfg) -> dict:
    p = PromptParams()
    return {
        "name": "sammix-us-scratch",
        "description": "SAM-Mix (tiny SAM, 256x256 grayscale) for lesions in procedural B-mode ultrasound",
        "input": {
            "size": cfg.img_size,
            "channels": cfg.in_chans,
            "embedding_size": cfg.embedding_size,
            "mean": list(cfg.pixel_mean),
            "std": list(cfg.pixel_std),
            "resize": "bilinear",
        },
        "prompt": p.to_dict(),
        "gate": {"presence_threshold": PRESENCE_THRESHOLD},
        "decoder": {"mask_tokens": [1, 2, 3], "mask_threshold": 0.0},
    }


if __name__ == "__main__":
    main()
