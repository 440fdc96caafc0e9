"""A presence pre-gate for the real-time student: a tiny net on the frame at 64×64 that turns away the frames
with no target before the encoder runs.

The student's presence/CAM head reads the encoder's embeddings, so a frame without a target still costs the
encoder (18 ms of a gated-out frame's 18.2 on this machine). The pre-gate reads the model input (1×C×S×S,
normalized as the encoder's) and averages it down to 64×64 inside the graph; it only has to be sure when a
frame has *no* target: its threshold is chosen on the validation split so that every validation frame with a
target passes (recall 1.0 there), and the head decides the rest as before. A frame the pre-gate turns away is
an absent frame at the pre-gate's cost; one it lets through costs what it did.

Trained on the pool's image labels only (the weak labels SAM-Mix already uses; no masks), validation split
held out.

    python -m sammix_recipe.gate --train --steps 1500 --width 24 --out runs/gate-b   # ~4 min, one thread
    python -m sammix_recipe.gate --eval --out runs/gate-b     # threshold on validation; test recall, turned away

Measured and not adopted (models/recipe/README.md): at a threshold that lets every validation frame with a
target through, it turns away a fifth to a quarter of the absent frames.
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

from .common import cosine_lr, device_name, log, save_json, seed_everything, set_lr, setup_logging
from .student import conv_bn

GATE_POOL = 4  # 256 → 64 inside the graph


class Gate(nn.Module):
    """(B,C,S,S) model input → (B,1) presence logit."""

    def __init__(self, in_chans: int = 1, width: int = 32, pool: int = GATE_POOL):
        super().__init__()
        self.config = {"in_chans": in_chans, "width": width, "pool": pool}
        w = width
        first = [conv_bn(in_chans, w // 2, 3, 2)]  # S/pool/2
        if pool == 2:
            first = [conv_bn(in_chans, w // 4, 3, 2), conv_bn(w // 4, w // 2, 3, 2)]
        self.body = nn.Sequential(
            nn.AvgPool2d(pool),
            *first,  # 32
            conv_bn(w // 2, w, 3, 2),  # 16
            conv_bn(w, w, 3),
            conv_bn(w, 2 * w, 3, 2),  # 8
            conv_bn(2 * w, 2 * w, 3),
        )
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(4 * w, 1)

    def forward(self, x):
        f = self.body(x)
        pooled = torch.cat([f.mean((2, 3)), f.amax((2, 3))], dim=1)
        return self.fc(self.drop(pooled))


def augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Flip, a zoom of 1-1.25× onto a random crop, gamma 0.7-1.4, gain 0.8-1.2 and speckle-like noise per frame
    (x in [0, 1])."""
    b, _, s, _ = x.shape
    flip = torch.from_numpy(rng.random(b) < 0.5)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    zoomed = []
    for i in range(b):
        side = int(round(s / rng.uniform(1.0, 1.25)))
        y0, x0 = rng.integers(0, s - side + 1, 2)
        crop = x[i : i + 1, :, y0 : y0 + side, x0 : x0 + side]
        zoomed.append(F.interpolate(crop, size=(s, s), mode="bilinear", align_corners=False))
    x = torch.cat(zoomed)
    x = x * torch.from_numpy(rng.uniform(0.85, 1.15, x.shape).astype(np.float32))
    g = torch.from_numpy(rng.uniform(0.7, 1.4, b).astype(np.float32))[:, None, None, None]
    gain = torch.from_numpy(rng.uniform(0.8, 1.2, b).astype(np.float32))[:, None, None, None]
    return (x.clamp(0, 1) ** g * gain).clamp(0, 1)


def model_input(frames_u8: np.ndarray) -> torch.Tensor:
    """uint8 (B,S,S) gray → (B,1,S,S) in [0, 1] (the student bundle's mean 0, std 255)."""
    return torch.from_numpy(np.ascontiguousarray(frames_u8)).float()[:, None] / 255.0


def split_rows(pool: dict) -> tuple[np.ndarray, np.ndarray]:
    from .medsam_data import validation_indices

    val = validation_indices(pool["present"])
    held = set(int(i) for i in val)
    train = np.array([i for i in range(len(pool["present"])) if i not in held])
    return train, val


