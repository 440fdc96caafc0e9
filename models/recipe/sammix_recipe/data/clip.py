"""Synthetic ultrasound clips: a probe sweeping through a 3-D phantom.

The phantom is a slab of tissue (depth x lateral x elevation) built from the
same ingredients as the single frames of :mod:`.ultrasound`: layered anatomy
whose boundaries bend slowly along the elevation axis, a possible vessel that
runs through the whole slab, and 2-4 lesions that are ellipsoid-ish in 3-D
(the in-plane blob of :class:`~.ultrasound.Blob` scaled by a superellipse
profile along elevation, its centre drifting a little with elevation).  The
lesions sit at different elevations with lesion-free gaps between them, so a
sweep shows lesions appear (cross-section growing from zero), grow, shrink and
leave, with empty stretches in between.

**Probe motion.**  The probe moves along elevation with a smooth random speed
profile that stops completely for 10-20 frames once or a few times, plus a
slight lateral drift and elevational tilt that are smooth functions of the
elevation reached (so they freeze when the probe stops).  The lateral drift is
an exact sub-sample shift applied as a phase ramp in the PSF spectrum.

**Temporally coherent speckle.**  Scatterers are fixed in the phantom: the
volume is a stack of independent complex Gaussian scatterer slices spaced by the
elevational correlation length; a frame at elevation ``e`` mixes the two
nearest slices with weights ``cos(pi t / 2)`` and ``sin(pi t / 2)`` (``t`` the
fractional slice position), which keeps the scatterer variance constant and
makes speckle decorrelate gradually as the probe moves.  Slices are generated
lazily from ``np.random.default_rng([seed, SLICE_STREAM, k])`` so that memory
stays small and the result does not depend on evaluation order.  While the
probe is held still, consecutive frames share all scatterers and differ only
by receiver noise (drawn per frame).

The physics chain (attenuation along beams, pulse convolution, envelope, TGC,
log compression, scan conversion) is the one of :mod:`.ultrasound`.

Also here: a minimal YUV4MPEG2 writer (mono) and reader (mono / 4:2:0 / 4:2:2 /
4:4:4, luma only) used to hand clips to the Rust runtime.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import ultrasound as us

__all__ = ["ClipPlan", "plan_clip", "render_clip", "generate_clip", "write_y4m", "read_y4m"]

# Random streams derived from the clip seed (besides the main plan stream).
SLICE_STREAM = 1
NOISE_STREAM = 2
SLICE_INDEX_OFFSET = 1 << 20  # slice indices can be slightly negative (tilt); seeds must not

# Motion.
HOLD_FRAMES = (10, 20)  # length of a stop
HOLD_COUNT_PROBS = (0.45, 0.4, 0.15)  # 1, 2 or 3 stops
HOLD_RAMP_FRAMES = 4  # smooth deceleration / acceleration around a stop
DRIFT_MAX_FRAC = 0.05  # max lateral drift, fraction of the beam lines
TILT_MAX_RAD = math.radians(2.0)  # max elevational tilt of the image plane
SLICE_PER_FRAME = (2.5, 4.0)  # elevational correlation length / mean travel per moving frame

# Phantom content.
LESION_COUNT_PROBS = (0.4, 0.4, 0.2)  # 2, 3 or 4 lesions
CLIP_LESION_DIAMETER_FRAC = (0.10, 0.35)  # of the image width
ELEV_GAP_FRAC = (0.08, 0.25)  # lesion-free elevation gaps, fraction of the field width
VESSEL_PROB = 0.5


@dataclass(frozen=True)
class ClipLesion:
    """A lesion extruded along elevation into an ellipsoid-ish body."""

    lesion: us.Lesion
    elev_centre: float  # mm
    elev_half: float  # half thickness along elevation, mm
    exponent: float  # superellipse exponent of the elevation profile (2 = ellipsoid)
    shift: tuple[float, float]  # centre drift (dx, dy) in mm per mm of elevation

    def scale(self, elev: np.ndarray) -> np.ndarray:
        """Cross-section scale in [0, 1] at the given elevations."""
        u = np.abs((np.asarray(elev, np.float32) - np.float32(self.elev_centre)) / np.float32(self.elev_half))
        inside = np.clip(1.0 - np.power(np.minimum(u, 1.0), self.exponent), 0.0, 1.0)
        return np.power(inside, np.float32(1.0 / self.exponent)).astype(np.float32)

    def offset(self, elev: float) -> tuple[float, float]:
        d = elev - self.elev_centre
        return self.shift[0] * d, self.shift[1] * d


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render a clip deterministically."""

    seed: int
    geometry: us.Geometry
    imaging: us.Imaging
    background: us.Background
    lesions: tuple[ClipLesion, ...]
    vessel: us.Vessel | None
    vessel_slope: float  # vessel depth change (mm) per mm of elevation
    travel_mm: float
    elevation: np.ndarray  # (T,) probe elevation per frame, mm
    drift: np.ndarray  # (T,) lateral probe offset, beam lines
    tilt: np.ndarray  # (T,) elevation change per beam line across the image, mm/line
    holds: tuple[tuple[int, int], ...]  # [start, stop) frames whose velocity is exactly zero
    slice_mm: float  # elevational spacing of independent scatterer slices
    max_drift: int  # whole lines of drift the scatterer slices must cover

    @property
    def n_frames(self) -> int:
        return int(self.elevation.shape[0])


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------


