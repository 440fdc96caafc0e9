"""Write a generated set as PNG folders, the layout ``sammix eval --data DIR`` reads.

    python -m sammix_recipe.export_dataset --set test --out /tmp/us-test

gives ``DIR/images/NNNNNN.png`` (8-bit grayscale frames) and ``DIR/masks/NNNNNN.png``
(0 background, 255 lesion; all zero where no lesion is in view), named by index.
``--set val`` writes the pool's fixed validation split (``medsam_data.validation_indices``,
the frames thresholds are chosen on), named by pool index.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from .common import setup_logging, ultrasound_set
from .medsam_data import validation_indices


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["test", "pool", "val"], default="test")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    setup_logging()
    if args.set == "val":
        pool = ultrasound_set("pool")
        idx = validation_indices(pool["present"])
        data = {k: pool[k][idx] for k in ("images", "masks")}
    else:
        data = ultrasound_set(args.set)
        idx = np.arange(len(data["images"]))
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for i, img, mask in zip(idx, data["images"], data["masks"]):
        Image.fromarray(img).save(out / "images" / f"{i:06d}.png")
        Image.fromarray((mask > 0).astype(np.uint8) * 255).save(out / "masks" / f"{i:06d}.png")
    print(f"wrote {len(data['images'])} frames to {out}")


if __name__ == "__main__":
    main()
