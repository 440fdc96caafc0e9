"""A real-time student of LiteMedSAM's image encoder, distilled on cached embeddings (the MobileSAM recipe).

The teacher (TinyViT, 37.5 GMAC a 256² frame) gives 256×64×64 embeddings; the
student gives 256×E×E with E = 32 (stride 8): the mask decoder's two-way
attention then runs over 1,024 image tokens instead of 4,096, a quarter of its
cost, and LiteMedSAM's prompt encoder and mask decoder take E = 32 with the
same weights (their positional encoding is computed for the grid). The target
is the teacher's embedding averaged over 2×2 cells. Gray frames go in as one
channel (the teacher replicates gray in all three).

The student is a plain convolutional net (strided stem, inverted residual
blocks at 32×32, a branch at 16×16 for context, a 1×1 neck and SAM's
channel LayerNorm): every op is one tract and onnxruntime run well, and one a
native kernel can take later.

    python -m sammix_recipe.student --time              # ms a frame of each size, onnxruntime, one thread
    python -m sammix_recipe.student --distill --size s  # MSE to the teacher on the pool's frames
    python -m sammix_recipe.student --embed --run runs/student-s --sets pool,test
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

from .common import CACHE_DIR, RUNS_DIR, cosine_lr, device_name, log, save_json, seed_everything, set_lr, setup_logging

STUDENT_E = 32
STUDENT_INPUT = 256

# width at 32×32, inverted residual blocks there, blocks in the 16×16 branch, expansion
SIZES = {
    "xs": {"width": 64, "blocks": 3, "ctx_blocks": 2, "expand": 3},
    "s": {"width": 96, "blocks": 4, "ctx_blocks": 3, "expand": 3},
    "m": {"width": 128, "blocks": 5, "ctx_blocks": 3, "expand": 4},
}


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1, act: bool = True):
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), groups=groups, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1×1 expand, depthwise 3×3, 1×1 project, added back (MobileNetV2's block)."""

    def __init__(self, c: int, expand: int, dilation: int = 1):
        super().__init__()
        h = c * expand
        self.body = nn.Sequential(
            conv_bn(c, h, 1),
            conv_bn(h, h, 3, groups=h, dilation=dilation),
            conv_bn(h, c, 1, act=False),
        )

    def forward(self, x):
        return x + self.body(x)


