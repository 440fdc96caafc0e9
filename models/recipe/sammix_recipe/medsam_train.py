"""SAM-Mix on LiteMedSAM: a presence/CAM head on the foundation's embeddings and the decoder, from K masks.

Both train on cached embeddings of the frozen encoder (``python -m
sammix_recipe.medsam --embed``), so a run fits this 2-core CPU:

1. **Head** (:class:`CamHead`): two convolutions on the 256×64×64 embeddings;
   a 1×1 convolution of them gives the CAM at 64×64 (4 input pixels a cell),
   trained on the K masks (BCE + Dice on the mask area-averaged to 64×64);
   the presence logit is a learned affine map of the CAM's largest logit,
   trained with BCE on every embedded training frame's image label (GAP +
   linear under focal loss had collapsed to "always present"). The graph's
   ``cam`` is the sigmoid, so the prompt rule's ``cam_threshold × max`` is a
   probability threshold when the target is clearly there. ``--cam gap``
   trains the classic CAM instead (image labels only, GAP + linear presence,
   ``ReLU(Σ w_k A_k)``), for the model card's row without mask supervision.
2. **Decoder** (prompt encoder + mask decoder): fine-tuned on the K frames with
   the head's CAM prompts (box + dense, the rule the runtime replays) half the
   time, and boxes of the ground-truth lesions jittered by ±``--jitter`` px with
   the CAM's dense prompt the other half; SAM's loss (focal + Dice, the best of
   the three masks, IoU head regression).

    python -m sammix_recipe.medsam_train --k 50 --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from .common import RUNS_DIR, cosine_lr, device_name, log, save_json, seed_everything, set_lr, setup_logging
from .encoders import TEACHER, Encoder
from .medsam import INPUT_SIZE
from .medsam_data import AUG_VERSION, DOMAINS, Domain, augment_labeled, labeled_indices
from .model import DecoderHead
from .prompt import EIGHT_CONNECTED, PromptParams, cam_to_prompt
from .segment import seg_loss

HIDDEN = 64


class CamHead(nn.Module):
    """Presence logit and CAM from the image embeddings: ``(logits (B,1), cam (B,1,E,E))``.

    ``arch="small"``: two convolutions at 64×64 (a 3×3 cell field, 12 input pixels).
    ``arch="context"``: the same start, then a branch at 32×32 with dilated convolutions
    (a field of ~60 cells, most of the frame) added back at 64×64: a lesion is told from a
    vessel or a shadow by what lies around it, not only by its own texture.
    """

    def __init__(self, cam: str = "pixel", hidden: int = HIDDEN, arch: str = "small"):
        super().__init__()
        if cam not in ("pixel", "gap"):
            raise ValueError(f"cam must be 'pixel' or 'gap', not {cam!r}")
        if arch not in ("small", "context"):
            raise ValueError(f"arch must be 'small' or 'context', not {arch!r}")
        self.kind = cam
        self.arch = arch
        self.reduce = nn.Conv2d(256, hidden, 1)
        self.conv = nn.Conv2d(hidden, hidden, 3, padding=1)
        if arch == "context":
            wide = hidden + hidden // 2
            self.down = nn.Conv2d(hidden, wide, 3, stride=2, padding=1)
            self.ctx = nn.ModuleList([nn.Conv2d(wide, wide, 3, padding=d, dilation=d) for d in (2, 4, 8)])
            self.up = nn.Conv2d(wide, hidden, 1)
            self.fuse = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.fc = nn.Linear(hidden, 1)
        self.pixel = nn.Conv2d(hidden, 1, 1)
        # presence of the "pixel" head: a learned affine map of the CAM's largest pixel logit
        self.presence = nn.Parameter(torch.tensor([1.0, 0.0]))

    def features(self, emb: torch.Tensor) -> torch.Tensor:
        f = F.relu(self.conv(F.relu(self.reduce(emb))))
        if self.arch == "small":
            return f
        g = F.relu(self.down(f))
        for c in self.ctx:
            g = F.relu(g + c(g))
        g = F.interpolate(self.up(g), scale_factor=2.0, mode="nearest")
        return F.relu(self.fuse(F.relu(f + g)))

    def pixel_logits(self, f: torch.Tensor) -> torch.Tensor:
        return self.pixel(f)

    def presence_logit(self, f: torch.Tensor) -> torch.Tensor:
        """(B,1): GAP + linear for the classic CAM; for the pixel head a·max(pixel logits) + b."""
        if self.kind == "pixel":
            peak = self.pixel(f).amax(dim=(2, 3))
            return self.presence[0] * peak + self.presence[1]
        return self.fc(f.mean(dim=(2, 3)))

    def forward(self, emb: torch.Tensor):
        f = self.features(emb)
        logits = self.presence_logit(f)
        if self.kind == "pixel":
            cam = torch.sigmoid(self.pixel(f))
        else:
            cam = F.relu(F.conv2d(f, self.fc.weight[:, :, None, None]))
        return logits, cam


def dense_target(masks: np.ndarray, e: int) -> np.ndarray:
    """(N,S,S) masks → (N,1,E,E) area fractions."""
    n, s, _ = masks.shape
    k = s // e
    return masks.astype(np.float32).reshape(n, e, k, e, k).mean(axis=(2, 4))[:, None]


def train_head(
    emb: np.ndarray, present: np.ndarray, mask_rows: np.ndarray, masks: np.ndarray, cam: str, steps: int,
    batch: int, rng: np.random.Generator, lr: float = 1e-3, negative_pixels: bool = True, arch: str = "small",
) -> CamHead:
    """``emb`` (N,256,E,E) f16 with image labels ``present``; ``masks`` for the rows ``mask_rows``."""
    head = CamHead(cam, arch=arch)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    target = torch.from_numpy(dense_target(masks, emb.shape[-1]))
    labels = torch.from_numpy(present.astype(np.float32))
    t0 = time.time()
    for step in range(steps):
        set_lr(opt, cosine_lr(step, steps, 1.0))
        sel = rng.integers(0, len(emb), batch)
        x = torch.from_numpy(emb[sel].astype(np.float32))
        f = head.features(x)
        logits = head.presence_logit(f)[:, 0]
        loss = F.binary_cross_entropy_with_logits(logits, labels[sel])
        neg = labels[sel] == 0
        if cam == "pixel" and negative_pixels and neg.any():
            # an image label "absent" is a full mask too: every cell of a negative frame is background
            px_neg = head.pixel_logits(f[neg])
            loss = loss + F.binary_cross_entropy_with_logits(px_neg, torch.zeros_like(px_neg))
        if cam == "pixel" and len(mask_rows):
            msel = rng.integers(0, len(mask_rows), max(8, batch // 4))
            px = head.pixel_logits(head.features(torch.from_numpy(emb[mask_rows[msel]].astype(np.float32))))
            t = target[msel]
            p = torch.sigmoid(px)
            dice = 1 - (2 * (p * t).sum((1, 2, 3)) + 1) / (p.sum((1, 2, 3)) + t.sum((1, 2, 3)) + 1)
            loss = loss + F.binary_cross_entropy_with_logits(px, t) + dice.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log.info("head step %d/%d loss %.4f (%.0fs)", step, steps, loss.item(), time.time() - t0)
    return head.eval()


BOX_LABELS = torch.tensor([[2.0, 3.0]])


def call_decoder(dec: DecoderHead, emb: torch.Tensor, boxes: np.ndarray, dense: np.ndarray):
    """One box call per row: emb (B,256,E,E), boxes (B,4), dense (B,4E,4E) → chosen low-res (B,4E,4E), iou (B,)."""
    b = emb.shape[0]
    low, iou = dec(
        emb,
        torch.from_numpy(boxes.reshape(b, 2, 2).astype(np.float32)),
        BOX_LABELS.expand(b, 2),
        torch.from_numpy(dense.astype(np.float32))[:, None],
        torch.ones(b),
    )
    best = iou[:, 1:4].argmax(dim=1) + 1
    r = torch.arange(b)
    return low[r, best], iou[r, best]


def gt_boxes(mask: np.ndarray) -> list[np.ndarray]:
    """Inclusive bounds of each 8-connected ground-truth lesion, largest first."""
    labels, n = ndimage.label(mask > 0, structure=EIGHT_CONNECTED)
    out = []
    for sl in ndimage.find_objects(labels):
        ys, xs = sl
        out.append(np.array([xs.start, ys.start, xs.stop - 1, ys.stop - 1], np.float32))
    out.sort(key=lambda b: -(b[2] - b[0] + 1) * (b[3] - b[1] + 1))
    return out


def train_decoder(
    dec: DecoderHead, emb: np.ndarray, masks: np.ndarray, cams: np.ndarray, params: PromptParams, steps: int,
    batch: int, jitter: float, rng: np.random.Generator, lr: float = 1e-4,
) -> list[float]:
    """Fine-tune on the K frames: CAM prompts half the time, jittered ground-truth boxes the other half."""
    e = emb.shape[-1]
    prompts = [cam_to_prompt(c, INPUT_SIZE, e, params) for c in cams]
    boxes_gt = [gt_boxes(m) for m in masks]
    params_t = [p for p in dec.parameters()]
    opt = torch.optim.AdamW(params_t, lr=lr, weight_decay=0.01)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    gts = torch.from_numpy(masks.astype(np.uint8))
    losses, t0 = [], time.time()
    dec.train()
    for step in range(steps):
        set_lr(opt, cosine_lr(step, steps, 1.0, warmup=20))
        sel = rng.integers(0, len(emb), batch)
        boxes = np.zeros((batch, 4), np.float32)
        dense = np.full((batch, 4 * e, 4 * e), -params.dense_logit, np.float32)
        for j, i in enumerate(sel):
            pr = prompts[i]
            if pr is not None:
                dense[j] = pr.dense
            if pr is not None and rng.random() < 0.5:
                boxes[j] = pr.box
            else:
                b = boxes_gt[i][rng.integers(0, len(boxes_gt[i]))] if rng.random() < 0.3 else boxes_gt[i][0]
                boxes[j] = np.clip(b + rng.uniform(-jitter, jitter, 4), 0, INPUT_SIZE - 1)
        x = torch.from_numpy(emb[sel].astype(np.float32))
        low, iou = dec(
            x,
            torch.from_numpy(boxes.reshape(batch, 2, 2)),
            BOX_LABELS.expand(batch, 2),
            torch.from_numpy(dense)[:, None],
            torch.ones(batch),
        )
        loss = seg_loss(low, iou, gts[sel])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 25 == 0 or step == steps - 1:
            log.info("decoder step %d/%d loss %.4f (%.0fs)", step, steps, np.mean(losses[-25:]), time.time() - t0)
    dec.eval()
    return losses


def pseudo_masks(head: nn.Module, dec: DecoderHead, params: PromptParams, emb: np.ndarray, rows: np.ndarray,
                 min_iou: float):
    """A trained head and decoder's masks for frames whose image label says "present":
    ``(kept rows, masks (N,S,S), scores)``.

    The runtime's path (CAM → boxes + dense prompt → a decoder call per box) with the gate held open (the
    image label already says the target is there); a frame is kept when it has a mask and every decoder
    call on it predicts an IoU of at least ``min_iou`` (``medsam_eval --pseudo-quality`` measures that on
    validation). ``scores`` is each frame's lowest predicted IoU (NaN: no box)."""
    from .medsam_eval import head_outputs, segment

    _, cams = head_outputs(head, emb, rows)
    scores = np.empty(len(rows))
    masks = segment(dec, emb, rows, np.ones(len(rows), np.float32), cams, params, 0.5, scores=scores)
    keep = (np.nan_to_num(scores, nan=-1.0) >= min_iou) & masks.reshape(len(rows), -1).any(1)
    return rows[keep], masks[keep], scores


