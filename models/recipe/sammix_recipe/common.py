"""Shared plumbing for the training scripts: devices, seeds, cached datasets, checkpoints."""

from __future__ import annotations

import json
import logging
import os
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

RECIPE_DIR = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(os.environ.get("SAMMIX_CACHE", RECIPE_DIR / "cache"))
RUNS_DIR = Path(os.environ.get("SAMMIX_RUNS", RECIPE_DIR / "runs"))

# Disjoint seed ranges: nothing the test set is drawn from is ever trained on.
POOL_SEED0 = 0  # training pool (image labels for all, masks for K of them)
TEST_SEED0 = 1_000_000  # held-out test set
SHAPES_SEED0 = 5_000_000  # foundation pretraining (generic shapes, not the task)
CLIP_SEED = 7_000_000  # the bundled demo clip
VAL_CLIP_SEED0 = 8_000_000  # validation clips: stream thresholds are chosen on these, never on the demo clip

POOL_SIZE = 2000
TEST_SIZE = 240
INPUT_SIZE = 256

log = logging.getLogger("sammix_recipe")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":  # TF32 matrix products: the models train in f32 either way
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return dev


def device_name(dev: torch.device) -> str:
    """What ran a training: the GPU's name, or the CPU with its thread count."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _us_chunk(args):
    from .data.ultrasound import generate_dataset

    seeds, size = args
    return generate_dataset(seeds, size=(size, size))


def _shapes_chunk(args):
    from .data.shapes import generate_batch

    seeds, size = args
    return generate_batch(seeds, size=(size, size))


def _parallel(fn, seeds: list[int], size: int, workers: int):
    chunks = [seeds[i : i + 64] for i in range(0, len(seeds), 64)]
    jobs = [(c, size) for c in chunks]
    if workers <= 1:
        return [fn(j) for j in jobs]
    with Pool(workers) as pool:
        return pool.map(fn, jobs)


def workers() -> int:
    return max(1, min(os.cpu_count() or 1, 16))


def ultrasound_set(name: str, size: int = INPUT_SIZE) -> dict[str, np.ndarray]:
    """The cached ``pool`` or ``test`` set: images, masks, present (uint8 arrays)."""
    seed0, n = {"pool": (POOL_SEED0, POOL_SIZE), "test": (TEST_SEED0, TEST_SIZE)}[name]
    return generated_set(CACHE_DIR / f"us_{name}_{n}_{size}.npz", _us_chunk, seed0, n, size, name)


def generated_set(path: Path, chunk, seed0: int, n: int, size: int, what: str) -> dict[str, np.ndarray]:
    """Frames of seeds ``seed0 .. seed0 + n`` made by ``chunk(seeds, size) -> (images, masks, present)`` in
    parallel, cached at ``path``: images, masks, present and seeds."""
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    t = time.time()
    parts = _parallel(chunk, list(range(seed0, seed0 + n)), size, workers())
    data = {
        "images": np.concatenate([p[0] for p in parts]),
        "masks": np.concatenate([p[1] for p in parts]),
        "present": np.concatenate([p[2] for p in parts]),
        "seeds": np.arange(seed0, seed0 + n, dtype=np.int64),
    }
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    log.info("generated %s: %d frames in %.1fs -> %s", what, n, time.time() - t, path)
    return data


def shapes_set(n: int, size: int = INPUT_SIZE) -> dict[str, np.ndarray]:
    """The cached foundation-pretraining set of ``n`` shapes samples."""
    path = CACHE_DIR / f"shapes_{n}_{size}.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    t = time.time()
    parts = _parallel(_shapes_chunk, list(range(SHAPES_SEED0, SHAPES_SEED0 + n)), size, workers())
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    log.info("generated shapes: %d samples in %.1fs -> %s", n, time.time() - t, path)
    return data


class StepBudget:
    """Fits a training run into a wall-clock budget.

    After ``probe`` steps (and again after ``4 * probe``) the seconds per step so
    far set the step count that fits ``seconds``; the count only ever goes down,
    and not below ``floor``.  With ``seconds`` = 0 the run keeps its steps.  The
    run records ``steps`` (what actually ran) in its train.json, so passing that
    as ``--steps`` reproduces it without a budget.
    """

    def __init__(self, steps: int, seconds: float, probe: int = 50, floor: int = 100):
        self.steps, self.seconds, self.probe, self.floor = steps, seconds, probe, floor
        self.t0 = time.time()

    def update(self, step: int) -> int:
        if self.seconds and step in (self.probe, 4 * self.probe) and step < self.steps:
            per_step = (time.time() - self.t0) / step
            fit = max(self.floor, int(self.seconds / per_step))
            if fit < self.steps:
                log.info("%.3f s/step: running %d steps to fit %.0f s", per_step, fit, self.seconds)
                self.steps = max(fit, step + 1)
        return self.steps


def save_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def cosine_lr(step: int, total: int, base: float, warmup: int = 50) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + np.cos(np.pi * min(t, 1.0)))


def set_lr(opt: torch.optim.Optimizer, lr_scale: float) -> None:
    for g in opt.param_groups:
        g["lr"] = g["base_lr"] * lr_scale


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip and gain/gamma jitter of uint8 (B,H,W) or (B,C,H,W) images with their (B,H,W) masks, on device
    (all channels of a frame alike)."""
    b = images.shape[0]
    x = images.float() / 255.0
    m = masks
    per = (b,) + (1,) * (x.dim() - 1)  # one value a frame, broadcast over its channels and pixels
    flip = torch.from_numpy(rng.random(b) < 0.5).to(x.device)
    x = torch.where(flip.view(per), x.flip(-1), x)
    m = torch.where(flip[:, None, None], m.flip(-1), m)
    gain = torch.from_numpy(rng.uniform(0.8, 1.2, b).astype(np.float32)).to(x.device)
    gamma = torch.from_numpy(rng.uniform(0.8, 1.25, b).astype(np.float32)).to(x.device)
    x = (x.clamp(0, 1) ** gamma.view(per) * gain.view(per)).clamp(0, 1)
    return (x * 255.0).round(), m
