"""Physics-shaped synthetic B-mode ultrasound frames with lesion masks.

No ultrasound dataset can be downloaded for this project, so the recipe renders
its own frames.  The renderer follows the usual image-formation chain of a
B-mode scanner, simplified to what shapes the *look* of the displayed image:

1. **Tissue model.**  The imaged slab is described by an echogenicity map
   (backscatter strength in dB relative to "ordinary" soft tissue), an
   attenuation map (dB/cm/MHz) and a small coherent (specular) component.
   Maps are evaluated analytically at the Cartesian position of every beam
   sample, so the same scene can be sampled on a linear (rectangular) grid or on
   the polar grid of a sector / curvilinear probe.  The scene holds a bright
   skin band, a hypoechoic subcutaneous fat band with septa, layers separated by
   bright curved fascia lines (muscle layers carry striations), smooth
   echogenicity variation, anechoic vessels with bright walls, occasional
   specular reflectors (some with a shadow) and the target lesions.
2. **Scatterers.**  Sub-resolution point scatterers are modelled as one complex
   Gaussian amplitude per beam sample whose variance follows the echogenicity
   map (fully developed speckle).  Attenuation is applied to the scatterer
   amplitude: the round-trip loss at depth z is ``2 f * integral(alpha dz)``
   accumulated *along each beam*, so a low-attenuation lesion (cyst) leaves a
   bright band behind it (posterior enhancement) and a high-attenuation lesion
   leaves a dark band (posterior shadow), vertical for linear probes and radial
   for sector probes.  Receiver noise is added to the scatterer field so that
   it is band-limited by the same pulse.
3. **Pulse / point spread function.**  The analytic pulse is a Gaussian
   envelope along the beam times a complex carrier of a few cycles, and a
   Gaussian beam profile across beams.  The convolution is one FFT of the
   whole field, a product with the (analytic, closed-form) PSF spectrum and one
   inverse FFT; its magnitude is the envelope of the RF signal, i.e. the same
   result as convolving with a real ``envelope * cos(carrier)`` pulse followed
   by Hilbert-transform envelope detection.  The speckle grain size follows the
   transmit frequency (higher frequency: finer speckle, stronger attenuation).
   Because frames are displayed on a 256-pixel grid, the resolution cell is
   clamped to at least ~1 pixel (a scanner low-pass filters before decimating
   to its display grid).
4. **Time gain compensation, log compression, display.**  A TGC curve
   (smooth slider ripples on top of a partial compensation of the expected
   tissue attenuation) is applied to the envelope, which is then log compressed
   to a dynamic range of 48-62 dB, passed through a mild gray map and
   quantised to uint8 like an 8-bit capture-card frame.
5. **Geometry.**  Linear probes image a rectangle.  Sector / curvilinear probes
   are rendered on a (depth, angle) grid and scan converted to the display
   (bilinear resampling with ``scipy.ndimage.map_coordinates``); everything
   outside the fan is black.

Lesions are smooth irregular blobs (an ellipse whose radius carries a few random
Fourier harmonics) of four acoustic types: anechoic cysts (near black, thin
bright capsule, posterior enhancement), hypoechoic (darker, often posterior
shadowing, soft margins), hyperechoic (brighter, sometimes a hypoechoic halo)
and mixed (heterogeneous solid part with cystic areas).  The mask is the union
of the lesion regions evaluated directly on the display grid (clipped to the
fan for sector frames).

The module is numpy/scipy only and deterministic: every random number comes
from ``np.random.default_rng(seed)`` (or generators seeded by ``[seed, ...]``
in :mod:`.clip`), so a seed reproduces a frame bit for bit across processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

__all__ = [
    "UltrasoundFrame",
    "generate_frame",
    "generate_dataset",
]

# --------------------------------------------------------------------------
# Named constants
# --------------------------------------------------------------------------

SPEED_OF_SOUND_MM_US = 1.54
ANECHOIC_DB = -50.0  # echogenicity of fluid, relative to soft tissue
BLOOD_DB = -38.0  # blood is faintly echogenic
MIN_SIGMA_AXIAL = 0.8  # PSF clamp, in samples (display-resolution limit)
MIN_SIGMA_LATERAL = 1.2  # PSF clamp, in beam lines
MAX_SIGMA_LATERAL = 2.6

# Frame-level parameter ranges.
LINEAR_FREQ_MHZ = (6.0, 13.0)
LINEAR_DEPTH_MM = (25.0, 60.0)
SECTOR_FREQ_MHZ = (2.5, 6.0)
SECTOR_DEPTH_MM = (70.0, 170.0)
CURVILINEAR_RADIUS_MM = (15.0, 60.0)
PHASED_RADIUS_MM = (1.0, 5.0)
SECTOR_HALF_ANGLE_DEG = (25.0, 42.0)
DYNAMIC_RANGE_DB = (48.0, 62.0)
TISSUE_GRAY = (0.38, 0.58)  # displayed level (0..1) of average soft tissue
NOISE_BELOW_DISPLAY_DB = (18.0, 35.0)  # receiver noise after full-depth TGC, below average tissue
ROUND_TRIP_LOSS_DB = (25.0, 60.0)  # tissue attenuation at full depth, before TGC

# Lesion statistics.
LESION_COUNT_PROBS = (0.70, 0.22, 0.08)  # 1, 2, 3 lesions when not empty
LESION_KIND_PROBS = {"anechoic": 0.25, "hypoechoic": 0.35, "hyperechoic": 0.18, "mixed": 0.22}
# Diameter, as a fraction of the image width, log-uniform. The lower end is 10 %
# (about 25 px in a 256-px frame, 4 mm in a 4 cm field): the tiny SAM's masks
# come from a 64×64 grid (4 px per cell), and below this the whole lesion is a
# handful of cells, so the bundled model is specified for lesions from 10 %.
LESION_DIAMETER_FRAC = (0.10, 0.45)
LESION_GAP_MM_FRAC = 0.02  # minimum gap between lesions, fraction of the field width

# Padding of the beam grid (samples) so that the periodic FFT convolution
# does not wrap bright structures from one edge onto the other.
PAD_AXIAL = 8
PAD_LATERAL = 6


# --------------------------------------------------------------------------
# Public result type
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class UltrasoundFrame:
    """One displayed B-mode frame and its lesion mask."""

    image: np.ndarray  # (H, W) uint8 displayed B-mode frame
    mask: np.ndarray  # (H, W) uint8 in {0, 1}: union of all target lesions
    present: bool  # True iff mask has any pixel set


# --------------------------------------------------------------------------
# Small numeric helpers
# --------------------------------------------------------------------------


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def kernel_matrix(coords: np.ndarray, nodes: np.ndarray, width: float) -> np.ndarray:
    """Row-normalised Gaussian interpolation weights, shape (len(coords), len(nodes))."""
    d = (np.asarray(coords, np.float32)[:, None] - np.asarray(nodes, np.float32)[None, :]) / width
    w = np.exp(-0.5 * d * d)
    w /= w.sum(axis=1, keepdims=True)
    return w.astype(np.float32)


@dataclass(frozen=True)
class SmoothField:
    """Smooth random field on the beam grid: coarse node values, Gaussian-interpolated.

    ``values`` has shape (n_elev, n_row_nodes, n_line_nodes); the elevation axis
    lets :mod:`.clip` use the same field as a 3-D volume (frames use one node).
    Evaluation is two small matrix products, i.e. essentially free.
    """

    values: np.ndarray
    row_nodes: np.ndarray
    line_nodes: np.ndarray
    elev_nodes: np.ndarray

    @staticmethod
    def sample(
        rng: np.random.Generator,
        n_rows: int,
        line_range: tuple[float, float],
        cells: tuple[int, int],
        elev_range: tuple[float, float] = (0.0, 0.0),
        elev_cells: int = 1,
        amplitude: float = 1.0,
    ) -> "SmoothField":
        nr, nl = cells
        row_nodes = np.linspace(-0.5 * n_rows / nr, n_rows * (1 + 0.5 / nr), nr + 2)
        line_nodes = np.linspace(line_range[0], line_range[1], nl + 2)
        elev_nodes = np.linspace(elev_range[0], elev_range[1], max(elev_cells, 1))
        # Gaussian interpolation shrinks the variance; 1.8 restores roughly unit std.
        vals = rng.standard_normal((len(elev_nodes), nr + 2, nl + 2)).astype(np.float32) * (1.8 * amplitude)
        return SmoothField(vals, row_nodes, line_nodes, elev_nodes)

    def evaluate(self, rows: np.ndarray, lines: np.ndarray, elev: float = 0.0) -> np.ndarray:
        if len(self.elev_nodes) > 1:
            we = kernel_matrix(np.array([elev]), self.elev_nodes, self.elev_nodes[1] - self.elev_nodes[0])[0]
            grid = np.einsum("k,kij->ij", we, self.values)
        else:
            grid = self.values[0]
        my = kernel_matrix(rows, self.row_nodes, 0.7 * (self.row_nodes[1] - self.row_nodes[0]))
        ml = kernel_matrix(lines, self.line_nodes, 0.7 * (self.line_nodes[1] - self.line_nodes[0]))
        # einsum rather than `@`: these products are tiny, and multi-threaded BLAS
        # start-up costs more than the arithmetic (and fights data-loader workers).
        return np.einsum("ik,kj->ij", np.einsum("ik,kj->ij", my, grid.astype(np.float32)), ml.T)


@dataclass(frozen=True)
class SmoothCurve:
    """A smooth random curve y = c(x) (mm), optionally varying with elevation."""

    x_nodes: np.ndarray
    elev_nodes: np.ndarray
    values: np.ndarray  # (n_elev, n_x) node depths in mm

    @staticmethod
    def sample(
        rng: np.random.Generator,
        x_range: tuple[float, float],
        mean_y: float,
        amplitude: float,
        slope: float,
        n_nodes: int = 5,
        elev_range: tuple[float, float] = (0.0, 0.0),
        elev_nodes: int = 1,
        elev_amplitude: float = 0.0,
    ) -> "SmoothCurve":
        xs = np.linspace(x_range[0], x_range[1], n_nodes)
        es = np.linspace(elev_range[0], elev_range[1], max(elev_nodes, 1))
        base = mean_y + slope * (xs - xs.mean()) + amplitude * rng.standard_normal(n_nodes)
        drift = elev_amplitude * rng.standard_normal((len(es), 1)) + 0.5 * elev_amplitude * rng.standard_normal(
            (len(es), n_nodes)
        )
        return SmoothCurve(xs, es, (base[None, :] + drift).astype(np.float64))

    def table(self, elev: float = 0.0, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
        if len(self.elev_nodes) > 1:
            we = kernel_matrix(np.array([elev]), self.elev_nodes, self.elev_nodes[1] - self.elev_nodes[0])[0]
            vals = np.einsum("k,kj->j", we, self.values)
        else:
            vals = self.values[0]
        span = self.x_nodes[-1] - self.x_nodes[0]
        tx = np.linspace(self.x_nodes[0] - 0.1 * span, self.x_nodes[-1] + 0.1 * span, n)
        w = kernel_matrix(tx, self.x_nodes, 0.6 * (self.x_nodes[1] - self.x_nodes[0]))
        return tx, np.einsum("ik,k->i", w, vals.astype(np.float32))

    def at(self, x: np.ndarray, elev: float = 0.0) -> np.ndarray:
        tx, ty = self.table(elev)
        return np.interp(x, tx, ty).astype(np.float32)


@dataclass(frozen=True)
class FibreTexture:
    """Thin bright parallel lines (muscle perimysium, fat septa) in dB.

    A 1-D random profile of narrow Gaussian peaks is tabulated along the
    coordinate ``u = y - slope * x + wiggle(x)`` and looked up with ``np.interp``.
    """

    u0: float
    step: float
    table: np.ndarray
    slope: float
    wiggle_amp: float
    wiggle_k: float
    wiggle_phase: float

    @staticmethod
    def sample(
        rng: np.random.Generator,
        u_range: tuple[float, float],
        spacing_mm: float,
        width_mm: float,
        peak_db: float,
        slope: float,
    ) -> "FibreTexture":
        step = max(width_mm / 2.5, 0.02)
        u0 = u_range[0]
        n = int((u_range[1] - u_range[0]) / step) + 2
        n_lines = int((u_range[1] - u_range[0]) / spacing_mm) + 1
        centres = rng.uniform(0.0, n - 1.0, n_lines).astype(np.int64)
        amps = peak_db * rng.uniform(0.4, 1.0, n_lines)
        impulses = np.bincount(centres, weights=amps, minlength=n)
        sigma = width_mm / step
        tab = ndimage.gaussian_filter1d(impulses, sigma, mode="constant") * (math.sqrt(2 * math.pi) * sigma)
        return FibreTexture(
            u0,
            step,
            np.minimum(tab, 1.3 * peak_db).astype(np.float32),
            slope,
            wiggle_amp=float(rng.uniform(0.0, 2.0 * spacing_mm)),
            wiggle_k=float(rng.uniform(0.02, 0.12)),
            wiggle_phase=float(rng.uniform(0, 2 * np.pi)),
        )

    def at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u = y - self.slope * x + self.wiggle_amp * np.sin(self.wiggle_k * x + self.wiggle_phase)
        idx = (u - self.u0) * np.float32(1.0 / self.step)
        return np.interp(idx, self._index, self.table).astype(np.float32)

    @property
    def _index(self) -> np.ndarray:
        return np.arange(len(self.table), dtype=np.float32)


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """Probe geometry: maps beam samples (row = depth, line = beam) and display pixels to mm.

    Phantom coordinates: x lateral (0 at the image centre line), y downwards
    from the top of the display (mm).  For sector probes the apex sits at
    ``(0, apex_y)`` and the fan spans radii ``[radius, radius + depth]`` and
    angles ``[-half_angle, half_angle]``.
    """

    kind: str  # "linear" | "sector"
    height: int
    width: int
    n_rows: int
    n_lines: int
    depth_mm: float
    pixel_mm: float  # display pixel size
    radius_mm: float = 0.0
    half_angle: float = 0.0
    apex_y: float = 0.0

    # -- construction ------------------------------------------------------
    @staticmethod
    def linear(size: tuple[int, int], depth_mm: float) -> "Geometry":
        h, w = size
        return Geometry("linear", h, w, h, w, depth_mm, depth_mm / h)

    @staticmethod
    def sector(size: tuple[int, int], depth_mm: float, radius_mm: float, half_angle: float) -> "Geometry":
        h, w = size
        extent_y = radius_mm + depth_mm - radius_mm * math.cos(half_angle)
        extent_x = 2.0 * (radius_mm + depth_mm) * math.sin(half_angle)
        pixel = max(extent_y / (h - 2.0), extent_x / (w - 2.0))
        apex_y = pixel - radius_mm * math.cos(half_angle)
        return Geometry("sector", h, w, h, w, depth_mm, pixel, radius_mm, half_angle, apex_y)

    # -- beam grid -----------------------------------------------------------
    @property
    def dz_mm(self) -> float:
        """Axial sample spacing (mm)."""
        return self.depth_mm / self.n_rows

    @property
    def dtheta(self) -> float:
        return 2.0 * self.half_angle / self.n_lines

    @property
    def line_mm(self) -> float:
        """Lateral spacing of beam lines (mm) for linear probes, at mid depth for sector ones."""
        if self.kind == "linear":
            return self.pixel_mm
        return (self.radius_mm + 0.5 * self.depth_mm) * self.dtheta

    def beam_positions(self, rows: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Phantom (x, y) and along-beam depth (mm) of samples; all (len(rows), len(lines)) float32."""
        depth = ((np.asarray(rows, np.float32) + 0.5) * self.dz_mm)[:, None]
        lines = np.asarray(lines, np.float32)
        if self.kind == "linear":
            x = ((lines + 0.5 - 0.5 * self.n_lines) * self.pixel_mm)[None, :]
            shape = (depth.shape[0], x.shape[1])
            return (
                np.broadcast_to(x, shape).astype(np.float32),
                np.broadcast_to(depth, shape).astype(np.float32),
                np.broadcast_to(depth, shape).astype(np.float32),
            )
        theta = (-self.half_angle + (lines + 0.5) * self.dtheta)[None, :]
        rho = self.radius_mm + depth
        x = (rho * np.sin(theta)).astype(np.float32)
        y = (self.apex_y + rho * np.cos(theta)).astype(np.float32)
        return x, y, np.broadcast_to(depth, x.shape).astype(np.float32)

    # -- display grid ---------------------------------------------------------
    def display_to_beam(self, line_offset: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fractional (row, line) beam coordinates of every display pixel and the in-field mask."""
        h, w = self.height, self.width
        if self.kind == "linear":
            rows = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))
            lines = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :] + line_offset, (h, w))
            return rows, lines, np.ones((h, w), bool)
        x = ((np.arange(w, dtype=np.float32) + 0.5 - 0.5 * w) * self.pixel_mm)[None, :]
        y = ((np.arange(h, dtype=np.float32) + 0.5) * self.pixel_mm - self.apex_y)[:, None]
        rho = np.sqrt(x * x + y * y)
        theta = np.arctan2(x, y)
        rows = (rho - self.radius_mm) / self.dz_mm - 0.5
        lines = (theta + self.half_angle) / self.dtheta - 0.5
        inside = (rho >= self.radius_mm) & (rho <= self.radius_mm + self.depth_mm) & (np.abs(theta) <= self.half_angle)
        return rows.astype(np.float32), (lines + line_offset).astype(np.float32), inside

    def display_positions(self, line_offset: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Phantom (x, y) of every display pixel (probe shifted by ``line_offset`` lines),
        its fractional beam-line coordinate and the in-field mask."""
        h, w = self.height, self.width
        if self.kind == "linear":
            x = (np.arange(w, dtype=np.float32) + 0.5 - 0.5 * w + line_offset) * self.pixel_mm
            y = (np.arange(h, dtype=np.float32) + 0.5) * self.pixel_mm
            xx, yy = np.broadcast_to(x[None, :], (h, w)), np.broadcast_to(y[:, None], (h, w))
            lines = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :] + line_offset, (h, w))
            return xx, yy, lines, np.ones((h, w), bool)
        _, lines, inside = self.display_to_beam(line_offset)
        x = ((np.arange(w, dtype=np.float32) + 0.5 - 0.5 * w) * self.pixel_mm)[None, :]
        y = ((np.arange(h, dtype=np.float32) + 0.5) * self.pixel_mm - self.apex_y)[:, None]
        rho = np.sqrt(x * x + y * y)
        theta = np.arctan2(x, y) + line_offset * self.dtheta
        return (rho * np.sin(theta)).astype(np.float32), (self.apex_y + rho * np.cos(theta)).astype(np.float32), lines, inside

    def scan_convert(self, beam_image: np.ndarray) -> np.ndarray:
        """Resample a (n_rows, n_lines) beam image to the display; black outside the field."""
        if self.kind == "linear":
            return beam_image
        rows, lines, inside = self.display_to_beam()
        out = ndimage.map_coordinates(beam_image, (rows, lines), order=1, mode="nearest", prefilter=False)
        out[~inside] = 0
        return out

    # -- placement ------------------------------------------------------------
    def lateral_extent(self) -> tuple[float, float]:
        """Lateral mm range covered by the display."""
        half = 0.5 * self.width * self.pixel_mm
        return -half, half

    def place_disc(
        self, depth_mm: float, lateral_frac: float, radius: float, margin: float
    ) -> tuple[float, float] | None:
        """Centre (x, y) of a disc at beam depth ``depth_mm`` and lateral position in [-1, 1]
        so that the disc lies inside the imaged field, or None if it cannot fit."""
        if self.kind == "linear":
            half = 0.5 * self.n_lines * self.pixel_mm - radius - margin
            if half <= 0:
                return None
            return lateral_frac * half, depth_mm
        rho = self.radius_mm + depth_mm
        if radius + margin >= rho:
            return None
        span = self.half_angle - math.asin((radius + margin) / rho)
        if span <= 0:
            return None
        theta = lateral_frac * span
        return rho * math.sin(theta), self.apex_y + rho * math.cos(theta)


