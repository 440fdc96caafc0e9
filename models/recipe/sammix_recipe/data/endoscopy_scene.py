"""The colon seen from the scope: a tube with haustral folds, lit from the lens.

World coordinates: the colon is a tube along ``z`` (mm) with angle ``theta``
(rad) around its axis.  The scope sits on the axis at ``z_cam`` looking down the
tube, with an equidistant fish-eye lens (image radius ``r = f * phi``, ``phi``
the angle from the optical axis) centred on the *vanishing point* of the lumen
(which need not be the centre of the frame: the tip is bent toward a wall).
The wall's radius ``R(theta)`` carries a few harmonics (the rounded-triangular
colon) and a camera offset term (the tip nearer one wall).  Haustral folds are
thin ridges ``h(z, theta)`` whose height follows a clipped angular profile, so
most are arcs rather than full rings.

**Visibility.**  For every angle a ray at ``phi`` hits the first wall point
whose apparent angle ``atan2(R - h, z)`` falls below ``phi``: a running minimum
over depth, inverted per angle bin into a (theta, phi) -> z table, so folds hide
the wall behind them and show bright crests over dark gaps.

**Shading.**  One light at the lens: irradiance ``cos(incidence) / d**2`` with
the fold's slopes in the normal, a little ambient (inter-reflection), the
mucosa albedo (a colour picked per scene, slow colour variation, a fine grain,
thin dark-red branching vessels drawn into a texture in wall coordinates) and
small saturated glints where a wet-surface noise peaks on wall facing the lens.
Texture contrast fades where one pixel covers more than about a millimetre of
wall (far wall), which also keeps far wall from aliasing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

__all__ = ["Colon", "Pose", "Wall", "sample_colon", "render_wall", "cross_section", "focal_px", "PHI_MAX"]

PHI_MAX = 1.5  # widest ray angle used (rad); anything wider is treated as the nearest wall
FOCAL_FRAC = 0.5  # focal length of the equidistant lens, fraction of min(H, W)
Z_FAR_R = 8.0  # depth beyond which the lumen is black (it bends away), in colon radii
RADIUS_MM = (18.0, 30.0)
FOLD_SPACING_MM = (10.0, 24.0)
FOLD_HEIGHT_R = (0.10, 0.30)  # fold height, fraction of the radius
FOLD_WIDTH_MM = (1.2, 3.0)  # half width (Gaussian sigma) of a fold's ridge
FOLD_DZ_MM = 0.5  # depth step of the fold table
N_THETA = 256  # angle bins of the visibility table
N_PHI = 256  # ray-angle bins of the visibility table
TEX_MM = 0.3  # wall texture resolution
VESSEL_AREA_MM2 = 500.0  # wall area per vessel tree
VESSEL_RGB = np.array([0.22, 0.62, 0.55], np.float32)  # albedo lost at full vessel contrast
AMBIENT = 0.12
HAZE_R = 4.0  # extra fall-off with depth (the light's cone, the lumen bending away), in radii
SOFTEN_PX = 0.6  # optics' blur (and anti-aliasing of fold edges), pixels
# Mucosa albedos (linear RGB): pink, orange, red, pale.
MUCOSA = np.array(
    [[0.80, 0.22, 0.17], [0.82, 0.26, 0.10], [0.72, 0.12, 0.08], [0.80, 0.32, 0.26]], np.float32
)


@dataclass(frozen=True)
class Colon:
    """A stretch of colon in world coordinates, with its wall texture."""

    radius: float  # mm
    harmonics: np.ndarray  # (2, 2): cos/sin of theta*2 and theta*3, relative to the radius
    fold_z: np.ndarray  # (K,) mm
    fold_w: np.ndarray  # (K,) ridge sigma, mm
    fold_h: np.ndarray  # (K,) height, mm
    fold_prof: np.ndarray  # (K, 7): offset, cos/sin of theta*1..3 of the angular profile
    albedo: np.ndarray  # (3,) linear RGB
    tint: np.ndarray  # (Q, 4 + 3): k_z, m_theta, phase, amp, rgb direction
    texture: np.ndarray  # (NU, NZ, 3) around x along the tube: vessel [0, 1], grain, glint ~N(0, 1)
    tex_z0: float  # world z of texture row 0

    def fold_profile(self, theta: np.ndarray) -> np.ndarray:
        """(K, len(theta)) angular height profile of each fold, in [0, 1]."""
        p = self.fold_prof
        t = theta[None, :]
        s = p[:, :1] + sum(p[:, 2 * m - 1 : 2 * m] * np.cos(m * t) + p[:, 2 * m : 2 * m + 1] * np.sin(m * t) for m in (1, 2, 3))
        return np.clip(s, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Pose:
    """Where the scope's tip is and where it looks."""

    z: float  # depth of the lens along the colon, mm
    roll: float  # image angle = world angle + roll
    vp: tuple[float, float]  # vanishing point of the lumen in the image, pixels (x, y)
    offset: float  # tip nearer one wall by this fraction of the radius
    offset_angle: float  # world angle of that wall


