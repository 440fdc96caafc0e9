"""Procedural colonoscopy frames with polyp masks, deterministic by seed.

No colonoscopy dataset can be downloaded for this project, so the recipe renders
its own RGB frames (the endoscopy counterpart of :mod:`.ultrasound`):

* **Scene** (:mod:`.endoscopy_scene`): the colon as a tube seen from the lens
  with perspective, a dark lumen at its vanishing point (anywhere in the field,
  not only the centre), haustral folds as arcs and rings converging toward it,
  hiding the wall behind them; mucosa from pink through orange to red with a
  slow colour variation, a fine grain and thin, branching, darker-red vessels;
  one light at the lens with inverse-square fall-off (near wall bright, lumen
  black); small saturated glints on wet wall facing the lens.
* **Polyps** (:mod:`.endoscopy_polyps`): sessile domes, pedunculated heads on
  stalks and flat, slightly raised patches (colour and texture change, no vessel
  pattern), 4-44 % of the frame across (log-uniform, so small ones are common),
  redder, paler or close to the mucosa, shaded by the light, with glints.
  Per frame: none 25 %, one 50 %, two 17 %, three 8 %; a polyp must show 60 % of
  its outline to be placed, and none is placed deeper than 4.5 wall distances
  (it would be lost in the dark lumen).
* **The scope** (:mod:`.endoscopy_scope`): vignetting, motion blur on 30 % of
  frames, sensor noise, black outside the round field, burned-in text (date,
  clock, an id line) in the corners with a built-in 3x5 bitmap font.

The mask is exactly the polyps' visible pixels: a polyp hidden by a fold is not
in it, it is blurred with the image (then thresholded at one half), and
pixels outside the round field or under a glyph of the text are never in it
(text is drawn in the corners; where the field is large enough to reach them, the
text wins).  ``present`` is ``mask.any()``.

Not modelled: real optics (chromatic aberration, JPEG/compression artefacts,
interlacing, the colour filter array), stool, bubbles, fluid and blood,
instruments, narrow-band imaging or dye, the scope's light cone (an extra
fall-off with depth stands for it) and over-exposure flare, the lumen bending
within the view (the far lumen is simply black), folds' shadows cast sideways,
and polyps' exact 3-D projection (they are 2.5-D shapes placed by projecting
their base, so a large polyp seen from the side is only roughly right).  In
clips a polyp appears at once when it comes within 4.5 wall distances (small and
dim, but not faded in); clips (:mod:`.endoscopy_clip`) never cut, pull back or
wash the lens.  Polyps carry no histology: their looks are loosely those of
public polyp images, not of any one lesion class.

Every random number of a frame comes from ``np.random.default_rng(seed)``, so a
seed reproduces image, mask and label byte for byte.  Cost: 30-40 ms of CPU a
256x256 frame (25 ms a clip frame, whose colon is built once), measured on a
shared two-core machine under load.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import endoscopy_scope as scope_mod
from .endoscopy_polyps import FARTHEST_REL, KINDS, Polyp, Projection, draw_polyp, project, sample_polyp
from .endoscopy_scene import Colon, Pose, Wall, cross_section, focal_px, render_wall, sample_colon, PHI_MAX

__all__ = ["EndoscopyFrame", "generate_frame", "generate_dataset", "compose", "endoscopy_set", "SETS"]

COUNT_PROBS = (0.25, 0.50, 0.17, 0.08)  # 0, 1, 2, 3 polyps
POLYP_RADIUS_FRAC = (0.02, 0.22)  # apparent radius, fraction of min(H, W), log-uniform
MIN_VISIBLE = 0.6  # a placed polyp must show this fraction of its outline
VP_OFFSET_FRAC = (0.0, 0.4)  # lumen's distance from the field's centre, fraction of its radius
BLUR_PROB = 0.3
BLUR_PX = (2.0, 9.0)  # at 256 px
EXPOSURE = 0.9  # luma of the 95th-percentile pixel after auto exposure
SATURATION = 1.25  # display saturation (per-channel gamma washes colours out)
WHITE_LUMA = np.array([0.3, 0.55, 0.15], np.float32)

# Disjoint seed ranges (the ultrasound sets use 0.., 1e6.., 5e6.., 7e6.., 8e6..).
SETS = {"pool": (20_000_000, 2000), "test": (21_000_000, 240), "validation": (22_000_000, 240)}
CLIP_SEED = 23_000_000  # the demo clip
VAL_CLIP_SEED0 = 24_000_000


@dataclass(frozen=True)
class EndoscopyFrame:
    """One RGB frame, its polyp mask and what was drawn."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray  # (H, W) uint8 in {0, 1}: visible polyp pixels
    present: bool  # mask.any()
    polyps: int  # polyps drawn
    scope: tuple[float, float, float]  # round field: centre x, centre y, radius (pixels)
    text: np.ndarray  # (H, W) bool: pixels of the burned-in text


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _kind(rng: np.random.Generator) -> str:
    return str(rng.choice(list(KINDS), p=list(KINDS.values())))