# --------------------------------------------------------------------------
# Imaging (system) parameters and the physics chain
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Imaging:
    """Acquisition and display settings of one frame (or one clip)."""

    freq_mhz: float
    sigma_axial: float  # PSF envelope std along the beam, samples
    sigma_lateral: float  # beam profile std across beams, lines
    carrier: float  # pulse carrier, cycles per sample
    alpha0: float  # background attenuation, dB/cm/MHz
    tgc_fraction: float  # share of the expected attenuation compensated by the TGC
    tgc_ripple_db: np.ndarray  # slider offsets at evenly spaced depths
    tissue_gray: float  # displayed level (0..1) of average soft tissue
    dynamic_range_db: float
    gamma: float  # gray map exponent
    noise_db: float  # receiver noise relative to surface tissue

    @property
    def loss_db_per_mm(self) -> float:
        """Round-trip attenuation of background tissue per mm of depth."""
        return 2.0 * self.freq_mhz * self.alpha0 / 10.0


def sample_imaging(rng: np.random.Generator, kind: str, depth_mm: float) -> Imaging:
    """Draw per-frame system settings.

    The transmit frequency is chosen, like a sonographer would, so that the
    round-trip attenuation at full depth stays within what the receiver can
    handle (ROUND_TRIP_LOSS_DB); the speckle size follows the frequency.
    """
    f_range = LINEAR_FREQ_MHZ if kind == "linear" else SECTOR_FREQ_MHZ
    alpha0 = rng.uniform(0.4, 0.7) if kind == "linear" else rng.uniform(0.35, 0.6)
    loss = _uniform(rng, ROUND_TRIP_LOSS_DB)
    freq = float(np.clip(loss / (2.0 * alpha0 * depth_mm / 10.0), *f_range))
    u = (freq - f_range[0]) / (f_range[1] - f_range[0])  # 0 = low frequency = coarse speckle
    sigma_ax = max(MIN_SIGMA_AXIAL, (1.45 - 0.55 * u) * rng.uniform(0.9, 1.1))
    sigma_lat = float(np.clip(sigma_ax * rng.uniform(1.3, 2.1), MIN_SIGMA_LATERAL, MAX_SIGMA_LATERAL))
    n_cycles = rng.uniform(1.5, 3.0)
    tgc_fraction = float(rng.uniform(0.75, 1.0))
    # receiver noise is fixed at the input; the full-depth TGC gain decides how visible it is
    noise_db = -tgc_fraction * loss - _uniform(rng, NOISE_BELOW_DISPLAY_DB)
    return Imaging(
        freq_mhz=freq,
        sigma_axial=float(sigma_ax),
        sigma_lateral=float(sigma_lat),
        carrier=float(n_cycles / (2.355 * sigma_ax)),
        alpha0=float(alpha0),
        tgc_fraction=tgc_fraction,
        tgc_ripple_db=rng.normal(0.0, 1.5, 6).astype(np.float32),
        tissue_gray=_uniform(rng, TISSUE_GRAY),
        dynamic_range_db=_uniform(rng, DYNAMIC_RANGE_DB),
        gamma=float(rng.uniform(0.85, 1.25)),
        noise_db=float(noise_db),
    )


