"""SAM-Mix training: K labelled masks, prompts from the classifier's CAM, LoRA on the encoder.

Starts from the foundation SAM and a classifier trained on the pool's image
labels. Each step takes K-labelled frames, augments them, runs the (frozen)
classifier to get each frame's CAM, turns it into a box + dense prompt with
the bundle's rule, and trains LoRA (r = 8, encoder attention projections),
the prompt encoder and the mask decoder on the SAM loss. Frames whose CAM
gives no prompt contribute nothing (as at inference, where they get no mask).

    python -m sammix_recipe.train_sammix --k 50 --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from .common import (
    RUNS_DIR,
    StepBudget,
    augment_batch,
    cosine_lr,
    device_name,
    log,
    pick_device,
    save_json,
    seed_everything,
    set_lr,
    setup_logging,
    ultrasound_set,
)
from .model import DecoderHead, SamConfig, add_lora, build_sam, normalize
from .prompt import PromptParams
from .segment import prompts_from_cams, run_sam, seg_loss
from .train_classifier import load_classifier


def labeled_indices(present: np.ndarray, k: int, seed: int, negatives: int = 0) -> np.ndarray:
    """The K pool frames whose masks a run may see (positives), plus optional negatives."""
    rng = np.random.default_rng(10_000 + seed)
    pos = rng.permutation(np.nonzero(present)[0])[:k]
    neg = rng.permutation(np.nonzero(present == 0)[0])[:negatives]
    return np.concatenate([pos, neg])


def load_foundation(path: Path, device: torch.device):
    ck = torch.load(path, map_location=device, weights_only=False)
    cfg = SamConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in ck["config"].items()})
    sam = build_sam(cfg)
    sam.load_state_dict(ck["sam"])
    return sam.to(device), cfg


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, required=True, help="number of labelled masks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--foundation", default=str(RUNS_DIR / "foundation" / "foundation.pt"))
    ap.add_argument(
        "--classifier",
        default=str(RUNS_DIR / "classifier-s0" / "classifier.pt"),
        help="the trained classification branch (image labels only, shared by all K and seeds)",
    )
    ap.add_argument("--train-neck", action="store_true", help="also train the encoder's neck (experiment)")
    ap.add_argument(
        "--time-budget",
        type=float,
        default=0.0,
        help="seconds; if set, the step count is lowered after the first timed steps so the run fits "
        "(train.json records the steps actually run: pass them as --steps to reproduce)",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    setup_logging()
    out = Path(args.out or RUNS_DIR / f"sammix-k{args.k}-s{args.seed}")
    dev = pick_device(args.device)
    rng = seed_everything(args.seed)
    params = PromptParams()
    sam, cfg = load_foundation(Path(args.foundation), dev)
    clf = load_classifier(Path(args.classifier), dev)
    for p in clf.parameters():
        p.requires_grad_(False)
    for p in sam.parameters():
        p.requires_grad_(False)
    lora = add_lora(sam.image_encoder)
    sam.to(dev)
    head = DecoderHead(sam)
    tuned = list(sam.prompt_encoder.parameters()) + list(sam.mask_decoder.parameters())
    if args.train_neck:  # the encoder's output convolutions, after the LoRA'd blocks
        tuned += list(sam.image_encoder.neck.parameters())
    for p in tuned:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(
        [{"params": lora, "lr": args.lr}, {"params": tuned, "lr": args.lr / 3}], weight_decay=0.01
    )
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    pool = ultrasound_set("pool")
    idx_all = labeled_indices(pool["present"], args.k, args.seed)
    images = torch.from_numpy(pool["images"][idx_all]).to(dev)
    masks = torch.from_numpy(pool["masks"][idx_all]).to(dev)
    t0 = time.time()
    losses, skipped = [], 0
    sam.train()
    sam.image_encoder.eval()  # no dropout/bn there; LoRA trains through it
    budget = StepBudget(args.steps, args.time_budget)
    steps, step = args.steps, 0
    while step < steps:
        steps = budget.update(step)
        step += 1
        set_lr(opt, cosine_lr(step - 1, steps, 1.0))
        sel = torch.from_numpy(rng.integers(0, len(idx_all), args.batch)).to(dev)
        xb, gt = augment_batch(images[sel], masks[sel], rng)
        x = normalize(xb, cfg)
        with torch.no_grad():
            _, cam = clf(x)
        coords, dense, valid = prompts_from_cams(cam.cpu().numpy(), cfg, params)
        skipped += int((~valid).sum())
        if not valid.any():
            continue
        keep = torch.from_numpy(np.nonzero(valid)[0]).to(dev)
        low, iou = run_sam(sam, head, x[keep], coords[valid], dense[valid])
        loss = seg_loss(low, iou, gt[keep])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step - 1) % 100 == 0 or step == steps:
            log.info("sammix k%d s%d step %d/%d loss %.4f (%.0fs)", args.k, args.seed, step - 1, steps,
                     np.mean(losses[-100:]), time.time() - t0)
    out.mkdir(parents=True, exist_ok=True)
    # Only what training changed: LoRA factors, prompt encoder, mask decoder.
    delta = {
        k: v
        for k, v in sam.state_dict().items()
        if "lora_" in k or not k.startswith("image_encoder.") or (args.train_neck and ".neck." in k)
    }
    torch.save({"config": cfg.to_dict(), "lora_rank": 8, "delta": delta}, out / "sammix.pt")
    save_json(out / "train.json", {"k": args.k, "seed": args.seed, "steps": steps, "batch": args.batch,
                                   "device": device_name(dev), "seconds": time.time() - t0, "prompts_skipped": skipped,
                                   "classifier_run": Path(args.classifier).parent.name,
                                   "labeled_pool_indices": idx_all.tolist()})
    log.info("saved %s", out / "sammix.pt")


def load_sammix(foundation: Path, delta_path: Path, device: torch.device):
    """Foundation + a run's delta → a SAM with LoRA attached (not merged)."""
    sam, cfg = load_foundation(foundation, device)
    ck = torch.load(delta_path, map_location=device, weights_only=False)
    add_lora(sam.image_encoder, rank=ck["lora_rank"])
    missing, unexpected = sam.load_state_dict(ck["delta"], strict=False)
    if unexpected:
        raise ValueError(f"{delta_path}: unexpected keys {unexpected[:5]}")
    return sam.to(device).eval(), cfg


if __name__ == "__main__":
    main()
