"""Write a generated set as PNG folders, the layout ``sammix eval --data DIR`` reads.

    python -m sammix_recipe.export_dataset --set test --out /tmp/us-test

gives ``DIR/images/NNNNNN.png`` (8-bit grayscale frames; RGB with ``--data endo``) and ``DIR/masks/NNNNNN.png``
(0 background, 255 lesion; all zero where no lesion is in view), named by index.
``--set val`` writes the pool's fixed validation split (``medsam_data.validation_indices``,
the frames thresholds are chosen on), named by pool index. ``--set clip-val`` writes validation
clips (``--clips N`` probe sweeps of ``--frames`` frames through phantoms of seeds 8 000 000 + i,
never the demo clip's; with ``--data endo``, RGB colonoscopy clips of seeds 24 000 000 + i as full-range 4:2:0 Y4M):
``DIR/clipI/clip.y4m`` and ``DIR/clipI/masks/NNNNNN.png``, what ``sammix run
--source DIR/clipI/clip.y4m --truth DIR/clipI/masks`` reads; thresholds that need a stream (the
review flag's agreement) are chosen on these. ``--data endo --set val`` writes the colonoscopy
validation set (its own seeds), named by index.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from .common import VAL_CLIP_SEED0, setup_logging, ultrasound_set
from .medsam_data import DOMAINS
from .medsam_data import validation_indices


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["test", "pool", "val", "clip-val"], default="test")
    ap.add_argument("--data", default="us", choices=sorted(DOMAINS), help="us: ultrasound (gray); endo: colonoscopy (RGB)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--clips", type=int, default=2, help="clip-val: how many clips")
    ap.add_argument("--frames", type=int, default=100, help="clip-val: frames a clip")
    args = ap.parse_args(argv)
    setup_logging()
    if args.set == "clip-val":
        from .data.clip import generate_clip, write_y4m
        from .data.endoscopy import VAL_CLIP_SEED0 as ENDO_VAL_CLIP_SEED0
        from .data.endoscopy_clip import generate_clip as endo_clip
        from .data.y4m_color import write_y4m_rgb

        endo = args.data == "endo"
        seed0 = ENDO_VAL_CLIP_SEED0 if endo else VAL_CLIP_SEED0
        for i in range(args.clips):
            frames, masks = (endo_clip if endo else generate_clip)(seed0 + i, n_frames=args.frames, size=(256, 256))
            d = Path(args.out) / f"clip{i}"
            (d / "masks").mkdir(parents=True, exist_ok=True)
            if endo:
                write_y4m_rgb(d / "clip.y4m", frames, fps=25)
            else:
                write_y4m(d / "clip.y4m", frames, fps=25)
            for j, m in enumerate(masks):
                Image.fromarray((m > 0).astype(np.uint8) * 255).save(d / "masks" / f"{j:06d}.png")
            print(f"wrote clip {i} (seed {seed0 + i}, {len(frames)} frames, "
                  f"{int(masks.reshape(len(masks), -1).any(1).sum())} with a lesion) to {d}")
        return
    if args.data == "endo":
        data = DOMAINS["endo"].frames("validation" if args.set == "val" else args.set)
        idx = np.arange(len(data["images"]))
    elif args.set == "val":
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