def compose(
    wall: Wall,
    drawn: Sequence[tuple[tuple[slice, slice], np.ndarray, np.ndarray, float]],
    scope: scope_mod.Scope,
    rng: np.random.Generator,
    blur: tuple[float, float] = (0.0, 0.0),
    frame_index: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polyps over the wall, then the scope's look: (image uint8, mask uint8, text bool)."""
    h, w = wall.depth.shape
    radiance = wall.radiance.copy()
    mask = np.zeros((h, w), np.float32)
    for box, visible, rad, _ in drawn:  # far to near
        radiance[box][visible] = rad[visible]
        mask[box][visible] = 1.0
    inside = scope.inside(h, w)
    luma = radiance[inside] @ WHITE_LUMA
    gain = EXPOSURE / max(float(np.percentile(luma, 95)), 1e-6)
    radiance *= (gain * scope_mod.vignette(scope, h, w))[..., None]
    if blur[0] >= 1.0:
        radiance = scope_mod.motion_blur(radiance, *blur)
        mask = scope_mod.motion_blur(mask, *blur)
    y = 1.0 - np.exp(-radiance)
    y = np.clip((y - 0.03) / 0.97, 0.0, 1.0) ** np.float32(1 / 2.2)
    luma = (y @ WHITE_LUMA)[..., None]
    y = np.clip(luma + np.float32(SATURATION) * (y - luma), 0.0, 1.0)
    y = y * 255.0 + rng.normal(0.0, scope.noise, y.shape).astype(np.float32)
    image = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    image[~inside] = 0
    text = scope_mod.text_mask(h, w, scope_mod.overlay_lines(scope, frame_index))
    image[text] = scope.text_gray
    out = (mask >= 0.5) & inside & ~text
    return image, out.astype(np.uint8), text


def _place(
    rng: np.random.Generator, colon: Colon, pose: Pose, scope: scope_mod.Scope, wall: Wall, size: tuple[int, int], taken: list
) -> tuple[Polyp, Projection, tuple] | None:
    f = focal_px(size)
    m = min(size)
    for _ in range(25):
        kind = _kind(rng)
        a_px = _log_uniform(rng, POLYP_RADIUS_FRAC[0] * m, POLYP_RADIUS_FRAC[1] * m)
        a_px = max(a_px, 5.0 if kind == "flat" else 3.0)
        rr = (scope.radius - a_px) * math.sqrt(rng.uniform(0.0, 1.0))
        ang = rng.uniform(0, 2 * math.pi)
        x, y = scope.cx + rr * math.cos(ang), scope.cy + rr * math.sin(ang)
        dx, dy = x - pose.vp[0], y - pose.vp[1]
        phi = math.hypot(dx, dy) / f
        if not (math.atan(1 / FARTHEST_REL) < phi < PHI_MAX - 0.05):  # not lost in the lumen, not past the lens
            continue
        theta = (math.atan2(dy, dx) - pose.roll) % (2 * math.pi)
        rad = float(cross_section(colon, pose, theta))
        z_rel = rad / math.tan(phi)
        polyp = sample_polyp(rng, kind, theta, pose.z + z_rel, a_px * math.hypot(z_rel, rad) / f)
        pr = project(polyp, colon, pose, size)
        if pr is None:
            continue
        reach = max(pr.a, pr.b_in) + math.hypot(pr.head[0] - pr.cx, pr.head[1] - pr.cy)
        if any(math.hypot(pr.cx - q.cx, pr.cy - q.cy) < 1.15 * (reach + rq) + 3 for q, rq in taken):
            continue
        drawn = draw_polyp(polyp, pr, colon, wall)
        if drawn is None or drawn[3] < MIN_VISIBLE or drawn[1].sum() < 12:
            continue
        taken.append((pr, reach))
        return polyp, pr, drawn
    return None


def generate_frame(seed: int, size: tuple[int, int] = (256, 256), p_empty: float | None = None) -> EndoscopyFrame:
    """Render one colonoscopy frame with its polyp mask.

    ``p_empty`` overrides the share of polyp-free frames (the rest keep their
    1/2/3 proportions); by default 25 % of frames are empty.
    """
    size = (int(size[0]), int(size[1]))
    rng = np.random.default_rng(seed)
    scope = scope_mod.sample_scope(rng, size)
    radius_r = scope.radius * rng.uniform(*VP_OFFSET_FRAC)
    ang = rng.uniform(0, 2 * math.pi)
    pose = Pose(
        z=0.0,
        roll=float(rng.uniform(0, 2 * math.pi)),
        vp=(scope.cx + radius_r * math.cos(ang), scope.cy + radius_r * math.sin(ang)),
        offset=float(rng.uniform(0.0, 0.3)),
        offset_angle=float(rng.uniform(0, 2 * math.pi)),
    )
    colon = sample_colon(rng, -5.0, 260.0)
    wall = render_wall(colon, pose, size)
    probs = np.array(COUNT_PROBS)
    if p_empty is not None:
        probs = np.concatenate([[p_empty], (1 - p_empty) * probs[1:] / probs[1:].sum()])
    count = int(rng.choice(len(probs), p=probs))
    taken: list = []
    placed = [pl for pl in (_place(rng, colon, pose, scope, wall, size, taken) for _ in range(count)) if pl is not None]
    placed.sort(key=lambda pl: -pl[1].z_rel)
    blur = (0.0, 0.0)
    if rng.random() < BLUR_PROB:
        blur = (float(rng.uniform(*BLUR_PX)) * min(size) / 256, float(rng.uniform(0, math.pi)))
    image, mask, text = compose(wall, [pl[2] for pl in placed], scope, rng, blur)
    return EndoscopyFrame(image, mask, bool(mask.any()), len(placed), (scope.cx, scope.cy, scope.radius), text)


def generate_dataset(
    seeds: Sequence[int], size: tuple[int, int] = (256, 256)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack frames: images (N,H,W,3) uint8, masks (N,H,W) uint8, present (N,) uint8."""
    h, w = size
    images = np.empty((len(seeds), h, w, 3), np.uint8)
    masks = np.empty((len(seeds), h, w), np.uint8)
    present = np.empty((len(seeds),), np.uint8)
    for i, s in enumerate(seeds):
        f = generate_frame(int(s), (h, w))
        images[i], masks[i], present[i] = f.image, f.mask, f.present
    return images, masks, present


def _chunk(args):
    seeds, size = args
    return generate_dataset(seeds, size=(size, size))


def endoscopy_set(name: str, size: int = 256) -> dict[str, np.ndarray]:
    """The cached ``pool``, ``test`` or ``validation`` set: images, masks, present, seeds.

    Generated once (in parallel) into the recipe's cache folder, like
    :func:`sammix_recipe.common.ultrasound_set`; seed ranges are disjoint (``SETS``).
    """
    from ..common import CACHE_DIR, generated_set  # torch-importing module: only when asked

    seed0, n = SETS[name]
    return generated_set(CACHE_DIR / f"endo_{name}_{n}_{size}.npz", _chunk, seed0, n, size, f"endoscopy {name}")


def main(argv: list[str] | None = None) -> None:
    from .endoscopy_sheet import write_sheet

    ap = argparse.ArgumentParser(description="Contact sheet of endoscopy frames and clip frames (mask outlines in green).")
    ap.add_argument("--sheet", required=True, help="output PNG")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=16, help="single frames (rows of 4)")
    ap.add_argument("--clip-frames", type=int, default=8, help="frames evenly spaced through one clip (rows of 4)")
    ap.add_argument("--tile", type=int, default=256, help="tile size in the sheet")
    ap.add_argument("--palette", action="store_true", help="256-colour PNG (small file)")
    args = ap.parse_args(argv)
    write_sheet(args.sheet, args.seed, args.frames, args.clip_frames, args.tile, args.palette)
    print(f"wrote {args.sheet}")


if __name__ == "__main__":
    main()
