"""CAM → prompt: the task-guidance rule shared by training, export and the Rust runtime.

The rule (the bundle manifest records its parameters under ``[prompt]``):

1. ``cam`` (h×w, the target class) → ReLU. If its maximum is <= 0: no prompt.
2. Bilinear upsample (align_corners = False, PyTorch's half-pixel rule with
   source coordinates clamped at 0) to the encoder input size S×S.
3. Threshold: ``up >= cam_threshold * max(up)`` → binary mask (max over the
   upsampled map).
4. 8-connected components, labelled in raster order of their first pixel.
   Components smaller than ``min_component_px`` are dropped. None left: no
   prompt. The largest kept component (ties: the one met first in raster
   order) gives the box.
5. Box = the largest component's inclusive pixel bounds (x0, y0, x1, y1),
   grown by ``box_margin * S`` on each side and clamped to [0, S-1]. Its
   corners go to the decoder as points with labels 2 and 3.
6. Dense prompt = the mask of all kept components, area-averaged to 4E×4E
   (S / 4E pixel blocks), mapped to logits ``s * (2 f - 1)``: +s fully inside,
   -s fully outside, linear in between (``s = dense_logit``).

Step 6 uses every kept component, not only the largest: with several lesions
in view the box points at the largest and the dense prompt still shows the
others to the decoder.

Two later parts (``[prompt] max_boxes`` and ``refine_rounds``; 1 and 0 keep
the rule above exactly):

7. With ``max_boxes`` > 1, one box per kept component, largest first (ties:
   the first in raster order), at most ``max_boxes``, each grown and clamped
   as in step 5 (:func:`component_boxes`). Each box is a decoder call with the
   same dense prompt; the frame's mask is the element-wise maximum of the
   calls' chosen low-resolution logits, resized once.
8. Refinement, ``refine_rounds`` times per box: the chosen low-resolution
   logits L (n×n) → ``L > mask_threshold`` → its inclusive bounds, scaled by
   S / n to input pixels (``x1 = (xmax + 1) * S / n - 1``), grown and clamped
   as in step 5 (:func:`box_from_low_res`); a second decoder call on the same
   embeddings with that box and ``mask_input = L``. An empty mask stops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class PromptParams:
    """Parameters of the rule; serialised into ``sammix.toml`` under ``[prompt]``."""

    cam_threshold: float = 0.4
    min_component_px: int = 48
    box_margin: float = 0.03
    dense_logit: float = 8.0
    max_boxes: int = 1
    refine_rounds: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Prompt:
    box: np.ndarray  # (4,) float32: x0, y0, x1, y1 in input pixels
    mask: np.ndarray  # (S, S) uint8: kept components of the thresholded CAM
    dense: np.ndarray  # (4E, 4E) float32 logits for the decoder's mask_input


def upsample_bilinear(x: np.ndarray, size: int) -> np.ndarray:
    """``F.interpolate(x, (size, size), mode='bilinear', align_corners=False)`` in float32."""
    h, w = x.shape
    out = np.empty((size, size), dtype=np.float32)

    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scale = np.float32(n_in) / np.float32(size)
        src = (np.arange(size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
        src = np.maximum(src, np.float32(0.0))
        i0 = np.floor(src).astype(np.int64)
        i0 = np.minimum(i0, n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        frac = (src - i0.astype(np.float32)).astype(np.float32)
        return i0, i1, frac

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    x = x.astype(np.float32)
    top = x[y0][:, x0] * (1 - fx) + x[y0][:, x1] * fx
    bot = x[y1][:, x0] * (1 - fx) + x[y1][:, x1] * fx
    out[:] = top * (1 - fy)[:, None] + bot * fy[:, None]
    return out


def cam_to_prompt(cam: np.ndarray, input_size: int, embed_size: int, params: PromptParams) -> Prompt | None:
    """Apply the rule to one CAM (h×w or 1×h×w); ``None`` when it gives no prompt."""
    cam = np.maximum(np.asarray(cam, dtype=np.float32).reshape(cam.shape[-2:]), 0.0)
    if not cam.max() > 0.0:
        return None
    up = upsample_bilinear(cam, input_size)
    peak = up.max()
    if not peak > 0.0:
        return None
    binary = up >= np.float32(params.cam_threshold) * peak
    labels, n = ndimage.label(binary, structure=EIGHT_CONNECTED)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    keep = sizes >= params.min_component_px
    keep[0] = False
    if not keep.any():
        return None
    largest = int(np.argmax(np.where(keep, sizes, -1)))  # first max = first in raster order
    mask = keep[labels].astype(np.uint8)
    ys, xs = np.nonzero(labels == largest)
    margin = np.float32(params.box_margin * input_size)
    hi = np.float32(input_size - 1)
    box = np.array(
        [
            max(np.float32(xs.min()) - margin, 0.0),
            max(np.float32(ys.min()) - margin, 0.0),
            min(np.float32(xs.max()) + margin, hi),
            min(np.float32(ys.max()) + margin, hi),
        ],
        dtype=np.float32,
    )
    dense = mask_to_dense(mask, 4 * embed_size, params.dense_logit)
    return Prompt(box=box, mask=mask, dense=dense)


def mask_to_dense(mask: np.ndarray, size: int, logit: float) -> np.ndarray:
    """Area-average a binary S×S mask to size×size, then map to ``logit * (2 f - 1)``."""
    s = mask.shape[0]
    if s % size:
        raise ValueError(f"input size {s} is not a multiple of the dense prompt size {size}")
    k = s // size
    frac = mask.astype(np.float32).reshape(size, k, size, k).mean(axis=(1, 3))
    return (np.float32(logit) * (2.0 * frac - 1.0)).astype(np.float32)


def decoder_prompt(prompt: Prompt) -> tuple[np.ndarray, np.ndarray]:
    """Box corners as the official decoder's ``point_coords`` (1,2,2) / ``point_labels`` (1,2)."""
    coords = prompt.box.reshape(1, 2, 2).astype(np.float32)
    labels = np.array([[2.0, 3.0]], dtype=np.float32)
    return coords, labels