class LayerNorm2d(nn.Module):
    """SAM's channel LayerNorm (the teacher's neck ends in one)."""

    def __init__(self, c: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class Student(nn.Module):
    """(B,C,256,256) in [0, 1] → (B,256,32,32) embeddings."""

    def __init__(self, width: int, blocks: int, ctx_blocks: int, expand: int, in_chans: int = 1):
        super().__init__()
        self.config = {"width": width, "blocks": blocks, "ctx_blocks": ctx_blocks, "expand": expand,
                       "in_chans": in_chans}
        self.stem = nn.Sequential(
            conv_bn(in_chans, 24, 3, 2),  # 128
            conv_bn(24, 48, 3, 2),  # 64
            InvertedResidual(48, 2),
            conv_bn(48, width, 3, 2),  # 32
        )
        self.local = nn.Sequential(*[InvertedResidual(width, expand) for _ in range(blocks)])
        wide = width + width // 2
        self.down = conv_bn(width, wide, 3, 2)  # 16
        self.ctx = nn.Sequential(*[InvertedResidual(wide, expand, dilation=d)
                                   for d in [1, 2, 4, 1, 2, 4][:ctx_blocks]])
        self.up = conv_bn(wide, width, 1, act=False)
        self.mix = InvertedResidual(width, expand)
        self.neck = nn.Conv2d(width, 256, 1)
        self.norm = LayerNorm2d(256)

    def forward(self, x):
        f = self.local(self.stem(x))
        g = self.up(self.ctx(self.down(f)))
        f = self.mix(F.relu(f + F.interpolate(g, scale_factor=2.0, mode="nearest")))
        return self.norm(self.neck(f))


def build(size: str, in_chans: int = 1) -> Student:
    return Student(**SIZES[size], in_chans=in_chans)


def macs(net: nn.Module, in_chans: int) -> int:
    """Multiply-accumulates of one 256² frame (convolutions only; the rest is a few percent)."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += out.numel() * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net.eval()(torch.zeros(1, in_chans, STUDENT_INPUT, STUDENT_INPUT))
    for h in hs:
        h.remove()
    return total


def export_onnx(net: Student, path: Path) -> None:
    """The student as the bundle's ``encoder.onnx`` (input ``image``, output ``image_embeddings``)."""
    from .export import _export

    x = torch.zeros(1, net.config["in_chans"], STUDENT_INPUT, STUDENT_INPUT)
    _export(net.eval(), (x,), path, ["image"], ["image_embeddings"])


def time_ort(path: Path, in_chans: int, iters: int = 30) -> float:
    """Median ms a frame in onnxruntime, one thread."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, in_chans, STUDENT_INPUT, STUDENT_INPUT), dtype=np.float32)
    for _ in range(3):
        sess.run(None, {"image": x})
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        sess.run(None, {"image": x})
        ts.append((time.perf_counter() - t) * 1e3)
    return float(np.median(ts))


# ---- distillation ----------------------------------------------------------


def teacher_targets(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's cached embeddings of set ``name`` averaged over 2×2 cells: (N,256,32,32) f16, frame indices.

    Cached next to the teacher's (``medsam_emb_{name}_e32.npy``), remade when the teacher's cache grew."""
    from .medsam import cached_embeddings

    emb, idx = cached_embeddings(name)
    path = CACHE_DIR / f"medsam_emb_{name}_e32.npy"
    if path.exists():
        out = np.load(path, mmap_mode="r")
        if out.shape[0] == len(idx):
            return out, idx
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(len(idx), 256, STUDENT_E, STUDENT_E))
    for i in range(0, len(idx), 64):
        e = torch.from_numpy(np.asarray(emb[i : i + 64], dtype=np.float32))
        out[i : i + len(e)] = F.avg_pool2d(e, 2).numpy().astype(np.float16)
    out.flush()
    log.info("%s: teacher targets at E = %d for %d frames", name, STUDENT_E, len(idx))
    return np.load(path, mmap_mode="r"), idx


