"""Write ``MODEL_CARD.md`` from ``metrics.json``: every number with its data, model and command."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .common import POOL_SIZE, TEST_SEED0, TEST_SIZE

COMMANDS = {
    "foundation": "python -m sammix_recipe.train_foundation",
    "classifier": "python -m sammix_recipe.train_classifier --seed S",
    "sammix": "python -m sammix_recipe.train_sammix --k K --seed S",
    "unet": "python -m sammix_recipe.train_unet --k K --seed S",
    "eval": "python -m sammix_recipe.evaluate --runs runs",
    "bundle": "python -m sammix_recipe.bundle --runs runs --k 50 --seed 0 --tract-timings runs/tract_timings.json",
    "all": "scripts/train_all.sh",
    "gpu": "scripts/train_gpu.sh",
}


def _pm(agg: dict, key: str, digits: int = 3) -> str:
    v = agg.get(key)
    if not v:
        return "—"
    return f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}"


def _method_order(name: str) -> tuple:
    kind, _, k = name.partition("-k")
    return ({"sammix": 0, "unet": 1, "sam": 2}.get(kind.split("-")[0], 3), int(k) if k.isdigit() else 0)


def _run_order(name: str) -> tuple:
    m = re.fullmatch(r"(\w+)-k(\d+)-s(\d+)", name)
    if m:
        return (2 if m.group(1) == "sammix" else 3, int(m.group(2)), int(m.group(3)))
    return (0 if name == "foundation" else 1, 0, 0)


def _train_info(runs: Path) -> str:
    """Every run of the evaluation with the steps it ran, where and how long."""
    rows = []
    for p in sorted(runs.glob("*/train.json"), key=lambda p: _run_order(p.parent.name)):
        t = json.loads(p.read_text())
        rows.append(f"| {p.parent.name} | {t.get('steps')} × {t.get('batch')} | {t.get('device', '?')} | {t['seconds']:.0f} s |")
    if not rows:
        return ""
    return (
        "| run | steps × batch | device | wall time |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\nRuns that share a device ran side by side on it (`scripts/train_gpu.sh`), each within a"
        " wall-clock budget; the steps listed are what ran, and `--steps N` without a budget repeats a run.\n"
    )


COLLAPSED_DICE = 0.05


def _collapsed(rows: list[dict]) -> str:
    """Runs whose training failed outright (empty predictions), named so a mean is read right."""
    out = []
    for r in rows:
        if r.get("dice_positive", 1.0) < COLLAPSED_DICE:
            rest = [x["dice_positive"] for x in rows if x["method"] == r["method"] and x is not r]
            without = f"; the other seeds' mean is {sum(rest) / len(rest):.3f}" if rest else ""
            out.append(
                f"{r['method']} seed {r['seed']} collapsed in training (Dice+ {r['dice_positive']:.3f}: it predicts"
                f" (almost) nothing); it is kept in the mean above{without}."
            )
    return (" ".join(out) + "\n") if out else ""


TARGET_DICE = 0.85


def _status(summary: dict) -> str:
    """Whether the recipe's acceptance target is met, said plainly at the top."""
    def mean(method):
        return summary.get(method, {}).get("dice_positive", {}).get("mean")

    sm, un, pp = mean("sammix-k50"), mean("unet-k50"), mean("sam-pp-0")
    if sm is None:
        return "**Status:** SAM-Mix-50 has not been evaluated.\n"
    met = sm >= TARGET_DICE and (un is None or sm > un) and (pp is None or sm > pp)
    verdict = "meets" if met else "does NOT meet"
    return (
        f"**Status:** SAM-Mix-50 reaches Dice+ {sm:.3f} on the held-out test set; this {verdict} the"
        f" recipe's target (≥ {TARGET_DICE} and above U-Net-50 and SAM-PP-0). "
        + ("" if met else "`python -m sammix_recipe.diagnose` shows how much of the gap is the CAM prompt "
           "and how much SAM itself.")
        + "\n"
    )


def _timings(t: dict | None) -> str:
    if not t:
        return "Not measured for this bundle.\n"
    rows = ["| form | classifier | encoder | decoder |", "|---|---|---|---|"]
    for form, r in t.items():
        rows.append(f"| {form} | " + " | ".join(f"{r[k]['median_ms']:.1f}" for k in ("classifier", "encoder", "decoder")) + " |")
    return (
        "\n".join(rows)
        + "\n\nMeasured with `scripts/tract_timings.sh runs/export` on this project's 2-core machine while"
        " trainings ran beside it: ratios, not absolute times (on graphs of these shapes; the times do not depend"
        " on the weights). The int8 form shipped is the faster of the two"
        " int8 forms; int8 at all because the f32 graphs (30 MB) do not fit the 25 MB bundle budget.\n"
    )


