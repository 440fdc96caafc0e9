"""SAM-Mix graphs at the size users run (SAM ViT-B, 1024×1024 RGB), random weights, for benchmarks.

    python -m sammix_recipe.export_vit_b --out ../vit-b-random [--skip-encoder] [--int8]

Writes ``classifier.onnx`` (1×3×1024×1024 → logits, 64×64 CAM), ``encoder.onnx``
(ViT-B, ~360 MB), ``decoder.onnx`` (the official interface, E = 64) and, with
``--int8``, dynamic-int8 versions under ``int8/``. The weights are random
(seeded): timings mean something, outputs do not. Nothing here is committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .common import log, setup_logging
from .export import export_classifier, export_decoder, export_encoder, quantize_dynamic_graph
from .model import CamClassifier, ClassifierConfig, SamConfig, build_sam


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "vit-b-random"))
    ap.add_argument("--skip-encoder", action="store_true", help="the ViT-B encoder export takes minutes")
    ap.add_argument("--int8", action="store_true", help="also write dynamic-int8 graphs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    setup_logging()
    torch.manual_seed(args.seed)
    out = Path(args.out)
    cfg = SamConfig.vit_b()
    sam = build_sam(cfg).eval()
    clf = CamClassifier(ClassifierConfig(in_chans=cfg.in_chans)).eval()
    roles = ["classifier", "decoder"] + ([] if args.skip_encoder else ["encoder"])
    export_classifier(clf, cfg, out / "classifier.onnx")
    export_decoder(sam, cfg, out / "decoder.onnx")
    if not args.skip_encoder:
        export_encoder(sam, cfg, out / "encoder.onnx")
    if args.int8:
        for role in roles:
            quantize_dynamic_graph(out / f"{role}.onnx", out / "int8" / f"{role}.onnx")
    for role in roles:
        log.info("%s: %.1f MB", out / f"{role}.onnx", (out / f"{role}.onnx").stat().st_size / 1e6)


if __name__ == "__main__":
    main()