def pseudo_labels(run: Path, emb: np.ndarray, rows: np.ndarray, min_iou: float):
    """:func:`pseudo_masks` of a trained run (its head, decoder and chosen prompt rule)."""
    import json

    from .medsam_eval import load_run

    head, dec = load_run(run)
    chosen = json.loads((run / "chosen.json").read_text())
    return pseudo_masks(head, dec, PromptParams(**chosen["prompt"]), emb, rows, min_iou)


def load_split(domain: Domain, split: str, encoder: Encoder):
    """Cached embeddings of a set with its images, masks and labels, in the cache's row order."""
    emb, idx = encoder.embeddings(domain, split)
    data = domain.frames(split)
    return emb, idx, data["masks"][idx], data["present"][idx]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="us", choices=sorted(DOMAINS),
                    help="us: procedural ultrasound (gray); endo: procedural colonoscopy (RGB)")
    ap.add_argument("--encoder", default=TEACHER,
                    help="litemedsam (E = 64), or student:NAME for the distilled student runs/NAME (E = 32)")
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cam", default="pixel", choices=["pixel", "gap"])
    ap.add_argument("--head-arch", default="small", choices=["small", "context"],
                    help="the head's convolutions: 'small' (a 3×3 field) or 'context' (+ a dilated 32×32 branch)")
    ap.add_argument("--head-steps", type=int, default=800)
    ap.add_argument("--head-batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=300, help="decoder steps (0: the foundation's decoder, SAM-PP)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--jitter", type=float, default=6.0)
    ap.add_argument("--decoder-from", default=None,
                    help="start the decoder from this run's (with --steps 0: keep it, train only the head)")
    ap.add_argument("--head-from", default=None,
                    help="take this run's presence/CAM head (and its arch) instead of training one")
    ap.add_argument("--no-negative-pixels", action="store_true",
                    help="the head's CAM learns from the K masks only, not also from the frames labelled absent")
    ap.add_argument("--aug", type=int, default=4,
                    help="augmented copies of each labelled frame (flip, zoom, gamma; embedded once and cached)")
    ap.add_argument("--pseudo-from", default=None,
                    help="self-training: this run's masks on the training frames labelled present (but not among "
                         "the K) also teach the head's CAM")
    ap.add_argument("--pseudo-min-iou", type=float, default=0.85,
                    help="keep a pseudo-mask when the decoder predicts at least this IoU (chosen on validation)")
    ap.add_argument("--pool", type=int, default=700,
                    help="the first N embedded pool frames give image labels (validation split included): the "
                         "cache may hold more (medsam --embed --pool)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    setup_logging()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = seed_everything(args.seed)
    domain = DOMAINS[args.data]
    encoder = Encoder(args.encoder)
    student = f"{encoder.student_run.name}-" if encoder.is_student else ""
    out = Path(args.out or RUNS_DIR / f"{domain.prefix}{student}medsam-k{args.k}-s{args.seed}"
                                      f"{'' if args.cam == 'pixel' else '-gap'}")
    emb, idx, masks, present = load_split(domain, "pool", encoder)
    if len(idx) < args.pool:
        raise RuntimeError(f"--pool {args.pool}: only {len(idx)} pool frames embedded; run medsam --embed --pool "
                           f"{args.pool} --sets {domain.cache('pool')}")
    emb, idx, masks, present = emb[: args.pool], idx[: args.pool], masks[: args.pool], present[: args.pool]
    pool = domain.frames("pool")
    val = set(int(i) for i in domain.validation_pool(pool["present"]))
    lab = [int(i) for i in labeled_indices(pool["present"], args.k, args.seed)]
    row = {int(i): r for r, i in enumerate(idx)}
    missing = [i for i in lab if i not in row]
    if missing:
        raise RuntimeError(f"{len(missing)} labelled frames have no cached embedding yet: run medsam --embed")
    train_rows = np.array([r for r, i in enumerate(idx) if int(i) not in val])
    mask_rows_all = np.array([row[i] for i in lab])
    log.info("pool: %d embedded frames for image labels (validation %d held out), K = %d masks",
             len(train_rows), len(val), len(lab))
    t0 = time.time()
    emb_k = np.ascontiguousarray(emb[mask_rows_all])
    masks_k = masks[mask_rows_all]
    if args.aug:
        aug_img, aug_masks = augment_labeled(pool["images"][lab], pool["masks"][lab], np.array(lab), args.aug)
        emb_aug = encoder.embed(f"{domain.prefix}aug{args.aug}v{AUG_VERSION}_k{args.k}_s{args.seed}", aug_img)
        emb_k = np.concatenate([emb_k, emb_aug])
        masks_k = np.concatenate([masks_k, aug_masks])
        log.info("%d augmented copies of the %d labelled frames", len(emb_aug), len(lab))
    # the head sees every training frame's image label; the labelled frames (and their copies) also as masks
    emb_train = np.concatenate([emb[train_rows], emb_k[len(lab):]])
    present_train = np.concatenate([present[train_rows], np.ones(len(emb_k) - len(lab), present.dtype)])
    pos_in_train = {r: j for j, r in enumerate(train_rows)}
    mask_rows = np.array([pos_in_train[r] for r in mask_rows_all]
                         + list(range(len(train_rows), len(emb_train))))
    head_mask_rows, head_masks = mask_rows, masks_k
    pseudo_kept = 0
    if args.pseudo_from and not args.head_from:
        labelled = set(int(r) for r in mask_rows_all)
        cand = np.array([r for r in train_rows if present[r] and int(r) not in labelled])
        kept, pmasks, scores = pseudo_labels(Path(args.pseudo_from), emb, cand, args.pseudo_min_iou)
        pseudo_kept = len(kept)
        head_mask_rows = np.concatenate([mask_rows, [pos_in_train[r] for r in kept]]).astype(np.int64)
        head_masks = np.concatenate([masks_k, pmasks])
        log.info("pseudo-masks from %s: %d of %d present, unlabelled frames kept (predicted IoU >= %.2f; "
                 "median score %.3f)", args.pseudo_from, len(kept), len(cand), args.pseudo_min_iou,
                 float(np.nanmedian(scores)))
    if args.head_from:
        hk = torch.load(Path(args.head_from) / "medsam_sammix.pt", map_location="cpu", weights_only=False)
        args.cam, args.head_arch, args.head_steps = hk["cam"], hk.get("arch", "small"), 0
        head = CamHead(args.cam, arch=args.head_arch)
        head.load_state_dict(hk["head"])
        head.eval()
        log.info("head from %s (%s, %s)", args.head_from, args.cam, args.head_arch)
    else:
        head = train_head(emb_train, present_train, head_mask_rows, head_masks, args.cam,
                          args.head_steps, args.head_batch, rng, negative_pixels=not args.no_negative_pixels,
                          arch=args.head_arch)
    del emb_train
    head_s = time.time() - t0
    dec = encoder.decoder()
    if args.decoder_from:
        ck = torch.load(Path(args.decoder_from) / "medsam_sammix.pt", map_location="cpu", weights_only=False)
        dec.load_state_dict({k: v.float() for k, v in ck["decoder"].items()})
    params = PromptParams()
    with torch.no_grad():
        cams = np.concatenate([head(torch.from_numpy(emb_k[i : i + 32].astype(np.float32)))[1].numpy()
                               for i in range(0, len(emb_k), 32)])
    losses = []
    if args.steps:
        losses = train_decoder(dec, emb_k, masks_k, cams, params, args.steps, args.batch, args.jitter, rng)
    out.mkdir(parents=True, exist_ok=True)
    state = {"head": head.state_dict(), "cam": args.cam, "arch": args.head_arch}
    if args.head_from:
        # the head is the other run's, unchanged: name it (a sibling folder) instead of copying it
        state = {"head_run": Path(args.head_from).name, "cam": args.cam, "arch": args.head_arch}
    if args.decoder_from and not args.steps:
        # the decoder is the other run's, unchanged: name it (a sibling folder) instead of copying 8 MB
        state["decoder_run"] = Path(args.decoder_from).name
    else:
        state["decoder"] = {k: v.half() for k, v in dec.state_dict().items()}
    torch.save(state, out / "medsam_sammix.pt")
    save_json(out / "train.json", {
        "data": domain.name, "encoder": encoder.spec, "k": args.k, "seed": args.seed, "cam": args.cam, "head_arch": args.head_arch, "head_steps": args.head_steps,
        "head_batch": args.head_batch, "steps": args.steps, "batch": args.batch, "jitter": args.jitter,
        "device": device_name(torch.device("cpu")), "head_seconds": head_s, "seconds": time.time() - t0,
        "image_label_frames": len(train_rows), "pool": args.pool, "labeled_pool_indices": lab,
        "final_loss": float(np.mean(losses[-25:])) if losses else None, "decoder_from": args.decoder_from,
        "negative_pixels": not args.no_negative_pixels, "aug": args.aug, "aug_version": AUG_VERSION,
        "head_from": args.head_from, "pseudo_from": args.pseudo_from,
        "pseudo_min_iou": args.pseudo_min_iou if args.pseudo_from else None, "pseudo_masks": pseudo_kept,
    })
    log.info("saved %s (%.0f s)", out / "medsam_sammix.pt", time.time() - t0)


if __name__ == "__main__":
    main()