def student_input(frames_u8: np.ndarray, in_chans: int) -> torch.Tensor:
    """uint8 (B,H,W) gray or (B,H,W,3) RGB → (B,C,H,W) in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames_u8)).float() / 255.0
    if x.ndim == 4:
        return x.permute(0, 3, 1, 2).contiguous()
    return x[:, None] if in_chans == 1 else x[:, None].expand(-1, in_chans, -1, -1).contiguous()


def distill(size: str, steps: int, batch: int, lr: float, out: Path, seed: int = 0) -> None:
    """MSE to the teacher's embeddings on the pool's frames (the validation split held out, to watch)."""
    from .common import ultrasound_set
    from .medsam_data import validation_indices

    rng = seed_everything(seed)
    pool = ultrasound_set("pool")
    target, idx = teacher_targets("pool")
    val = set(int(i) for i in validation_indices(pool["present"]))
    rows = np.array([r for r, i in enumerate(idx) if int(i) not in val])
    vrows = np.array([r for r, i in enumerate(idx) if int(i) in val])
    log.info("distilling on %d pool frames (%d validation frames watched)", len(rows), len(vrows))
    target = np.asarray(target)  # ~1 GB f16 in memory: random batches without disk reads
    images = pool["images"][idx]
    net = build(size)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    out.mkdir(parents=True, exist_ok=True)
    t0, losses, log_rows = time.time(), [], []

    def val_mse() -> float:
        net.eval()
        with torch.no_grad():
            err = [F.mse_loss(net(student_input(images[vrows[i : i + 16]], 1)),
                              torch.from_numpy(target[vrows[i : i + 16]].astype(np.float32))).item()
                   for i in range(0, len(vrows), 16)]
        net.train()
        return float(np.mean(err))

    net.train()
    for step in range(steps):
        set_lr(opt, cosine_lr(step, steps, 1.0, warmup=50))
        sel = rows[rng.integers(0, len(rows), batch)]
        pred = net(student_input(images[sel], 1))
        loss = F.mse_loss(pred, torch.from_numpy(target[sel].astype(np.float32)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 200 == 0 or step == steps - 1:
            v = val_mse()
            log_rows.append({"step": step, "train_mse": float(np.mean(losses[-200:])), "val_mse": v,
                             "seconds": time.time() - t0})
            log.info("distill step %d/%d mse %.4f val %.4f (%.0fs)", step, steps, np.mean(losses[-200:]), v,
                     time.time() - t0)
            save_student(net, out, step)
    save_student(net, out, steps)
    save_json(out / "distill.json", {
        "size": size, "config": net.config, "steps": steps, "batch": batch, "lr": lr, "seed": seed,
        "frames": len(rows), "validation_frames": len(vrows), "macs": macs(net, 1),
        "device": device_name(torch.device("cpu")), "seconds": time.time() - t0, "log": log_rows,
    })


def finetune(src: Path, out: Path, k: int, seed: int, steps: int, batch: int, lr: float, distill_weight: float,
             aug: int, arch: str = "context") -> None:
    """SAM-Mix's presence/CAM head trained together with the student (the encoder the teacher could not train
    on this CPU): the head's losses of ``medsam_train.train_head`` (presence on every training frame's image
    label, every cell of an absent frame background, BCE + Dice on the K masks and their augmented copies),
    plus ``distill_weight`` × the MSE to the teacher on the image-label frames, so the embeddings stay ones
    the decoder reads. Writes the student (``student.pt``) and the head (``medsam_sammix.pt``, for
    ``medsam_train --head-from``)."""
    from .common import ultrasound_set
    from .medsam_data import augment_labeled, labeled_indices, validation_indices
    from .medsam_train import CamHead, dense_target

    rng = seed_everything(seed)
    pool = ultrasound_set("pool")
    target, idx = teacher_targets("pool")
    val = set(int(i) for i in validation_indices(pool["present"]))
    rows = np.array([r for r, i in enumerate(idx) if int(i) not in val])
    target = np.asarray(target)
    images, present = pool["images"][idx], pool["present"][idx].astype(np.float32)
    lab = labeled_indices(pool["present"], k, seed)
    m_img, m_mask = pool["images"][lab], pool["masks"][lab]
    if aug:
        a_img, a_mask = augment_labeled(m_img, m_mask, lab, aug)
        m_img, m_mask = np.concatenate([m_img, a_img]), np.concatenate([m_mask, a_mask])
    m_target = torch.from_numpy(dense_target(m_mask, STUDENT_E))
    log.info("fine-tuning on %d image-label frames and %d masks (K = %d, %d copies each)", len(rows), len(m_img),
             k, aug)
    net = load_student(src).train()
    head = CamHead("pixel", arch=arch).train()
    opt = torch.optim.AdamW([{"params": net.parameters(), "lr": lr}, {"params": head.parameters(), "lr": 1e-3}],
                            weight_decay=0.01)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    labels = torch.from_numpy(present)
    t0, log_rows, losses = time.time(), [], []
    for step in range(steps):
        set_lr(opt, cosine_lr(step, steps, 1.0, warmup=50))
        sel = rows[rng.integers(0, len(rows), batch)]
        emb = net(student_input(images[sel], 1))
        f = head.features(emb)
        loss_d = F.mse_loss(emb, torch.from_numpy(target[sel].astype(np.float32)))
        loss = distill_weight * loss_d + F.binary_cross_entropy_with_logits(head.presence_logit(f)[:, 0], labels[sel])
        neg = labels[sel] == 0
        if neg.any():
            px_neg = head.pixel_logits(f[neg])
            loss = loss + F.binary_cross_entropy_with_logits(px_neg, torch.zeros_like(px_neg))
        msel = rng.integers(0, len(m_img), max(8, batch // 2))
        px = head.pixel_logits(head.features(net(student_input(m_img[msel], 1))))
        t, p = m_target[msel], torch.sigmoid(px)
        dice = 1 - (2 * (p * t).sum((1, 2, 3)) + 1) / (p.sum((1, 2, 3)) + t.sum((1, 2, 3)) + 1)
        loss = loss + F.binary_cross_entropy_with_logits(px, t) + dice.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append((loss.item(), loss_d.item()))
        if step % 100 == 0 or step == steps - 1:
            tot, dist = np.mean(losses[-100:], axis=0)
            log_rows.append({"step": step, "loss": float(tot), "distill_mse": float(dist), "seconds": time.time() - t0})
            log.info("fine-tune step %d/%d loss %.4f distill mse %.4f (%.0fs)", step, steps, tot, dist, time.time() - t0)
    out.mkdir(parents=True, exist_ok=True)
    save_student(net.eval(), out, steps)
    torch.save({"head": head.eval().state_dict(), "cam": "pixel", "arch": arch}, out / "medsam_sammix.pt")
    save_json(out / "finetune.json", {
        "from": src.name, "k": k, "seed": seed, "steps": steps, "batch": batch, "lr": lr,
        "distill_weight": distill_weight, "aug": aug, "arch": arch, "labeled_pool_indices": [int(i) for i in lab],
        "image_label_frames": len(rows), "device": device_name(torch.device("cpu")), "seconds": time.time() - t0,
        "log": log_rows,
    })


def save_student(net: Student, out: Path, step: int) -> None:
    """``student.pt``: the config and the weights in float16 (1.8 MB for size ``s``), the form that is
    committed and that every later stage reads (the embedding caches are named by its digest)."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save({"config": net.config, "state": state, "step": step}, out / "student.pt")


