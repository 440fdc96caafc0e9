"""``sammix.toml``: the bundle manifest (schema in models/README.md), written and checked here.

The runtime validates the same fields; the TOML is written by hand-rolled
code (no writer in the standard library) from plain values, and read back with
``tomllib`` to check it round-trips.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

SCHEMA_VERSION = 1
MANIFEST = "sammix.toml"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _table(lines: list[str], name: str, table: dict, comments: dict[str, str]) -> None:
    lines.append(f"\n[{name}]")
    for key, v in table.items():
        key_s = key if key.replace("_", "").replace("-", "").isalnum() else _value(key)
        c = comments.get(f"{name}.{key}")
        lines.append(f"{key_s} = {_value(v)}" + (f"  # {c}" if c else ""))


COMMENTS = {
    "input.size": "S: classifier and encoder take 1×C×S×S",
    "input.color": "what the channels hold: gray = the frame's BT.601 luma in each, rgb = its R, G, B (channels = 3)",
    "input.embedding_size": "E, the graphs': image_embeddings are 1×256×E×E, mask_input 1×1×4E×4E (4E divides S)",
    "input.resize": "frame → S×S, bilinear, align_corners = false, aspect not kept",
    "input.mean": "per channel, in 0..255 pixel units: x = (pixel - mean) / std",
    "prompt.cam_threshold": "fraction of the upsampled CAM's maximum",
    "prompt.min_component_px": "in S×S input pixels",
    "prompt.box_margin": "fraction of S added on each side",
    "prompt.dense_logit": "s: mask_input = s·(2f − 1), f the area fraction",
    "prompt.max_boxes": "one box (decoder call) per kept CAM component, largest first, at most this many",
    "prompt.refine_rounds": "per box: box from the mask, decoder again with its logits as mask_input",
    "graphs.classifier.input": "the classifier reads the encoder's image_embeddings, not the image",
    "gate.presence_threshold": "sigmoid(logits) below this: no prompt, empty mask",
    "decoder.mask_tokens": "the mask chosen is the one of these with the best iou_predictions",
    "decoder.mask_threshold": "mask = upsampled low_res_masks logits > this",
    "confidence.presence_margin": "flag for review: presence within this of the gate",
    "confidence.min_iou_prediction": "flag a segmented frame whose predicted IoU is below this",
    "confidence.min_cam_peak": "flag a present frame whose CAM peak is below this",
    "confidence.min_agreement": "flag a stream frame whose mask IoU with the previous frame's is below this",
}


def write_manifest(bundle: Path, meta: dict, graphs: dict[str, dict]) -> Path:
    """Write ``sammix.toml`` with checksums of every other file in the bundle."""
    lines = [
        "# sammix bundle manifest: see models/README.md for the schema.",
        f"schema = {SCHEMA_VERSION}",
        f"name = {_value(meta['name'])}",
        f"description = {_value(meta['description'])}",
    ]
    for section in ("input", "prompt", "gate", "decoder", "confidence"):
        if section in meta:
            _table(lines, section, meta[section], COMMENTS)
    for role in ("classifier", "encoder", "decoder"):
        g = graphs[role]
        extra = {k: v for k, v in g.items() if k not in ("file", "precision")}
        _table(lines, f"graphs.{role}", {"file": g["file"], "precision": g["precision"], **extra,
                                         "sha256": sha256(bundle / g["file"])}, COMMENTS)
    files = sorted(
        p.relative_to(bundle).as_posix()
        for p in bundle.rglob("*")
        if p.is_file() and p.name != MANIFEST and not p.name.endswith(".onnx")
    )
    lines.append("\n# sha256 of every other file in the bundle (the graphs' are above)")
    lines.append("[checksums]")
    for rel in files:
        lines.append(f"{_value(rel)} = {_value(sha256(bundle / rel))}")
    path = bundle / MANIFEST
    path.write_text("\n".join(lines) + "\n")
    tomllib.loads(path.read_text())  # must parse
    return path


INPUT_COLORS = ("gray", "rgb")


def input_problems(inp: dict) -> list[str]:
    """Problems with ``[input]``'s ``color`` as the runtime checks it (src/bundle/validate.rs): absent means
    ``gray`` (the frame's luma in every channel, whatever ``channels``); ``rgb`` needs ``channels = 3``."""
    color = inp.get("color", "gray")
    if color not in INPUT_COLORS:
        return [f"input.color: expected one of {', '.join(map(repr, INPUT_COLORS))}, found {color!r}"]
    if color == "rgb" and inp.get("channels") != 3:
        return [f"input.color: 'rgb' takes the frame's R, G and B: expected input.channels = 3, "
                f"found {inp.get('channels')!r}"]
    return []


def verify_manifest(bundle: Path) -> list[str]:
    """Problems with a bundle's ``[input]`` colour, checksums and file list (empty when it is sound)."""
    m = tomllib.loads((bundle / MANIFEST).read_text())
    problems = input_problems(m.get("input", {}))
    listed = {}
    for role, g in m["graphs"].items():
        listed[g["file"]] = g["sha256"]
    listed.update(m.get("checksums", {}))
    for rel, digest in listed.items():
        p = bundle / rel
        if not p.is_file():
            problems.append(f"{rel}: listed in {MANIFEST} but missing")
        elif sha256(p) != digest:
            problems.append(f"{rel}: sha256 mismatch")
    for p in bundle.rglob("*"):
        rel = p.relative_to(bundle).as_posix()
        if p.is_file() and p.name != MANIFEST and rel not in listed:
            problems.append(f"{rel}: present but not listed in {MANIFEST}")
    return problems
