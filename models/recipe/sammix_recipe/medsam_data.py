"""Which pool frames a run may see: K labelled masks, a validation split, image labels."""

from __future__ import annotations

import numpy as np

VALIDATION_SIZE = 100  # pool frames (with masks) used only to choose thresholds and levers


def labeled_indices(present: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The K pool frames whose masks a run may see (positives only).

    The same draw as the tiny recipe's ``train_sammix.labeled_indices``, so a
    K = 5 or 50 run's frames are a prefix of its K = 100 run's.
    """
    rng = np.random.default_rng(10_000 + seed)
    return rng.permutation(np.nonzero(present)[0])[:k]


def validation_indices(present: np.ndarray) -> np.ndarray:
    """A fixed validation split of the pool, disjoint from every K = 100 draw of seeds 0-2."""
    taken = set()
    for s in range(3):
        taken.update(int(i) for i in labeled_indices(present, 100, s))
    rng = np.random.default_rng(30_000)
    order = [int(i) for i in rng.permutation(len(present)) if int(i) not in taken]
    return np.array(order[:VALIDATION_SIZE], dtype=np.int64)


AUG_SEED = 40_000
AUG_VERSION = 1  # part of the augmented embeddings' cache name: bump it when augment_labeled changes


def augment_labeled(images: np.ndarray, masks: np.ndarray, frames: np.ndarray, copies: int):
    """``copies`` augmented versions of each labelled frame, (N·copies,S,S) images and masks, frame by frame.

    Each copy: a horizontal flip every other copy, a zoom of 1-1.3× onto a random crop that keeps the whole
    lesion (bilinear for the image, nearest for the mask), then a gamma of 0.6-1.6 and a gain of 0.75-1.25
    on the intensities (all three channels alike for an RGB frame). The generator is seeded by the pool index, so a frame gets the same copies in every
    run it is labelled in (a K = 5/50 run's copies are a prefix of its K = 100 run's).
    """
    import torch
    import torch.nn.functional as F

    s = images.shape[1]  # (N,S,S) gray or (N,S,S,3) RGB
    out_i, out_m = [], []
    for img, m, f in zip(images, masks, frames):
        rng = np.random.default_rng(AUG_SEED + int(f))
        ys, xs = np.nonzero(m)
        for c in range(copies):
            a, b = img.astype(np.float32), m.astype(np.float32)
            if c % 2 == 0:
                a, b = a[:, ::-1], b[:, ::-1]
                lx0, lx1 = s - 1 - xs.max(), s - 1 - xs.min()
            else:
                lx0, lx1 = xs.min(), xs.max()
            side = int(round(s / rng.uniform(1.0, 1.3)))
            side = max(side, int(lx1 - lx0 + 1), int(ys.max() - ys.min() + 1))
            x0 = int(rng.integers(max(0, lx1 - side + 1), min(lx0, s - side) + 1))
            y0 = int(rng.integers(max(0, ys.max() - side + 1), min(ys.min(), s - side) + 1))
            # (1,C,side,side): a gray plane or the RGB channels, zoomed alike
            crop = lambda t: torch.from_numpy(np.ascontiguousarray(
                np.atleast_3d(t[y0 : y0 + side, x0 : x0 + side]).transpose(2, 0, 1)))[None]
            a = F.interpolate(crop(a), size=(s, s), mode="bilinear", align_corners=False)[0].numpy().transpose(1, 2, 0)
            a = a[..., 0] if img.ndim == 2 else a
            b = F.interpolate(crop(b), size=(s, s), mode="nearest")[0, 0].numpy()
            g, gain = rng.uniform(0.6, 1.6), rng.uniform(0.75, 1.25)
            a = np.clip(255.0 * (np.clip(a, 0, 255) / 255.0) ** g * gain, 0, 255)
            out_i.append(np.round(a).astype(np.uint8))
            out_m.append((b > 0.5).astype(np.uint8))
    return np.stack(out_i), np.stack(out_m)


class Domain:
    """Which generated frames a run learns from and is measured on.

    ``us``: procedural B-mode ultrasound (gray); its validation split is taken from the pool
    (:func:`validation_indices`). ``endo``: procedural colonoscopy (RGB, ``data/endoscopy.py``), which has
    a validation set of its own (other seeds), so every embedded pool frame is a training frame.
    A run names its domain in ``train.json`` (``data``); evaluation and bundling read it from there.
    """

    def __init__(self, name: str, prefix: str, bundle: str, own_validation: bool, what: str):
        self.name, self.prefix, self.bundle, self.own_validation, self.what = name, prefix, bundle, own_validation, what

    def cache(self, split: str) -> str:
        """The embedding cache's name of ``split`` (``pool``, ``test``, ``validation``)."""
        return self.prefix + split

    def frames(self, split: str) -> dict[str, np.ndarray]:
        from .medsam import frame_set

        return frame_set(self.cache(split))

    def validation_pool(self, present: np.ndarray) -> np.ndarray:
        """Pool indices held out for validation (none when the domain has a validation set of its own)."""
        return np.zeros(0, np.int64) if self.own_validation else validation_indices(present)

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        """The validation frames' (images, masks): the domain's own set, or the pool's split."""
        if self.own_validation:
            v = self.frames("validation")
            return v["images"], v["masks"]
        pool = self.frames("pool")
        idx = validation_indices(pool["present"])
        return pool["images"][idx], pool["masks"][idx]

    @property
    def clip_seed(self) -> int:
        """The seed of the demo clip's phantom or colon."""
        if self.name == "endo":
            from .data.endoscopy import CLIP_SEED as ENDO_CLIP_SEED

            return ENDO_CLIP_SEED
        from .common import CLIP_SEED

        return CLIP_SEED

    def clip(self, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """The demo clip's frames and 0/1 masks (a sequence never trained or chosen on)."""
        if self.name == "endo":
            from .data.endoscopy_clip import generate_clip
        else:
            from .data.clip import generate_clip
        frames, masks = generate_clip(self.clip_seed, n_frames=n_frames, size=(256, 256))
        return frames, (masks > 0).astype(np.uint8)


DOMAINS = {
    "us": Domain("us", "", "sammix-us-medsam", False, "procedural B-mode ultrasound"),
    "endo": Domain("endo", "endo-", "sammix-endo-medsam", True, "procedural colonoscopy (RGB)"),
}


def run_domain(run) -> Domain:
    """The domain a trained run names in its ``train.json`` (runs older than the field: ``us``)."""
    import json
    from pathlib import Path

    p = Path(run) / "train.json"
    name = json.loads(p.read_text()).get("data", "us") if p.exists() else "us"
    return DOMAINS[name]