def load_student(run: Path) -> Student:
    ck = torch.load(run / "student.pt", map_location="cpu", weights_only=False)
    net = Student(**ck["config"])
    net.load_state_dict({k: v.float() for k, v in ck["state"].items()})
    return net.eval()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", action="store_true", help="export each size and time it in onnxruntime (one thread)")
    ap.add_argument("--distill", action="store_true")
    ap.add_argument("--size", default="s", choices=sorted(SIZES))
    ap.add_argument("--steps", type=int, default=None, help="default 6000 (--distill), 800 (--finetune)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=None, help="default 2e-3 (--distill), 3e-4 (--finetune)")
    ap.add_argument("--finetune", default=None, metavar="STUDENT_RUN",
                    help="train this distilled student together with SAM-Mix's head on K masks (--k, --seed)")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--aug", type=int, default=4)
    ap.add_argument("--distill-weight", type=float, default=50.0,
                    help="weight of the MSE to the teacher while fine-tuning (the MSE is ~0.002 once distilled)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    setup_logging()
    if args.time:
        rows = {}
        for size in SIZES:
            net = build(size)
            p = RUNS_DIR / "student-timing" / f"{size}.onnx"
            export_onnx(net, p)
            rows[size] = {"macs": macs(net, 1), "params": sum(q.numel() for q in net.parameters()),
                          "ort_ms": time_ort(p, 1)}
            log.info("%s: %.2f GMAC, %.2f M parameters, %.1f ms (onnxruntime, one thread)", size,
                     rows[size]["macs"] / 1e9, rows[size]["params"] / 1e6, rows[size]["ort_ms"])
        print(json.dumps(rows, indent=1))
    if args.distill:
        distill(args.size, args.steps or 6000, args.batch, args.lr or 2e-3,
                Path(args.out or RUNS_DIR / f"student-{args.size}"))
    if args.finetune:
        src = Path(args.finetune)
        finetune(src, Path(args.out or RUNS_DIR / f"{src.name}-ft-k{args.k}-s{args.seed}"), args.k, args.seed,
                 args.steps or 800, args.batch, args.lr or 3e-4, args.distill_weight, args.aug)


if __name__ == "__main__":
    main()
