"""Generic promptable-segmentation data for "foundation pretraining" of a tiny SAM.

Deliberately *not* ultrasound: the goal of this stage is a model that segments
"the thing the prompt points at" from shape, edges and texture, before it is
specialised on lesions.  Each sample is a textured scene with 1-5 overlapping
objects; one visible object is the target and comes with the prompts SAM-Mix
uses:

* a jittered bounding box (each side moved by up to 10 % of the box size),
* 0-3 clicks, labelled 1 (inside the target) or 0 (outside),
* a *coarse mask* imitating a thresholded class-activation map (CAM): the
  target's coverage on the 1/16 grid, blurred, perturbed (a spurious blob, a
  missing chunk, noise), thresholded at a random level, dilated or eroded, then
  upsampled either blocky (nearest) or smooth (bilinear, then thresholded).

Scenes: backgrounds mix multi-scale filtered noise, gradients, gratings and
speckle-like multiplicative noise; objects (ellipses, rotated rectangles,
convex polygons, stars, smooth blobs, rings and thin curved bands, 3-60 % of
the image area) each get their own texture and intensity, with a contrast to
their surroundings that is sometimes strong, sometimes weak and sometimes zero
(only the texture differs).  Objects are painted back to front with
anti-aliased or soft edges; the target mask is the visible part of the chosen
object.  Optional global blur, noise and gamma finish the image.

Everything is numpy/scipy, vectorised, deterministic per seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from .ultrasound import kernel_matrix

__all__ = ["ShapesSample", "generate_sample", "generate_batch"]

MAX_OBJECTS = 5
OBJECT_AREA_FRAC = (0.03, 0.60)
MIN_TARGET_AREA_FRAC = 0.005
BOX_JITTER = 0.10
MAX_POINTS = 3
POINT_COUNT_PROBS = (0.25, 0.35, 0.25, 0.15)  # 0, 1, 2, 3 clicks
CAM_STRIDE = 16  # coarse masks live on the 1/16 grid
SHAPE_KINDS = ("ellipse", "rectangle", "polygon", "star", "blob", "ring", "band")
SHAPE_PROBS = (0.18, 0.16, 0.16, 0.1, 0.2, 0.1, 0.1)


@dataclass(frozen=True)
class ShapesSample:
    image: np.ndarray  # (H,W) uint8
    mask: np.ndarray  # (H,W) uint8 {0,1}: the object the prompt refers to
    box: np.ndarray  # (4,) float32 x0,y0,x1,y1 in pixels, a jittered box of that object
    points: np.ndarray  # (P,2) float32 x,y pixel coords, P in 0..3
    point_labels: np.ndarray  # (P,) float32, 1 foreground (inside mask), 0 background
    coarse: np.ndarray  # (H,W) uint8 {0,1}: coarse, imperfect version of the mask (CAM-like)


# --------------------------------------------------------------------------
# Textures (all return float32 arrays of the requested shape, roughly zero mean / unit range)
# --------------------------------------------------------------------------


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: float) -> np.ndarray:
    """Gaussian-interpolated random field with ``cells`` correlation cells across the larger side."""
    h, w = shape
    n = max(h, w)
    step = max(n / max(cells, 1.0), 1.0)
    ny, nx = int(math.ceil(h / step)) + 3, int(math.ceil(w / step)) + 3
    ys = (np.arange(ny, dtype=np.float32) - 1.0) * step
    xs = (np.arange(nx, dtype=np.float32) - 1.0) * step
    my = kernel_matrix(np.arange(h, dtype=np.float32), ys, 0.6 * step)
    mx = kernel_matrix(np.arange(w, dtype=np.float32), xs, 0.6 * step)
    g = rng.standard_normal((ny, nx)).astype(np.float32) * 1.8
    return np.einsum("ik,kj->ij", np.einsum("ik,kj->ij", my, g), mx.T)


def multiscale_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    beta = rng.uniform(0.3, 1.2)
    out = np.zeros(shape, np.float32)
    for cells in (3, 8, 20, 48):
        if rng.random() < 0.8:
            out += smooth_noise(rng, shape, cells) * np.float32((8.0 / cells) ** beta)
    return out / np.float32(max(float(out.std()), 1e-3))


def grating(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(4.0, 40.0)
    phase = (x * math.cos(theta) + y * math.sin(theta)) * np.float32(2 * np.pi / period)
    if rng.random() < 0.4:  # warped stripes
        phase += smooth_noise(rng, shape, rng.uniform(2, 6)) * np.float32(rng.uniform(1.0, 4.0))
    out = np.sin(phase + np.float32(rng.uniform(0, 2 * np.pi)))
    if rng.random() < 0.3:  # crossed grating (checker / mesh)
        t2 = theta + rng.uniform(0.5, 1.5)
        out = out * np.sin((x * math.cos(t2) + y * math.sin(t2)) * np.float32(2 * np.pi / period))
    if rng.random() < 0.35:  # square wave
        out = np.sign(out)
    return out.astype(np.float32)


def gradient(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    theta = rng.uniform(0, 2 * np.pi)
    y = (np.arange(h, dtype=np.float32)[:, None] - 0.5 * h) / max(h, w)
    x = (np.arange(w, dtype=np.float32)[None, :] - 0.5 * w) / max(h, w)
    return (2.0 * (x * math.cos(theta) + y * math.sin(theta))).astype(np.float32)


def speckle(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Multiplicative speckle-like noise with mean 1 (smoothed exponential intensity)."""
    s = rng.standard_exponential(shape, dtype=np.float32)
    grain = rng.uniform(0.0, 1.5)
    if grain > 0.4:
        s = ndimage.gaussian_filter(s, grain)
        s /= np.float32(max(float(s.mean()), 1e-3))
    return s


