#!/usr/bin/env python3
"""Times onnxruntime (one intra-op thread) on each graph of a bundle, with the
inputs the pipeline gives them: the bundle's demo clip frames resized and
normalised as the manifest says (classifier and encoder), the encoder's own
embeddings with one box prompt and a dense prompt (decoder; only
`iou_predictions` and `low_res_masks` fetched, as the runtime computes).
Prints JSON: per graph the median, minimum and maximum ms per call.

    .venv/bin/python scripts/bench_bundle_ort.py BUNDLE [--frames N] [--reps R] [--no-qdq-fusion]

`scripts/bench_bundle.sh` runs it beside `sammix bench --json` on the same
bundle and prints both. By default onnxruntime fuses weight-only int8
(DequantizeLinear → MatMul) into integer matmuls, as a user of it gets;
`--no-qdq-fusion` computes those in f32, as tract does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort


def read_y4m_luma(path: Path, limit: int) -> list[np.ndarray]:
    """The first ``limit`` frames' luma planes of a Y4M file (mono, 4:2:0 or 4:4:4)."""
    data = path.read_bytes()
    end = data.index(b"\n")
    fields = data[:end].split()
    if not fields or fields[0] != b"YUV4MPEG2":
        raise SystemExit(f"{path}: not a Y4M file (no YUV4MPEG2 header)")
    tags = {f[:1].decode(): f[1:].decode() for f in fields[1:]}
    w, h = int(tags["W"]), int(tags["H"])
    colour = tags.get("C", "420")
    chroma = {"mono": 0, "444": 2 * w * h}.get(colour.split("p")[0], 2 * ((w + 1) // 2) * ((h + 1) // 2))
    frames, at = [], end + 1
    while at < len(data) and len(frames) < limit:
        at = data.index(b"\n", at) + 1  # FRAME[ params]\n
        frames.append(np.frombuffer(data, np.uint8, w * h, at).reshape(h, w))
        at += w * h + chroma
    return frames


def resize_bilinear(img: np.ndarray, size: int) -> np.ndarray:
    """Bilinear, align_corners = false, as the runtime's resize."""
    h, w = img.shape

    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = (np.arange(size) + 0.5) * n_in / size - 0.5
        x = np.clip(x, 0, n_in - 1)
        lo = np.floor(x).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (x - lo).astype(np.float32)

    (y0, y1, fy), (x0, x1, fx) = axis(h), axis(w)
    f = img.astype(np.float32)
    top = f[y0][:, x0] * (1 - fx) + f[y0][:, x1] * fx
    bottom = f[y1][:, x0] * (1 - fx) + f[y1][:, x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


def session(path: Path, qdq_fusion: bool) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    if not qdq_fusion:
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def timed(run, calls: list, warmup: int) -> dict:
    for args in calls[:warmup]:
        run(*args)
    ms = []
    for args in calls:
        t = time.perf_counter()
        run(*args)
        ms.append((time.perf_counter() - t) * 1e3)
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "calls": len(ms)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--frames", type=int, default=20, help="demo clip frames (each graph runs once on each)")
    ap.add_argument("--reps", type=int, default=1, help="passes over the frames")
    ap.add_argument("--no-qdq-fusion", action="store_true")
    args = ap.parse_args(argv)
    manifest_path = args.bundle / "sammix.toml"
    try:
        m = tomllib.loads(manifest_path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SystemExit(f"{manifest_path}: {e}")
    inp, graphs = m["input"], m["graphs"]
    s, c = int(inp["size"]), int(inp.get("channels", 1))
    e = int(inp.get("embedding_size", s // 16))
    mean = np.array(inp["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.array(inp["std"], np.float32).reshape(1, -1, 1, 1)
    fusion = not args.no_qdq_fusion
    clf, enc, dec = (session(args.bundle / graphs[g]["file"], fusion) for g in ("classifier", "encoder", "decoder"))
    frames = read_y4m_luma(args.bundle / "demo" / "clip.y4m", args.frames)
    if not frames:
        raise SystemExit(f"{args.bundle / 'demo' / 'clip.y4m'}: no frames")
    xs = []
    for f in frames:
        g = resize_bilinear(f, s) if f.shape != (s, s) else f.astype(np.float32)
        xs.append(np.ascontiguousarray((np.broadcast_to(g, (1, c, s, s)) - mean) / std, dtype=np.float32))
    xs = xs * args.reps
    enc_in, enc_out = enc.get_inputs()[0].name, enc.get_outputs()[0].name
    embs = [enc.run([enc_out], {enc_in: x})[0] for x in xs[: len(frames)]] * args.reps
    clf_in = clf.get_inputs()[0].name
    clf_reads_embeddings = graphs["classifier"].get("input") == "image_embeddings"
    clf_feeds = embs if clf_reads_embeddings else xs
    box = np.array([[[s * 0.3, s * 0.3], [s * 0.7, s * 0.7]]], np.float32)
    dense = np.full((1, 1, 4 * e, 4 * e), -8.0, np.float32)
    dense[..., e : 3 * e, e : 3 * e] = 8.0
    dec_names = {i.name for i in dec.get_inputs()}
    fixed = {"point_coords": box, "point_labels": np.array([[2.0, 3.0]], np.float32), "mask_input": dense,
             "has_mask_input": np.ones(1, np.float32), "orig_im_size": np.array([s, s], np.float32)}
    fixed = {k: v for k, v in fixed.items() if k in dec_names}
    warm = min(3, len(xs))
    out = {
        "bundle": str(args.bundle), "onnxruntime": ort.__version__, "threads": 1, "qdq_fusion": fusion,
        "frames": len(frames), "reps": args.reps, "input": {"size": s, "channels": c, "embedding_size": e},
        "classifier_input": "image_embeddings" if clf_reads_embeddings else "image",
        "classifier": timed(lambda x: clf.run(None, {clf_in: x}), [(x,) for x in clf_feeds], warm),
        "encoder": timed(lambda x: enc.run([enc_out], {enc_in: x}), [(x,) for x in xs], warm),
        "decoder": timed(lambda em: dec.run(["iou_predictions", "low_res_masks"], {"image_embeddings": em, **fixed}),
                         [(em,) for em in embs], warm),
    }
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