def psf_spectrum(shape: tuple[int, int], imaging: Imaging, line_shift: float = 0.0) -> np.ndarray:
    """Closed-form spectrum of the analytic pulse, normalised to unit power gain.

    Axially: Gaussian envelope times ``exp(2 pi i carrier z)`` -> one Gaussian
    band centred on the carrier (wrapped into the sampled band), without the
    mirror band at ``-carrier``: the analytic signal.  Laterally: a Gaussian beam.  A
    fractional lateral shift of the output (probe drift in :mod:`.clip`) is a
    linear phase ramp.
    """
    n_rows, n_lines = shape
    fz = sfft.fftfreq(n_rows).astype(np.float32)
    fl = sfft.fftfreq(n_lines).astype(np.float32)
    dz = (fz - imaging.carrier + 0.5) % 1.0 - 0.5
    hz = np.exp(-2.0 * np.pi**2 * imaging.sigma_axial**2 * dz * dz)
    hl = np.exp(-2.0 * np.pi**2 * imaging.sigma_lateral**2 * fl * fl)
    norm = np.float32(1.0 / math.sqrt(float(np.mean(hz * hz) * np.mean(hl * hl))))
    hz = hz * norm
    if line_shift:
        hl = hl * np.exp(2j * np.pi * fl * line_shift).astype(np.complex64)
    return hz[:, None] * hl[None, :]


def envelope(field: np.ndarray, imaging: Imaging, line_shift: float = 0.0) -> np.ndarray:
    """Pulse-echo convolution of the complex scatterer field and envelope detection."""
    spec = sfft.fft2(field)
    spec *= psf_spectrum(field.shape, imaging, line_shift)
    return np.abs(sfft.ifft2(spec, overwrite_x=True)).astype(np.float32)


def attenuation_amplitude(alpha: np.ndarray, imaging: Imaging, dz_mm: float) -> np.ndarray:
    """Round-trip amplitude factor per sample from an attenuation map (dB/cm/MHz), accumulated along beams (axis 0)."""
    step_db = alpha * np.float32(2.0 * imaging.freq_mhz * dz_mm / 10.0)
    loss_db = np.cumsum(step_db, axis=0) - step_db  # a reflector is not shadowed by itself
    return np.power(np.float32(10.0), loss_db * np.float32(-1.0 / 20.0))


def display_filter(env: np.ndarray) -> np.ndarray:
    """[1, 2, 1] / 4 smoothing along both axes.

    Scanners sample the envelope much finer than the display grid and average
    it when decimating; this fills in the deepest interference nulls that would
    otherwise show up as a black crack pattern after log compression.
    """
    out = env.copy()
    out[1:-1] = 0.5 * env[1:-1] + 0.25 * (env[:-2] + env[2:])
    tmp = out.copy()
    out[:, 1:-1] = 0.5 * tmp[:, 1:-1] + 0.25 * (tmp[:, :-2] + tmp[:, 2:])
    return out


