"""The CAM → prompt rule (sammix_recipe.prompt) against hand-worked cases and PyTorch."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sammix_recipe.prompt import PromptParams, cam_to_prompt, decoder_prompt, mask_to_dense, upsample_bilinear

BUNDLE = Path(__file__).resolve().parents[2] / "sammix-us-scratch"


@pytest.mark.parametrize("h,size", [(16, 256), (4, 32), (16, 64), (7, 50)])
def test_upsample_matches_torch(h, size):
    x = np.random.default_rng(h).normal(size=(h, h)).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(x)[None, None], size=(size, size), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(upsample_bilinear(x, size), ref[0, 0].numpy(), atol=1e-6)


def test_no_prompt_for_empty_or_negative_cam():
    p = PromptParams()
    assert cam_to_prompt(np.zeros((16, 16)), 256, 16, p) is None
    assert cam_to_prompt(-np.ones((16, 16)), 256, 16, p) is None


def test_single_blob_box_and_dense():
    cam = np.zeros((16, 16), np.float32)
    cam[4:8, 6:10] = 1.0
    p = PromptParams(cam_threshold=0.5, min_component_px=10, box_margin=0.0, dense_logit=8.0)
    pr = cam_to_prompt(cam, 256, 16, p)
    assert pr is not None
    ys, xs = np.nonzero(pr.mask)
    np.testing.assert_array_equal(pr.box, [xs.min(), ys.min(), xs.max(), ys.max()])
    # a block of cells upsamples to a region centred on the same place (cells are 16 px)
    assert abs((xs.min() + xs.max()) / 2 - 8 * 16 + 0.5) < 2
    assert abs((ys.min() + ys.max()) / 2 - 6 * 16 + 0.5) < 2
    assert pr.dense.shape == (64, 64)
    assert pr.dense.max() == 8.0 and pr.dense.min() == -8.0


def test_margin_clamps_to_image():
    cam = np.zeros((16, 16), np.float32)
    cam[0:3, 0:3] = 1.0
    pr = cam_to_prompt(cam, 256, 16, PromptParams(box_margin=0.1))
    assert pr.box[0] == 0.0 and pr.box[1] == 0.0
    assert pr.box[2] <= 255.0 and pr.box[3] <= 255.0


def test_largest_component_gives_box_and_all_kept_give_dense():
    cam = np.zeros((16, 16), np.float32)
    cam[1:3, 1:3] = 1.0  # small
    cam[9:14, 9:14] = 1.0  # large
    p = PromptParams(cam_threshold=0.5, min_component_px=16, box_margin=0.0)
    pr = cam_to_prompt(cam, 256, 16, p)
    assert pr.box[0] > 100 and pr.box[1] > 100  # the large one
    assert pr.mask[:60, :60].any()  # the small one is still in the dense mask


def test_tie_goes_to_first_in_raster_order():
    cam = np.zeros((16, 16), np.float32)
    cam[2:5, 10:13] = 1.0
    cam[10:13, 2:5] = 1.0
    pr = cam_to_prompt(cam, 256, 16, PromptParams(cam_threshold=0.5, min_component_px=1, box_margin=0.0))
    assert pr.box[1] < 100 and pr.box[0] > 100  # the upper one is met first


def test_small_components_are_dropped():
    cam = np.zeros((16, 16), np.float32)
    cam[8, 8] = 1.0
    assert cam_to_prompt(cam, 256, 16, PromptParams(cam_threshold=0.99, min_component_px=500)) is None


def test_dense_is_linear_in_area_fraction():
    m = np.zeros((8, 8), np.uint8)
    m[0:2, 0:1] = 1  # half of the first 2x2 block
    d = mask_to_dense(m, 4, 10.0)
    assert d[0, 0] == 0.0 and d[1, 1] == -10.0
    with pytest.raises(ValueError):
        mask_to_dense(np.zeros((10, 10), np.uint8), 4, 1.0)


def test_decoder_prompt_labels():
    cam = np.zeros((16, 16), np.float32)
    cam[5:9, 5:9] = 1
    coords, labels = decoder_prompt(cam_to_prompt(cam, 256, 16, PromptParams()))
    assert coords.shape == (1, 2, 2) and labels.tolist() == [[2.0, 3.0]]


def test_bundle_prompt_vectors_replay():
    ref = BUNDLE / "reference"
    index = json.loads((ref / "index.json").read_text())
    p = PromptParams(**index["prompt_params"])
    assert len(index["prompt_cases"]) >= 10
    for case in index["prompt_cases"]:
        pr = cam_to_prompt(np.load(ref / case["cam"]), index["input_size"], index["embedding_size"], p)
        assert (pr is not None) == case["prompt"], case["name"]
        if pr is not None:
            np.testing.assert_array_equal(pr.box, np.array(case["box"], np.float32))
            np.testing.assert_array_equal(pr.mask, np.load(ref / case["mask"]))
            np.testing.assert_array_equal(pr.dense, np.load(ref / case["dense"]))
