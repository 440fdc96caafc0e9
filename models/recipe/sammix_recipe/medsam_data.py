"""Which pool frames a run may see: K labelled masks, a validation split, image labels."""

from __future__ import annotations

import numpy as np

VALIDATION_SIZE = 100  # pool frames (with masks) used only to choose thresholds and levers


def labeled_indices(present: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The K pool frames whose masks a run may see (positives only).

    The same draw as the tiny recipe's ``train_sammix.labeled_indices``, so a
    K = 5 or 50 run's frames are a prefix of its K = 100 run's.
    """
    rng = np.random.default_rng(10_000 + seed)
    return rng.permutation(np.nonzero(present)[0])[:k]


def validation_indices(present: np.ndarray) -> np.ndarray:
    """A fixed validation split of the pool, disjoint from every K = 100 draw of seeds 0-2."""
    taken = set()
    for s in range(3):
        taken.update(int(i) for i in labeled_indices(present, 100, s))
    rng = np.random.default_rng(30_000)
    order = [int(i) for i in rng.permutation(len(present)) if int(i) not in taken]
    return np.array(order[:VALIDATION_SIZE], dtype=np.int64)
