"""SAM-Mix on LiteMedSAM, evaluated in PyTorch on cached embeddings: levers on validation, rows on test.

What a frame goes through is what the runtime does (the same rule, the same
order): head → presence gate → CAM → boxes (one per kept component, at most
``max_boxes``) + dense prompt → a decoder call per box (+ ``refine_rounds``
calls each, box from the mask, ``mask_input`` = its logits) → element-wise
maximum of the chosen low-resolution logits → > ``mask_threshold``.

    python -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0 --split val --sweep
    python -m sammix_recipe.medsam_eval --run runs/medsam-k50-s0 --split test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .common import log, save_json, setup_logging
from .encoders import Encoder, run_encoder
from .medsam import INPUT_SIZE
from .medsam_data import Domain, run_domain
from .medsam_train import CamHead, call_decoder, gt_boxes
from .metrics import summarize
from .model import DecoderHead
from .prompt import EIGHT_CONNECTED, PromptParams, box_from_low_res, cam_to_prompt, component_boxes

MASK_THRESHOLD = 0.0


def load_run(run: Path, foundation_decoder: bool = False) -> tuple[CamHead, DecoderHead]:
    """A run's head and decoder (``foundation_decoder``: LiteMedSAM's own decoder, SAM-PP)."""
    ck = torch.load(run / "medsam_sammix.pt", map_location="cpu", weights_only=False)
    hk = ck
    if "head" not in ck:  # a decoder-only run: the head of the run it names, beside it
        hk = torch.load(run.parent / ck["head_run"] / "medsam_sammix.pt", map_location="cpu", weights_only=False)
    head = CamHead(hk["cam"], arch=hk.get("arch", "small"))
    head.load_state_dict(hk["head"])
    dec = run_encoder(run).decoder()
    if not foundation_decoder:
        if "decoder" not in ck:  # a head-only run: the decoder of the run it names, beside it
            ck = torch.load(run.parent / ck["decoder_run"] / "medsam_sammix.pt", map_location="cpu",
                            weights_only=False)
        dec.load_state_dict({k: v.float() for k, v in ck["decoder"].items()})
    return head.eval(), dec.eval()


def clip_data(domain: Domain, encoder: Encoder):
    """The domain's bundle demo clip (embedded once, cached): (embeddings, rows, masks, present)."""
    from .medsam_bundle import clip_frames

    n = clip_frames(domain)
    frames, masks = domain.clip(n)
    emb = encoder.embed(f"{domain.prefix}clip{domain.clip_seed}_{n}", frames)
    return emb, np.arange(len(frames)), masks, masks.reshape(len(masks), -1).any(1)


def split_data(split: str, domain: Domain, encoder: Encoder | None = None):
    """(embeddings, rows, masks, present) of ``val`` (the domain's validation frames), ``test``, or ``clip``
    (the demo clip: another phantom or colon, never trained or chosen on), on ``encoder``'s embeddings
    (default LiteMedSAM's)."""
    encoder = encoder or Encoder()
    if split == "clip":
        return clip_data(domain, encoder)
    name = {"test": "test", "val": "validation" if domain.own_validation else "pool"}[split]
    emb, idx = encoder.embeddings(domain, name)
    data = domain.frames(name)
    rows = np.arange(len(idx))
    if split == "val" and not domain.own_validation:
        val = set(int(i) for i in domain.validation_pool(data["present"]))
        rows = np.array([r for r, i in enumerate(idx) if int(i) in val])
        if len(rows) < len(val):
            raise RuntimeError(f"validation split: {len(rows)}/{len(val)} frames embedded so far")
    return emb, rows, data["masks"][idx[rows]], data["present"][idx[rows]]


def prompt_outputs(head, emb: np.ndarray, rows: np.ndarray, split: str, domain: Domain,
                   prompts_from: Path | None = None):
    """(presence probabilities, CAMs) of the frames: from ``head`` on ``emb``, or, with ``prompts_from``, from
    that run's head on its own encoder's embeddings of the same frames (e.g. the fine-tuned student's CAM
    prompting LiteMedSAM's decoder on LiteMedSAM's embeddings)."""
    if prompts_from is None:
        return head_outputs(head, emb, rows)
    p_head, _ = load_run(prompts_from)
    p_emb, p_rows, _, _ = split_data(split, domain, run_encoder(prompts_from))
    if not np.array_equal(p_rows, rows):
        raise RuntimeError(f"--prompts-from {prompts_from}: its {split} frames differ from this run's")
    return head_outputs(p_head, p_emb, p_rows)