def train(out: Path, steps: int, batch: int, lr: float, seed: int, width: int, wd: float, gate_pool: int) -> None:
    from .common import ultrasound_set

    rng = seed_everything(seed)
    pool = ultrasound_set("pool")
    rows, val = split_rows(pool)
    images, present = pool["images"], pool["present"].astype(np.float32)
    log.info("pre-gate on %d image-label frames (%.0f%% with a target), %d held out", len(rows),
             100 * present[rows].mean(), len(val))
    net = Gate(1, width, gate_pool).train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    t0, losses, log_rows = time.time(), [], []
    for step in range(steps):
        set_lr(opt, cosine_lr(step, steps, 1.0, warmup=50))
        sel = rows[rng.integers(0, len(rows), batch)]
        x = augment(model_input(images[sel]), rng)
        loss = F.binary_cross_entropy_with_logits(net(x)[:, 0], torch.from_numpy(present[sel]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 200 == 0 or step == steps - 1:
            log_rows.append({"step": step, "loss": float(np.mean(losses[-200:])), "seconds": time.time() - t0})
            log.info("gate step %d/%d loss %.4f (%.0fs)", step, steps, np.mean(losses[-200:]), time.time() - t0)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"config": net.config, "state": net.eval().state_dict()}, out / "gate.pt")
    save_json(out / "gate_train.json", {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "width": width,
                                        "wd": wd, "pool": gate_pool,
                                        "frames": len(rows), "device": device_name(torch.device("cpu")),
                                        "seconds": time.time() - t0, "log": log_rows})


def load_gate(run: Path) -> Gate:
    ck = torch.load(run / "gate.pt", map_location="cpu", weights_only=False)
    net = Gate(**ck["config"])
    net.load_state_dict(ck["state"])
    return net.eval()


@torch.no_grad()
def probabilities(net: Gate, frames_u8: np.ndarray) -> np.ndarray:
    out = [torch.sigmoid(net(model_input(frames_u8[i : i + 64]))[:, 0]).numpy() for i in range(0, len(frames_u8), 64)]
    return np.concatenate(out)


def choose_threshold(p_val: np.ndarray, present_val: np.ndarray, margin: float = 0.5) -> float:
    """The largest threshold that lets every validation frame with a target through, times ``margin``."""
    return float(p_val[present_val > 0].min() * margin)


def evaluate(out: Path, margin: float) -> dict:
    from .common import ultrasound_set

    net = load_gate(out)
    pool, test = ultrasound_set("pool"), ultrasound_set("test")
    _, val = split_rows(pool)
    p_val = probabilities(net, pool["images"][val])
    y_val = pool["present"][val]
    thr = choose_threshold(p_val, y_val, margin)
    p_test, y_test = probabilities(net, test["images"]), test["present"]

    def at(p, y):
        keep = p >= thr
        return {"frames": int(len(y)), "with_target": int(y.sum()),
                "recall": float(keep[y > 0].mean()), "missed": int((~keep & (y > 0)).sum()),
                "turned_away_of_absent": float((~keep[y == 0]).mean()), "turned_away": int((~keep).sum())}

    res = {"threshold": thr, "margin": margin, "validation": at(p_val, y_val), "test": at(p_test, y_test),
           "auc_validation": auc(p_val, y_val), "auc_test": auc(p_test, y_test)}
    save_json(out / "gate_eval.json", res)
    log.info("%s", json.dumps(res, indent=1))
    return res


def auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y > 0], p[y == 0]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--eval", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--pool", type=int, default=GATE_POOL, choices=[2, 4], help="S/pool: the pre-gate's resolution")
    ap.add_argument("--margin", type=float, default=0.5,
                    help="the threshold is this fraction of the lowest validation positive's probability")
    args = ap.parse_args(argv)
    setup_logging()
    torch.set_num_threads(1)
    if args.train:
        train(args.out, args.steps, args.batch, args.lr, args.seed, args.width, args.wd, args.pool)
    if args.eval:
        evaluate(args.out, args.margin)


if __name__ == "__main__":
    main()