def _smooth_series(rng: np.random.Generator, n: int, n_nodes: int) -> np.ndarray:
    """Smooth zero-mean, roughly unit-std random series of length n."""
    if n < 2:
        return np.zeros(n, np.float32)
    nodes = np.linspace(0.0, n - 1.0, n_nodes)
    w = us.kernel_matrix(np.arange(n, dtype=np.float32), nodes, 0.7 * (nodes[1] - nodes[0]))
    return np.einsum("ik,k->i", w, rng.standard_normal(n_nodes).astype(np.float32) * 1.8)


def _hold_intervals(rng: np.random.Generator, n_frames: int) -> list[tuple[int, int]]:
    """Non-overlapping [start, stop) frame ranges where the probe stands still."""
    n_holds = 1 + int(rng.choice(3, p=HOLD_COUNT_PROBS))
    max_len = max(2, min(HOLD_FRAMES[1], n_frames // 4))
    holds: list[tuple[int, int]] = []
    for _ in range(n_holds):
        for _attempt in range(20):
            length = int(rng.integers(min(HOLD_FRAMES[0], max_len), max_len + 1))
            lo, hi = 1 + HOLD_RAMP_FRAMES, n_frames - length - HOLD_RAMP_FRAMES
            if hi <= lo:
                break
            start = int(rng.integers(lo, hi))
            if all(start + length + 2 * HOLD_RAMP_FRAMES < a or b + 2 * HOLD_RAMP_FRAMES < start for a, b in holds):
                holds.append((start, start + length))
                break
    return sorted(holds)


def _velocity_profile(rng: np.random.Generator, n_frames: int, holds: Sequence[tuple[int, int]]) -> np.ndarray:
    """Smooth positive speed (arbitrary units) that is exactly zero inside holds."""
    v = 1.0 + 0.35 * _smooth_series(rng, n_frames, max(3, n_frames // 25))
    v = np.clip(v, 0.3, None).astype(np.float64)
    t = np.arange(n_frames)
    for a, b in holds:
        before = np.clip((a - t) / HOLD_RAMP_FRAMES, 0.0, 1.0)
        after = np.clip((t - (b - 1)) / HOLD_RAMP_FRAMES, 0.0, 1.0)
        ramp = np.where(t < a, before, np.where(t >= b, after, 0.0))
        v *= 0.5 - 0.5 * np.cos(np.pi * ramp)
    v[0] = 0.0  # the first frame is at elevation 0
    return v


def _elevation_layout(
    rng: np.random.Generator, half_thicknesses: Sequence[float], width_mm: float
) -> tuple[list[float], float]:
    """Centres of lesions along elevation, separated by lesion-free gaps; returns (centres, travel)."""
    pos = _uniform_gap(rng, width_mm)
    centres = []
    for h in half_thicknesses:
        centres.append(pos + h)
        pos += 2 * h + _uniform_gap(rng, width_mm)
    return centres, pos


def _uniform_gap(rng: np.random.Generator, width_mm: float) -> float:
    return float(rng.uniform(*ELEV_GAP_FRAC) * width_mm)


def _place_clip_lesions(
    rng: np.random.Generator,
    geom: us.Geometry,
    imaging: us.Imaging,
    bg: us.Background,
    sizes: Sequence[tuple[float, float]],
    drift_mm: float,
) -> list[ClipLesion]:
    """In-plane placement of lesions whose (radius, elevation centre) are given.

    Lesions may overlap in-plane: they live at different elevations.
    """
    min_depth = bg.skin_mm + 0.3 * bg.fat_mm + 1.0
    max_depth = bg.bottom_limit(geom.depth_mm) - 0.02 * geom.depth_mm
    out = []
    for (radius, elev_centre), elev_half in sizes:
        kind = us._lesion_kind(rng)
        shift = (float(rng.normal(0.0, 0.12)), float(rng.normal(0.0, 0.08)))
        exponent = float(rng.uniform(1.8, 2.6))
        for attempt in range(30):
            if attempt and attempt % 6 == 0:
                radius *= 0.85
            lesion = us.sample_lesion(rng, 0.0, 0.0, radius, kind, geom.pixel_mm, imaging.loss_db_per_mm)
            wander = elev_half * max(abs(shift[0]), abs(shift[1]))
            reach = lesion.extent + 3 * lesion.halo_mm + wander
            lo, hi = min_depth + reach, max_depth - reach
            if hi <= lo:
                continue
            centre = geom.place_disc(rng.uniform(lo, hi), rng.uniform(-1.0, 1.0), reach, drift_mm + geom.pixel_mm)
            if centre is None:
                continue
            b = lesion.blob
            moved = us.Blob(centre[0], centre[1], b.radius, b.aspect, b.angle, b.harmonics)
            lesion = us.Lesion(**{**lesion.__dict__, "blob": moved})
            out.append(ClipLesion(lesion, elev_centre, elev_half, exponent, shift))
            break
    return out


def _sample_vessel(
    rng: np.random.Generator, geom: us.Geometry, bg: us.Background, lesions: Sequence[ClipLesion], travel: float
) -> tuple[us.Vessel | None, float]:
    if rng.random() >= VESSEL_PROB:
        return None, 0.0
    depth = geom.depth_mm
    x0, x1 = geom.lateral_extent()
    x0, x1 = x0 - 0.3 * (x1 - x0), x1 + 0.3 * (x1 - x0)
    top = bg.skin_mm + bg.fat_mm + (0.0 if geom.kind == "linear" else geom.apex_y + geom.radius_mm)
    bottom = bg.bottom_limit(depth) + (0.0 if geom.kind == "linear" else geom.apex_y + geom.radius_mm)
    radius = float(rng.uniform(0.02, 0.05) * depth)
    slope = float(rng.normal(0.0, 0.08))
    for _ in range(10):
        mean_y = rng.uniform(top + radius + 1.0, max(top + radius + 1.5, bottom - radius - 1.0))
        curve = us.SmoothCurve.sample(rng, (x0, x1), mean_y, rng.uniform(0.0, 0.04) * depth, rng.normal(0, 0.12))
        ok = True
        for cl in lesions:
            les = cl.lesion
            for e in (cl.elev_centre - cl.elev_half, cl.elev_centre, cl.elev_centre + cl.elev_half):
                dx, dy = cl.offset(e)
                vy = float(curve.at(np.array([les.blob.cx + dx]))[0]) + slope * (e - 0.5 * travel)
                if abs(vy - (les.blob.cy + dy)) < les.extent + radius + 0.03 * depth:
                    ok = False
        if ok:
            vessel = us.Vessel(
                curve,
                radius,
                (-1e4, 1e4),
                wall_db=float(rng.uniform(8.0, 15.0)),
                wall_mm=max(geom.pixel_mm, geom.dz_mm) * float(rng.uniform(0.7, 1.1)),
            )
            return vessel, slope
    return None, 0.0


def plan_clip(
    seed: int, n_frames: int = 160, size: tuple[int, int] = (256, 256), geometry: str = "linear"
) -> ClipPlan:
    """Draw the phantom and the probe trajectory of a clip."""
    if geometry not in ("linear", "sector"):
        raise ValueError(f"geometry must be 'linear' or 'sector', got {geometry!r}")
    if n_frames < 1:
        raise ValueError("n_frames must be positive")
    rng = np.random.default_rng(seed)
    geom = us.sample_geometry(rng, tuple(size), geometry)
    imaging = us.sample_imaging(rng, geometry, geom.depth_mm)
    width_mm = geom.width * geom.pixel_mm
    max_drift = int(math.ceil(DRIFT_MAX_FRAC * geom.n_lines))
    drift_mm = max_drift * geom.line_mm * (1.0 if geom.kind == "linear" else 1.6)

    # Lesion sizes first: they fix the elevation layout and so the swept range.
    count = 2 + int(rng.choice(3, p=LESION_COUNT_PROBS))
    radii = [0.5 * us._log_uniform(rng, *CLIP_LESION_DIAMETER_FRAC) * width_mm for _ in range(count)]
    halves = [r * float(rng.uniform(0.7, 1.3)) for r in radii]
    centres, travel = _elevation_layout(rng, halves, width_mm)

    grid = us.BeamGrid.for_geometry(geom, pad_lateral=us.PAD_LATERAL + max_drift)
    line_range = (float(grid.lines[0]) - max_drift, float(grid.lines[-1]) + max_drift)
    elev_cells = int(travel / (0.25 * geom.depth_mm)) + 2
    bg = us.sample_background(rng, geom, line_range, (0.0, travel), elev_cells)
    lesions = tuple(
        _place_clip_lesions(rng, geom, imaging, bg, [((r, c), h) for r, c, h in zip(radii, centres, halves)], drift_mm)
    )

    vessel, vessel_slope = _sample_vessel(rng, geom, bg, lesions, travel)

    holds = _hold_intervals(rng, n_frames) if n_frames >= 8 else []
    v = _velocity_profile(rng, n_frames, holds)
    cum = np.cumsum(v)
    elevation = travel * cum / cum[-1] if cum[-1] > 0 else np.zeros(n_frames)
    moving = max(int(np.count_nonzero(v)), 1)
    slice_mm = travel / moving * float(rng.uniform(*SLICE_PER_FRAME))

    # drift and tilt are smooth functions of the elevation reached: frozen during holds
    e_nodes = np.linspace(0.0, max(travel, 1e-3), 6)
    w = us.kernel_matrix(elevation.astype(np.float32), e_nodes, 0.7 * max(e_nodes[1] - e_nodes[0], 1e-3))
    drift = np.einsum("ik,k->i", w, rng.uniform(-1.0, 1.0, 6).astype(np.float32)) * max_drift
    drift = np.clip(drift, -max_drift, max_drift)
    tilt_angle = np.einsum("ik,k->i", w, rng.uniform(-1.0, 1.0, 6).astype(np.float32)) * TILT_MAX_RAD
    tilt = np.tan(tilt_angle) * geom.line_mm
    return ClipPlan(
        seed=int(seed),
        geometry=geom,
        imaging=imaging,
        background=bg,
        lesions=lesions,
        vessel=vessel,
        vessel_slope=vessel_slope,
        travel_mm=float(travel),
        elevation=elevation.astype(np.float64),
        drift=drift.astype(np.float64),
        tilt=tilt.astype(np.float64),
        holds=tuple(holds),
        slice_mm=float(slice_mm),
        max_drift=max_drift,
    )


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


class ScattererVolume:
    """Lazily generated stack of independent complex scatterer slices along elevation."""

    def __init__(self, seed: int, n_rows: int, first_line: int, n_lines: int, slice_mm: float):
        self.seed = seed
        self.shape = (n_rows, n_lines)
        self.first_line = first_line
        self.slice_mm = slice_mm
        self._cache: dict[int, np.ndarray] = {}

    def _slice(self, k: int) -> np.ndarray:
        if k not in self._cache:
            rng = np.random.default_rng([self.seed, SLICE_STREAM, k + SLICE_INDEX_OFFSET])
            self._cache[k] = us.complex_normal(rng, self.shape)
        return self._cache[k]

    def forget_below(self, k: int) -> None:
        for key in [key for key in self._cache if key < k]:
            del self._cache[key]

    def sample(self, elev_per_line: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """Scatterers on phantom lines ``lines`` (ints), each at its own elevation (mm)."""
        pos = np.asarray(elev_per_line, np.float64) / self.slice_mm
        k0 = np.floor(pos).astype(np.int64)
        frac = (pos - k0).astype(np.float32)
        a = np.cos(0.5 * np.pi * frac).astype(np.float32)
        b = np.sin(0.5 * np.pi * frac).astype(np.float32)
        cols = np.asarray(lines, np.int64) - self.first_line
        out = np.empty((self.shape[0], len(cols)), np.complex64)
        for k in np.unique(k0):
            sel = np.flatnonzero(k0 == k)
            c = cols[sel]
            out[:, sel] = self._slice(int(k))[:, c] * a[sel] + self._slice(int(k) + 1)[:, c] * b[sel]
        self.forget_below(int(k0.min()))
        return out


def _frame_maps(plan: ClipPlan, x: np.ndarray, y: np.ndarray, depth: np.ndarray, grid_rows: np.ndarray,
                lines: np.ndarray, elev_lines: np.ndarray, elev: float) -> us.TissueMaps:
    geom = plan.geometry
    maps = plan.background.evaluate(
        x, y, depth, grid_rows, lines, plan.imaging.alpha0, elev=elev, separable=geom.kind == "linear"
    )
    if plan.vessel is not None:
        plan.vessel.apply(maps, x, y, elev=0.0, dy=plan.vessel_slope * (elev - 0.5 * plan.travel_mm))
    for cl in plan.lesions:
        scale = cl.scale(elev_lines)[None, :]
        if not scale.any():
            continue
        dx, dy = cl.offset(elev)
        cl.lesion.apply(maps, x, y, scale=scale, dx=dx, dy=dy)
    return maps


def _frame_mask(plan: ClipPlan, t: int) -> np.ndarray:
    geom = plan.geometry
    elev, drift, tilt = plan.elevation[t], plan.drift[t], plan.tilt[t]
    mask = np.zeros((geom.height, geom.width), bool)
    x, y, lines, inside = geom.display_positions(line_offset=drift)
    probe_line = lines - np.float32(drift)
    e_pix = np.float32(elev) + np.float32(tilt) * (probe_line - np.float32(0.5 * geom.n_lines))
    for cl in plan.lesions:
        scale = cl.scale(e_pix)
        if not scale.any():
            continue
        dx, dy = cl.offset(elev)
        roi = us._roi(x, y, cl.lesion.blob.cx + dx, cl.lesion.blob.cy + dy, cl.lesion.extent + geom.pixel_mm)
        if roi is not None:
            mask[roi] |= cl.lesion.blob.signed_distance(x[roi], y[roi], scale[roi], dx, dy) > 0
    return (mask & inside).astype(np.uint8)


def render_clip(plan: ClipPlan) -> tuple[np.ndarray, np.ndarray]:
    """Render frames (T,H,W) uint8 and masks (T,H,W) uint8 of a planned clip."""
    geom, imaging = plan.geometry, plan.imaging
    pad = us.PAD_LATERAL + plan.max_drift
    base_grid = us.BeamGrid.for_geometry(geom, pad_lateral=pad)
    n_grid_lines = len(base_grid.lines)
    first_line = int(base_grid.lines[0]) - plan.max_drift - 1
    volume = ScattererVolume(plan.seed, len(base_grid.rows), first_line, n_grid_lines + 2 * plan.max_drift + 3, plan.slice_mm)
    noise_sigma = np.float32(math.sqrt(us.noise_power(imaging)))
    frames = np.empty((plan.n_frames, geom.height, geom.width), np.uint8)
    masks = np.empty((plan.n_frames, geom.height, geom.width), np.uint8)
    for t in range(plan.n_frames):
        elev, drift, tilt = float(plan.elevation[t]), float(plan.drift[t]), float(plan.tilt[t])
        whole = int(math.floor(drift))
        grid = us.BeamGrid(base_grid.rows, base_grid.lines + np.float32(whole), base_grid.line_start)
        probe_line = grid.lines - np.float32(drift)
        elev_lines = np.float32(elev) + np.float32(tilt) * (probe_line - np.float32(0.5 * geom.n_lines))
        x, y, depth = geom.beam_positions(grid.rows, grid.lines)
        maps = _frame_maps(plan, x, y, depth, grid.rows, grid.lines, elev_lines, elev)
        amp, att = us.echo_amplitude(maps, imaging, geom.dz_mm)
        field = volume.sample(elev_lines, grid.lines.astype(np.int64))
        field *= amp
        field += maps.coherent * att
        noise = us.complex_normal(np.random.default_rng([plan.seed, NOISE_STREAM, t]), field.shape)
        field += noise * noise_sigma
        frames[t] = us.beamform_to_display(field, geom, grid, imaging, line_shift=drift - whole)
        masks[t] = _frame_mask(plan, t)
    return frames, masks


def generate_clip(
    seed: int, n_frames: int = 160, size: tuple[int, int] = (256, 256), geometry: str = "linear"
) -> tuple[np.ndarray, np.ndarray]:
    """A probe sweep through a random 3-D phantom: frames (T,H,W) uint8, masks (T,H,W) uint8 in {0,1}."""
    return render_clip(plan_clip(seed, n_frames, size, geometry))


# --------------------------------------------------------------------------
# YUV4MPEG2
# --------------------------------------------------------------------------

Y4M_MAGIC = b"YUV4MPEG2"
FRAME_MAGIC = b"FRAME"


def write_y4m(path: str | os.PathLike, frames: np.ndarray, fps: int = 25) -> None:
    """Write (T,H,W) uint8 frames as a monochrome (``Cmono``) YUV4MPEG2 file."""
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be a (T,H,W) uint8 array, got {frames.dtype} {frames.shape}")
    _, h, w = frames.shape
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{int(fps)}:1 Ip A1:1 Cmono\n".encode("ascii"))
        for frame in frames:
            f.write(FRAME_MAGIC + b"\n")
            f.write(np.ascontiguousarray(frame).tobytes())


def _plane_bytes(colorspace: str, w: int, h: int) -> int:
    """Bytes per frame for a colour space (8-bit only)."""
    cw, ch = (w + 1) // 2, (h + 1) // 2
    sizes = {
        "mono": w * h,
        "420": w * h + 2 * cw * ch,
        "420jpeg": w * h + 2 * cw * ch,
        "420paldv": w * h + 2 * cw * ch,
        "420mpeg2": w * h + 2 * cw * ch,
        "422": w * h + 2 * cw * h,
        "444": 3 * w * h,
    }
    if colorspace not in sizes:
        raise ValueError(f"unsupported y4m colour space C{colorspace} (8-bit mono/420/422/444 only)")
    return sizes[colorspace]


def read_y4m(path: str | os.PathLike) -> tuple[np.ndarray, int, int]:
    """Read a YUV4MPEG2 file; returns (luma frames (T,H,W) uint8, fps numerator, fps denominator).

    Accepts ``Cmono``, ``C420``/``C420jpeg``/``C420paldv``/``C420mpeg2``,
    ``C422`` and ``C444`` (chroma planes are skipped).  Raises ``ValueError``
    naming the problem for a bad header, an unsupported colour space, a missing
    ``FRAME`` marker or a truncated frame.
    """
    with open(path, "rb") as f:
        data = f.read()
    end = data.find(b"\n")
    if end < 0:
        raise ValueError("y4m: header line is not terminated (truncated file?)")
    tokens = data[:end].split(b" ")
    if tokens[0] != Y4M_MAGIC:
        raise ValueError(f"y4m: bad magic {tokens[0][:16]!r}, expected b'YUV4MPEG2'")
    w = h = None
    fps_num, fps_den = 25, 1
    colorspace = "420jpeg"  # the format's default
    for tok in tokens[1:]:
        if not tok:
            continue
        key, val = chr(tok[0]), tok[1:].decode("ascii", errors="replace")
        try:
            if key == "W":
                w = int(val)
            elif key == "H":
                h = int(val)
            elif key == "F":
                num, den = val.split(":")
                fps_num, fps_den = int(num), int(den)
            elif key == "C":
                colorspace = val
        except ValueError as exc:
            raise ValueError(f"y4m: malformed header field {tok!r}") from exc
    if w is None or h is None or w <= 0 or h <= 0:
        raise ValueError("y4m: header lacks a positive width (W) and height (H)")
    if fps_den <= 0 or fps_num <= 0:
        raise ValueError(f"y4m: invalid frame rate {fps_num}:{fps_den}")
    frame_bytes = _plane_bytes(colorspace, w, h)
    frames = []
    pos = end + 1
    while pos < len(data):
        idx = len(frames)
        line_end = data.find(b"\n", pos)
        if line_end < 0 or not data.startswith(FRAME_MAGIC, pos):
            raise ValueError(f"y4m: frame {idx}: missing FRAME marker at byte {pos} (truncated or corrupt)")
        start = line_end + 1
        if start + frame_bytes > len(data):
            raise ValueError(
                f"y4m: frame {idx} truncated: expected {frame_bytes} bytes, got {len(data) - start}"
            )
        frames.append(np.frombuffer(data, np.uint8, w * h, start).reshape(h, w))
        pos = start + frame_bytes
    out = np.stack(frames) if frames else np.zeros((0, h, w), np.uint8)
    return out, fps_num, fps_den
