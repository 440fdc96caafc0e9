"""Reference vectors that keep the Rust runtime and this recipe honest with each other.

``reference/index.json`` (format 1) holds:

- ``graph_cases``: for a few test frames, every graph's inputs and the
  outputs onnxruntime computed from them (npy files), with tolerances. The
  Rust test runs each graph in tract on the same inputs.
- ``frames``: for the same frames, the uint8 frame, the model input tensor,
  presence probability, the box, the dense prompt and the final mask.
- ``prompt_cases``: CAM in → box, kept-component mask and dense prompt out,
  for real CAMs and for edge cases (empty, negative, ties, tiny components,
  components touching the border), replayed by the Rust prompt tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from .common import ultrasound_set
from .export import DECODER_INPUTS, DECODER_OUTPUTS
from .onnx_pipeline import OrtSamMix
from .prompt import PromptParams, cam_to_prompt

FORMAT = 1
N_POSITIVE = 2
N_NEGATIVE = 1
REF_MASK_SIZE = 128


def _save(folder: Path, rel: str, arr: np.ndarray) -> str:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(arr))
    return rel


F32_ATOL, F32_RTOL = 1e-4, 1e-3
# int8-dynamic graphs quantise activations at run time; two engines may round a
# value one step apart, and the step compounds through the layers. Their outputs
# are held to a fraction of the output's own range instead.
INT8_REL_ATOL = 0.02


def is_int8(graph: Path) -> bool:
    import onnx

    ops = {n.op_type for n in onnx.load(str(graph)).graph.node}
    return bool(ops & {"MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "QuantizeLinear"})


def tolerance(graph: Path, outputs: list[np.ndarray]) -> tuple[float, float]:
    if not is_int8(graph):
        return F32_ATOL, F32_RTOL
    scale = max(float(np.abs(o).max()) for o in outputs)
    return float(f"{INT8_REL_ATOL * scale:.3g}"), 0.0


def pick_frames(pipe: OrtSamMix) -> list[int]:
    test = ultrasound_set("test")
    chosen, pos, neg = [], 0, 0
    for i, img in enumerate(test["images"]):
        r = pipe(img)
        if test["present"][i] and r.prompt is not None and pos < N_POSITIVE:
            chosen.append(i)
            pos += 1
        elif not test["present"][i] and neg < N_NEGATIVE:
            chosen.append(i)
            neg += 1
        if pos == N_POSITIVE and neg == N_NEGATIVE:
            break
    return chosen


def synthetic_cams(rng: np.random.Generator, e: int) -> list[tuple[str, np.ndarray]]:
    yy, xx = np.mgrid[0:e, 0:e].astype(np.float32)

    def blob(cy, cx, r, a=1.0):
        return a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))

    cases = [
        ("all_zero", np.zeros((e, e), np.float32)),
        ("all_negative", -np.ones((e, e), np.float32)),
        ("single_blob", blob(7, 9, 2.0)),
        ("two_blobs_equal", blob(4, 4, 1.5) + blob(11, 11, 1.5)),
        ("two_blobs_unequal", blob(4, 4, 1.0, 0.9) + blob(11, 10, 2.5)),
        ("corner_touching", blob(0, 0, 2.5)),
        ("edge_touching", blob(15, 8, 2.0)),
        ("tiny_peak", np.pad(np.ones((1, 1), np.float32), ((8, e - 9), (8, e - 9)))),
        ("flat_positive", np.full((e, e), 0.5, np.float32)),
        ("noise", np.maximum(rng.normal(0, 1, (e, e)).astype(np.float32), 0)),
    ]
    return cases


def write_reference(bundle: Path, pipe: OrtSamMix, cfg, params: PromptParams) -> None:
    ref = bundle / "reference"
    if ref.exists():
        shutil.rmtree(ref)
    ref.mkdir(parents=True)
    test = ultrasound_set("test")
    index: dict = {"format": FORMAT, "graph_cases": [], "frames": [], "prompt_cases": [],
                   "prompt_params": params.to_dict(), "input_size": cfg.img_size,
                   "embedding_size": cfg.embedding_size}
    for n, i in enumerate(pick_frames(pipe)):
        name = f"frame_{n:03d}"
        img = test["images"][i]
        r = pipe(img, force_segment=True)  # negatives too, so every graph has a case per frame
        t = dict(r.tensors)
        if "image_embeddings" in t:
            # record ``masks`` at a smaller square size: it exercises the graph's final
            # Resize with a pinned orig_im_size and keeps the bundle small
            t["orig_im_size"] = np.array([REF_MASK_SIZE, REF_MASK_SIZE], np.float32)
            feeds = {k: t[k] for k in DECODER_INPUTS}
            t["masks"], t["iou_predictions"], t["low_res_masks"] = pipe.dec.run(DECODER_OUTPUTS, feeds)
        Image.fromarray(img).save(ref / f"{name}_frame.png")
        files = {k: _save(ref, f"{name}/{k}.npy", v) for k, v in t.items()}
        cases = [("classifier", ["input"], ["logits", "cam"])]
        if "image_embeddings" in t:
            cases.append(("encoder", ["input"], ["image_embeddings"]))
            cases.append(("decoder", ["image_embeddings", "point_coords", "point_labels", "mask_input",
                                      "has_mask_input"], ["masks", "iou_predictions", "low_res_masks"]))
        for graph, ins, outs in cases:
            atol, rtol = tolerance(bundle / f"{graph}.onnx", [t[k] for k in outs])
            index["graph_cases"].append({
                "name": f"{name}/{graph}",
                "graph": f"{graph}.onnx",
                "inputs": [{"name": "image" if k == "input" else k, "file": files[k]} for k in ins],
                "constant_inputs": [{"name": "orig_im_size", "file": files["orig_im_size"]}] if graph == "decoder" else [],
                "outputs": [{"name": k, "file": files[k]} for k in outs],
                "atol": atol,
                "rtol": rtol,
            })
        gated = pipe(img)
        index["frames"].append({
            "name": name,
            "test_index": int(i),
            "frame": f"{name}_frame.png",
            "input": files["input"],
            "present_ground_truth": bool(test["present"][i]),
            "presence": gated.presence,
            "box": None if gated.prompt is None else [float(v) for v in gated.prompt.box],
            "mask": _save(ref, f"{name}/final_mask.npy", gated.mask),
            "iou": gated.iou,
        })
    rng = np.random.default_rng(0)
    cams = synthetic_cams(rng, cfg.embedding_size)
    for f in index["frames"]:
        cams.append((f"{f['name']}_cam", np.load(ref / f["name"] / "cam.npy")[0, 0]))
    for name, cam in cams:
        pr = cam_to_prompt(cam, cfg.img_size, cfg.embedding_size, params)
        case = {"name": name, "cam": _save(ref, f"prompt/{name}_cam.npy", cam.astype(np.float32))}
        if pr is None:
            case.update({"prompt": False})
        else:
            case.update({
                "prompt": True,
                "box": [float(v) for v in pr.box],
                "mask": _save(ref, f"prompt/{name}_mask.npy", pr.mask),
                "dense": _save(ref, f"prompt/{name}_dense.npy", pr.dense),
            })
        index["prompt_cases"].append(case)
    (ref / "index.json").write_text(json.dumps(index, indent=1) + "\n")