@dataclass(frozen=True)
class Wall:
    """The rendered wall of one frame."""

    radiance: np.ndarray  # (H, W, 3) float32, linear, before exposure
    albedo: np.ndarray  # (H, W, 3) float32, mucosa albedo without vessels
    irradiance: np.ndarray  # (H, W) float32, light reaching the visible wall point
    depth: np.ndarray  # (H, W) float32, depth of the visible wall point in front of the lens, mm


def focal_px(size: tuple[int, int]) -> float:
    return FOCAL_FRAC * min(size)


def cross_section(colon: Colon, pose: Pose, theta: np.ndarray | float) -> np.ndarray:
    """Distance from the lens to the wall (mm) at world angle ``theta``, folds aside."""
    t = np.asarray(theta, np.float32)
    hm = colon.harmonics
    shape = 1.0 + hm[0, 0] * np.cos(2 * t) + hm[0, 1] * np.sin(2 * t) + hm[1, 0] * np.cos(3 * t) + hm[1, 1] * np.sin(3 * t)
    shape = shape - pose.offset * np.cos(t - pose.offset_angle)
    return (colon.radius * shape).astype(np.float32)


def _vessel_texture(rng: np.random.Generator, nu: int, nz: int) -> np.ndarray:
    img = Image.new("L", (nz, nu), 0)  # PIL's (width, height): rows are around the tube
    draw = ImageDraw.Draw(img)
    n_trees = max(1, int(round(nu * nz * TEX_MM**2 / VESSEL_AREA_MM2)))
    for _ in range(n_trees):
        stack = [(rng.uniform(0, nu), rng.uniform(0, nz), rng.uniform(0, 2 * math.pi), math.exp(rng.uniform(math.log(0.3), math.log(1.0))), 0)]
        shade = int(rng.integers(90, 256))
        while stack:
            u, z, ang, width, depth = stack.pop()
            pts = [(u, z)]
            for _ in range(int(rng.integers(4, 12))):
                ang += float(rng.normal(0.0, 0.45))
                step = rng.uniform(1.5, 4.0) / TEX_MM
                u, z = u + step * math.cos(ang), z + step * math.sin(ang)
                pts.append((u, z))
                if depth < 3 and width > 0.2 and rng.random() < 0.22:
                    stack.append((u, z, ang + rng.choice([-1, 1]) * rng.uniform(0.5, 1.1), width * 0.7, depth + 1))
            w_px = max(1, int(round(width / TEX_MM)))
            us_ = [q[0] for q in pts]
            for du in [0] + ([nu] if min(us_) < 8 else []) + ([-nu] if max(us_) > nu - 8 else []):
                draw.line([(z_ + 0.0, u_ + du) for u_, z_ in pts], fill=shade, width=w_px)
    return ndimage.gaussian_filter(np.asarray(img, np.float32) * np.float32(1 / 255), 0.7, mode=("wrap", "nearest"))


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    n = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode=("wrap", "nearest"))
    return n / np.float32(n.std() + 1e-6)


def sample_colon(rng: np.random.Generator, z_lo: float, z_hi: float, tex_hi: float | None = None) -> Colon:
    """A colon with folds over [z_lo, z_hi] and wall texture over [z_lo, tex_hi] (mm)."""
    radius = float(rng.uniform(*RADIUS_MM))
    harmonics = rng.uniform(-0.06, 0.06, (2, 2)).astype(np.float32)
    zs, z = [], z_lo + float(rng.uniform(0, FOLD_SPACING_MM[1]))
    while z < z_hi:
        zs.append(z)
        z += float(rng.uniform(*FOLD_SPACING_MM))
    k = len(zs)
    prof = np.concatenate([rng.uniform(0.1, 0.7, (k, 1)), rng.normal(0.0, 0.45, (k, 6))], axis=1).astype(np.float32)
    q = 4
    tint = np.concatenate(
        [
            (2 * math.pi / rng.uniform(25, 90, (q, 1))) * rng.choice([-1, 1], (q, 1)),
            rng.integers(-2, 3, (q, 1)),
            rng.uniform(0, 2 * math.pi, (q, 1)),
            rng.uniform(0.05, 0.18, (q, 1)),
            rng.normal(0.0, 0.6, (q, 1)) + rng.normal(0.0, 0.8, (q, 1)) * [[0.0, 0.6, 0.5]],
        ],
        axis=1,
    ).astype(np.float32)
    mix = rng.dirichlet(np.full(len(MUCOSA), 0.5)).astype(np.float32)
    albedo = (mix @ MUCOSA) * np.float32(rng.uniform(0.85, 1.1))
    tex_hi = z_lo + 3.5 * radius if tex_hi is None else tex_hi
    nu, nz = int(round(2 * math.pi * radius / TEX_MM)), int(round((tex_hi - z_lo) / TEX_MM)) + 2
    texture = np.stack([_vessel_texture(rng, nu, nz), _noise(rng, (nu, nz), 1.0), _noise(rng, (nu, nz), 2.0)], axis=-1)
    return Colon(
        radius=radius,
        harmonics=harmonics,
        fold_z=np.array(zs, np.float32),
        fold_w=rng.uniform(*FOLD_WIDTH_MM, k).astype(np.float32),
        fold_h=(rng.uniform(*FOLD_HEIGHT_R, k) * radius).astype(np.float32),
        fold_prof=prof,
        albedo=albedo.astype(np.float32),
        tint=tint,
        texture=texture,
        tex_z0=z_lo,
    )


