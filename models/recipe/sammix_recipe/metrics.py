"""Segmentation metrics with the conventions the runtime's ``sammix eval`` uses.

- Dice and IoU of an empty prediction on an empty ground truth are 1; a
  non-empty prediction on an empty ground truth scores 0.
- HD95 (95th percentile of the symmetric surface distances, in pixels) is
  defined only where both masks are non-empty; means skip the other frames.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    p, g = pred.astype(bool), gt.astype(bool)
    denom = p.sum() + g.sum()
    if denom == 0:
        return 1.0
    return float(2.0 * np.logical_and(p, g).sum() / denom)


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    p, g = pred.astype(bool), gt.astype(bool)
    union = np.logical_or(p, g).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(p, g).sum() / union)


def _surface(m: np.ndarray) -> np.ndarray:
    return m & ~ndimage.binary_erosion(m, structure=np.ones((3, 3), bool), border_value=0)


def hd95(pred: np.ndarray, gt: np.ndarray) -> float | None:
    """95th percentile Hausdorff distance in pixels; ``None`` unless both are non-empty."""
    p, g = pred.astype(bool), gt.astype(bool)
    if not p.any() or not g.any():
        return None
    sp, sg = _surface(p), _surface(g)
    dist_to_g = ndimage.distance_transform_edt(~sg)
    dist_to_p = ndimage.distance_transform_edt(~sp)
    d = np.concatenate([dist_to_g[sp], dist_to_p[sg]])
    return float(np.percentile(d, 95))


def summarize(preds: np.ndarray, gts: np.ndarray, present_pred: np.ndarray | None = None) -> dict:
    """Per-frame and mean metrics over a set; ``gts`` (N,H,W) decides which frames are positive."""
    d = np.array([dice(p, g) for p, g in zip(preds, gts)])
    j = np.array([iou(p, g) for p, g in zip(preds, gts)])
    h = [hd95(p, g) for p, g in zip(preds, gts)]
    pos = gts.reshape(len(gts), -1).any(axis=1)
    hv = np.array([x for x in h if x is not None])
    out = {
        "frames": int(len(gts)),
        "positive_frames": int(pos.sum()),
        "dice_all": float(d.mean()),
        "dice_positive": float(d[pos].mean()) if pos.any() else None,
        "iou_all": float(j.mean()),
        "iou_positive": float(j[pos].mean()) if pos.any() else None,
        "hd95_px": float(hv.mean()) if len(hv) else None,
        "hd95_frames": int(len(hv)),
    }
    if present_pred is not None:
        out["presence_accuracy"] = float((present_pred.astype(bool) == pos).mean())
    return out
