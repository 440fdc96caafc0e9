"""Polyps on the colon wall: placed in world coordinates, drawn in the image.

A polyp sits on the wall at (theta, z) with a radius in mm.  Each frame projects
its base through the scope's lens (:mod:`.endoscopy_scene`) and draws it as a
2.5-D shape in the image: an outline (an ellipse with a few random harmonics)
whose half-size across the tube is ``f * size / distance`` and whose half-size
along the tube is foreshortened by the viewing angle, stretched toward the lumen
by the polyp's protrusion (the top of a dome seen from the side).  A height
profile inside the outline gives the normals; the light comes from the lens,
which, seen on the wall, is from the outside of the frame toward the lumen, so
the side facing the frame's edge is lit and the side toward the lumen darker.

Kinds: **sessile** (a dome, broad base blending into the mucosa), **pedunculated**
(a round head on a stalk, the head displaced toward the lumen), **flat** (slightly
raised, mostly a colour and texture change with the vessel pattern missing).
Polyps are lit by the same inverse-square light as the wall and carry small
saturated glints where their surface faces the lens.  A polyp pixel is drawn (and
is a mask pixel) only where no nearer wall (a fold) hides it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .endoscopy_scene import PHI_MAX, Colon, Pose, Wall, bilinear, cross_section, focal_px

__all__ = ["Polyp", "KINDS", "sample_polyp", "project", "draw_polyp"]

KINDS = {"sessile": 0.5, "pedunculated": 0.2, "flat": 0.3}
PATCH = 24  # side of a polyp's surface texture, cells
NEAREST_REL = 0.12  # a polyp closer than this (fraction of the radius) has left the view
FARTHEST_REL = 4.5  # a polyp farther than this (in wall distances) is lost in the dark lumen: not drawn


@dataclass(frozen=True)
class Polyp:
    kind: str
    theta: float  # world angle around the colon axis, rad
    z: float  # world depth along the colon, mm
    size: float  # radius, mm (the head's for a pedunculated polyp)
    height: float  # protrusion as a fraction of the radius
    gamma: float  # dome profile exponent
    harmonics: np.ndarray  # (3, 2) outline harmonics 2..4
    tint: np.ndarray  # (3,) albedo relative to the mucosa
    stalk: float  # mm (pedunculated)
    lean: float  # sideways lean of the stalk, rad
    patch: np.ndarray  # (PATCH, PATCH, 2): albedo texture, glint break-up
    shine: float


@dataclass(frozen=True)
class Projection:
    cx: float
    cy: float
    er: np.ndarray  # unit vector from the lumen outward, image (x, y)
    et: np.ndarray  # unit vector across
    a: float  # half-size across, px
    b_out: float  # half-size outward (toward the frame's edge), px
    b_in: float  # half-size toward the lumen, px
    head: tuple[float, float]  # head centre (pedunculated), px
    phi: float
    dist: float  # lens to base, mm
    z_rel: float  # depth in front of the lens, mm


def sample_polyp(rng: np.random.Generator, kind: str, theta: float, z: float, size: float) -> Polyp:
    irregular = {"sessile": 0.06, "pedunculated": 0.04, "flat": 0.10}[kind]
    red = float(rng.uniform(-0.25, 0.45))
    tint = np.array([1.0, 1.0 - 0.55 * red, 1.0 - 0.5 * red], np.float32) * np.float32(rng.uniform(0.95, 1.35))
    pale = float(rng.uniform(0.0, 0.35)) if rng.random() < 0.3 else 0.0
    tint = tint * (1 - pale) + pale * np.float32(1.25) / np.maximum(tint, 0.2) * tint
    if kind == "flat":
        tint = np.array([1.0, 1.0 - 0.3 * abs(red) - 0.1, 1.0 - 0.3 * abs(red) - 0.1], np.float32) * (tint[0] if pale == 0 else 1.15)
    cells = rng.standard_normal((2, PATCH, PATCH)).astype(np.float32)
    smooth = np.stack([ndimage.gaussian_filter(cells[0], 1.0 if kind == "flat" else 1.8), ndimage.gaussian_filter(cells[1], 0.8)], axis=-1)
    smooth /= smooth.std(axis=(0, 1), keepdims=True) + 1e-6
    return Polyp(
        kind=kind,
        theta=theta,
        z=z,
        size=size,
        height={"sessile": rng.uniform(0.45, 1.0), "pedunculated": 1.0, "flat": rng.uniform(0.12, 0.25)}[kind],
        gamma={"sessile": rng.uniform(0.45, 0.9), "pedunculated": 0.5, "flat": rng.uniform(0.3, 0.6)}[kind],
        harmonics=rng.normal(0.0, irregular, (3, 2)).astype(np.float32),
        tint=tint.astype(np.float32),
        stalk=float(rng.uniform(1.0, 2.5) * size) if kind == "pedunculated" else 0.0,
        lean=float(rng.normal(0.0, 0.4)),
        patch=smooth,
        shine=float(rng.uniform(0.4, 1.0)) if kind != "flat" else float(rng.uniform(0.0, 0.4)),
    )


def project(p: Polyp, colon: Colon, pose: Pose, size: tuple[int, int]) -> Projection | None:
    """Where the polyp's base lands in the image, or None when it is past the lens or too far."""
    rad = float(cross_section(colon, pose, p.theta))
    z_rel = p.z - pose.z
    if z_rel < NEAREST_REL * colon.radius:
        return None
    phi = math.atan2(rad, z_rel)
    if phi > PHI_MAX or z_rel > FARTHEST_REL * rad:
        return None
    f = focal_px(size)
    ang = p.theta + pose.roll
    er = np.array([math.cos(ang), math.sin(ang)], np.float32)
    et = np.array([-er[1], er[0]], np.float32)
    cx, cy = pose.vp[0] + f * phi * er[0], pose.vp[1] + f * phi * er[1]
    dist = math.hypot(z_rel, rad)
    a = f * p.size / dist
    b_out = a * max(math.sin(phi), 0.3)
    rise = a * p.height * math.cos(phi)
    b_in = math.hypot(b_out, rise)
    reach = f * p.stalk * math.cos(phi) / dist + 0.5 * a * math.cos(phi)
    head = (cx - er[0] * reach + et[0] * math.tan(p.lean) * reach, cy - er[1] * reach + et[1] * math.tan(p.lean) * reach)
    return Projection(cx, cy, er, et, a, b_out, b_in, head, phi, dist, z_rel)