def tgc_gain_db(n_rows: int, imaging: Imaging, dz_mm: float) -> np.ndarray:
    """TGC curve (dB) per depth row: partial compensation of expected loss + slider ripple."""
    depth_cm = (np.arange(n_rows, dtype=np.float32) + 0.5) * dz_mm / 10.0
    expected = 2.0 * imaging.freq_mhz * imaging.alpha0 * depth_cm
    sliders = np.interp(
        np.linspace(0.0, 1.0, n_rows), np.linspace(0.0, 1.0, len(imaging.tgc_ripple_db)), imaging.tgc_ripple_db
    )
    return (imaging.tgc_fraction * expected + sliders).astype(np.float32)


def log_compress(env: np.ndarray, gain_db: np.ndarray, imaging: Imaging) -> np.ndarray:
    """Log compression to the dynamic range and gray map; returns float32 in [0, 255]."""
    level = 20.0 * np.log10(env + np.float32(1e-6)) + gain_db[:, None]
    # mean log-envelope of fully developed speckle of unit power is about -2.5 dB
    top = -2.5 + (1.0 - imaging.tissue_gray) * imaging.dynamic_range_db
    v = np.clip((level - (top - imaging.dynamic_range_db)) / imaging.dynamic_range_db, 0.0, 1.0)
    return (np.power(v, np.float32(imaging.gamma)) * 255.0).astype(np.float32)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def complex_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Circular complex Gaussian samples with unit variance (complex64)."""
    z = rng.standard_normal(tuple(shape) + (2,), dtype=np.float32)
    z *= np.float32(math.sqrt(0.5))
    return z.view(np.complex64)[..., 0]


# --------------------------------------------------------------------------
# Tissue maps and scene primitives
# --------------------------------------------------------------------------


@dataclass
class TissueMaps:
    """Acoustic maps on a set of sample positions (all float32 / complex64, same shape)."""

    db: np.ndarray  # echogenicity, dB re soft tissue
    alpha: np.ndarray  # attenuation, dB/cm/MHz
    coherent: np.ndarray  # specular (deterministic-phase) reflection amplitude


def _roi(x: np.ndarray, y: np.ndarray, cx: float, cy: float, radius: float) -> tuple[slice, slice] | None:
    """Bounding slices of the samples within a square of half-size ``radius`` around (cx, cy)."""
    near = (np.abs(x - cx) <= radius) & (np.abs(y - cy) <= radius)
    rows = np.flatnonzero(near.any(axis=1))
    cols = np.flatnonzero(near.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def add_intensity_db(db: np.ndarray, level_db: float, weight: np.ndarray) -> np.ndarray:
    """Add a reflector of ``level_db`` (times ``weight``) to an echogenicity map, in intensity."""
    return (10.0 * np.log10(np.power(np.float32(10.0), db * np.float32(0.1)) + weight * np.float32(10 ** (0.1 * level_db)))).astype(np.float32)


def _edge_weight(sd: np.ndarray, edge_mm: float) -> np.ndarray:
    """Smooth inside-weight from a signed distance (positive inside)."""
    return np.clip(0.5 + sd / np.float32(edge_mm), 0.0, 1.0)


@dataclass(frozen=True)
class Blob:
    """Smooth irregular blob: rotated ellipse whose radius carries random Fourier harmonics."""

    cx: float
    cy: float
    radius: float  # mean radius (mm)
    aspect: float  # >= 1, major/minor
    angle: float
    harmonics: np.ndarray  # complex coefficients for orders 2..2+len-1

    @staticmethod
    def sample(rng: np.random.Generator, cx: float, cy: float, radius: float, irregularity: float = 1.0) -> "Blob":
        n = 4
        k = np.arange(2, 2 + n)
        amp = irregularity * rng.normal(0.0, 0.09, n) / (k - 1.0) ** 0.8
        phase = rng.uniform(0, 2 * np.pi, n)
        return Blob(
            cx,
            cy,
            radius,
            aspect=float(rng.uniform(1.0, 1.6)),
            angle=float(rng.uniform(0, np.pi)),
            harmonics=(amp * np.exp(1j * phase)).astype(np.complex64),
        )

    @property
    def max_radius(self) -> float:
        return self.radius * math.sqrt(self.aspect) * (1.0 + float(np.abs(self.harmonics).sum()))

    def signed_distance(
        self, x: np.ndarray, y: np.ndarray, scale: np.ndarray | float = 1.0, dx: float = 0.0, dy: float = 0.0
    ) -> np.ndarray:
        """Approximate signed distance (mm, positive inside) of points to the boundary.

        ``scale`` shrinks the blob (elevation cross-sections in :mod:`.clip`);
        ``dx, dy`` shift its centre.
        """
        c, s = math.cos(self.angle), math.sin(self.angle)
        px = x - np.float32(self.cx + dx)
        py = y - np.float32(self.cy + dy)
        sa = math.sqrt(self.aspect)
        u = (c * px + s * py) / sa
        v = (-s * px + c * py) * sa
        rho = np.sqrt(u * u + v * v) + np.float32(1e-6)
        z = (u + 1j * v).astype(np.complex64) / rho
        zk = z * z
        modulation = np.ones(rho.shape, np.float32)
        for coef in self.harmonics:
            modulation += (coef * zk).real
            zk = zk * z
        r = np.float32(self.radius) * np.maximum(modulation, 0.5) * scale
        return (r - rho).astype(np.float32)


@dataclass(frozen=True)
class Heterogeneity:
    """Smooth random texture inside a lesion: a few random plane waves in lesion coordinates (dB)."""

    k: np.ndarray  # (n, 2) wave vectors, rad/mm
    phase: np.ndarray
    amp: np.ndarray

    @staticmethod
    def sample(rng: np.random.Generator, scale_mm: float, std_db: float, n: int = 5) -> "Heterogeneity":
        direction = rng.uniform(0, 2 * np.pi, n)
        mag = 2 * np.pi / (scale_mm * rng.uniform(0.5, 1.5, n))
        k = np.stack([mag * np.cos(direction), mag * np.sin(direction)], axis=1)
        amp = rng.normal(0.0, std_db * math.sqrt(2.0 / n), n)
        return Heterogeneity(k.astype(np.float32), rng.uniform(0, 2 * np.pi, n).astype(np.float32), amp.astype(np.float32))

    def at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.zeros(x.shape, np.float32)
        for (kx, ky), ph, a in zip(self.k, self.phase, self.amp):
            out += a * np.cos(kx * x + ky * y + ph)
        return out


@dataclass(frozen=True)
class Lesion:
    """A target lesion: blob shape plus acoustic behaviour of its type."""

    blob: Blob
    kind: str
    contrast_db: float  # relative to local tissue (anechoic: absolute level)
    edge_mm: float  # width of the margin blur
    capsule_db: float  # bright rim
    capsule_mm: float
    alpha_factor: float  # attenuation relative to the surrounding tissue
    texture: Heterogeneity
    cysts: tuple[Blob, ...] = ()  # cystic parts of a mixed lesion (offsets from the centre)
    halo_db: float = 0.0  # hypoechoic rim of a hyperechoic lesion
    halo_mm: float = 0.0
    edge_shadow: float = 0.0  # refraction shadows below lateral margins (alpha boost)

    @property
    def extent(self) -> float:
        return self.blob.max_radius

    def mask(self, x: np.ndarray, y: np.ndarray, scale: np.ndarray | float = 1.0, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
        return self.blob.signed_distance(x, y, scale, dx, dy) > 0

    def apply(
        self,
        maps: TissueMaps,
        x: np.ndarray,
        y: np.ndarray,
        scale: np.ndarray | float = 1.0,
        dx: float = 0.0,
        dy: float = 0.0,
    ) -> None:
        """Paint the lesion into the maps (in place)."""
        reach = self.extent + 3.0 * max(self.edge_mm, self.capsule_mm, self.halo_mm)
        roi = _roi(x, y, self.blob.cx + dx, self.blob.cy + dy, reach)
        if roi is None:
            return
        if isinstance(scale, np.ndarray):
            scale = np.broadcast_to(scale, x.shape)[roi]
        xs, ys = x[roi], y[roi]
        sd = self.blob.signed_distance(xs, ys, scale, dx, dy)
        if not (sd > -3.0 * self.capsule_mm - self.edge_mm).any():
            return
        db = maps.db[roi]
        alpha = maps.alpha[roi]
        w = _edge_weight(sd, self.edge_mm)
        maps.coherent[roi] *= 1.0 - w
        inside = sd > 0
        ref = float(db[inside].mean()) if inside.any() else float(db.mean())
        lx, ly = xs - np.float32(self.blob.cx + dx), ys - np.float32(self.blob.cy + dy)
        if self.kind == "anechoic":
            target = np.full(sd.shape, ANECHOIC_DB, np.float32)
        else:
            target = ref + self.contrast_db + self.texture.at(lx, ly)
            if self.halo_mm > 0:
                target += self.halo_db * np.exp(-np.square(sd / np.float32(self.halo_mm)))
        target_alpha = alpha * np.float32(self.alpha_factor)
        if self.cysts:
            for cyst in self.cysts:
                csd = cyst.signed_distance(lx, ly, scale)
                cw = _edge_weight(np.minimum(csd, sd), 0.6 * self.edge_mm + 0.1)
                target = target * (1.0 - cw) + ANECHOIC_DB * cw
                target_alpha = target_alpha * (1.0 - cw) + np.float32(0.05) * alpha * cw
        db *= 1.0 - w
        db += w * target
        if self.capsule_db:
            rim = np.exp(-np.square((sd + np.float32(0.3 * self.capsule_mm)) / np.float32(self.capsule_mm)))
            db[...] = add_intensity_db(db, ref + self.capsule_db, rim)
        alpha *= 1.0 - w
        alpha += w * target_alpha
        if self.edge_shadow and min(sd.shape) >= 2:
            # refraction at the lateral margins: strongest where the boundary is parallel to the beam
            gy, gx = np.gradient(sd)
            steep = np.square(gx) / (np.square(gx) + np.square(gy) + 1e-12)
            alpha += self.edge_shadow * np.exp(-np.square(sd / np.float32(self.capsule_mm + 0.2))) * steep**4


def sample_lesion(
    rng: np.random.Generator, cx: float, cy: float, radius: float, kind: str, px_mm: float, loss_db_per_mm: float
) -> Lesion:
    """Draw the acoustic parameters of one lesion of the given kind (sizes in mm).

    ``loss_db_per_mm`` is the round-trip tissue attenuation per mm of depth; it
    converts a desired posterior shadow strength (dB) into an attenuation factor.
    """
    small = radius < 12.0 * px_mm  # diameter below ~10 % of a 256-px frame
    per_factor_db = max(loss_db_per_mm * 2.0 * radius, 1e-3)  # extra loss per unit of (factor - 1)

    def factor_for(shadow_db: float) -> float:
        return float(max(0.3, 1.0 + shadow_db / per_factor_db))

    blob = Blob.sample(rng, cx, cy, radius, irregularity=rng.uniform(0.3, 1.6))
    texture = Heterogeneity.sample(rng, scale_mm=max(radius * 0.8, 3 * px_mm), std_db=rng.uniform(1.0, 3.0))
    if kind == "anechoic":
        blob = Blob.sample(rng, cx, cy, radius, irregularity=rng.uniform(0.1, 0.7))
        return Lesion(
            blob,
            kind,
            ANECHOIC_DB,
            edge_mm=px_mm * rng.uniform(0.6, 1.2),
            capsule_db=float(rng.uniform(4.0, 10.0)),
            capsule_mm=px_mm * rng.uniform(0.6, 1.1),
            alpha_factor=float(max(0.02, 1.0 - rng.uniform(4.0, 13.0) / per_factor_db)),
            texture=texture,
            edge_shadow=float(rng.uniform(1.0, 4.0)) if rng.random() < 0.4 else 0.0,
        )
    if kind == "hypoechoic":
        lo = 9.0 if small else 7.0
        shadow = rng.random() < 0.55
        return Lesion(
            blob,
            kind,
            contrast_db=-float(rng.uniform(lo, 15.0)),
            edge_mm=px_mm * rng.uniform(0.8, 3.0),
            capsule_db=float(rng.uniform(2.0, 6.0)) if rng.random() < 0.25 else 0.0,
            capsule_mm=px_mm * rng.uniform(0.6, 1.0),
            alpha_factor=factor_for(rng.uniform(4.0, 12.0)) if shadow else factor_for(rng.uniform(-2.0, 2.0)),
            texture=texture,
        )
    if kind == "hyperechoic":
        lo = 7.0 if small else 5.0
        halo = rng.random() < 0.3
        return Lesion(
            blob,
            kind,
            contrast_db=float(rng.uniform(lo, 11.0)),
            edge_mm=px_mm * rng.uniform(0.8, 2.5),
            capsule_db=0.0,
            capsule_mm=px_mm,
            alpha_factor=factor_for(rng.uniform(0.0, 6.0)),
            texture=texture,
            halo_db=-float(rng.uniform(8.0, 16.0)) if halo else 0.0,
            halo_mm=px_mm * rng.uniform(1.5, 3.5) if halo else 0.0,
        )
    # mixed: heterogeneous solid component with one to three cystic areas
    n_cysts = int(rng.integers(1, 4))
    cysts = []
    for _ in range(n_cysts):
        rr = radius * rng.uniform(0.2, 0.45)
        ang = rng.uniform(0, 2 * np.pi)
        off = (radius - rr) * rng.uniform(0.0, 0.8)
        cysts.append(Blob.sample(rng, off * math.cos(ang), off * math.sin(ang), rr, irregularity=0.5))
    return Lesion(
        blob,
        kind,
        contrast_db=-float(rng.uniform(2.0, 9.0)),
        edge_mm=px_mm * rng.uniform(0.8, 2.0),
        capsule_db=float(rng.uniform(2.0, 7.0)) if rng.random() < 0.5 else 0.0,
        capsule_mm=px_mm * rng.uniform(0.6, 1.0),
        alpha_factor=factor_for(rng.uniform(-4.0, 4.0)),
        texture=Heterogeneity.sample(rng, scale_mm=max(radius * 0.5, 3 * px_mm), std_db=rng.uniform(3.0, 6.0)),
        cysts=tuple(cysts),
    )


@dataclass(frozen=True)
class Vessel:
    """Anechoic tube around a smooth curve y = c(x) with thin bright walls (not a target)."""

    curve: SmoothCurve
    radius: float  # mm
    x_range: tuple[float, float]  # lateral extent (segment ends are rounded)
    wall_db: float
    wall_mm: float

    def signed_distance(self, x: np.ndarray, y: np.ndarray, elev: float = 0.0, dy: float = 0.0) -> np.ndarray:
        """Signed distance (mm, positive inside) to a stadium-shaped tube around the curve."""
        cy = self.curve.at(x, elev) + np.float32(dy)
        x0, x1 = self.x_range
        along = np.maximum(np.abs(x - np.float32(0.5 * (x0 + x1))) - np.float32(0.5 * (x1 - x0) - self.radius), 0.0)
        return (np.float32(self.radius) - np.sqrt(np.square(y - cy) + np.square(along))).astype(np.float32)

    def apply(self, maps: TissueMaps, x: np.ndarray, y: np.ndarray, elev: float = 0.0, dy: float = 0.0) -> None:
        sd = self.signed_distance(x, y, elev, dy)
        near = sd > -4.0 * self.wall_mm
        if not near.any():
            return
        sdn = sd[near]
        w = _edge_weight(sdn, self.wall_mm)
        db = maps.db[near]
        wall = np.exp(-np.square((sdn + np.float32(0.3 * self.wall_mm)) / np.float32(self.wall_mm)))
        db = add_intensity_db(db * (1.0 - w) + BLOOD_DB * w, self.wall_db, wall)
        maps.db[near] = db
        maps.alpha[near] = maps.alpha[near] * (1.0 - 0.7 * w)
        maps.coherent[near] = maps.coherent[near] * (1.0 - w) + np.float32(10 ** (self.wall_db / 20.0) * 0.2) * wall


@dataclass(frozen=True)
class Specular:
    """Short bright specular segment (calcification, needle-like interface), optionally shadowing."""

    cx: float
    cy: float
    half_length: float
    angle: float
    thickness: float
    bright_db: float
    shadow_alpha: float  # extra attenuation in the segment (dB/cm/MHz)

    def apply(self, maps: TissueMaps, x: np.ndarray, y: np.ndarray) -> None:
        roi = _roi(x, y, self.cx, self.cy, self.half_length + 3 * self.thickness)
        if roi is None:
            return
        c, s = math.cos(self.angle), math.sin(self.angle)
        px, py = x[roi] - np.float32(self.cx), y[roi] - np.float32(self.cy)
        along = c * px + s * py
        across = -s * px + c * py
        t = np.clip(1.0 - np.square(along / np.float32(self.half_length)), 0.0, 1.0)
        prof = t * np.exp(-np.square(across / np.float32(self.thickness)))
        maps.db[roi] += self.bright_db * prof
        maps.coherent[roi] += np.float32(10 ** (self.bright_db / 20.0) * 0.3) * prof
        if self.shadow_alpha:
            maps.alpha[roi] += self.shadow_alpha * prof


# --------------------------------------------------------------------------
# Background anatomy
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Organ:
    """A large region of different parenchyma (liver, kidney, gland) cut by the field edges.

    Not a target: its centre lies outside the field so that only part of it,
    bounded by a bright capsule line, is visible.
    """

    blob: Blob
    contrast_db: float
    capsule_db: float
    capsule_mm: float
    texture: Heterogeneity
    elev_shift: tuple[float, float] = (0.0, 0.0)  # centre drift (mm) per mm of elevation

    def apply(self, maps: TissueMaps, x: np.ndarray, y: np.ndarray, elev: float = 0.0) -> None:
        dx, dy = self.elev_shift[0] * elev, self.elev_shift[1] * elev
        roi = _roi(x, y, self.blob.cx + dx, self.blob.cy + dy, self.blob.max_radius + 3 * self.capsule_mm)
        if roi is None:
            return
        xs, ys = x[roi], y[roi]
        sd = self.blob.signed_distance(xs, ys, 1.0, dx, dy)
        w = _edge_weight(sd, self.capsule_mm)
        cap = np.exp(-np.square(sd / np.float32(self.capsule_mm)))
        maps.db[roi] += w * (self.contrast_db + self.texture.at(xs, ys)) + self.capsule_db * cap
        maps.coherent[roi] += np.float32(10 ** (self.capsule_db / 20.0) * 0.2) * cap


def sample_organ(rng: np.random.Generator, geom: Geometry, min_depth: float) -> Organ | None:
    """Large partial region whose centre lies beyond a lateral edge or below the field."""
    depth = geom.depth_mm
    radius = rng.uniform(0.35, 0.7) * depth
    if rng.random() < 0.6:  # enters from a side
        beam_depth = rng.uniform(min_depth + 0.2 * depth, depth)
        side = rng.choice([-1.0, 1.0])
        if geom.kind == "linear":
            half = 0.5 * geom.width * geom.pixel_mm
            cx, cy = side * (half + radius * rng.uniform(0.3, 0.85)), beam_depth
        else:
            rho = geom.radius_mm + beam_depth
            theta = side * (geom.half_angle + math.asin(min(1.0, radius * rng.uniform(0.3, 0.85) / rho)))
            cx, cy = rho * math.sin(theta), geom.apex_y + rho * math.cos(theta)
    else:  # rises from below
        beam_depth = depth + radius * rng.uniform(0.2, 0.8)
        lateral = rng.uniform(-0.6, 0.6)
        if geom.kind == "linear":
            cx, cy = lateral * 0.5 * geom.width * geom.pixel_mm, beam_depth
        else:
            rho = geom.radius_mm + beam_depth
            cx, cy = rho * math.sin(lateral * geom.half_angle), geom.apex_y + rho * math.cos(lateral * geom.half_angle)
    blob = Blob.sample(rng, cx, cy, radius, irregularity=0.6)
    contrast = rng.uniform(3.0, 7.0) * rng.choice([-1.0, 1.0])
    return Organ(
        blob,
        float(contrast),
        capsule_db=float(rng.uniform(6.0, 13.0)),
        capsule_mm=max(geom.pixel_mm, geom.dz_mm) * rng.uniform(0.7, 1.2),
        texture=Heterogeneity.sample(rng, scale_mm=0.3 * depth, std_db=rng.uniform(0.5, 1.5), n=8),
    )


@dataclass(frozen=True)
class Layer:
    base_db: float
    alpha_factor: float
    fibres: FibreTexture | None


@dataclass(frozen=True)
class Background:
    """Layered soft tissue: skin, subcutaneous fat, fascia-separated layers, smooth variation."""

    skin_mm: float
    skin_db: float
    fat_mm: float
    fat_db: float
    fat_septa: FibreTexture
    boundaries: tuple[SmoothCurve, ...]  # fascia curves (increasing depth)
    fascia_db: tuple[float, ...]
    fascia_mm: tuple[float, ...]
    layers: tuple[Layer, ...]  # len(boundaries) + 1
    variation: SmoothField  # slow echogenicity variation, dB
    fibre_breakup: SmoothField  # modulates fibre visibility
    entrance_db: float
    bone_depth: float | None = None  # optional deep bone / strong interface with full shadow
    organs: tuple[Organ, ...] = ()

    def bottom_limit(self, depth_mm: float) -> float:
        """Deepest beam depth (mm) at which lesions can still be seen."""
        return depth_mm if self.bone_depth is None else self.bone_depth

    def evaluate(
        self,
        x: np.ndarray,
        y: np.ndarray,
        depth: np.ndarray,
        rows: np.ndarray,
        lines: np.ndarray,
        alpha0: float,
        elev: float = 0.0,
        separable: bool = False,
    ) -> TissueMaps:
        """Acoustic maps at sample positions (x, y, beam depth: (R, L) arrays, mm).

        ``rows``/``lines`` are the beam-grid coordinates of the samples (smooth
        fields live on that grid); ``separable`` says x depends only on the line
        and y only on the row (linear probes), which lets curves be evaluated
        once per line.  Beam depth depends only on the row for both geometries.
        """
        shape = x.shape
        x_curve = x[:1] if separable else x
        curves = [b.at(x_curve, elev) for b in self.boundaries]
        region = np.zeros(shape, np.int8)
        for cy in curves:
            region += y > cy
        base = np.array([lay.base_db for lay in self.layers], np.float32)
        afac = np.array([lay.alpha_factor for lay in self.layers], np.float32)
        db = base[region]
        alpha = afac[region] * np.float32(alpha0)
        breakup = self.fibre_breakup.evaluate(rows, lines, elev)
        breakup = np.clip(0.55 + 0.6 * breakup, 0.0, 1.0)
        for k, lay in enumerate(self.layers):
            if lay.fibres is None:
                continue
            band = _row_band(region == k)
            if band is None:
                continue
            fib = lay.fibres.at(x[band], y[band]) * breakup[band]
            db[band] += np.where(region[band] == k, fib, np.float32(0.0))
        coherent = np.zeros(shape, np.complex64)
        for cy, a_db, w_mm in zip(curves, self.fascia_db, self.fascia_mm):
            band = _row_band(np.abs(y - cy) < np.float32(3.0 * w_mm))
            if band is None:
                continue
            cyb = cy if separable else cy[band]
            prof = np.exp(-np.square((y[band] - cyb) / np.float32(w_mm)))
            db[band] += a_db * prof
            coherent[band] += np.float32(10 ** (a_db / 20.0) * 0.25) * prof
        # skin and subcutaneous fat follow the transducer surface (beam depth ~ row)
        depth_col = depth[:, 0]
        n_fat = int(np.searchsorted(depth_col, self.skin_mm + self.fat_mm))
        n_skin = int(np.searchsorted(depth_col, self.skin_mm))
        if n_fat:
            top = slice(0, n_fat)
            db[top] = self.fat_db + self.fat_septa.at(x[top], y[top]) * breakup[top]
            alpha[top] = np.float32(0.8 * alpha0)
        db[:n_skin] = np.float32(self.skin_db)
        n_entrance = int(np.searchsorted(depth_col, 2.0))
        entrance = np.exp(-np.square((depth[:n_entrance] - np.float32(0.4)) / np.float32(0.35)))
        coherent[:n_entrance] += np.float32(10 ** (self.entrance_db / 20.0) * 0.3) * entrance
        maps = TissueMaps(db, alpha, coherent)
        for organ in self.organs:
            organ.apply(maps, x, y, elev)
        db += self.variation.evaluate(rows, lines, elev)
        if self.bone_depth is not None:
            n_bone = int(np.searchsorted(depth_col, self.bone_depth - 2.0))
            deep = slice(n_bone, None)
            prof = np.exp(-np.square((depth[deep] - np.float32(self.bone_depth)) / np.float32(0.5)))
            db[deep] += 18.0 * prof
            coherent[deep] += np.float32(3.0) * prof
            alpha[deep] = np.where(depth[deep] > np.float32(self.bone_depth), np.float32(25.0 * alpha0), alpha[deep])
        return TissueMaps(db, alpha, coherent)


def _row_band(mask: np.ndarray) -> slice | None:
    """Smallest row slice containing all True entries of a 2-D mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1)


