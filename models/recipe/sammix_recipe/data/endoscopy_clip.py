"""Colonoscopy clips: the scope advancing, turning and pausing through one colon.

One colon (:mod:`.endoscopy_scene`) long enough for the whole travel, with 2-4
polyps fixed on its wall at increasing depths.  The tip advances along the
colon with the smooth random speed profile of the ultrasound clips
(:mod:`.clip`: one to three full stops of 10-20 frames with eased ramps), so a
polyp first shows small near the lumen, grows and moves outward as the scope
approaches, and leaves past the frame's edge.  Turning (the lumen's vanishing
point wandering in the field), roll and the tip's distance to the wall are
smooth functions of the distance travelled, so they freeze while the scope
pauses: paused frames differ only by sensor noise.  Motion blur follows the
image motion (lumen shift plus advance) of each frame.

Random streams: the plan from ``default_rng([seed, 0])``, the sensor noise of
frame ``t`` from ``default_rng([seed, 1, t])``; a seed reproduces the clip
byte for byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import endoscopy_scope as scope_mod
from .clip import _hold_intervals, _smooth_series, _velocity_profile
from .endoscopy import compose
from .endoscopy_polyps import KINDS, Polyp, draw_polyp, project, sample_polyp
from .endoscopy_scene import RADIUS_MM, Z_FAR_R, Colon, Pose, render_wall, sample_colon

__all__ = ["EndoClipPlan", "plan_clip", "render_clip", "generate_clip"]

NOISE_STREAM = 1
SPEED_MM = (0.5, 1.2)  # mean advance per moving frame
POLYP_COUNT = (2, 3, 4)
POLYP_RADIUS_MM = (1.5, 9.0)  # log-uniform
VP_WANDER_FRAC = 0.35  # how far the lumen wanders from the field's centre, fraction of its radius
BLUR_GAIN = 1.5  # blur length per pixel of lumen motion


@dataclass(frozen=True)
class EndoClipPlan:
    seed: int
    size: tuple[int, int]
    colon: Colon
    polyps: tuple[Polyp, ...]
    scope: scope_mod.Scope
    z: np.ndarray  # (T,) tip depth, mm
    roll: np.ndarray  # (T,)
    vp: np.ndarray  # (T, 2) lumen in the image, pixels
    offset: np.ndarray  # (T,)
    offset_angle: float
    blur: np.ndarray  # (T, 2) length (px), angle (rad)
    holds: tuple[tuple[int, int], ...]

    @property
    def n_frames(self) -> int:
        return int(self.z.shape[0])

    def pose(self, t: int) -> Pose:
        return Pose(float(self.z[t]), float(self.roll[t]), (float(self.vp[t, 0]), float(self.vp[t, 1])), float(self.offset[t]), self.offset_angle)


def _along(rng: np.random.Generator, progress: np.ndarray, n_nodes: int) -> np.ndarray:
    """A smooth random series of the distance travelled (frozen while paused)."""
    fine = _smooth_series(rng, 512, n_nodes)
    return np.interp(progress * 511.0, np.arange(512), fine).astype(np.float32)


def plan_clip(seed: int, n_frames: int = 160, size: tuple[int, int] = (256, 256)) -> EndoClipPlan:
    size = (int(size[0]), int(size[1]))
    rng = np.random.default_rng([seed, 0])
    scope = scope_mod.sample_scope(rng, size)
    holds = _hold_intervals(rng, n_frames)
    v = _velocity_profile(rng, n_frames, holds)
    travel = float(rng.uniform(*SPEED_MM)) * n_frames
    progress = np.cumsum(v) / max(float(v.sum()), 1e-9)
    z = (travel * progress).astype(np.float64)
    wander = VP_WANDER_FRAC * scope.radius
    knots = max(3, n_frames // 40)
    vp = np.stack([scope.cx + wander * np.tanh(_along(rng, progress, knots)), scope.cy + wander * np.tanh(_along(rng, progress, knots))], 1)
    roll = float(rng.uniform(0, 2 * math.pi)) + 0.5 * _along(rng, progress, knots)
    offset = np.clip(0.15 + 0.08 * _along(rng, progress, knots), 0.0, 0.35)
    colon = sample_colon(rng, -5.0, travel + Z_FAR_R * RADIUS_MM[1] + 10.0, travel + 3.5 * RADIUS_MM[1] + 10.0)
    count = int(rng.choice(POLYP_COUNT))
    depths = np.sort(rng.uniform(1.5 * colon.radius, travel + 2.5 * colon.radius, count))
    polyps = []
    for zp in depths:
        size_mm = math.exp(rng.uniform(math.log(POLYP_RADIUS_MM[0]), math.log(POLYP_RADIUS_MM[1])))
        kind = str(rng.choice(list(KINDS), p=list(KINDS.values())))
        polyps.append(sample_polyp(rng, kind, float(rng.uniform(0, 2 * math.pi)), float(zp), size_mm))
    # Blur from the image motion: the lumen's shift plus the advance (wall streaming outward).
    dvp = np.diff(vp, axis=0, prepend=vp[:1])
    dz = np.diff(z, prepend=z[:1])
    length = BLUR_GAIN * np.hypot(dvp[:, 0], dvp[:, 1]) + 2.0 * dz * min(size) / 256
    blur = np.stack([np.where(length >= 1.0, np.minimum(length, 10.0), 0.0), np.arctan2(dvp[:, 1], dvp[:, 0])], 1)
    return EndoClipPlan(
        seed=seed,
        size=size,
        colon=colon,
        polyps=tuple(polyps),
        scope=scope,
        z=z,
        roll=np.asarray(roll, np.float64),
        vp=vp.astype(np.float64),
        offset=offset.astype(np.float64),
        offset_angle=float(rng.uniform(0, 2 * math.pi)),
        blur=blur,
        holds=tuple(holds),
    )


def render_frame(plan: EndoClipPlan, t: int) -> tuple[np.ndarray, np.ndarray]:
    pose = plan.pose(t)
    wall = render_wall(plan.colon, pose, plan.size)
    drawn = []
    for p in plan.polyps:
        pr = project(p, plan.colon, pose, plan.size)
        d = draw_polyp(p, pr, plan.colon, wall) if pr is not None else None
        if d is not None and d[1].any():
            drawn.append((pr.z_rel, d))
    drawn.sort(key=lambda x: -x[0])
    rng = np.random.default_rng([plan.seed, NOISE_STREAM, t])
    image, mask, _ = compose(wall, [d for _, d in drawn], plan.scope, rng, (float(plan.blur[t, 0]), float(plan.blur[t, 1])), t)
    return image, mask


def render_clip(plan: EndoClipPlan) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) uint8 RGB and masks (T, H, W) uint8 in {0, 1}."""
    h, w = plan.size
    frames = np.empty((plan.n_frames, h, w, 3), np.uint8)
    masks = np.empty((plan.n_frames, h, w), np.uint8)
    for t in range(plan.n_frames):
        frames[t], masks[t] = render_frame(plan, t)
    return frames, masks


def generate_clip(seed: int, n_frames: int = 160, size: tuple[int, int] = (256, 256)) -> tuple[np.ndarray, np.ndarray]:
    """A scope advancing through a random colon: frames (T,H,W,3) uint8, masks (T,H,W) uint8."""
    return render_clip(plan_clip(seed, n_frames, size))
