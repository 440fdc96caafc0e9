"""The shipped bundle: manifest checksums, file list, size budget, clip and reference shapes."""

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from sammix_recipe.data.clip import read_y4m
from sammix_recipe.manifest import MANIFEST, input_problems, sha256, verify_manifest

BUNDLE = Path(__file__).resolve().parents[2] / "sammix-us-scratch"
MAX_BUNDLE_BYTES = 25 * 1000 * 1000


@pytest.fixture(scope="module")
def manifest():
    assert (BUNDLE / MANIFEST).exists(), f"no bundle at {BUNDLE}: build it with python -m sammix_recipe.bundle"
    return tomllib.loads((BUNDLE / MANIFEST).read_text())


def test_checksums_and_file_list_match(manifest):
    assert verify_manifest(BUNDLE) == []


def test_verify_catches_tampering(manifest, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(BUNDLE, copy)
    (copy / "metrics.json").write_text("{}")
    (copy / "stray.txt").write_text("x")
    problems = verify_manifest(copy)
    assert any("metrics.json: sha256 mismatch" in p for p in problems)
    assert any("stray.txt: present but not listed" in p for p in problems)


def test_input_color_is_checked_as_the_runtime_does(manifest, tmp_path):
    assert input_problems({"channels": 1}) == []  # absent: gray
    assert input_problems({"channels": 3, "color": "gray"}) == []
    assert input_problems({"channels": 3, "color": "rgb"}) == []
    [p] = input_problems({"channels": 1, "color": "rgb"})
    assert p.startswith("input.color:") and "input.channels = 3" in p
    [p] = input_problems({"channels": 3, "color": "bgr"})
    assert p.startswith("input.color:") and "'bgr'" in p
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(BUNDLE, copy)
    text = (copy / MANIFEST).read_text()
    assert "\nchannels = 1\n" in text
    (copy / MANIFEST).write_text(text.replace("\nchannels = 1\n", '\nchannels = 1\ncolor = "rgb"\n', 1))
    assert any(p.startswith("input.color:") for p in verify_manifest(copy))


def test_manifest_fields(manifest):
    assert manifest["schema"] == 1
    inp = manifest["input"]
    assert inp["size"] % 16 == 0 and inp["embedding_size"] == inp["size"] // 16
    assert len(inp["mean"]) == len(inp["std"]) == inp["channels"]
    assert set(manifest["graphs"]) == {"classifier", "encoder", "decoder"}
    for g in manifest["graphs"].values():
        assert g["precision"] in {"f32", "int8-dynamic", "int8-qdq"}
        assert sha256(BUNDLE / g["file"]) == g["sha256"]


def test_bundle_fits_size_budget(manifest):
    total = sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file())
    assert total <= MAX_BUNDLE_BYTES, f"{total / 1e6:.1f} MB"


def test_demo_clip_has_ground_truth_for_every_frame(manifest):
    frames, num, den = read_y4m(BUNDLE / "demo" / "clip.y4m")
    assert len(frames) >= 150 and frames.dtype == np.uint8
    masks = sorted((BUNDLE / "demo" / "masks").glob("*.png"))
    assert len(masks) == len(frames)


def test_reference_index_covers_every_graph(manifest):
    index = json.loads((BUNDLE / "reference" / "index.json").read_text())
    graphs = {c["graph"] for c in index["graph_cases"]}
    assert graphs == {g["file"] for g in manifest["graphs"].values()}
    for case in index["graph_cases"]:
        for f in case["inputs"] + case["outputs"] + case["constant_inputs"]:
            assert (BUNDLE / "reference" / f["file"]).exists(), f["file"]
    assert any(f["box"] is not None for f in index["frames"])
    assert any(not f["present_ground_truth"] for f in index["frames"])
