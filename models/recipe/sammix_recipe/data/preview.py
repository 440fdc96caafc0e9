"""Contact sheets for eyeballing the synthetic data, plus generation timings.

Usage (from models/recipe)::

    python -m sammix_recipe.data.preview OUT_DIR [--seed 0] [--no-timing]

Writes ``ultrasound.png`` (4x4 frames, lesion outlines in red),
``clip_linear.png`` / ``clip_sector.png`` (16 frames evenly spaced through a
clip, outlines in red, frame index and "HOLD" marks in the corner) and
``shapes.png`` (4x4 samples: target outline red, coarse CAM-like mask outline
yellow, box cyan, positive clicks green, negative clicks magenta).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .clip import generate_clip, plan_clip, render_clip
from .shapes import generate_sample
from .ultrasound import generate_frame

RED = (255, 40, 40)
YELLOW = (255, 220, 0)
CYAN = (0, 220, 255)
GREEN = (0, 255, 0)
MAGENTA = (255, 0, 255)


def outline(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(bool)
    return m & ~ndimage.binary_erosion(m)


def overlay(gray: np.ndarray, outlines: list[tuple[np.ndarray, tuple[int, int, int]]]) -> np.ndarray:
    rgb = np.repeat(gray[..., None], 3, axis=2).copy()
    for mask, color in outlines:
        rgb[outline(mask)] = color
    return rgb


def grid(tiles: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    tiles = [np.pad(t, ((pad, pad), (pad, pad), (0, 0))) for t in tiles]
    rows = [np.concatenate(tiles[i : i + cols], axis=1) for i in range(0, len(tiles), cols)]
    return np.concatenate(rows, axis=0)


def ultrasound_sheet(path: str, seed: int) -> None:
    tiles = []
    for s in range(seed, seed + 16):
        f = generate_frame(s)
        tiles.append(overlay(f.image, [(f.mask, RED)]))
    Image.fromarray(grid(tiles, 4)).save(path)


def clip_sheet(path: str, seed: int, geometry: str) -> None:
    plan = plan_clip(seed, 160, (256, 256), geometry)
    frames, masks = render_clip(plan)
    idx = np.linspace(0, len(frames) - 1, 16).astype(int)
    held = np.zeros(len(frames), bool)
    for a, b in plan.holds:
        held[a:b] = True
    tiles = []
    for i in idx:
        img = Image.fromarray(overlay(frames[i], [(masks[i], RED)]))
        ImageDraw.Draw(img).text((4, 4), f"{i}{' HOLD' if held[i] else ''}", fill=YELLOW)
        tiles.append(np.asarray(img))
    Image.fromarray(grid(tiles, 4)).save(path)


def shapes_sheet(path: str, seed: int) -> None:
    tiles = []
    for s in range(seed, seed + 16):
        smp = generate_sample(s)
        img = Image.fromarray(overlay(smp.image, [(smp.coarse, YELLOW), (smp.mask, RED)]))
        draw = ImageDraw.Draw(img)
        draw.rectangle([float(v) for v in smp.box], outline=CYAN)
        for (x, y), lab in zip(smp.points, smp.point_labels):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=GREEN if lab > 0 else MAGENTA, width=2)
        tiles.append(np.asarray(img))
    Image.fromarray(grid(tiles, 4)).save(path)


def time_per_item(fn, n: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per call; CPU time is the robust number on a shared machine."""
    fn(0)  # warm-up (imports, caches)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(1, n + 1):
        fn(i)
    return (time.perf_counter() - wall) / n * 1e3, (time.process_time() - cpu) / n * 1e3


def timings() -> dict[str, tuple[float, float]]:
    clip_lin = time_per_item(lambda s: generate_clip(s, 160), 2)
    clip_sec = time_per_item(lambda s: generate_clip(s, 160, geometry="sector"), 2)
    return {
        "ultrasound, per frame": time_per_item(generate_frame, 100),
        "shapes, per sample": time_per_item(generate_sample, 100),
        "clip (linear), per frame": (clip_lin[0] / 160, clip_lin[1] / 160),
        "clip (sector), per frame": (clip_sec[0] / 160, clip_sec[1] / 160),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    ultrasound_sheet(os.path.join(args.out_dir, "ultrasound.png"), args.seed)
    clip_sheet(os.path.join(args.out_dir, "clip_linear.png"), args.seed, "linear")
    clip_sheet(os.path.join(args.out_dir, "clip_sector.png"), args.seed + 1, "sector")
    shapes_sheet(os.path.join(args.out_dir, "shapes.png"), args.seed)
    print(f"wrote contact sheets to {args.out_dir}")
    if not args.no_timing:
        for name, (wall, cpu) in timings().items():
            print(f"{name}: {wall:.1f} ms wall, {cpu:.1f} ms CPU")


if __name__ == "__main__":
    main()