def bilinear(tab: np.ndarray, i: np.ndarray, j: np.ndarray, wrap_i: bool) -> np.ndarray:
    """Sample ``tab`` (NI, NJ, C) at fractional indices -> (..., C); axis i wraps or clamps, j clamps."""
    ni, nj, nc = tab.shape
    i0 = np.floor(i)
    fi = (i - i0).astype(np.float32)[..., None]
    i0 = i0.astype(np.intp)
    i1 = i0 + 1
    if wrap_i:
        i0 %= ni
        i1 %= ni
    else:
        i0 = np.clip(i0, 0, ni - 1)
        i1 = np.clip(i1, 0, ni - 1)
    jc = np.clip(j, 0, nj - 1)
    j0 = np.minimum(jc.astype(np.intp), nj - 2)
    fj = (jc - j0).astype(np.float32)[..., None]
    flat = tab.reshape(-1, nc)
    a, b = i0 * nj + j0, i1 * nj + j0
    top = flat[a] * (1 - fj) + flat[a + 1] * fj
    bot = flat[b] * (1 - fj) + flat[b + 1] * fj
    return top * (1 - fi) + bot * fi


def render_wall(colon: Colon, pose: Pose, size: tuple[int, int]) -> Wall:
    h, w = size
    f = focal_px(size)
    r_far = colon.radius * Z_FAR_R
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    dx, dy = xx + 0.5 - pose.vp[0], yy + 0.5 - pose.vp[1]
    theta = np.mod(np.arctan2(dy, dx) - pose.roll, 2 * math.pi).astype(np.float32)
    phi = np.sqrt(dx * dx + dy * dy) / np.float32(f)

    # Fold heights on a (theta, world z) grid over the visible depths.
    th = np.arange(N_THETA, dtype=np.float32) * np.float32(2 * math.pi / N_THETA)
    rad = cross_section(colon, pose, th)
    z_near = float(rad.min()) / math.tan(PHI_MAX)
    zg0 = pose.z + z_near
    nzg = int(math.ceil((r_far - z_near) / FOLD_DZ_MM)) + 2
    zg = zg0 + np.arange(nzg, dtype=np.float32) * np.float32(FOLD_DZ_MM)
    hgrid = np.zeros((N_THETA, nzg), np.float32)
    prof = colon.fold_profile(th)
    for k in np.nonzero((colon.fold_z > zg[0] - 4 * colon.fold_w) & (colon.fold_z < zg[-1] + 4 * colon.fold_w))[0]:
        a = max(0, int((colon.fold_z[k] - 4 * colon.fold_w[k] - zg0) / FOLD_DZ_MM))
        b = min(nzg, int((colon.fold_z[k] + 4 * colon.fold_w[k] - zg0) / FOLD_DZ_MM) + 2)
        g = np.exp(-0.5 * ((zg[a:b] - colon.fold_z[k]) / colon.fold_w[k]) ** 2)
        hgrid[:, a:b] += (colon.fold_h[k] * prof[k])[:, None] * g[None, :]
    hz = np.gradient(hgrid, FOLD_DZ_MM, axis=1)
    hu = (np.roll(hgrid, -1, 0) - np.roll(hgrid, 1, 0)) / (2 * (2 * math.pi / N_THETA) * rad[:, None])
    fold = np.stack([hgrid, hz.astype(np.float32), hu.astype(np.float32)], axis=-1)

    # Visibility table: for each angle bin, depth of the first wall point along each ray angle.
    phi_lo = math.atan2(float(rad.min()), r_far)
    phis = np.linspace(phi_lo, PHI_MAX, N_PHI, dtype=np.float32)
    zs = rad[:, None] / np.tan(phis)[None, :]  # (T, P), depth decreasing along P
    zs = np.minimum(zs, r_far)
    hs = bilinear(hgrid[..., None], np.repeat(np.arange(N_THETA, dtype=np.float32)[:, None], N_PHI, 1), (zs + pose.z - zg0) / FOLD_DZ_MM, False)[..., 0]
    app = np.arctan2(rad[:, None] - hs, zs)
    seen = np.minimum.accumulate(app[:, ::-1], axis=1)[:, ::-1]  # running min from the lens outward
    offs = 4.0 * np.arange(N_THETA, dtype=np.float32)[:, None]
    ztab = np.interp((phis[None, :] + offs).ravel(), (seen + offs).ravel(), zs.ravel()).reshape(N_THETA, N_PHI)
    ti = theta * np.float32(N_THETA / (2 * math.pi))
    depth = _depth_lookup(ztab.astype(np.float32), ti, (phi - phi_lo) / np.float32(phis[1] - phis[0]))
    hh, hzz, huu = np.moveaxis(bilinear(fold, ti, (depth + np.float32(pose.z - zg0)) / np.float32(FOLD_DZ_MM), True), -1, 0)
    t0 = np.floor(ti)
    ft = ti - t0
    t0 = t0.astype(np.intp) % N_THETA
    rho = rad[t0] * (1 - ft) + rad[(t0 + 1) % N_THETA] * ft - hh

    # Irradiance from a light at the lens.
    d2 = depth * depth + rho * rho
    d = np.sqrt(d2)
    cos_i = np.clip((rho + hzz * depth) / (d * np.sqrt(1 + hzz * hzz + huu * huu)), 0.0, 1.0)
    irr = (cos_i * np.float32(1 - AMBIENT) + np.float32(AMBIENT)) * (np.float32(colon.radius**2) / d2)
    irr *= np.exp(depth * np.float32(-1.0 / (HAZE_R * colon.radius)))

    # Albedo: scene colour, slow tint, grain and vessels (faded where a pixel covers > ~1 mm of wall).
    zw = depth + np.float32(pose.z)
    var = np.zeros((3,) + depth.shape, np.float32)
    for kz, mt, ph, amp, *rgb in colon.tint:
        var += np.cos(kz * zw + mt * theta + ph)[None] * (amp * np.array(rgb, np.float32))[:, None, None]
    albedo = colon.albedo[:, None, None] * np.exp(var)
    tu = theta * np.float32(colon.radius / TEX_MM)
    tz = (zw - np.float32(colon.tex_z0)) / np.float32(TEX_MM)
    vessel, grain, glint = np.moveaxis(bilinear(colon.texture, tu, tz, True), -1, 0)
    footprint = d2 / (np.maximum(rho, 1e-3) * np.float32(f))  # mm of wall per pixel, along the tube
    fade = np.clip((1.3 - footprint) / 0.9, 0.0, 1.0)
    albedo *= 1 + np.float32(0.07) * grain * fade
    plain = albedo.copy()
    albedo *= 1 - (vessel * fade)[None] * VESSEL_RGB[:, None, None]
    spark = np.clip((glint - 2.9) * 2.0, 0.0, 1.0) * fade * cos_i**2 * np.float32(3.0)
    radiance = ndimage.gaussian_filter((albedo + spark[None]) * irr[None], (0, SOFTEN_PX, SOFTEN_PX))
    return Wall(
        radiance=np.moveaxis(radiance, 0, -1).copy(),
        albedo=np.moveaxis(plain, 0, -1).copy(),
        irradiance=irr.astype(np.float32),
        depth=depth.astype(np.float32),
    )



def _depth_lookup(ztab: np.ndarray, ti: np.ndarray, pj: np.ndarray) -> np.ndarray:
    """Depth at fractional (angle bin, ray-angle bin): linear along the ray angle; across
    angle bins linear where the two bins agree, else the nearer bin (an occluding edge)."""
    n = ztab.shape[0]
    t0 = np.floor(ti).astype(np.intp)
    ft = (ti - t0).astype(np.float32)
    t0 %= n
    z0 = bilinear(ztab[..., None], t0.astype(np.float32), pj, True)[..., 0]
    z1 = bilinear(ztab[..., None], ((t0 + 1) % n).astype(np.float32), pj, True)[..., 0]
    near = np.where(ft < 0.5, z0, z1)
    smooth = np.abs(z1 - z0) < 1.0 + 0.05 * np.minimum(z0, z1)
    return np.where(smooth, z0 + (z1 - z0) * ft, near)