def _outline(p: Polyp, nu: np.ndarray, nv: np.ndarray) -> np.ndarray:
    ang = np.arctan2(nv, nu)
    q = np.ones_like(nu)
    for m in (2, 3, 4):
        q += p.harmonics[m - 2, 0] * np.cos(m * ang) + p.harmonics[m - 2, 1] * np.sin(m * ang)
    return (nu * nu + nv * nv) / np.maximum(q, 0.7) ** 2


def _lit(hgt: np.ndarray, pr: Projection) -> np.ndarray:
    """cos(incidence) of a height field (px) lit from the lens."""
    gy, gx = np.gradient(hgt)
    hu = gx * pr.et[0] + gy * pr.et[1]
    hv = gx * pr.er[0] + gy * pr.er[1]
    lv = 0.6 * math.cos(pr.phi) + 0.1
    return np.clip((-hv * lv + 1.0) / (np.sqrt(hu * hu + hv * hv + 1.0) * math.sqrt(lv * lv + 1.0)), 0.0, 1.0)


def _patch(p: Polyp, nu: np.ndarray, nv: np.ndarray) -> np.ndarray:
    i = np.clip((nv + 1.1) / 2.2 * (PATCH - 1), 0, PATCH - 1)
    j = np.clip((nu + 1.1) / 2.2 * (PATCH - 1), 0, PATCH - 1)
    return np.moveaxis(bilinear(p.patch, i, j, False), -1, 0)


