"""Foundation pretraining of the tiny SAM: promptable segmentation of generic shapes.

Our stand-in for SAM's own pretraining (a user with an official checkpoint
skips this): the model learns to segment whatever a box, points or a coarse
dense mask point at, on procedurally generated shapes and textures that have
nothing to do with ultrasound lesions.

    python -m sammix_recipe.train_foundation --out runs/foundation   # 1853 steps x 64: 87 s on an H200
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .common import RUNS_DIR, StepBudget, cosine_lr, device_name, log, pick_device, save_json, seed_everything, set_lr, setup_logging, shapes_set
from .model import DecoderHead, SamConfig, build_sam, normalize
from .segment import seg_loss

DENSE_LOGIT = 8.0


def dense_from_coarse(coarse: torch.Tensor, e4: int) -> torch.Tensor:
    """Binary (B,S,S) → area average to e4×e4 → logits, the rule's step 6 on a GPU."""
    frac = F.adaptive_avg_pool2d(coarse.float().unsqueeze(1), e4)
    return DENSE_LOGIT * (2 * frac - 1)


def make_batch(data: dict, idx: np.ndarray, rng: np.random.Generator, dev: torch.device, cfg: SamConfig):
    """One training batch in one prompt mode: box+dense, box, or points(+dense)."""
    idx = torch.from_numpy(idx).to(dev)
    img, gt, coarse = data["image"][idx], data["mask"][idx], data["coarse"][idx]
    box, pts, plab = data["box"][idx], data["points"][idx], data["point_labels"][idx]
    b, s = img.shape[0], img.shape[-1]
    if rng.random() < 0.5:  # horizontal flip of everything
        img, gt, coarse = img.flip(-1), gt.flip(-1), coarse.flip(-1)
        box = torch.stack([s - 1 - box[:, 2], box[:, 1], s - 1 - box[:, 0], box[:, 3]], dim=1)
        pts = torch.where(plab[..., None] >= 0, torch.stack([s - 1 - pts[..., 0], pts[..., 1]], -1), pts)
    e4 = 4 * cfg.embedding_size
    mode = rng.choice(3, p=[0.6, 0.2, 0.2])
    if mode == 2:
        coords, labels = pts, plab
        has = torch.from_numpy((rng.random(b) < 0.5).astype(np.float32)).to(dev)
    else:
        coords = box.view(b, 2, 2)
        labels = torch.tensor([2.0, 3.0], device=dev).expand(b, 2)
        has = torch.full((b,), 1.0 if mode == 0 else 0.0, device=dev)
    dense = dense_from_coarse(coarse, e4)
    return normalize(img, cfg), gt, coords.float(), labels.float(), dense, has


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1853)  # what the shipped foundation ran
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--samples", type=int, default=24000, help="size of the generated shapes set")
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--time-budget",
        type=float,
        default=0.0,
        help="seconds; if set, the step count is lowered after the first timed steps so the run fits "
        "(train.json records the steps actually run: pass them as --steps to reproduce)",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(RUNS_DIR / "foundation"))
    args = ap.parse_args(argv)
    setup_logging()
    dev = pick_device(args.device)
    rng = seed_everything(args.seed)
    cfg = SamConfig.tiny()
    # the whole set lives on the device (uint8): no per-step host copies
    data = {k: torch.from_numpy(v).to(dev) for k, v in shapes_set(args.samples).items()}
    sam = build_sam(cfg).to(dev)
    head = DecoderHead(sam)
    params = [p for p in sam.parameters()]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    t0 = time.time()
    losses = []
    sam.train()
    budget = StepBudget(args.steps, args.time_budget)
    steps = args.steps
    step = 0
    while step < steps:
        steps = budget.update(step)
        set_lr(opt, cosine_lr(step, steps, 1.0, warmup=200))
        idx = rng.integers(0, data["image"].shape[0], args.batch)
        x, gt, coords, labels, dense, has = make_batch(data, idx, rng, dev, cfg)
        low, iou = head(sam.image_encoder(x), coords, labels, dense, has)
        loss = seg_loss(low, iou, gt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 200 == 0 or step == steps - 1:
            log.info("foundation step %d/%d loss %.4f (%.0fs)", step, steps, np.mean(losses[-200:]), time.time() - t0)
        step += 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"config": cfg.to_dict(), "sam": sam.state_dict()}, out / "foundation.pt")
    save_json(
        out / "train.json",
        {
            "steps": steps,
            "batch": args.batch,
            "samples": args.samples,
            "seconds": time.time() - t0,
            "device": device_name(dev),
            "final_loss": float(np.mean(losses[-200:])),
        },
    )
    log.info("saved %s", out / "foundation.pt")


if __name__ == "__main__":
    main()