@torch.no_grad()
def head_outputs(head: CamHead, emb: np.ndarray, rows: np.ndarray, batch: int = 32):
    probs, cams = [], []
    for i in range(0, len(rows), batch):
        x = torch.from_numpy(emb[rows[i : i + batch]].astype(np.float32))
        logits, cam = head(x)
        probs.append(torch.sigmoid(logits[:, 0]).numpy())
        cams.append(cam.numpy())
    return np.concatenate(probs), np.concatenate(cams)


@torch.no_grad()
def segment(
    dec: DecoderHead, emb: np.ndarray, rows: np.ndarray, probs: np.ndarray, cams: np.ndarray,
    params: PromptParams, presence_threshold: float, boxes_override: list | None = None, batch: int = 16,
    scores: np.ndarray | None = None,
) -> np.ndarray:
    """Masks (N,S,S) uint8 for the frames; ``boxes_override`` (per frame, a list of boxes) replaces the CAM's.

    ``scores`` (N,), if given, receives each frame's lowest predicted IoU over its decoder calls (NaN for a
    frame without one): how sure the decoder is of the frame's weakest part."""
    n = len(rows)
    e = emb.shape[-1]  # E of the encoder the embeddings come from
    e4 = 4 * e
    jobs = []  # (frame, box, dense)
    for f in range(n):
        if boxes_override is None and probs[f] < presence_threshold:
            continue
        pr = cam_to_prompt(cams[f], INPUT_SIZE, e, params)
        dense = pr.dense if pr is not None else np.full((e4, e4), -params.dense_logit, np.float32)
        if boxes_override is not None:
            boxes = boxes_override[f]
        else:
            boxes = component_boxes(cams[f], INPUT_SIZE, params)
        jobs += [(f, b, dense) for b in boxes]
    union = np.full((n, e4, e4), -np.inf, np.float32)
    if scores is not None:
        scores[:] = np.nan
    for i in range(0, len(jobs), batch):
        part = jobs[i : i + batch]
        x = torch.from_numpy(emb[rows[[f for f, _, _ in part]]].astype(np.float32))
        boxes = np.stack([b for _, b, _ in part])
        dense = np.stack([d for _, _, d in part])
        low, iou = call_decoder(dec, x, boxes, dense)
        low = low.numpy()
        for _ in range(params.refine_rounds):
            live = []
            for j in range(len(part)):
                b = box_from_low_res(low[j], INPUT_SIZE, MASK_THRESHOLD, params.box_margin)
                if b is not None:
                    live.append((j, b))
            if not live:
                break
            js = [j for j, _ in live]
            low2, iou2 = call_decoder(dec, x[js], np.stack([b for _, b in live]), low[js])
            low[js] = low2.numpy()
            iou[js] = iou2
        for j, (f, _, _) in enumerate(part):
            union[f] = np.maximum(union[f], low[j])
            if scores is not None:
                scores[f] = np.fmin(scores[f], float(iou[j]))
    up = F.interpolate(torch.from_numpy(union)[:, None], size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                       align_corners=False)[:, 0]
    return (up.numpy() > MASK_THRESHOLD).astype(np.uint8)


def lesion_counts(masks: np.ndarray) -> np.ndarray:
    return np.array([ndimage.label(m > 0, structure=EIGHT_CONNECTED)[1] for m in masks])


def report(pred: np.ndarray, masks: np.ndarray, present_pred: np.ndarray | None) -> dict:
    out = summarize(pred, masks, present_pred)
    counts = lesion_counts(masks)
    for name, sel in (("one_lesion", counts == 1), ("several_lesions", counts >= 2)):
        if sel.any():
            s = summarize(pred[sel], masks[sel])
            out[f"dice_positive_{name}"] = s["dice_positive"]
            out[f"frames_{name}"] = int(sel.sum())
    return out


