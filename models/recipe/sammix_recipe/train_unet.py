"""Baseline: a U-Net trained on the same K labelled masks.

It sees the same K positive frames as SAM-Mix-K, plus K frames whose image
label says "no lesion" (their masks are empty, so the image label gives them
for free); the same augmentation and the same number of steps.

    python -m sammix_recipe.train_unet --k 50 --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
from .model import SamConfig, normalize
from .segment import mask_loss
from .train_sammix import labeled_indices


def conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """The classic encoder-decoder with skips: 4 poolings, widths 8..128 (0.45 GMAC at 256²)."""

    def __init__(self, widths=(8, 16, 32, 64, 128)):
        super().__init__()
        self.down = nn.ModuleList()
        cin = 1
        for w in widths:
            self.down.append(conv_block(cin, w))
            cin = w
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.dec.append(conv_block(2 * w, w))
            cin = w
        self.head = nn.Conv2d(cin, 1, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
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
    out = Path(args.out or RUNS_DIR / f"unet-k{args.k}-s{args.seed}")
    dev = pick_device(args.device)
    rng = seed_everything(args.seed)
    cfg = SamConfig.tiny()
    pool = ultrasound_set("pool")
    idx = labeled_indices(pool["present"], args.k, args.seed, negatives=args.k)
    images = torch.from_numpy(pool["images"][idx]).to(dev)
    masks = torch.from_numpy(pool["masks"][idx]).to(dev)
    model = UNet().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    t0 = time.time()
    losses = []
    model.train()
    budget = StepBudget(args.steps, args.time_budget)
    steps, step = args.steps, 0
    while step < steps:
        steps = budget.update(step)
        set_lr(opt, cosine_lr(step, steps, 1.0))
        sel = torch.from_numpy(rng.integers(0, len(idx), args.batch)).to(dev)
        xb, gt = augment_batch(images[sel], masks[sel], rng)
        logits = model(normalize(xb, cfg))
        loss = mask_loss(logits, gt).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            log.info("unet k%d s%d step %d/%d loss %.4f (%.0fs)", args.k, args.seed, step, steps,
                     np.mean(losses[-100:]), time.time() - t0)
        step += 1
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"unet": model.state_dict()}, out / "unet.pt")
    save_json(out / "train.json", {"k": args.k, "seed": args.seed, "steps": steps, "batch": args.batch,
                                   "device": device_name(dev), "seconds": time.time() - t0})


@torch.no_grad()
def predict_unet(path: Path, images: np.ndarray, device: torch.device, batch: int = 32) -> np.ndarray:
    model = UNet().to(device)
    model.load_state_dict(torch.load(path, map_location=device, weights_only=False)["unet"])
    model.eval()
    cfg = SamConfig.tiny()
    out = np.zeros(images.shape, np.uint8)
    for i in range(0, len(images), batch):
        x = normalize(torch.from_numpy(images[i : i + batch]).to(device), cfg)
        out[i : i + batch] = (model(x)[:, 0] > 0).cpu().numpy()
    return out


if __name__ == "__main__":
    main()