@dataclass(frozen=True)
class Fill:
    """How a region is painted: mean level plus texture, optionally speckled."""

    level: float  # mean intensity in [0, 1]
    kind: str  # flat | noise | grating | gradient
    amplitude: float
    speckle: float  # 0 = none, 1 = fully developed multiplicative speckle
    seed: int

    def render(self, shape: tuple[int, int]) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        if self.kind == "noise":
            tex = multiscale_noise(rng, shape)
        elif self.kind == "grating":
            tex = grating(rng, shape)
        elif self.kind == "gradient":
            tex = gradient(rng, shape) + 0.3 * smooth_noise(rng, shape, 4)
        else:
            tex = 0.3 * smooth_noise(rng, shape, 6)
        out = np.float32(self.level) + np.float32(self.amplitude) * tex
        if self.speckle > 0:
            out = out * (1.0 + np.float32(self.speckle) * (speckle(rng, shape) - 1.0))
        return out.astype(np.float32)


def sample_fill(rng: np.random.Generator, level: float, avoid_kind: str | None = None) -> Fill:
    kinds = ["flat", "noise", "grating", "gradient"]
    if avoid_kind is not None:
        kinds = [k for k in kinds if k != avoid_kind]
    kind = str(rng.choice(kinds))
    amplitude = {"flat": 0.04, "noise": 0.12, "grating": 0.12, "gradient": 0.15}[kind] * rng.uniform(0.3, 1.5)
    spk = float(rng.uniform(0.2, 0.8)) if rng.random() < 0.25 else 0.0
    return Fill(float(level), kind, float(amplitude), spk, int(rng.integers(1 << 31)))


# --------------------------------------------------------------------------
# Shapes: signed distance (pixels, positive inside) on a window of the image
# --------------------------------------------------------------------------

SdfFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Shape:
    kind: str
    cx: float
    cy: float
    reach: float  # radius of a disc that contains the shape
    sdf: SdfFn

    def window(self, h: int, w: int) -> tuple[slice, slice] | None:
        y0, y1 = max(int(self.cy - self.reach) - 2, 0), min(int(self.cy + self.reach) + 3, h)
        x0, x1 = max(int(self.cx - self.reach) - 2, 0), min(int(self.cx + self.reach) + 3, w)
        if y1 <= y0 or x1 <= x0:
            return None
        return slice(y0, y1), slice(x0, x1)


