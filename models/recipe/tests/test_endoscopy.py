"""Tests of the procedural colonoscopy frames and clips (small: no set is generated here)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from sammix_recipe import common
from sammix_recipe.data import endoscopy as endo
from sammix_recipe.data.endoscopy import SETS, EndoscopyFrame, generate_dataset, generate_frame
from sammix_recipe.data.endoscopy_clip import generate_clip, plan_clip, render_clip
from sammix_recipe.data.endoscopy_scope import Scope

RECIPE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_SEEDS = 60


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _inside(f: EndoscopyFrame) -> np.ndarray:
    cx, cy, r = f.scope
    h, w = f.mask.shape
    return Scope(cx, cy, r, 0, 0, 0, (), "", "", 0).inside(h, w)


@pytest.fixture(scope="module")
def frames() -> list[EndoscopyFrame]:
    return [generate_frame(s) for s in range(N_SEEDS)]


def test_types_shapes_and_label(frames):
    for f in frames:
        assert f.image.shape == (256, 256, 3) and f.image.dtype == np.uint8
        assert f.mask.shape == (256, 256) and f.mask.dtype == np.uint8
        assert set(np.unique(f.mask)) <= {0, 1}
        assert isinstance(f.present, bool) and f.present == bool(f.mask.any())
        assert (f.polyps > 0) == f.present
        assert f.image.std() > 15  # not blank


def test_colour_is_mucosa_like(frames):
    inside = np.concatenate([f.image[_inside(f)] for f in frames[:8]]).astype(np.float32)
    r, g, b = inside.mean(0)
    assert r > g > b  # reddish, not gray or green


def test_deterministic_and_seed_dependent():
    a, b, c = generate_frame(123), generate_frame(123), generate_frame(124)
    assert _digest(a.image, a.mask) == _digest(b.image, b.mask) and a.present == b.present
    assert not np.array_equal(a.image, c.image)


def test_determinism_across_processes():
    code = (
        "import hashlib, numpy as np\n"
        "from sammix_recipe.data.endoscopy import generate_frame\n"
        "from sammix_recipe.data.endoscopy_clip import generate_clip\n"
        "h = hashlib.sha256()\n"
        "f = generate_frame(7); c = generate_clip(7, 4)\n"
        "for a in (f.image, f.mask, c[0], c[1]):\n"
        "    h.update(np.ascontiguousarray(a).tobytes())\n"
        "print(h.hexdigest())\n"
    )
    env = dict(os.environ, PYTHONPATH=RECIPE_DIR)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    f, c = generate_frame(7), generate_clip(7, 4)
    assert out.stdout.strip() == _digest(f.image, f.mask, c[0], c[1])


def test_scope_border_black_and_mask_inside(frames):
    for f in frames:
        inside = _inside(f)
        assert not f.mask[~inside].any()
        assert f.image[~inside & ~f.text].max() == 0  # black outside the round field, text aside
        assert not f.mask[f.text].any()  # text is never a target pixel
    assert np.mean([f.text.any() for f in frames]) > 0.8  # most frames carry burned-in text


def test_any_size():
    f = generate_frame(5, size=(200, 320), p_empty=0.0)
    assert f.image.shape == (200, 320, 3) and f.mask.shape == (200, 320)
    assert f.present and not f.mask[~_inside(f)].any()


def test_count_proportions(frames):
    counts = np.bincount([min(f.polyps, 2) for f in frames], minlength=3) / len(frames)
    assert 0.10 <= counts[0] <= 0.45, counts  # none: 25 % expected
    assert 0.30 <= counts[1] <= 0.72, counts  # one: 50 %
    assert 0.08 <= counts[2] <= 0.45, counts  # two or three: 25 %
    assert any(f.polyps >= 3 for f in frames) or counts[2] > 0.1


def test_small_polyps_common(frames):
    areas = []
    for f in frames:
        lab, n = ndimage.label(f.mask)
        areas += list(np.bincount(lab.ravel())[1:])
    areas = np.array(areas) / (256 * 256)
    assert np.mean(areas < 0.01) > 0.3  # under 1 % of the frame (~25 px across)
    assert areas.max() > 0.04  # and some large


def test_p_empty_extremes():
    assert all(generate_frame(s, p_empty=0.0).present for s in range(200, 208))
    assert not any(generate_frame(s, p_empty=1.0).present for s in range(200, 208))


def test_dataset_stacks_frames():
    images, masks, present = generate_dataset([3, 4], size=(96, 128))
    assert images.shape == (2, 96, 128, 3) and masks.shape == (2, 96, 128) and present.shape == (2,)
    f = generate_frame(4, size=(96, 128))
    assert np.array_equal(images[1], f.image) and present[1] == f.present


def test_set_seeds_disjoint():
    ranges = [range(s, s + n) for s, n in SETS.values()]
    ranges += [range(common.POOL_SEED0, common.POOL_SEED0 + common.POOL_SIZE), range(common.TEST_SEED0, common.TEST_SEED0 + common.TEST_SIZE)]
    ranges += [range(endo.CLIP_SEED, endo.CLIP_SEED + 1), range(endo.VAL_CLIP_SEED0, endo.VAL_CLIP_SEED0 + 1000)]
    for i, a in enumerate(ranges):
        for b in ranges[i + 1 :]:
            assert a.stop <= b.start or b.stop <= a.start, (a, b)


def test_set_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(common, "workers", lambda: 1)
    monkeypatch.setitem(endo.SETS, "test", (SETS["test"][0], 3))
    a = endo.endoscopy_set("test", size=64)
    assert a["images"].shape == (3, 64, 64, 3) and list(a["seeds"]) == [SETS["test"][0] + i for i in range(3)]
    assert (tmp_path / "endo_test_3_64.npz").exists()
    b = endo.endoscopy_set("test", size=64)
    assert all(np.array_equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip():
    plan = plan_clip(11, 150)
    frames, masks = render_clip(plan)
    return plan, frames, masks


def test_clip_shapes(clip):
    plan, frames, masks = clip
    assert frames.shape == (150, 256, 256, 3) and frames.dtype == np.uint8
    assert masks.shape == (150, 256, 256) and masks.dtype == np.uint8 and set(np.unique(masks)) <= {0, 1}
    assert masks.any(axis=(1, 2)).mean() > 0.2  # polyps in view for a good part of the clip
    assert plan.z[-1] > plan.z[0] and np.all(np.diff(plan.z) >= 0)  # the scope advances


def test_clip_temporal_coherence(clip):
    _, _, masks = clip
    ious = [(a & b).sum() / (a | b).sum() for a, b in zip(masks[:-1], masks[1:]) if a.any() and b.any()]
    assert len(ious) > 20 and np.mean(ious) > 0.7


def test_clip_polyps_grow_when_approached(clip):
    _, _, masks = clip
    area = masks.reshape(len(masks), -1).sum(1)
    first = int(np.argmax(area > 0))
    assert area[first] < 0.5 * area.max()


def test_clip_pauses_are_still(clip):
    plan, frames, masks = clip
    assert plan.holds
    for a, b in plan.holds:
        diff = np.abs(frames[a + 1 : b].astype(np.int16) - frames[a : b - 1].astype(np.int16))
        assert diff.mean() < 4  # sensor noise only
        assert all(np.array_equal(masks[a], masks[t]) for t in range(a, b))


def test_clip_deterministic():
    a, b = generate_clip(5, 3, size=(96, 96)), generate_clip(5, 3, size=(96, 96))
    assert _digest(*a) == _digest(*b)


def test_contact_sheet(tmp_path):
    from sammix_recipe.data.endoscopy_sheet import write_sheet

    out = tmp_path / "sheet.png"
    write_sheet(str(out), 0, 2, 2, 96, True)
    assert out.stat().st_size > 1000
