"""The endoscope's own look, applied on top of a rendered scene.

Used by :mod:`.endoscopy` (single frames) and :mod:`.endoscopy_clip`.  Nothing
here is ever part of a target mask: the black outside of the scope's round
field, vignetting, motion blur, sensor noise and the burned-in text overlay
(date, time, a patient-id-like line) drawn with a built-in 3x5 bitmap font, so
that frames are byte-identical wherever they are generated (no font files, no
FreeType).

Text is drawn in the top-left, bottom-left and top-right corners.  Where the
round field is large the text can lie over the image; its pixels are always
removed from the mask (a polyp under a text pixel is not a target pixel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Scope", "sample_scope", "vignette", "motion_blur", "text_mask", "overlay_lines", "GLYPHS"]

SCOPE_RADIUS_FRAC = (0.44, 0.58)  # radius of the round field, fraction of min(H, W)
SCOPE_OFFSET_FRAC = 0.02  # the field's centre may sit off the frame centre by this much
VIGNETTE = (0.25, 0.55)  # light lost at the field's edge
NOISE_LEVELS = (0.8, 2.5)  # sensor noise, 8-bit levels (std)
TEXT_GRAY = (200, 255)

# 3x5 bitmap font: five rows of three pixels per glyph.
_FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "110001010100111", "3": "110001010001110",
    "4": "101101111001001", "5": "111100110001110", "6": "011100111101111", "7": "111001010010010",
    "8": "111101111101111", "9": "111101111001110", ":": "000010000010000", "/": "001001010100100",
    ".": "000000000000010", "-": "000000111000000", " ": "000000000000000",
    "A": "010101111101101", "B": "110101110101110", "C": "011100100100011", "D": "110101101101110",
    "E": "111100110100111", "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101010", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010", "P": "110101110100100",
    "Q": "010101101110011", "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111",
}
GLYPHS = {c: np.array([int(b) for b in bits], bool).reshape(5, 3) for c, bits in _FONT.items()}


@dataclass(frozen=True)
class Scope:
    """Per-frame (or per-clip) settings of the scope's look."""

    cx: float  # centre of the round field, pixels
    cy: float
    radius: float  # pixels
    vignette: float  # fraction of light lost at the field's edge
    noise: float  # sensor noise std, 8-bit levels
    text_gray: int
    corners: tuple[str, ...]  # which corners carry text: "tl", "bl", "tr"
    patient: str  # the id-like line
    date: str
    clock_s: int  # seconds since midnight at frame 0

    def inside(self, h: int, w: int) -> np.ndarray:
        """(H, W) bool: pixels inside the round field."""
        yy, xx = np.ogrid[:h, :w]
        return (xx + 0.5 - self.cx) ** 2 + (yy + 0.5 - self.cy) ** 2 < self.radius**2


def sample_scope(rng: np.random.Generator, size: tuple[int, int]) -> Scope:
    h, w = size
    m = min(h, w)
    off = SCOPE_OFFSET_FRAC * m
    corners = tuple(c for c, p in (("tl", 0.85), ("bl", 0.6), ("tr", 0.35)) if rng.random() < p)
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    patient = (
        f"ID:{int(rng.integers(0, 10**7)):07d} "
        f"{letters[int(rng.integers(len(letters)))]}{letters[int(rng.integers(len(letters)))]} "
        f"{'MF'[int(rng.integers(2))]}{int(rng.integers(30, 90))}"
    )
    date = f"{int(rng.integers(2015, 2026))}/{int(rng.integers(1, 13)):02d}/{int(rng.integers(1, 29)):02d}"
    return Scope(
        cx=0.5 * w + float(rng.uniform(-off, off)),
        cy=0.5 * h + float(rng.uniform(-off, off)),
        radius=float(rng.uniform(*SCOPE_RADIUS_FRAC)) * m,
        vignette=float(rng.uniform(*VIGNETTE)),
        noise=float(rng.uniform(*NOISE_LEVELS)),
        text_gray=int(rng.integers(TEXT_GRAY[0], TEXT_GRAY[1] + 1)),
        corners=corners,
        patient=patient,
        date=date,
        clock_s=int(rng.integers(7 * 3600, 18 * 3600)),
    )


def vignette(scope: Scope, h: int, w: int) -> np.ndarray:
    """(H, W) float32 gain: 1 at the field's centre, 1 - vignette at its edge."""
    yy, xx = np.ogrid[:h, :w]
    r2 = ((xx + 0.5 - scope.cx) ** 2 + (yy + 0.5 - scope.cy) ** 2) / scope.radius**2
    return (1.0 - scope.vignette * np.minimum(r2, 1.0) ** 1.3).astype(np.float32)


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved by (dy, dx) whole pixels, edges repeated."""
    h, w = a.shape[:2]
    p = max(abs(dy), abs(dx))
    if p == 0:
        return a
    pad = [(p, p), (p, p)] + [(0, 0)] * (a.ndim - 2)
    big = np.pad(a, pad, mode="edge")
    return big[p - dy : p - dy + h, p - dx : p - dx + w]


def motion_blur(a: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Box blur of ``a`` (H, W[, C]) along a line of ``length`` pixels at ``angle`` radians."""
    n = int(math.ceil(length)) + 1
    if n < 2:
        return a
    acc = np.zeros(a.shape, np.float32)
    for k in range(n):
        t = (k / (n - 1) - 0.5) * length
        acc += _shift(a, int(round(t * math.sin(angle))), int(round(t * math.cos(angle))))
    return acc / np.float32(n)


def overlay_lines(scope: Scope, frame_index: int = 0, fps: int = 25) -> dict[str, list[str]]:
    """The text of each corner for one frame (the clock runs with the frame index)."""
    s = scope.clock_s + frame_index // fps
    clock = f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
    lines = {"tl": [scope.date, clock], "bl": [scope.patient], "tr": ["CVP"]}
    return {c: lines[c] for c in scope.corners}


def text_mask(h: int, w: int, corners: dict[str, list[str]]) -> np.ndarray:
    """(H, W) bool: the pixels of the overlay's glyphs (3x5 font, scaled to the frame)."""
    out = np.zeros((h, w), bool)
    scale = max(1, min(h, w) // 256)
    cw, ch = 4 * scale, 7 * scale  # glyph advance, line height
    margin = 3 * scale
    for corner, lines in corners.items():
        for li, line in enumerate(lines):
            x0 = margin if corner[1] == "l" else w - margin - cw * len(line)
            y0 = margin + li * ch if corner[0] == "t" else h - margin - (len(lines) - li) * ch + 2 * scale
            for ci, c in enumerate(line):
                g = np.kron(GLYPHS.get(c, GLYPHS[" "]), np.ones((scale, scale), bool))
                x, y = x0 + ci * cw, y0
                if 0 <= x and x + g.shape[1] <= w and 0 <= y and y + g.shape[0] <= h:
                    out[y : y + g.shape[0], x : x + g.shape[1]] |= g
    return out
