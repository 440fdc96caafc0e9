"""Baseline: a U-Net trained on the same K labelled masks.

It sees the same K positive frames as SAM-Mix-K, plus K frames whose image
label says "no lesion" (their masks are empty, so the image label gives them
for free); the same augmentation and the same number of steps.

    python -m sammix_recipe.train_unet --k 50 --seed 0
    python -m sammix_recipe.train_unet --data endo --k 50 --seed 0   # RGB colonoscopy: 3 input channels

With ``--data endo`` the run (``runs/endo-unet-k50-s0``) is also scored on the colonoscopy test set
(``eval_test.json``); the ultrasound runs are scored by ``sammix_recipe.evaluate``.
"""

from __future__ import annotations

import argparse
import json
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
from .data.endoscopy import endoscopy_set
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

    def __init__(self, widths=(8, 16, 32, 64, 128), in_chans: int = 1):
        super().__init__()
        self.down = nn.ModuleList()
        cin = in_chans
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
    ap.add_argument("--data", default="us", choices=["us", "endo"], help="us: ultrasound (gray); endo: colonoscopy (RGB)")
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
    endo = args.data == "endo"
    out = Path(args.out or RUNS_DIR / f"{'endo-' if endo else ''}unet-k{args.k}-s{args.seed}")
    dev = pick_device(args.device)
    rng = seed_everything(args.seed)
    cfg = SamConfig.tiny()
    pool = endoscopy_set("pool") if endo else ultrasound_set("pool")
    idx = labeled_indices(pool["present"], args.k, args.seed, negatives=args.k)
    images = torch.from_numpy(pool["images"][idx]).to(dev)
    if endo:
        images = images.permute(0, 3, 1, 2).contiguous()  # (B,3,H,W)
    masks = torch.from_numpy(pool["masks"][idx]).to(dev)
    model = UNet(in_chans=3 if endo else 1).to(dev)
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
        logits = model(xb / 255.0 if endo else normalize(xb, cfg))
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
    torch.save({"unet": model.state_dict(), "in_chans": 3 if endo else 1}, out / "unet.pt")
    if endo:
        from .metrics import summarize

        test = endoscopy_set("test")
        pred = predict_unet(out / "unet.pt", test["images"], dev)
        save_json(out / "eval_test.json", {"method": f"unet-k{args.k}", "data": "endo", "split": "test",
                                           **summarize(pred, test["masks"])})
        log.info("endo test: %s", json.dumps(summarize(pred, test["masks"])))
    save_json(out / "train.json", {"data": args.data, "k": args.k, "seed": args.seed, "steps": steps, "batch": args.batch,
                                   "device": device_name(dev), "seconds": time.time() - t0})


@torch.no_grad()
def predict_unet(path: Path, images: np.ndarray, device: torch.device, batch: int = 32) -> np.ndarray:
    """0/1 masks of (N,H,W) gray or (N,H,W,3) RGB frames (the run's ``in_chans`` says which it takes)."""
    ck = torch.load(path, map_location=device, weights_only=False)
    model = UNet(in_chans=ck.get("in_chans", 1)).to(device)
    model.load_state_dict(ck["unet"])
    model.eval()
    cfg = SamConfig.tiny()
    out = np.zeros(images.shape[:3], np.uint8)
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch]).to(device)
        x = x.permute(0, 3, 1, 2).float() / 255.0 if x.dim() == 4 else normalize(x, cfg)
        out[i : i + batch] = (model(x)[:, 0] > 0).cpu().numpy()
    return out


if __name__ == "__main__":
    main()