def sample_background(
    rng: np.random.Generator,
    geom: Geometry,
    line_range: tuple[float, float],
    elev_range: tuple[float, float] = (0.0, 0.0),
    elev_cells: int = 1,
) -> Background:
    """Draw a layered anatomy for the given probe geometry."""
    depth = geom.depth_mm
    linear = geom.kind == "linear"
    x0, x1 = geom.lateral_extent()
    x0, x1 = x0 - 0.3 * (x1 - x0), x1 + 0.3 * (x1 - x0)  # room for drift
    y1 = geom.height * geom.pixel_mm

    def u_range(slope: float, spacing: float) -> tuple[float, float]:
        reach = abs(slope) * max(abs(x0), abs(x1)) + 3.0 * spacing
        return (-reach, y1 + reach)

    skin = rng.uniform(0.8, 2.2) if linear else rng.uniform(1.0, 3.0)
    fat = rng.uniform(0.04, 0.22) * depth if linear else rng.uniform(0.03, 0.12) * depth
    septa_spacing = rng.uniform(1.0, 3.0) * (1 if linear else 2.0)
    septa_slope = float(np.clip(rng.normal(0.0, 0.35), -1.0, 1.0))
    fat_septa = FibreTexture.sample(
        rng,
        u_range(septa_slope, septa_spacing),
        spacing_mm=septa_spacing,
        width_mm=rng.uniform(0.6, 1.0) * geom.pixel_mm,
        peak_db=rng.uniform(6.0, 12.0),
        slope=septa_slope,
    )
    n_bound = int(rng.integers(1, 4)) if linear else int(rng.integers(0, 3))
    top = skin + fat
    tops = np.sort(rng.uniform(top + 0.05 * depth, 0.9 * depth, n_bound))
    boundaries, fascia_db, fascia_mm = [], [], []
    slope = rng.normal(0.0, 0.12)
    for t in tops:
        boundaries.append(
            SmoothCurve.sample(
                rng,
                (x0, x1),
                mean_y=float(t) + (geom.apex_y + geom.radius_mm if not linear else 0.0),
                amplitude=rng.uniform(0.01, 0.05) * depth,
                slope=slope + rng.normal(0.0, 0.06),
                elev_range=elev_range,
                elev_nodes=elev_cells,
                elev_amplitude=0.03 * depth,
            )
        )
        fascia_db.append(float(rng.uniform(8.0, 16.0)))
        fascia_mm.append(float(rng.uniform(0.6, 1.4) * max(geom.pixel_mm, geom.dz_mm)))
    layers = []
    for _ in range(n_bound + 1):
        kind = rng.choice(["muscle", "parenchyma", "fibrous"], p=[0.55, 0.3, 0.15] if linear else [0.25, 0.6, 0.15])
        if kind == "muscle":
            spacing = rng.uniform(0.8, 2.5) * (1 if linear else 2.5)
            fslope = float(np.clip(slope + rng.normal(0.0, 0.25), -1.0, 1.0))
            fib = FibreTexture.sample(
                rng,
                u_range(fslope, spacing),
                spacing_mm=spacing,
                width_mm=rng.uniform(0.5, 0.9) * geom.pixel_mm,
                peak_db=rng.uniform(5.0, 11.0),
                slope=fslope,
            )
            layers.append(Layer(float(rng.uniform(-7.0, -3.0)), float(rng.uniform(0.9, 1.2)), fib))
        elif kind == "parenchyma":
            layers.append(Layer(float(rng.uniform(-2.0, 2.0)), float(rng.uniform(0.85, 1.1)), None))
        else:
            layers.append(Layer(float(rng.uniform(1.0, 4.0)), float(rng.uniform(1.0, 1.3)), None))
    variation = SmoothField.sample(
        rng, geom.n_rows, line_range, (4, 4), elev_range, elev_cells, amplitude=rng.uniform(0.8, 2.0)
    )
    breakup = SmoothField.sample(rng, geom.n_rows, line_range, (10, 8), elev_range, elev_cells)
    bone = None
    if linear and rng.random() < 0.12:
        bone = float(rng.uniform(0.7, 0.92) * depth)
    n_organs = int(rng.choice(3, p=[0.75, 0.2, 0.05] if linear else [0.3, 0.5, 0.2]))
    organs = tuple(o for o in (sample_organ(rng, geom, skin + fat) for _ in range(n_organs)) if o is not None)
    return Background(
        skin_mm=float(skin),
        skin_db=float(rng.uniform(4.0, 9.0)),
        fat_mm=float(fat),
        fat_db=float(rng.uniform(-12.0, -6.0)),
        fat_septa=fat_septa,
        boundaries=tuple(boundaries),
        fascia_db=tuple(fascia_db),
        fascia_mm=tuple(fascia_mm),
        layers=tuple(layers),
        variation=variation,
        fibre_breakup=breakup,
        entrance_db=float(rng.uniform(6.0, 14.0)),
        bone_depth=bone,
        organs=organs,
    )


