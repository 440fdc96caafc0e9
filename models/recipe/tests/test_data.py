"""Tests of the synthetic data generators (ultrasound frames, clips, y4m I/O, shapes)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from sammix_recipe.data import ultrasound as us
from sammix_recipe.data.clip import generate_clip, plan_clip, read_y4m, render_clip, write_y4m
from sammix_recipe.data.shapes import generate_batch, generate_sample
from sammix_recipe.data.ultrasound import UltrasoundFrame, generate_dataset, generate_frame

RECIPE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _is_sector(image: np.ndarray) -> bool:
    """Sector frames have black top corners; linear ones start with the bright skin band."""
    return bool(image[:6, :6].max() == 0 and image[:6, -6:].max() == 0)


# --------------------------------------------------------------------------
# Ultrasound frames
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames() -> list[UltrasoundFrame]:
    return [generate_frame(s) for s in range(24)]


def test_frame_types_and_values(frames):
    for f in frames:
        assert f.image.shape == (256, 256) and f.image.dtype == np.uint8
        assert f.mask.shape == (256, 256) and f.mask.dtype == np.uint8
        assert set(np.unique(f.mask)) <= {0, 1}
        assert f.present == bool(f.mask.any())
        assert isinstance(f.present, bool)
        assert f.image.std() > 10  # not blank


def test_frame_deterministic_and_seed_dependent():
    a, b, c = generate_frame(123), generate_frame(123), generate_frame(124)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.present == b.present
    assert not np.array_equal(a.image, c.image)


def test_determinism_across_processes():
    code = (
        "import hashlib, numpy as np\n"
        "from sammix_recipe.data.ultrasound import generate_frame\n"
        "from sammix_recipe.data.shapes import generate_sample\n"
        "from sammix_recipe.data.clip import generate_clip\n"
        "h = hashlib.sha256()\n"
        "f = generate_frame(7); s = generate_sample(7); c = generate_clip(7, 6)\n"
        "for a in (f.image, f.mask, s.image, s.mask, s.coarse, s.box, c[0], c[1]):\n"
        "    h.update(np.ascontiguousarray(a).tobytes())\n"
        "print(h.hexdigest())\n"
    )
    env = dict(os.environ, PYTHONPATH=RECIPE_DIR)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    f, s, c = generate_frame(7), generate_sample(7), generate_clip(7, 6)
    assert out.stdout.strip() == _digest(f.image, f.mask, s.image, s.mask, s.coarse, s.box, c[0], c[1])


def test_p_empty_extremes():
    assert all(generate_frame(s, p_empty=0.0).present for s in range(100, 112))
    assert not any(generate_frame(s, p_empty=1.0).present for s in range(100, 112))


def test_default_p_empty_gives_both(frames):
    present = [f.present for f in frames]
    assert 0 < sum(present) < len(present)


def test_generate_dataset_matches_frames():
    seeds = [3, 5, 8]
    images, masks, present = generate_dataset(seeds, size=(128, 160), p_empty=0.5)
    assert images.shape == (3, 128, 160) and images.dtype == np.uint8
    assert masks.shape == (3, 128, 160) and masks.dtype == np.uint8
    assert present.shape == (3,) and present.dtype == np.uint8
    for i, s in enumerate(seeds):
        f = generate_frame(s, (128, 160), 0.5)
        assert np.array_equal(images[i], f.image) and np.array_equal(masks[i], f.mask)
        assert present[i] == int(f.present) == int(masks[i].any())


def test_both_geometries_and_black_fan_corners(frames):
    sector = [f for f in frames if _is_sector(f.image)]
    assert 0.2 * len(frames) <= len(sector) <= 0.8 * len(frames)
    for f in sector:
        for corner in (f.image[:6, :6], f.image[:6, -6:], f.mask[:6, :6], f.mask[:6, -6:]):
            assert corner.max() == 0
        assert f.image[128, 120:136].max() > 0  # the fan itself is imaged
        # the mask is clipped to the fan: no lesion pixel in the black background around it
        labels, _ = ndimage.label(f.image == 0)
        background = np.isin(labels, [labels[0, 0], labels[0, -1]])
        assert not (f.mask.astype(bool) & ndimage.binary_erosion(background, iterations=2)).any()
    for f in frames:
        if not _is_sector(f.image):
            assert f.image[:4].mean() > 20  # linear: bright skin at the top


def test_anechoic_lesions_are_dark(monkeypatch):
    monkeypatch.setattr(us, "LESION_KIND_PROBS", {"anechoic": 1.0})
    checked = 0
    for s in range(200, 216):
        f = generate_frame(s, p_empty=0.0)
        labels, n = ndimage.label(f.mask)
        for i in range(1, n + 1):
            lesion = labels == i
            if lesion.sum() < 400:  # cysts much smaller than the resolution cell fill in
                continue
            ring = ndimage.binary_dilation(lesion, iterations=8) & ~ndimage.binary_dilation(lesion, iterations=3)
            ring &= (labels == 0) & (f.image > 0)
            inner = ndimage.binary_erosion(lesion, iterations=2)
            if ring.sum() < 50 or inner.sum() < 10:
                continue
            assert f.image[inner].mean() < 0.6 * f.image[ring].mean()
            checked += 1
    assert checked >= 8


def test_lesion_sizes_span_range():
    fracs = []
    for s in range(300, 340):
        f = generate_frame(s, p_empty=0.0)
        labels, n = ndimage.label(f.mask)
        for i in range(1, n + 1):
            cols = np.flatnonzero((labels == i).any(axis=0))
            fracs.append((cols[-1] - cols[0] + 1) / 256.0)
    assert min(fracs) < 0.1 and max(fracs) > 0.25


def test_non_square_sizes():
    for size in [(128, 160), (200, 120)]:
        for s in range(4):
            f = generate_frame(s, size, p_empty=0.0)
            assert f.image.shape == size and f.mask.shape == size and f.present


# --------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip():
    plan = plan_clip(11, 160)
    frames, masks = render_clip(plan)
    return plan, frames, masks


def test_clip_shapes_and_values(clip):
    plan, frames, masks = clip
    assert frames.shape == (160, 256, 256) and frames.dtype == np.uint8
    assert masks.shape == (160, 256, 256) and masks.dtype == np.uint8
    assert set(np.unique(masks)) <= {0, 1}
    assert len(plan.holds) >= 1


def test_clip_deterministic():
    a, b, c = generate_clip(5, 12), generate_clip(5, 12), generate_clip(6, 12)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    # the planned path is the same however many frames are rendered
    assert np.array_equal(generate_clip(5, 12)[0], render_clip(plan_clip(5, 12))[0])


def test_clip_has_empty_and_lesion_stretches(clip):
    _, _, masks = clip
    present = masks.reshape(len(masks), -1).any(axis=1)
    assert 0.15 < present.mean() < 0.85
    # lesions come and go: several separate runs of lesion frames
    runs = np.count_nonzero(np.diff(present.astype(np.int8)) == 1) + int(present[0])
    assert runs >= 2


def test_clip_lesions_grow_and_shrink(clip):
    _, _, masks = clip
    area = masks.reshape(len(masks), -1).sum(axis=1).astype(float)
    present = area > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], present.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        if stop - start < 6:
            continue
        peak = area[start:stop].max()
        assert area[start] < 0.7 * peak and area[stop - 1] < 0.7 * peak


def test_clip_temporal_coherence(clip):
    plan, frames, _ = clip
    f = frames.astype(np.float32)
    corr = np.array([np.corrcoef(f[i].ravel(), f[i + 1].ravel())[0, 1] for i in range(len(f) - 1)])
    held = np.zeros(len(f) - 1, bool)
    for a, b in plan.holds:
        assert 10 <= b - a <= 20
        held[a - 1 : b - 1] = True  # pairs (i, i+1) with identical probe position
    assert corr[held].min() > 0.99
    assert np.abs(f[1:] - f[:-1]).mean(axis=(1, 2))[held].max() < 3.0  # only receiver noise differs
    moving = corr[~held]
    assert np.median(moving) < corr[held].min() - 0.03
    assert np.median(moving) > 0.5  # speckle decorrelates gradually, not frame to frame


def test_sector_clip():
    frames, masks = generate_clip(4, 10, geometry="sector")
    assert frames.shape == (10, 256, 256)
    assert all(_is_sector(fr) for fr in frames)
    assert masks[:, :6, :6].max() == 0
    with pytest.raises(ValueError):
        generate_clip(4, 4, geometry="convex")


# --------------------------------------------------------------------------
# y4m
# --------------------------------------------------------------------------


def test_y4m_round_trip(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (5, 24, 40), dtype=np.uint8)
    path = tmp_path / "clip.y4m"
    write_y4m(path, frames)
    raw = path.read_bytes()
    assert raw.startswith(b"YUV4MPEG2 W40 H24 F25:1 Ip A1:1 Cmono\nFRAME\n")
    assert len(raw) == len(b"YUV4MPEG2 W40 H24 F25:1 Ip A1:1 Cmono\n") + 5 * (6 + 24 * 40)
    back, num, den = read_y4m(path)
    assert back.dtype == np.uint8 and np.array_equal(back, frames) and (num, den) == (25, 1)


@pytest.mark.parametrize(
    "tag,chroma",
    [("C420jpeg", lambda w, h: 2 * ((w + 1) // 2) * ((h + 1) // 2)),
     ("C420", lambda w, h: 2 * ((w + 1) // 2) * ((h + 1) // 2)),
     ("C420paldv", lambda w, h: 2 * ((w + 1) // 2) * ((h + 1) // 2)),
     ("C422", lambda w, h: 2 * ((w + 1) // 2) * h),
     ("C444", lambda w, h: 2 * w * h),
     ("", lambda w, h: 2 * ((w + 1) // 2) * ((h + 1) // 2))],  # no C tag: 4:2:0 by default
)
def test_y4m_reads_luma_of_colour_files(tmp_path, tag, chroma):
    w, h = 7, 5
    rng = np.random.default_rng(1)
    luma = rng.integers(0, 256, (3, h, w), dtype=np.uint8)
    header = f"YUV4MPEG2 W{w} H{h} F30000:1001 It A0:0 {tag}".rstrip() + "\n"
    body = b"".join(b"FRAME Ixyz\n" + fr.tobytes() + bytes([128]) * chroma(w, h) for fr in luma)
    path = tmp_path / "colour.y4m"
    path.write_bytes(header.encode() + body)
    back, num, den = read_y4m(path)
    assert np.array_equal(back, luma) and (num, den) == (30000, 1001)


def test_y4m_errors(tmp_path):
    frames = np.zeros((3, 8, 8), np.uint8)
    path = tmp_path / "ok.y4m"
    write_y4m(path, frames)
    raw = path.read_bytes()
    bad = tmp_path / "bad.y4m"

    bad.write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_y4m(bad)
    bad.write_bytes(raw.replace(b"FRAME", b"FRAMX"))
    with pytest.raises(ValueError, match="FRAME"):
        read_y4m(bad)
    bad.write_bytes(b"YUV4MPEG3" + raw[9:])
    with pytest.raises(ValueError, match="magic"):
        read_y4m(bad)
    bad.write_bytes(raw.replace(b"W8 ", b"Wx "))
    with pytest.raises(ValueError, match="header"):
        read_y4m(bad)
    bad.write_bytes(raw.replace(b"Cmono", b"C420p10"))
    with pytest.raises(ValueError, match="colour space"):
        read_y4m(bad)
    bad.write_bytes(raw[:20])
    with pytest.raises(ValueError, match="header"):
        read_y4m(bad)
    with pytest.raises(ValueError):
        write_y4m(tmp_path / "x.y4m", np.zeros((8, 8), np.uint8))


# --------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples():
    return [generate_sample(s) for s in range(40)]


def test_shapes_types_and_values(samples):
    for smp in samples:
        assert smp.image.shape == (256, 256) and smp.image.dtype == np.uint8
        for m in (smp.mask, smp.coarse):
            assert m.shape == (256, 256) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
        assert smp.mask.sum() >= 0.005 * 256 * 256
        assert smp.coarse.any()
        assert smp.box.shape == (4,) and smp.box.dtype == np.float32
        assert smp.points.dtype == np.float32 and smp.point_labels.dtype == np.float32
        assert smp.points.shape == (len(smp.point_labels), 2) and len(smp.point_labels) <= 3


def test_shapes_deterministic():
    a, b, c = generate_sample(9), generate_sample(9), generate_sample(10)
    for f in ("image", "mask", "box", "points", "point_labels", "coarse"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.image, c.image)


def test_shapes_points_match_mask(samples):
    n_pos = n_neg = 0
    for smp in samples:
        for (x, y), lab in zip(smp.points, smp.point_labels):
            assert 0 <= x < 256 and 0 <= y < 256
            inside = smp.mask[int(y), int(x)] == 1
            assert inside == (lab == 1.0)
            n_pos += lab == 1.0
            n_neg += lab == 0.0
    assert n_pos > 0 and n_neg > 0


def test_shapes_box_covers_mask(samples):
    covered = []
    for smp in samples:
        x0, y0, x1, y1 = smp.box
        assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
        ys, xs = np.nonzero(smp.mask)
        inside = (xs + 0.5 >= x0) & (xs + 0.5 <= x1) & (ys + 0.5 >= y0) & (ys + 0.5 <= y1)
        covered.append(inside.mean())
    assert min(covered) > 0.5 and np.mean(covered) > 0.85


def test_shapes_coarse_is_imperfect_but_related(samples):
    ious = []
    for smp in samples:
        inter = np.logical_and(smp.mask, smp.coarse).sum()
        union = np.logical_or(smp.mask, smp.coarse).sum()
        ious.append(inter / union)
    ious = np.array(ious)
    assert np.median(ious) > 0.4
    assert np.mean(ious > 0.97) < 0.2  # rarely (nearly) exact


def test_generate_batch_padding():
    batch = generate_batch([1, 2, 3, 4], size=(128, 160))
    assert batch["image"].shape == (4, 128, 160) and batch["image"].dtype == np.uint8
    assert batch["mask"].shape == (4, 128, 160) and batch["coarse"].shape == (4, 128, 160)
    assert batch["box"].shape == (4, 4) and batch["points"].shape == (4, 3, 2)
    assert batch["point_labels"].shape == (4, 3)
    for i, s in enumerate([1, 2, 3, 4]):
        smp = generate_sample(s, (128, 160))
        p = len(smp.point_labels)
        assert np.array_equal(batch["image"][i], smp.image)
        assert np.array_equal(batch["points"][i, :p], smp.points)
        assert np.all(batch["point_labels"][i, p:] == -1) and np.all(batch["points"][i, p:] == 0)
