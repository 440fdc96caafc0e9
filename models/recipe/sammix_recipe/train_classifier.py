"""Classification branch: target presence from image-level labels only, binary focal loss.

Every frame of the training pool carries a cheap image label (lesion in view
or not); no mask is used here. The trained classifier gates frames and, through
its class activation map, prompts SAM.

    python -m sammix_recipe.train_classifier --seed 0 --out runs/classifier-s0
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
from .model import CamClassifier, ClassifierConfig, SamConfig, focal_loss, normalize


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
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
    out = Path(args.out or RUNS_DIR / f"classifier-s{args.seed}")
    dev = pick_device(args.device)
    rng = seed_everything(args.seed)
    cfg = SamConfig.tiny()
    pool = ultrasound_set("pool")
    images = torch.from_numpy(pool["images"]).to(dev)
    masks = torch.from_numpy(pool["masks"]).to(dev)
    labels = torch.from_numpy(pool["present"].astype(np.float32)).to(dev)
    model = CamClassifier(ClassifierConfig()).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    t0 = time.time()
    losses, accs = [], []
    model.train()
    budget = StepBudget(args.steps, args.time_budget)
    steps, step = args.steps, 0
    while step < steps:
        steps = budget.update(step)
        set_lr(opt, cosine_lr(step, steps, 1.0))
        idx = torch.from_numpy(rng.integers(0, len(labels), args.batch)).to(dev)
        x, _ = augment_batch(images[idx], masks[idx], rng)
        logits, _ = model(normalize(x, cfg))
        y = labels[idx]
        loss = focal_loss(logits[:, 0], y, alpha=0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        accs.append(((logits[:, 0] > 0).float() == y).float().mean().item())
        if step % 100 == 0 or step == steps - 1:
            log.info(
                "classifier s%d step %d/%d loss %.4f acc %.3f (%.0fs)",
                args.seed, step, steps, np.mean(losses[-100:]), np.mean(accs[-100:]), time.time() - t0,
            )
        step += 1
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"config": model.cfg.to_dict(), "classifier": model.state_dict()}, out / "classifier.pt")
    save_json(
        out / "train.json",
        {"steps": steps, "batch": args.batch, "seed": args.seed, "device": device_name(dev), "seconds": time.time() - t0,
         "train_acc_last100": float(np.mean(accs[-100:]))},
    )
    log.info("saved %s", out / "classifier.pt")


def load_classifier(path: Path, device: torch.device) -> CamClassifier:
    ck = torch.load(path, map_location=device, weights_only=False)
    cfg = ck["config"]
    model = CamClassifier(ClassifierConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}))
    model.load_state_dict(ck["classifier"])
    return model.to(device).eval()


if __name__ == "__main__":
    main()