# --------------------------------------------------------------------------
# Frame-level sampling
# --------------------------------------------------------------------------


def sample_geometry(rng: np.random.Generator, size: tuple[int, int], kind: str) -> Geometry:
    if kind == "linear":
        return Geometry.linear(size, _uniform(rng, LINEAR_DEPTH_MM))
    depth = _uniform(rng, SECTOR_DEPTH_MM)
    if rng.random() < 0.75:
        radius = _uniform(rng, CURVILINEAR_RADIUS_MM)
    else:
        radius = _uniform(rng, PHASED_RADIUS_MM)
    half = math.radians(_uniform(rng, SECTOR_HALF_ANGLE_DEG))
    return Geometry.sector(size, depth, radius, half)


def _lesion_count(rng: np.random.Generator, p_empty: float) -> int:
    if rng.random() < p_empty:
        return 0
    return 1 + int(rng.choice(3, p=LESION_COUNT_PROBS))


def _lesion_kind(rng: np.random.Generator) -> str:
    kinds = list(LESION_KIND_PROBS)
    return str(rng.choice(kinds, p=list(LESION_KIND_PROBS.values())))


def place_lesions(
    rng: np.random.Generator,
    geom: Geometry,
    count: int,
    min_depth: float,
    max_depth: float,
    loss_db_per_mm: float,
    max_tries: int = 40,
) -> list[Lesion]:
    """Place ``count`` non-overlapping lesions fully inside the imaged field."""
    width_mm = geom.width * geom.pixel_mm
    gap = LESION_GAP_MM_FRAC * width_mm
    margin = 2.0 * geom.pixel_mm
    lesions: list[Lesion] = []
    for _ in range(count):
        diam_frac = _log_uniform(rng, *LESION_DIAMETER_FRAC)
        if count > 1:
            diam_frac = min(diam_frac, 0.55 * LESION_DIAMETER_FRAC[1] * 2 / count)
        kind = _lesion_kind(rng)
        radius = 0.5 * diam_frac * width_mm
        for attempt in range(max_tries):
            if attempt and attempt % 8 == 0:
                radius = max(radius * 0.8, 0.5 * LESION_DIAMETER_FRAC[0] * width_mm)
            lesion = sample_lesion(rng, 0.0, 0.0, radius, kind, geom.pixel_mm, loss_db_per_mm)
            reach = lesion.extent + 3 * lesion.halo_mm
            lo, hi = min_depth + reach + margin, max_depth - reach - margin
            if hi <= lo:
                continue
            centre = geom.place_disc(rng.uniform(lo, hi), rng.uniform(-1.0, 1.0), reach, margin)
            if centre is None:
                continue
            if any(
                math.hypot(centre[0] - o.blob.cx, centre[1] - o.blob.cy) < reach + o.extent + gap for o in lesions
            ):
                continue
            blob = lesion.blob
            moved = Blob(centre[0], centre[1], blob.radius, blob.aspect, blob.angle, blob.harmonics)
            lesions.append(Lesion(**{**lesion.__dict__, "blob": moved}))
            break
    return lesions