def write_model_card(path: Path, metrics: dict, meta: dict, runs: Path) -> None:
    torch_eval = metrics.get("pytorch_test") or {}
    summary = torch_eval.get("summary", {})
    ts = torch_eval.get("test_set", {})
    ort = metrics["onnxruntime_test"]
    b = metrics["bundle"]
    clip = metrics["demo_clip"]
    lines = [
        "# Model card: sammix-us-scratch",
        "",
        "SAM-Mix (Ward & Imran, ISBI 2025) at edge size: a light ResNet classifier whose class",
        "activation map gates each frame and prompts a LoRA-adapted tiny Segment Anything Model",
        "(box + dense prompt, no human clicks). Target: lesions (anechoic, hypoechoic,",
        "hyperechoic, mixed) in B-mode ultrasound.",
        "",
        "**Everything here is procedural.** Training and test frames come from the recipe's",
        "physics-shaped B-mode generator (`sammix_recipe.data.ultrasound`); the SAM foundation was",
        "pretrained on generic shapes (`sammix_recipe.data.shapes`), not on SA-1B. The numbers say",
        "how well the method and the runtime work on that data; they say nothing about clinical",
        "performance on real scans. Not a medical device.",
        "",
        _status(summary),
        "## Data",
        "",
        f"- Training pool: {POOL_SIZE} frames, generator seeds 0–{POOL_SIZE - 1}, 30 % without lesion;",
        "  every frame has an image label (lesion present or not); K of the positive frames also",
        "  have masks (`train_sammix.labeled_indices`, chosen by the run seed).",
        f"- Held-out test set: {TEST_SIZE} frames, seeds {TEST_SEED0}–{TEST_SEED0 + TEST_SIZE - 1}"
        f" ({ts.get('positive_frames', '?')} with lesions), never trained on.",
        "- Foundation pretraining: generic shapes and textures, seeds from 5 000 000.",
        "",
        "## Results on the held-out test set (PyTorch, mean ± std over the seeds listed)",
        "",
        "Dice+ is the mean Dice over test frames that contain a lesion, end to end: a frame the",
        "classifier gates out scores 0. Dice (all) also counts lesion-free frames (empty prediction",
        "on empty truth = 1, anything else 0). HD95 in pixels of the 256×256 frame, over frames",
        "where both masks are non-empty.",
        "",
        "| method | labelled masks | seeds | Dice+ | Dice (all) | IoU+ | HD95 (px) | presence acc. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method in sorted(summary, key=_method_order):
        agg = summary[method]
        k = method.rsplit("-k", 1)[1] if "-k" in method else "0"
        lines.append(
            f"| {method} | {k} | {', '.join(str(x) for x in agg['seeds'])} | {_pm(agg, 'dice_positive')} | {_pm(agg, 'dice_all')} | "
            f"{_pm(agg, 'iou_positive')} | {_pm(agg, 'hd95_px', 1)} | {_pm(agg, 'presence_accuracy')} |"
        )
    lines += [
        "",
        "sam-pp-0 is the foundation SAM prompted by the same classifier's CAM with no segmentation",
        "training; unet-kK is a U-Net trained on the same K masks (plus K lesion-free frames, whose",
        "empty masks the image labels give for free). With one seed the ± is 0 by construction.",
        _collapsed(torch_eval.get("rows", [])),
        f"Reproduce: `cd models/recipe && {COMMANDS['gpu']}` on a GPU, or `{COMMANDS['all']}` (or the single runs: `{COMMANDS['foundation']}`, `{COMMANDS['classifier']}`,",
        f"`{COMMANDS['sammix']}`, `{COMMANDS['unet']}`, then `{COMMANDS['eval']}`).",
        "",
        "## The shipped bundle (onnxruntime on the exported graphs, same test set)",
        "",
        f"Model: SAM-Mix-{b['k']}, seed {b['seed']} (the first seed, not the best). Graph precision:",
        ", ".join(f"{r} {p}" for r, p in b["precision"].items()) + f" (int8 form: {b['int8_form']}).",
        "",
        "| graphs | Dice+ | Dice (all) | HD95 (px) | presence acc. |",
        "|---|---|---|---|---|",
    ]
    for name, r in ort.items():
        lines.append(
            f"| {name} | {r['dice_positive']:.4f} | {r['dice_all']:.4f} | "
            f"{r['hd95_px']:.2f} | {r['presence_accuracy']:.3f} |"
        )
    lines += [
        "",
        f"A part whose int8 graph loses more than 1 Dice+ point against f32 ships in f32.",
        f"Reproduce: `cd models/recipe && {COMMANDS['bundle']}`.",
        "",
        "## Demo clip (`demo/clip.y4m`, 160 frames, 256×256, generator `sammix_recipe.data.clip`)",
        "",
        f"onnxruntime on the shipped graphs: Dice+ {clip['dice_positive']:.4f}, Dice (all)"
        f" {clip['dice_all']:.4f}, over {clip['frames']} frames ({clip['positive_frames']} with a lesion).",
        "The runtime's `sammix run` on the clip should land within 2 points of this.",
        "",
        "## tract timings of the graph forms (one thread, median ms, `-C target-cpu=native`)",
        "",
        _timings(metrics.get("tract_timings")),
        "## Training runs",
        "",
        _train_info(runs),
        "## Method details",
        "",
        "- Classifier: ResNet-style, stem + 5 basic blocks (16→128 channels, stride 16), GAP,",
        "  linear head, binary focal loss (α 0.5, γ 2); `cam` = ReLU(Σ w_k A_k) at 16×16.",
        "- SAM: the official `segment_anything` modules; encoder ViT 192-dim, depth 4, 3 heads,",
        "  window 8, global attention in blocks 1 and 3, 1 input channel; official prompt encoder",
        "  and mask decoder (256-dim, two-way transformer depth 2).",
        "- Prompt rule parameters: "
        + ", ".join(f"{k} = {v}" for k, v in meta["prompt"].items())
        + f"; presence threshold {meta['gate']['presence_threshold']}.",
        "- SAM-Mix training: LoRA r = 8 on every encoder attention projection (qkv, proj), prompt",
        "  encoder and mask decoder trained, min-over-multimask 20·focal + Dice loss with IoU-head",
        "  regression; the classifier is trained first on the pool's image labels and stays frozen",
        "  while its CAMs prompt SAM (the two branches share no weights, so this equals joint",
        "  training with the CAM taken from the final classifier).",
        "- LoRA merged into the encoder weights at export.",
        "",
    ]
    path.write_text("\n".join(lines))