def ground_truth_prompt_boxes(masks: np.ndarray, params: PromptParams) -> list:
    """Per frame, every ground-truth lesion's box with the rule's margin: the ceiling's prompts."""
    return [[np.clip(b + np.array([-1, -1, 1, 1]) * params.box_margin * INPUT_SIZE, 0, INPUT_SIZE - 1)
             .astype(np.float32) for b in gt_boxes(m)] for m in masks]


def evaluate(head, dec, split: str, params: PromptParams, presence_threshold: float, domain: Domain,
             gt_box: bool = False, encoder: Encoder | None = None, prompts_from: Path | None = None) -> dict:
    emb, rows, masks, present = split_data(split, domain, encoder)
    probs, cams = prompt_outputs(head, emb, rows, split, domain, prompts_from)
    override = ground_truth_prompt_boxes(masks, params) if gt_box else None  # the ceiling: no gate
    pred = segment(dec, emb, rows, probs, cams, params, presence_threshold, override)
    gate = probs >= presence_threshold if not gt_box else masks.reshape(len(masks), -1).any(1)
    out = report(pred, masks, gate)
    if split == "clip":  # frames in order: how much the mask changes from one to the next
        out["flicker_px"] = float(np.mean([np.logical_xor(a, b).sum() for a, b in zip(pred[1:], pred[:-1])]))
        out["flicker_ground_truth_px"] = float(np.mean([np.logical_xor(a, b).sum()
                                                        for a, b in zip(masks[1:], masks[:-1])]))
        pos = masks.reshape(len(masks), -1).any(1)
        out["dice_positive_true_gate"] = report(
            segment(dec, emb, rows, pos.astype(np.float32), cams, params, 0.5), masks, pos)["dice_positive"]
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two inclusive pixel boxes (x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(0.0, w) * max(0.0, h)
    area = lambda c: (c[2] - c[0] + 1) * (c[3] - c[1] + 1)  # noqa: E731
    return float(inter / (area(a) + area(b) - inter))


IOU_BINS = ((0.0, 0.3), (0.3, 0.6), (0.6, 0.8), (0.8, 1.01))


def diagnose(head, dec, split: str, params: PromptParams, presence_threshold: float, domain: Domain,
             encoder: Encoder | None = None) -> dict:
    """Where the CAM prompt loses Dice+ on positive frames: the gate (ground-truth presence instead), and the
    first CAM box's IoU with the nearest ground-truth lesion box, binned, each bin with Dice+ from the CAM
    prompt and from the ground-truth boxes (same decoder, same dense prompt)."""
    emb, rows, masks, present = split_data(split, domain, encoder)
    probs, cams = head_outputs(head, emb, rows)
    pos = masks.reshape(len(masks), -1).any(1)
    gated = report(segment(dec, emb, rows, probs, cams, params, presence_threshold), masks, probs >= presence_threshold)
    oracle = pos.astype(np.float32)
    pred_cam = segment(dec, emb, rows, oracle, cams, params, 0.5)
    pred_gt = segment(dec, emb, rows, oracle, cams, params, 0.5, ground_truth_prompt_boxes(masks, params))
    from .metrics import dice

    per = []
    for f in np.nonzero(pos)[0]:
        boxes = component_boxes(cams[f], INPUT_SIZE, params)
        best = max((box_iou(boxes[0], g) for g in gt_boxes(masks[f])), default=0.0) if boxes else None
        per.append((best, dice(pred_cam[f], masks[f]), dice(pred_gt[f], masks[f]), int(masks[f].sum())))
    bins = [{"bin": "no box", "sel": [p for p in per if p[0] is None]}]
    bins += [{"bin": f"box IoU {lo:.1f}-{min(hi, 1.0):.1f}", "sel": [p for p in per if p[0] is not None and lo <= p[0] < hi]}
             for lo, hi in IOU_BINS]
    out_bins = []
    for b in bins:
        sel = b["sel"]
        out_bins.append({"bin": b["bin"], "frames": len(sel),
                         "dice_cam_prompt": float(np.mean([p[1] for p in sel])) if sel else None,
                         "dice_ground_truth_box": float(np.mean([p[2] for p in sel])) if sel else None,
                         "mean_lesion_px": float(np.mean([p[3] for p in sel])) if sel else None})
    return {
        "split": split, "positive_frames": int(pos.sum()), "negative_frames": int((~pos).sum()),
        "gate_missed_positives": int((pos & (probs < presence_threshold)).sum()),
        "gate_false_positives": int((~pos & (probs >= presence_threshold)).sum()),
        "dice_positive_gated": gated["dice_positive"],
        "dice_positive_true_gate": report(pred_cam, masks, pos)["dice_positive"],
        "dice_positive_ground_truth_boxes": report(pred_gt, masks, pos)["dice_positive"],
        "bins": out_bins,
    }


PSEUDO_THRESHOLDS = (0.0, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def pseudo_quality(head, dec, params: PromptParams, domain: Domain, encoder: Encoder | None = None) -> dict:
    """How good the run's masks are as pseudo-labels, by the decoder's predicted IoU: on the validation split's
    positive frames, gate held open (as ``medsam_train --pseudo-from`` makes them), the share of frames kept
    and their mean Dice for each threshold."""
    from .metrics import dice

    emb, rows, masks, present = split_data("val", domain, encoder)
    pos = masks.reshape(len(masks), -1).any(1)
    rows, masks = rows[pos], masks[pos]
    _, cams = head_outputs(head, emb, rows)
    scores = np.empty(len(rows))
    pred = segment(dec, emb, rows, np.ones(len(rows), np.float32), cams, params, 0.5, scores=scores)
    d = np.array([dice(p, m) for p, m in zip(pred, masks)])
    sc = np.nan_to_num(scores, nan=-1.0)
    table = []
    for t in PSEUDO_THRESHOLDS:
        keep = (sc >= t) & pred.reshape(len(pred), -1).any(1)
        table.append({"min_iou": t, "kept": int(keep.sum()), "frames": len(rows),
                      "mean_dice_kept": float(d[keep].mean()) if keep.any() else None,
                      "share_dice_below_0_5": float((d[keep] < 0.5).mean()) if keep.any() else None})
        log.info("pseudo-labels, predicted IoU >= %.2f: %d/%d kept, mean Dice %.3f", t, keep.sum(), len(rows),
                 d[keep].mean() if keep.any() else float("nan"))
    return {"split": "val", "table": table}


SWEEP = {
    "cam_threshold": [0.3, 0.4, 0.5, 0.6],
    "max_boxes": [1, 2, 3],
    "refine_rounds": [0, 1],
    "dense_logit": [4.0, 8.0],
    "box_margin": [0.0, 0.015, 0.03],
}


def sweep(head, dec, base: PromptParams, presence_threshold: float, domain: Domain,
          encoder: Encoder | None = None, prompts_from: Path | None = None) -> tuple[PromptParams, float, list]:
    """Coordinate ascent on the validation split's Dice (all frames), one field at a time, then the gate."""
    emb, rows, masks, present = split_data("val", domain, encoder)
    probs, cams = prompt_outputs(head, emb, rows, "val", domain, prompts_from)
    table = []

    def score(p, t):
        pred = segment(dec, emb, rows, probs, cams, p, t)
        r = report(pred, masks, probs >= t)
        table.append({**dataclasses.asdict(p), "presence_threshold": t, **r})
        log.info("val %s gate %.2f: dice+ %.4f dice %.4f", {k: getattr(p, k) for k in SWEEP}, t,
                 r["dice_positive"], r["dice_all"])
        return r["dice_all"]

    best, best_t = base, presence_threshold
    best_s = score(best, best_t)
    for field, values in SWEEP.items():
        for v in values:
            if getattr(best, field) == v:
                continue
            p = dataclasses.replace(best, **{field: v})
            s = score(p, best_t)
            if s > best_s + 1e-4:
                best, best_s = p, s
    for t in (0.3, 0.4, 0.6, 0.7):
        s = score(best, t)
        if s > best_s + 1e-4:
            best_t, best_s = t, s
    return best, best_t, table


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--split", default="val", choices=["val", "test", "clip"])
    ap.add_argument("--sweep", action="store_true", help="choose the rule's parameters on the validation split")
    ap.add_argument("--params", default=None, help="a chosen.json from --sweep (default: the run's own)")
    ap.add_argument("--sam-pp", action="store_true", help="LiteMedSAM's own decoder (no training)")
    ap.add_argument("--gt-box", action="store_true", help="ground-truth boxes (the ceiling row)")
    ap.add_argument("--levers", action="store_true",
                    help="the chosen rule and each lever undone, on --split (reported, not chosen on)")
    ap.add_argument("--diagnose", action="store_true",
                    help="where the CAM prompt loses Dice+ on --split (the gate, the box), with the chosen rule")
    ap.add_argument("--pseudo-quality", action="store_true",
                    help="the run's masks as pseudo-labels on validation, by predicted IoU (pseudo_val.json)")
    ap.add_argument("--prompts-from", default=None,
                    help="another run whose head (on its own encoder's embeddings) gives the presence and CAM: "
                         "--sweep writes chosen_prompts_from_<run>.json, --split reads it")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    setup_logging()
    run = Path(args.run)
    pf = Path(args.prompts_from) if args.prompts_from else None
    tag = f"_prompts_from_{pf.name}" if pf else ""
    domain, encoder = run_domain(run), run_encoder(run)
    head, dec = load_run(run, foundation_decoder=args.sam_pp)
    if args.sweep:
        best, t, table = sweep(head, dec, PromptParams(), 0.5, domain, encoder, pf)
        save_json(run / f"chosen{tag}.json", {"prompt": best.to_dict(), "presence_threshold": t})
        save_json(run / f"sweep_val{tag}.json", table)
        log.info("chosen on validation: %s gate %.2f", best, t)
        return
    chosen_path = Path(args.params) if args.params else run / f"chosen{tag}.json"
    chosen = json.loads(chosen_path.read_text()) if chosen_path.exists() else {"prompt": {}, "presence_threshold": 0.5}
    params = PromptParams(**chosen["prompt"])
    if args.pseudo_quality:
        save_json(run / "pseudo_val.json", pseudo_quality(head, dec, params, domain, encoder))
        return
    if args.diagnose:
        d = diagnose(head, dec, args.split, params, chosen["presence_threshold"], domain, encoder)
        save_json(run / f"diagnosis_{args.split}.json", d)
        log.info("%s", json.dumps(d, indent=1))
        return
    if args.levers:
        base = PromptParams()
        variants = {"chosen": params}
        for field in SWEEP:
            if getattr(params, field) != getattr(base, field):
                variants[f"{field} {getattr(params, field)} -> {getattr(base, field)}"] = dataclasses.replace(
                    params, **{field: getattr(base, field)})
        variants["all defaults (one box, no refinement)"] = base
        out = {}
        for name, p in variants.items():
            out[name] = evaluate(head, dec, args.split, p, chosen["presence_threshold"], domain, encoder=encoder)
            log.info("%-40s dice+ %.4f several %.4f", name, out[name]["dice_positive"],
                     out[name].get("dice_positive_several_lesions", float("nan")))
        save_json(run / f"levers_{args.split}.json", out)
        return
    r = evaluate(head, dec, args.split, params, chosen["presence_threshold"], domain,
                 gt_box=args.gt_box, encoder=encoder, prompts_from=pf)
    r.update({"run": run.name, "data": domain.name, "encoder": encoder.spec, "prompts_from": pf.name if pf else None, "split": args.split, "sam_pp": args.sam_pp, "gt_box": args.gt_box,
              "prompt": params.to_dict(), "presence_threshold": chosen["presence_threshold"]})
    name = args.out or f"eval_{args.split}{'_sampp' if args.sam_pp else ''}{'_gtbox' if args.gt_box else ''}{tag}.json"
    save_json(run / name, r)
    log.info("%s %s: dice+ %.4f (one lesion %.4f, several %.4f) dice %.4f presence acc %.3f", run.name, args.split,
             r["dice_positive"], r.get("dice_positive_one_lesion", float("nan")),
             r.get("dice_positive_several_lesions", float("nan")), r["dice_all"], r.get("presence_accuracy", float("nan")))


if __name__ == "__main__":
    main()