def alpha_per_shadow_db(thickness_mm: float, imaging: Imaging) -> float:
    """Peak extra attenuation (dB/cm/MHz) of a Gaussian layer of given thickness per dB of shadow behind it."""
    return 10.0 / (2.0 * imaging.freq_mhz * math.sqrt(math.pi) * thickness_mm)


def _clear_of(lesions: Sequence[Lesion], x: float, y: float, reach: float) -> bool:
    return all(math.hypot(x - l.blob.cx, y - l.blob.cy) > l.extent + reach for l in lesions)


def sample_distractors(
    rng: np.random.Generator, geom: Geometry, bg: Background, lesions: Sequence[Lesion], imaging: Imaging
) -> tuple[list[Vessel], list[Specular]]:
    """Vessels and specular reflectors that keep clear of the lesions."""
    depth = geom.depth_mm
    x0, x1 = geom.lateral_extent()
    top_depth = bg.skin_mm + bg.fat_mm  # beam depth below the transducer surface
    top = top_depth + (0.0 if geom.kind == "linear" else geom.apex_y + geom.radius_mm)  # phantom y
    vessels: list[Vessel] = []
    for _ in range(int(rng.choice(3, p=[0.45, 0.4, 0.15]))):
        radius = rng.uniform(0.02, 0.06) * depth * (1.0 if geom.kind == "linear" else 0.7)
        full = rng.random() < 0.6
        if full:
            xr = (-1e4, 1e4)
        else:
            xc = rng.uniform(x0, x1)
            half = rng.uniform(4.0, 8.0) * radius
            xr = (xc - half, xc + half)
        bottom = bg.bottom_limit(depth) + (0.0 if geom.kind == "linear" else geom.apex_y + geom.radius_mm)
        mean_y = rng.uniform(top + radius + 1.0, max(top + radius + 1.5, bottom - radius - 1.0))
        curve = SmoothCurve.sample(rng, (x0, x1), mean_y, rng.uniform(0.0, 0.05) * depth, rng.normal(0, 0.15))
        v = Vessel(curve, radius, xr, wall_db=float(rng.uniform(8.0, 15.0)), wall_mm=max(geom.pixel_mm, geom.dz_mm) * rng.uniform(0.7, 1.1))
        ok = True
        for les in lesions:
            cy = float(curve.at(np.array([les.blob.cx]))[0])
            inside_x = xr[0] - les.extent < les.blob.cx < xr[1] + les.extent
            if inside_x and abs(cy - les.blob.cy) < les.extent + radius + 0.04 * depth:
                ok = False
        if ok:
            vessels.append(v)
    speculars: list[Specular] = []
    for _ in range(int(rng.choice(3, p=[0.6, 0.3, 0.1]))):
        half = rng.uniform(0.01, 0.06) * depth
        shadow = rng.random() < 0.4
        pos = geom.place_disc(rng.uniform(top_depth + half, bg.bottom_limit(depth) - half), rng.uniform(-1, 1), half, 1.0)
        if pos is None:
            continue
        if shadow and any(abs(pos[0] - l.blob.cx) < l.extent + half and pos[1] < l.blob.cy for l in lesions):
            shadow = False
        if not _clear_of(lesions, pos[0], pos[1], half + 0.03 * depth):
            continue
        thickness = max(geom.pixel_mm, geom.dz_mm) * rng.uniform(0.7, 1.2)
        # extra attenuation that yields the wanted shadow depth across the segment's thickness
        shadow_alpha = rng.uniform(6.0, 20.0) * alpha_per_shadow_db(thickness, imaging) if shadow else 0.0
        speculars.append(
            Specular(
                pos[0],
                pos[1],
                half,
                float(rng.normal(0.0, 0.3)),
                thickness,
                float(rng.uniform(14.0, 24.0)),
                float(shadow_alpha),
            )
        )
    return vessels, speculars


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def fast_len(n: int) -> int:
    return int(sfft.next_fast_len(n, real=False))


