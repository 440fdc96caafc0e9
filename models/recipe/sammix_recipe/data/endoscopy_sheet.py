"""Contact sheet of endoscopy frames and clip frames, mask outlines in green.

Usage (from models/recipe)::

    python -m sammix_recipe.data.endoscopy --sheet OUT.png [--seed 0] [--frames 16]
        [--clip-frames 8] [--tile 256] [--palette]

Single frames first (seeds ``seed..seed+frames-1``, the polyp count in the
corner), then frames evenly spaced through one 160-frame clip (seed ``seed``;
frame index, "HOLD" while the scope is paused).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .endoscopy import generate_frame
from .endoscopy_clip import plan_clip, render_frame

GREEN = (0, 255, 0)
YELLOW = (255, 220, 0)
CLIP_FRAMES = 160


def _outlined(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask.astype(bool)
    out = image.copy()
    out[m & ~ndimage.binary_erosion(m)] = GREEN
    return out


def _tile(image: np.ndarray, label: str, tile: int) -> np.ndarray:
    img = Image.fromarray(image)
    if tile != image.shape[0]:
        img = img.resize((tile, tile), Image.Resampling.LANCZOS)
    ImageDraw.Draw(img).text((tile - 6 * len(label) - 4, tile - 14), label, fill=YELLOW)
    return np.pad(np.asarray(img), ((2, 2), (2, 2), (0, 0)))


def _rows(tiles: list[np.ndarray], cols: int = 4) -> list[np.ndarray]:
    blank = np.zeros_like(tiles[0])
    tiles = tiles + [blank] * (-len(tiles) % cols)
    return [np.concatenate(tiles[i : i + cols], axis=1) for i in range(0, len(tiles), cols)]


def write_sheet(path: str, seed: int, n_frames: int, n_clip: int, tile: int, palette: bool) -> None:
    tiles = []
    for s in range(seed, seed + n_frames):
        f = generate_frame(s)
        tiles.append(_tile(_outlined(f.image, f.mask), f"{f.polyps}", tile))
    rows = _rows(tiles) if tiles else []
    if n_clip:
        plan = plan_clip(seed, CLIP_FRAMES)
        held = np.zeros(plan.n_frames, bool)
        for a, b in plan.holds:
            held[a:b] = True
        clip_tiles = []
        for t in np.linspace(0, plan.n_frames - 1, n_clip).astype(int):
            image, mask = render_frame(plan, int(t))
            clip_tiles.append(_tile(_outlined(image, mask), f"{t}{' HOLD' if held[t] else ''}", tile))
        if rows:
            rows.append(np.full((6, rows[0].shape[1], 3), 255, np.uint8))  # white rule between the parts
        rows += _rows(clip_tiles)
    img = Image.fromarray(np.concatenate(rows, axis=0))
    if palette:
        img = img.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(path, optimize=True)