def _grow(x0, y0, x1, y1, input_size: int, box_margin: float) -> np.ndarray:
    """Step 5's growth and clamp, in float32, of inclusive bounds."""
    margin = np.float32(box_margin * input_size)
    hi = np.float32(input_size - 1)
    return np.array(
        [
            max(np.float32(x0) - margin, 0.0),
            max(np.float32(y0) - margin, 0.0),
            min(np.float32(x1) + margin, hi),
            min(np.float32(y1) + margin, hi),
        ],
        dtype=np.float32,
    )


def component_boxes(cam: np.ndarray, input_size: int, params: PromptParams) -> list[np.ndarray]:
    """Step 7: one box per kept component, largest first (ties: raster order), at most ``max_boxes``.

    The first box is always :func:`cam_to_prompt`'s box; an empty list when the rule gives no prompt.
    """
    cam = np.maximum(np.asarray(cam, dtype=np.float32).reshape(cam.shape[-2:]), 0.0)
    if not cam.max() > 0.0:
        return []
    up = upsample_bilinear(cam, input_size)
    peak = up.max()
    if not peak > 0.0:
        return []
    labels, n = ndimage.label(up >= np.float32(params.cam_threshold) * peak, structure=EIGHT_CONNECTED)
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    kept = [i for i in range(1, n + 1) if sizes[i] >= params.min_component_px]
    kept.sort(key=lambda i: -sizes[i])  # stable: equal sizes stay in raster order
    boxes = []
    for i in kept[: params.max_boxes]:
        ys, xs = np.nonzero(labels == i)
        boxes.append(_grow(xs.min(), ys.min(), xs.max(), ys.max(), input_size, params.box_margin))
    return boxes


def box_from_low_res(low: np.ndarray, input_size: int, threshold: float, box_margin: float) -> np.ndarray | None:
    """Step 8: the box of ``low > threshold`` (n×n logits) in input pixels, grown and clamped; None if empty."""
    low = np.asarray(low, dtype=np.float32)
    n = low.shape[-1]
    ys, xs = np.nonzero(low.reshape(n, n) > np.float32(threshold))
    if len(xs) == 0:
        return None
    scale = np.float32(input_size) / np.float32(n)
    x0 = np.float32(xs.min()) * scale
    y0 = np.float32(ys.min()) * scale
    x1 = np.float32(xs.max() + 1) * scale - np.float32(1.0)
    y1 = np.float32(ys.max() + 1) * scale - np.float32(1.0)
    return _grow(x0, y0, x1, y1, input_size, box_margin)
