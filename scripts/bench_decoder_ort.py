#!/usr/bin/env python3
"""Times onnxruntime (one intra-op thread) on SAM decoder graphs, with the inputs
`benches/decoder.rs` and the pipeline use: one box prompt, a dense prompt, only
`iou_predictions` and `low_res_masks` computed. Prints JSON.

    .venv/bin/python scripts/bench_decoder_ort.py [DECODER.onnx ...] [--reps N]

Without files: the bundle's decoder and, when present, models/vit-b-random's
(f32 and int8/). Each graph is first cut to the two outputs the runtime uses
(onnx.utils.Extractor, as tract's plan prunes `masks` and `orig_im_size`), so
the engines run the same computation. Also reports the graph's multiply-
accumulates (MatMul, Gemm, Conv, ConvTranspose and their integer forms, from
the shapes of one onnxruntime run), for GMAC/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
EMBED = 256
INPUTS = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"]
OUTPUTS = ["iou_predictions", "low_res_masks"]
DEFAULT = [
    ("us-tiny-int8", ROOT / "models/sammix-us-scratch/decoder.onnx"),
    ("vit-b-f32", ROOT / "models/vit-b-random/decoder.onnx"),
    ("vit-b-int8", ROOT / "models/vit-b-random/int8/decoder.onnx"),
]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def embedding_size(model: onnx.ModelProto) -> int:
    for i in model.graph.input:
        if i.name == "image_embeddings":
            dims = [d.dim_value for d in i.type.tensor_type.shape.dim]
            if len(dims) == 4 and dims[2] > 0 and dims[2] == dims[3]:
                return dims[2]
    raise SystemExit("image_embeddings is not 1×256×E×E with a concrete E")


def inputs(e: int) -> dict[str, np.ndarray]:
    """The shapes and kinds of values benches/decoder.rs feeds (not the same
    random numbers; timing does not depend on them)."""
    s = 16.0 * e
    rng = np.random.default_rng(0)
    n = 4 * e
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    disc = (xx - n / 2) ** 2 + (yy - n / 2) ** 2 < (0.3 * n) ** 2
    return {
        "image_embeddings": (0.5 * rng.standard_normal((1, EMBED, e, e))).astype(np.float32),
        "point_coords": np.array([[[0.25 * s, 0.3 * s], [0.7 * s, 0.75 * s]]], np.float32),
        "point_labels": np.array([[2.0, 3.0]], np.float32),
        "mask_input": np.where(disc, 8.0, -8.0).astype(np.float32)[None, None],
        "has_mask_input": np.array([1.0], np.float32),
    }


def cut(path: Path, out: Path) -> onnx.ModelProto:
    """The graph from the five runtime inputs to the two outputs used."""
    model = onnx.load(str(path))
    sub = onnx.utils.Extractor(model).extract_model(INPUTS, OUTPUTS)
    onnx.save(sub, str(out))
    return sub


def session(path: Path, threads: int = 1) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def macs(model: onnx.ModelProto, feed: dict[str, np.ndarray], tmp: Path) -> int:
    """Multiply-accumulates of one run, from every tensor's runtime shape."""
    counted = {"MatMul", "MatMulInteger", "Gemm", "Conv", "ConvInteger", "ConvTranspose"}
    g = model.graph
    wanted = set()
    for node in g.node:
        if node.op_type in counted:
            wanted.update(x for x in node.input[:2] if x)
            wanted.update(node.output[:1])
    inits = {t.name: list(t.dims) for t in g.initializer}
    have = {o.name for o in g.output}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in sorted(wanted - set(inits) - have - set(feed)):
        probe.graph.output.append(onnx.ValueInfoProto(name=name))
    path = tmp / "probe.onnx"
    onnx.save(probe, str(path))
    sess = session(path)
    names = [o.name for o in sess.get_outputs()]
    shapes = {n: list(v.shape) for n, v in zip(names, sess.run(names, feed))}
    shapes.update(inits)
    shapes.update({k: list(v.shape) for k, v in feed.items()})
    total = 0
    for node in g.node:
        if node.op_type not in counted:
            continue
        out = shapes[node.output[0]]
        a, b = shapes[node.input[0]], shapes[node.input[1]]
        if node.op_type in ("MatMul", "MatMulInteger"):
            total += int(np.prod(out)) * a[-1]
        elif node.op_type == "Gemm":
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            total += int(np.prod(out)) * (a[0] if trans_a else a[-1])
        elif node.op_type in ("Conv", "ConvInteger"):
            total += int(np.prod(out)) * int(np.prod(b[1:]))
        else:  # ConvTranspose: weight [Cin, Cout/group, kh, kw]
            total += int(np.prod(a)) * int(np.prod(b[1:]))
    return total


def bench(label: str, path: Path, reps: int, warmup: int, tmp: Path) -> dict:
    sub = cut(path, tmp / f"{label}.onnx")
    e = embedding_size(sub)
    feed = inputs(e)
    sess = session(tmp / f"{label}.onnx")
    for _ in range(warmup):
        sess.run(OUTPUTS, feed)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(OUTPUTS, feed)
        times.append((time.perf_counter() - t) * 1e3)
    mac = macs(sub, feed, tmp)
    median = statistics.median(times)
    return {
        "graph": label,
        "file": str(path),
        "embedding_size": e,
        "reps": reps,
        "median_ms": round(median, 3),
        "min_ms": round(min(times), 3),
        "p90_ms": round(float(np.percentile(times, 90)), 3),
        "gmac": round(mac / 1e9, 4),
        "gmac_per_s": round(mac / 1e9 / (median / 1e3), 2),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, help="decoder.onnx files (default: see above)")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args(argv)
    graphs = [(p.parent.name + "/" + p.stem, p) for p in args.files] or DEFAULT
    results, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="sammix-ort-") as tmp:
        for label, path in graphs:
            if not path.is_file():
                skipped.append({"graph": label, "file": str(path), "why": "absent"})
                continue
            print(f"onnxruntime: {label} ({path})", file=sys.stderr)
            results.append(bench(label, path, args.reps, args.warmup, Path(tmp)))
    report = {
        "engine": f"onnxruntime {ort.__version__}",
        "threads": 1,
        "cpu": cpu_name(),
        "cores_visible": os.cpu_count(),
        "inputs": "one box (labels 2, 3), dense prompt, has_mask_input 1; outputs iou_predictions, low_res_masks",
        "results": results,
        "skipped": skipped,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