def draw_polyp(p: Polyp, pr: Projection, colon: Colon, wall: Wall) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray, float] | None:
    """Render into a bounding box: (box, visible pixels, radiance there (h, w, 3), visible fraction)."""
    h, w = wall.depth.shape
    hx, hy = pr.head
    ext = max(pr.a, pr.b_in) + 2.0
    xs = [pr.cx - ext, pr.cx + ext] + ([hx - pr.a - 2, hx + pr.a + 2] if p.kind == "pedunculated" else [])
    ys = [pr.cy - ext, pr.cy + ext] + ([hy - pr.a - 2, hy + pr.a + 2] if p.kind == "pedunculated" else [])
    x0, x1 = max(0, int(min(xs))), min(w, int(math.ceil(max(xs))) + 1)
    y0, y1 = max(0, int(min(ys))), min(h, int(math.ceil(max(ys))) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    box = (slice(y0, y1), slice(x0, x1))
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + np.float32(0.5)

    def local(cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
        rx, ry = xx - cx, yy - cy
        return rx * pr.et[0] + ry * pr.et[1], rx * pr.er[0] + ry * pr.er[1]

    u, v = local(pr.cx, pr.cy)
    plain = wall.albedo[box]
    light = np.float32(colon.radius**2 / pr.dist**2)
    if p.kind == "pedunculated":
        hu_, hv_ = local(hx, hy)
        nu, nv = hu_ / pr.a, hv_ / (pr.a * 0.9)
        r2 = _outline(p, nu, nv)
        head = r2 < 1
        # stalk: a capsule from the base to the head
        seg = np.array([hx - pr.cx, hy - pr.cy], np.float32)
        t = np.clip(((xx - pr.cx) * seg[0] + (yy - pr.cy) * seg[1]) / max(float(seg @ seg), 1e-6), 0, 1)
        dd = np.hypot(xx - pr.cx - t * seg[0], yy - pr.cy - t * seg[1])
        ws = np.maximum((0.3 + 0.2 * t) * pr.a, 1.2)
        stalk = (dd < ws) & ~head
        inside = head | stalk
        hgt_h = np.sqrt(np.clip(1 - r2, 0, None)) * pr.a
        hgt_s = np.sqrt(np.clip(1 - (dd / ws) ** 2, 0, None)) * ws
        cos_i = np.where(head, _lit(hgt_h, pr), _lit(hgt_s, pr))
        tex = _patch(p, nu, nv)
        mix = np.where(head, 1.0, 0.35)[..., None]
        albedo = plain * (1 - mix + mix * p.tint) * (1 + 0.12 * tex[0])[..., None]
        irr = (0.92 * cos_i**1.5 + 0.08) * light
    else:
        sc = np.where(v >= 0, pr.b_out, pr.b_in)
        nu, nv = u / pr.a, v / sc
        r2 = _outline(p, nu, nv)
        inside = r2 < 1
        prof = np.clip(1 - r2, 0, None) ** p.gamma
        cos_i = _lit(prof * (pr.a * p.height), pr)
        tex = _patch(p, nu, nv)
        if p.kind == "flat":
            albedo = plain * p.tint * (1 + 0.25 * tex[0])[..., None]
            irr = wall.irradiance[box] * (0.6 + 0.6 * cos_i)
        else:
            wgt = np.clip(prof / 0.35, 0, 1)[..., None]
            albedo = plain * (1 - wgt + wgt * p.tint) * (1 + 0.12 * tex[0])[..., None]
            own = (0.92 * cos_i**1.5 + 0.08) * light
            blend = wgt[..., 0]
            irr = wall.irradiance[box] * (1 - blend) + own * blend
    spark = p.shine * (np.clip((cos_i - 0.9) / 0.1, 0, 1) ** 2 * np.clip(tex[1] + 0.3, 0, 1) + np.clip((tex[1] - 1.6) * 2, 0, 1) * cos_i**4)
    radiance = (albedo + (3.0 * spark)[..., None]) * irr[..., None]
    tol = p.size * (1 + p.height) + p.stalk + 1.0
    visible = inside & (wall.depth[box] >= pr.z_rel - tol)
    frac = float(visible.sum()) / max(1, int(inside.sum()))
    return box, visible, radiance.astype(np.float32), frac