def _local(x: np.ndarray, y: np.ndarray, cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = x - np.float32(cx), y - np.float32(cy)
    return c * dx + s * dy, -s * dx + c * dy


def _polar_table_sdf(cx: float, cy: float, angle: float, radius_fn: Callable[[np.ndarray], np.ndarray]) -> SdfFn:
    """Star-shaped region given by its boundary radius as a function of angle (tabulated)."""
    table_t = np.linspace(-np.pi, np.pi, 1025, dtype=np.float32)
    table_r = radius_fn(table_t).astype(np.float32)

    def sdf(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u, v = _local(x, y, cx, cy, angle)
        rho = np.sqrt(u * u + v * v)
        r = np.interp(np.arctan2(v, u), table_t, table_r)
        return (r - rho).astype(np.float32)

    return sdf


def _polygon_radius(vert_angles: np.ndarray, vert_radii: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Exact radius of a star-shaped polygon (vertices sorted by angle) along each direction."""
    a = np.concatenate([vert_angles, vert_angles[:1] + 2 * np.pi])
    r = np.concatenate([vert_radii, vert_radii[:1]])

    def fn(theta: np.ndarray) -> np.ndarray:
        t = (theta - a[0]) % (2 * np.pi) + a[0]
        i = np.clip(np.searchsorted(a, t, side="right") - 1, 0, len(a) - 2)
        t1, t2, r1, r2 = a[i], a[i + 1], r[i], r[i + 1]
        num = r1 * r2 * np.sin(t2 - t1)
        den = r1 * np.sin(t - t1) + r2 * np.sin(t2 - t)
        return num / np.maximum(den, 1e-6)

    return fn


def sample_shape(rng: np.random.Generator, kind: str, area: float, h: int, w: int) -> Shape:
    """A random shape of roughly the given area (pixels)."""
    cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
    angle = rng.uniform(0, np.pi)
    if kind == "ellipse":
        aspect = rng.uniform(1.0, 3.0)
        b = math.sqrt(area / (math.pi * aspect))
        a = aspect * b

        def sdf(x, y, a=a, b=b):
            u, v = _local(x, y, cx, cy, angle)
            rho = np.sqrt(np.square(u / a) + np.square(v / b))
            return ((1.0 - rho) * b).astype(np.float32)

        return Shape(kind, cx, cy, a, sdf)
    if kind == "rectangle":
        aspect = rng.uniform(1.0, 4.0)
        hb = 0.5 * math.sqrt(area / aspect)
        ha = aspect * hb

        def sdf(x, y, ha=ha, hb=hb):
            u, v = _local(x, y, cx, cy, angle)
            return np.minimum(ha - np.abs(u), hb - np.abs(v)).astype(np.float32)

        return Shape(kind, cx, cy, math.hypot(ha, hb), sdf)
    if kind in ("polygon", "star"):
        n = int(rng.integers(3, 9)) if kind == "polygon" else int(rng.integers(4, 9))
        if kind == "polygon":
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            gaps = np.diff(np.concatenate([angles, angles[:1] + 2 * np.pi]))
            if gaps.max() > 0.9 * np.pi:  # keep the centre inside: re-space evenly with jitter
                angles = (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * (2 * np.pi / n)
            radii = rng.uniform(0.7, 1.0, n)
        else:
            angles = (np.arange(2 * n) + rng.uniform(-0.15, 0.15, 2 * n)) * (np.pi / n)
            radii = np.where(np.arange(2 * n) % 2 == 0, 1.0, rng.uniform(0.3, 0.6))
        angles = angles - np.pi
        fn = _polygon_radius(angles, radii)
        t = np.linspace(-np.pi, np.pi, 512, endpoint=False)
        unit_area = 0.5 * float(np.mean(np.square(fn(t)))) * 2 * np.pi
        scale = math.sqrt(area / unit_area)
        return Shape(kind, cx, cy, scale, _polar_table_sdf(cx, cy, angle, lambda th: scale * fn(th)))
    if kind == "blob":
        k = np.arange(2, 7)
        coef = rng.normal(0.0, 0.18, len(k)) / (k - 1.0) ** 0.7 * np.exp(1j * rng.uniform(0, 2 * np.pi, len(k)))

        def rad(th: np.ndarray) -> np.ndarray:
            z = np.exp(1j * np.outer(th, k))
            return np.maximum(1.0 + (z * coef).real.sum(axis=1), 0.35)

        t = np.linspace(-np.pi, np.pi, 512, endpoint=False)
        scale = math.sqrt(area / (0.5 * float(np.mean(np.square(rad(t)))) * 2 * np.pi))
        reach = scale * float(rad(t).max())
        return Shape(kind, cx, cy, reach, _polar_table_sdf(cx, cy, angle, lambda th: scale * rad(th)))
    if kind == "ring":
        inner = rng.uniform(0.45, 0.8)
        aspect = rng.uniform(1.0, 1.8)
        b = math.sqrt(area / (math.pi * aspect * (1 - inner**2)))
        a = aspect * b

        def sdf(x, y, a=a, b=b):
            u, v = _local(x, y, cx, cy, angle)
            rho = np.sqrt(np.square(u / a) + np.square(v / b))
            return (np.minimum(1.0 - rho, rho - inner) * b).astype(np.float32)

        return Shape(kind, cx, cy, a, sdf)
    # band: thin curved stripe
    thick = rng.uniform(4.0, 16.0)
    length = min(area / thick, 1.3 * max(h, w))
    curv = rng.normal(0.0, 1.5) / max(length, 1.0)
    wave_a, wave_k = rng.uniform(0, 0.08) * length, rng.uniform(0.5, 2.5) * 2 * np.pi / max(length, 1.0)
    phase = rng.uniform(0, 2 * np.pi)

    def sdf(x, y):
        u, v = _local(x, y, cx, cy, angle)
        centre = curv * u * u + wave_a * np.sin(wave_k * u + phase)
        return np.minimum(0.5 * thick - np.abs(v - centre), 0.5 * length - np.abs(u)).astype(np.float32)

    reach = 0.5 * length + abs(curv) * 0.25 * length**2 + wave_a + thick
    return Shape("band", cx, cy, reach, sdf)


# --------------------------------------------------------------------------
# Scene composition
# --------------------------------------------------------------------------


def _render_background(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, Fill]:
    fill = sample_fill(rng, rng.uniform(0.2, 0.8))
    img = fill.render(shape)
    if rng.random() < 0.5:
        img += np.float32(rng.uniform(0.05, 0.2)) * gradient(rng, shape)
    return img, fill


def _object_level(rng: np.random.Generator, surround: float) -> tuple[float, bool]:
    """Mean level of an object given the mean of what is behind it; flag = texture-only contrast."""
    r = rng.random()
    if r < 0.2:  # texture-only difference
        return surround, True
    if r < 0.45:  # low contrast
        delta = rng.uniform(0.04, 0.1)
    else:
        delta = rng.uniform(0.1, 0.45)
    sign = rng.choice([-1.0, 1.0])
    level = surround + sign * delta
    if not 0.05 <= level <= 0.95:
        level = surround - sign * delta
    return float(np.clip(level, 0.03, 0.97)), False


def compose_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Paint background and objects; returns the float image and each object's visible mask."""
    h, w = size
    img, bg_fill = _render_background(rng, (h, w))
    n_obj = int(rng.integers(1, MAX_OBJECTS + 1))
    areas = sorted((math.exp(rng.uniform(*np.log(OBJECT_AREA_FRAC))) for _ in range(n_obj)), reverse=True)
    occupancy = np.zeros((h, w), np.int8)  # index+1 of the top-most object per pixel
    for i, frac in enumerate(areas):  # large objects tend to be behind small ones
        kind = str(rng.choice(SHAPE_KINDS, p=SHAPE_PROBS))
        shape = sample_shape(rng, kind, frac * h * w, h, w)
        win = shape.window(h, w)
        if win is None:
            continue
        ys, xs = win
        y, x = np.mgrid[ys, xs].astype(np.float32)
        sd = shape.sdf(x + 0.5, y + 0.5)
        edge = rng.uniform(0.5, 1.0) if rng.random() < 0.7 else rng.uniform(1.0, 3.0)
        alpha = np.clip(0.5 + sd / np.float32(edge), 0.0, 1.0)
        inside = sd > 0
        if not inside.any():
            continue
        surround = float(img[win][inside].mean())
        level, texture_only = _object_level(rng, surround)
        fill = sample_fill(rng, level, avoid_kind=bg_fill.kind if texture_only else None)
        if texture_only and fill.amplitude < 0.1:
            fill = Fill(fill.level, fill.kind, 0.1 + fill.amplitude, max(fill.speckle, 0.3), fill.seed)
        tex = fill.render(alpha.shape)
        img[win] = img[win] * (1.0 - alpha) + tex * alpha
        occupancy[win][inside] = i + 1
    masks = [occupancy == i + 1 for i in range(len(areas))]
    return img, masks


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    if rng.random() < 0.4:
        img = ndimage.gaussian_filter(img, rng.uniform(0.5, 2.0))
    if rng.random() < 0.5:
        img = img + rng.normal(0.0, rng.uniform(0.005, 0.04), img.shape).astype(np.float32)
    gamma = rng.uniform(0.7, 1.4)
    img = np.power(np.clip(img, 0.0, 1.0), np.float32(gamma))
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------


def jittered_box(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Bounding box (x0, y0, x1, y1; pixel edges) with each side moved by up to BOX_JITTER of its size."""
    h, w = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    x0, x1 = float(cols[0]), float(cols[-1] + 1)
    y0, y1 = float(rows[0]), float(rows[-1] + 1)
    bw, bh = x1 - x0, y1 - y0
    j = rng.uniform(-BOX_JITTER, BOX_JITTER, 4)
    box = np.array([x0 + j[0] * bw, y0 + j[1] * bh, x1 + j[2] * bw, y1 + j[3] * bh])
    box[[0, 2]] = np.clip(box[[0, 2]], 0.0, w)
    box[[1, 3]] = np.clip(box[[1, 3]], 0.0, h)
    if box[2] - box[0] < 1.0:
        box[2] = min(box[0] + 1.0, w)
        box[0] = box[2] - 1.0
    if box[3] - box[1] < 1.0:
        box[3] = min(box[1] + 1.0, h)
        box[1] = box[3] - 1.0
    return box.astype(np.float32)


def sample_points(rng: np.random.Generator, mask: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-3 clicks at pixel centres; positives inside the mask, negatives outside (often near it)."""
    h, w = mask.shape
    n = int(rng.choice(len(POINT_COUNT_PROBS), p=POINT_COUNT_PROBS))
    pts, labels = [], []
    fg = np.flatnonzero(mask.ravel())
    for i in range(n):
        positive = rng.random() < (0.85 if i == 0 else 0.6)
        if positive:
            idx = int(fg[rng.integers(len(fg))])
        else:
            idx = -1
            for _ in range(50):
                if rng.random() < 0.6:  # near the object: inside the box grown by 20 %
                    bw, bh = box[2] - box[0], box[3] - box[1]
                    x = rng.uniform(box[0] - 0.2 * bw, box[2] + 0.2 * bw)
                    y = rng.uniform(box[1] - 0.2 * bh, box[3] + 0.2 * bh)
                else:
                    x, y = rng.uniform(0, w), rng.uniform(0, h)
                xi, yi = int(np.clip(x, 0, w - 1)), int(np.clip(y, 0, h - 1))
                if not mask[yi, xi]:
                    idx = yi * w + xi
                    break
            if idx < 0:
                continue
        pts.append((idx % w + 0.5, idx // w + 0.5))
        labels.append(1.0 if positive else 0.0)
    return np.array(pts, np.float32).reshape(-1, 2), np.array(labels, np.float32)


def _block_mean(mask: np.ndarray, stride: int) -> np.ndarray:
    h, w = mask.shape
    gh, gw = -(-h // stride), -(-w // stride)
    padded = np.zeros((gh * stride, gw * stride), np.float32)
    padded[:h, :w] = mask
    return padded.reshape(gh, stride, gw, stride).mean(axis=(1, 3))


def _bump(shape: tuple[int, int], cy: float, cx: float, sigma: float) -> np.ndarray:
    y = np.arange(shape[0], dtype=np.float32)[:, None]
    x = np.arange(shape[1], dtype=np.float32)[None, :]
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / np.float32(2 * sigma * sigma))


def coarse_mask(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """CAM-like coarse version of ``mask`` (see module docstring)."""
    h, w = mask.shape
    cov = _block_mean(mask.astype(np.float32), CAM_STRIDE)
    gh, gw = cov.shape
    act = ndimage.gaussian_filter(cov, rng.uniform(0.4, 1.3), mode="constant")
    act = act + rng.uniform(0.0, 0.12) * ndimage.gaussian_filter(rng.standard_normal(cov.shape).astype(np.float32), 1.0)
    peak = max(float(act.max()), 1e-6)
    cells = np.argwhere(cov > 0.3)
    if len(cells) == 0:
        cells = np.argwhere(cov > 0)
    if rng.random() < 0.25:  # spurious activation elsewhere
        act += peak * rng.uniform(0.4, 1.0) * _bump(cov.shape, rng.uniform(0, gh), rng.uniform(0, gw), rng.uniform(0.7, 2.0))
    if rng.random() < 0.25 and len(cells):  # missing chunk of the object
        cy, cx = cells[rng.integers(len(cells))]
        act *= 1.0 - rng.uniform(0.6, 1.0) * _bump(cov.shape, cy, cx, rng.uniform(0.7, 1.8))
    level = rng.uniform(0.2, 0.6) * float(act.max())
    if rng.random() < 0.55:  # blocky: threshold on the 1/16 grid, nearest upsampling
        grid = act > level
        op = rng.random()
        if op < 0.15:
            grid = ndimage.binary_dilation(grid)
        elif op < 0.3 and grid.sum() > 2:
            grid = ndimage.binary_erosion(grid)
        if not grid.any():
            grid.flat[int(np.argmax(act))] = True
        full = np.repeat(np.repeat(grid, CAM_STRIDE, axis=0), CAM_STRIDE, axis=1)[:h, :w]
    else:  # smooth: bilinear-ish upsampling to 1/4, threshold, morphology there, then nearest x4
        q = 4
        hq, wq = -(-h // q), -(-w // q)
        centres_y = (np.arange(gh, dtype=np.float32) + 0.5) * (CAM_STRIDE / q)
        centres_x = (np.arange(gw, dtype=np.float32) + 0.5) * (CAM_STRIDE / q)
        my = kernel_matrix(np.arange(hq, dtype=np.float32) + 0.5, centres_y, 0.5 * CAM_STRIDE / q)
        mx = kernel_matrix(np.arange(wq, dtype=np.float32) + 0.5, centres_x, 0.5 * CAM_STRIDE / q)
        fine = np.einsum("ik,kj->ij", np.einsum("ik,kj->ij", my, act.astype(np.float32)), mx.T)
        grid = fine > level
        it = int(rng.integers(-2, 3))
        if it > 0:
            grid = ndimage.binary_dilation(grid, iterations=it)
        elif it < 0 and grid.sum() > 8:
            eroded = ndimage.binary_erosion(grid, iterations=-it)
            grid = eroded if eroded.any() else grid
        if not grid.any():
            grid.flat[int(np.argmax(fine))] = True
        full = np.repeat(np.repeat(grid, q, axis=0), q, axis=1)[:h, :w]
    return full.astype(np.uint8)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def generate_sample(seed: int, size: tuple[int, int] = (256, 256)) -> ShapesSample:
    """One promptable-segmentation sample (see module docstring)."""
    rng = np.random.default_rng(seed)
    h, w = size
    img, masks = compose_scene(rng, (h, w))
    areas = np.array([m.sum() for m in masks], np.int64)
    candidates = np.flatnonzero(areas >= MIN_TARGET_AREA_FRAC * h * w)
    if len(candidates) == 0:
        # every object got buried or cut away: add one guaranteed target on top
        shape = sample_shape(rng, "ellipse", 0.05 * h * w, h, w)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        sd = shape.sdf(x + 0.5, y + 0.5)
        inside = sd > 0
        level, _ = _object_level(rng, float(img[inside].mean()))
        img = np.where(inside, sample_fill(rng, level).render((h, w)), img)
        masks = [inside]
        candidates = np.array([0])
    target = masks[int(candidates[rng.integers(len(candidates))])]
    image = _finish(rng, img)
    box = jittered_box(rng, target)
    points, labels = sample_points(rng, target, box)
    coarse = coarse_mask(rng, target)
    return ShapesSample(image, target.astype(np.uint8), box, points, labels, coarse)


def generate_batch(seeds: Sequence[int], size: tuple[int, int] = (256, 256)) -> dict[str, np.ndarray]:
    """Stacked samples: image/mask/coarse (N,H,W) uint8, box (N,4) float32,
    points (N,3,2) float32 (padding 0), point_labels (N,3) float32 (padding -1)."""
    h, w = size
    n = len(seeds)
    out = {
        "image": np.empty((n, h, w), np.uint8),
        "mask": np.empty((n, h, w), np.uint8),
        "box": np.empty((n, 4), np.float32),
        "points": np.zeros((n, MAX_POINTS, 2), np.float32),
        "point_labels": np.full((n, MAX_POINTS), -1.0, np.float32),
        "coarse": np.empty((n, h, w), np.uint8),
    }
    for i, s in enumerate(seeds):
        smp = generate_sample(int(s), (h, w))
        out["image"][i], out["mask"][i], out["coarse"][i] = smp.image, smp.mask, smp.coarse
        out["box"][i] = smp.box
        p = len(smp.point_labels)
        out["points"][i, :p] = smp.points
        out["point_labels"][i, :p] = smp.point_labels
    return out