@dataclass(frozen=True)
class BeamGrid:
    """Padded beam grid: rows (depth samples) and line coordinates in phantom line units."""

    rows: np.ndarray
    lines: np.ndarray
    line_start: int  # index of the first displayed line inside the padded grid

    @staticmethod
    def for_geometry(geom: Geometry, line_origin: int = 0, pad_lateral: int = PAD_LATERAL) -> "BeamGrid":
        n_rows = fast_len(geom.n_rows + PAD_AXIAL)
        n_lines = fast_len(geom.n_lines + 2 * pad_lateral)
        start = (n_lines - geom.n_lines) // 2
        rows = np.arange(n_rows, dtype=np.float32)
        lines = np.arange(n_lines, dtype=np.float32) - start + line_origin
        return BeamGrid(rows, lines, start)


def render_tissue_maps(
    geom: Geometry,
    grid: BeamGrid,
    bg: Background,
    imaging: Imaging,
    lesions: Sequence[Lesion],
    vessels: Sequence[Vessel],
    speculars: Sequence[Specular],
) -> TissueMaps:
    x, y, depth = geom.beam_positions(grid.rows, grid.lines)
    maps = bg.evaluate(x, y, depth, grid.rows, grid.lines, imaging.alpha0, separable=geom.kind == "linear")
    for s in speculars:
        s.apply(maps, x, y)
    for v in vessels:
        v.apply(maps, x, y)
    for les in lesions:
        les.apply(maps, x, y)
    return maps


def beamform_to_display(
    field: np.ndarray,
    geom: Geometry,
    grid: BeamGrid,
    imaging: Imaging,
    line_shift: float = 0.0,
) -> np.ndarray:
    """Complex scatterer field (already attenuated, with noise) -> displayed uint8 frame.

    ``line_shift`` is a fractional lateral shift of the output (probe drift).
    """
    env = envelope(field, imaging, line_shift)
    env = display_filter(env[: geom.n_rows, grid.line_start : grid.line_start + geom.n_lines])
    gain = tgc_gain_db(geom.n_rows, imaging, geom.dz_mm)
    beam_img = log_compress(env, gain, imaging)
    return to_uint8(geom.scan_convert(beam_img))


def echo_amplitude(maps: TissueMaps, imaging: Imaging, dz_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Scatterer amplitude std after round-trip attenuation, and the attenuation factor itself."""
    att = attenuation_amplitude(maps.alpha, imaging, dz_mm)
    amp = np.power(np.float32(10.0), maps.db * np.float32(1.0 / 20.0)) * att
    return amp, att


def noise_power(imaging: Imaging) -> np.float32:
    return np.float32(10 ** (imaging.noise_db / 10.0))


def scatterer_field(
    rng: np.random.Generator, maps: TissueMaps, imaging: Imaging, geom: Geometry
) -> np.ndarray:
    """Attenuated complex scatterer field plus band-limited receiver noise.

    Tissue scatterers and receiver noise are independent circular Gaussians, so
    their sum is one circular Gaussian with the summed variance: a single
    random draw per sample.
    """
    amp, att = echo_amplitude(maps, imaging, geom.dz_mm)
    sigma = np.sqrt(amp * amp + noise_power(imaging))
    field = complex_normal(rng, maps.db.shape)
    field *= sigma
    field += maps.coherent * att
    return field


def lesion_mask(geom: Geometry, lesions: Sequence[Lesion]) -> np.ndarray:
    """Union of lesion regions on the display grid, clipped to the imaged field."""
    mask = np.zeros((geom.height, geom.width), bool)
    if not lesions:
        return mask.astype(np.uint8)
    x, y, _, inside = geom.display_positions()
    for les in lesions:
        roi = _roi(x, y, les.blob.cx, les.blob.cy, les.extent + geom.pixel_mm)
        if roi is not None:
            mask[roi] |= les.mask(x[roi], y[roi])
    mask &= inside
    return mask.astype(np.uint8)


def generate_frame(seed: int, size: tuple[int, int] = (256, 256), p_empty: float = 0.3) -> UltrasoundFrame:
    """Render one B-mode frame (linear or sector, 50/50) with its lesion mask."""
    rng = np.random.default_rng(seed)
    kind = "linear" if rng.random() < 0.5 else "sector"
    geom = sample_geometry(rng, tuple(size), kind)
    imaging = sample_imaging(rng, kind, geom.depth_mm)
    grid = BeamGrid.for_geometry(geom)
    bg = sample_background(rng, geom, (float(grid.lines[0]), float(grid.lines[-1])))
    count = _lesion_count(rng, p_empty)
    min_depth = bg.skin_mm + 0.3 * bg.fat_mm + 1.0
    max_depth = bg.bottom_limit(geom.depth_mm) - 0.02 * geom.depth_mm
    lesions = place_lesions(rng, geom, count, min_depth, max_depth, imaging.loss_db_per_mm)
    if count and not lesions:  # crowded field: fall back to one small lesion anywhere below the skin
        lesions = place_lesions(rng, geom, 1, bg.skin_mm, geom.depth_mm, imaging.loss_db_per_mm, max_tries=200)
    vessels, speculars = sample_distractors(rng, geom, bg, lesions, imaging)
    maps = render_tissue_maps(geom, grid, bg, imaging, lesions, vessels, speculars)
    field = scatterer_field(rng, maps, imaging, geom)
    image = beamform_to_display(field, geom, grid, imaging)
    mask = lesion_mask(geom, lesions)
    return UltrasoundFrame(image=image, mask=mask, present=bool(mask.any()))


def generate_dataset(
    seeds: Sequence[int], size: tuple[int, int] = (256, 256), p_empty: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack frames for ``seeds``: images (N,H,W) uint8, masks (N,H,W) uint8, present (N,) uint8."""
    h, w = size
    n = len(seeds)
    images = np.empty((n, h, w), np.uint8)
    masks = np.empty((n, h, w), np.uint8)
    present = np.empty((n,), np.uint8)
    for i, s in enumerate(seeds):
        f = generate_frame(int(s), (h, w), p_empty)
        images[i], masks[i], present[i] = f.image, f.mask, f.present
    return images, masks, present
