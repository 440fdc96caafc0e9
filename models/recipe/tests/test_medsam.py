"""The LiteMedSAM foundation, the prompt rule's steps 7-8 and the accurate bundle's graph forms."""

import hashlib

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sammix_recipe.medsam import CHECKPOINT_SHA256, EMBED_SIZE, checkpoint_path, load_foundation, to_input
from sammix_recipe.medsam_train import CamHead, dense_target, gt_boxes
from sammix_recipe.prompt import PromptParams, box_from_low_res, cam_to_prompt, component_boxes


def test_checkpoint_is_the_pinned_one():
    path = checkpoint_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == CHECKPOINT_SHA256


def test_foundation_loads_strictly_with_official_names_and_embeds_at_64():
    net = load_foundation()
    names = set(net.state_dict())
    assert "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight" in names
    assert "prompt_encoder.mask_downscaling.0.weight" in names
    x = to_input(np.full((1, 256, 256), 128, np.uint8))
    assert x.shape == (1, 3, 256, 256) and float(x.max()) == pytest.approx(128 / 255)
    with torch.inference_mode():
        emb = net.image_encoder(x)
    assert emb.shape == (1, 256, EMBED_SIZE, EMBED_SIZE)
    assert torch.isfinite(emb).all()


def _two_blobs() -> np.ndarray:
    cam = np.zeros((64, 64), np.float32)
    cam[5:9, 5:9] = 1.0  # small, first in raster order
    cam[30:40, 20:34] = 0.9  # large
    cam[50:53, 50:53] = 0.8  # smallest
    return cam


def test_component_boxes_largest_first_and_first_is_the_rule_box():
    p = PromptParams(cam_threshold=0.5, min_component_px=16, box_margin=0.0, max_boxes=3)
    boxes = component_boxes(_two_blobs(), 256, p)
    assert len(boxes) == 3
    areas = [(b[2] - b[0] + 1) * (b[3] - b[1] + 1) for b in boxes]
    assert areas == sorted(areas, reverse=True)
    np.testing.assert_array_equal(boxes[0], cam_to_prompt(_two_blobs(), 256, 64, p).box)
    two = component_boxes(_two_blobs(), 256, PromptParams(cam_threshold=0.5, min_component_px=16,
                                                            box_margin=0.0, max_boxes=2))
    assert len(two) == 2 and all(np.array_equal(a, b) for a, b in zip(two, boxes))


def test_component_boxes_none_for_empty_cam():
    assert component_boxes(np.zeros((64, 64), np.float32), 256, PromptParams(max_boxes=4)) == []


def test_box_from_low_res_scales_grows_and_clamps():
    low = np.full((256, 256), -3.0, np.float32)
    low[10:20, 30:41] = 1.0
    np.testing.assert_array_equal(box_from_low_res(low, 256, 0.0, 0.0), [30, 10, 40, 19])
    # grown by 0.03·256 = 7.68 px, clamped at 0
    np.testing.assert_allclose(box_from_low_res(low, 256, 0.0, 0.03), [22.32, 2.32, 47.68, 26.68], rtol=1e-6)
    small = np.full((64, 64), -1.0, np.float32)
    small[0, 63] = 0.5  # one low-res cell is 4 input pixels wide
    np.testing.assert_array_equal(box_from_low_res(small, 256, 0.0, 0.0), [252, 0, 255, 3])
    assert box_from_low_res(np.full((64, 64), -1.0, np.float32), 256, 0.0, 0.03) is None


@pytest.mark.parametrize("arch", ["small", "context"])
def test_head_shapes_and_dense_target(arch):
    head = CamHead("pixel", arch=arch)
    logits, cam = head(torch.zeros(2, 256, EMBED_SIZE, EMBED_SIZE))
    assert logits.shape == (2, 1) and cam.shape == (2, 1, EMBED_SIZE, EMBED_SIZE)
    assert float(cam.min()) >= 0 and float(cam.max()) <= 1
    m = np.zeros((1, 256, 256), np.uint8)
    m[0, :4, :2] = 1
    t = dense_target(m, EMBED_SIZE)
    assert t.shape == (1, 1, 64, 64) and t[0, 0, 0, 0] == 0.5 and t.sum() == 0.5
    t = dense_target(m, 32)  # the student's grid: 8×8 pixels a cell
    assert t.shape == (1, 1, 32, 32) and t[0, 0, 0, 0] == 8 / 64 and t.sum() == 8 / 64


def test_context_head_sees_beyond_its_neighbours():
    """A change 24 cells away moves the context head's CAM at a cell; the small head's (3×3 field) stays."""
    torch.manual_seed(0)
    x = torch.randn(1, 256, EMBED_SIZE, EMBED_SIZE)
    y = x.clone()
    y[..., 40, 40] += 5.0
    for arch, moves in (("small", False), ("context", True)):
        head = CamHead("pixel", arch=arch).eval()
        with torch.no_grad():
            d = (head(x)[1] - head(y)[1])[0, 0, 16, 16].abs().item()
        assert (d > 0) == moves, f"{arch}: {d}"
    with pytest.raises(ValueError, match="arch"):
        CamHead("pixel", arch="wide")


def test_gt_boxes_largest_first():
    m = np.zeros((256, 256), np.uint8)
    m[10:12, 10:12] = 1
    m[100:150, 50:60] = 1
    boxes = gt_boxes(m)
    np.testing.assert_array_equal(boxes[0], [50, 100, 59, 149])
    np.testing.assert_array_equal(boxes[1], [10, 10, 11, 11])


@pytest.mark.parametrize("arch", ["small", "context"])
@pytest.mark.parametrize("form", ["f16", "i8w"])
def test_stored_forms_compute_like_f32(tmp_path, form, arch):
    from sammix_recipe.export import _export
    from sammix_recipe.medsam_bundle import f16_stored, int8_weights

    torch.manual_seed(0)
    head = CamHead("pixel", arch=arch).eval()
    src = tmp_path / "head.onnx"
    _export(head, (torch.zeros(1, 256, EMBED_SIZE, EMBED_SIZE),), src, ["image_embeddings"], ["logits", "cam"])
    dst = tmp_path / f"head_{form}.onnx"
    (f16_stored if form == "f16" else int8_weights)(src, dst)
    assert dst.stat().st_size < 0.6 * src.stat().st_size
    x = np.random.default_rng(0).normal(size=(1, 256, EMBED_SIZE, EMBED_SIZE)).astype(np.float32)
    a = ort.InferenceSession(str(src)).run(None, {"image_embeddings": x})
    b = ort.InferenceSession(str(dst)).run(None, {"image_embeddings": x})
    tol = 2e-3 if form == "f16" else 3e-2
    for u, v in zip(a, b):
        np.testing.assert_allclose(v, u, atol=tol * max(1.0, float(np.abs(u).max())))


def _lesion_frames():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (3, 64, 64), dtype=np.uint8)
    masks = np.zeros((3, 64, 64), np.uint8)
    masks[0, 10:20, 5:15] = 1
    masks[1, 40:60, 44:63] = 1  # touches the right edge
    masks[2, 0:8, 0:8] = 1  # a corner
    masks[2, 50:55, 30:40] = 1  # and a second lesion
    return images, masks


def test_augmented_copies_keep_every_lesion_and_are_reproducible():
    from sammix_recipe.medsam_data import augment_labeled

    images, masks = _lesion_frames()
    frames = np.array([7, 11, 13])
    a_img, a_mask = augment_labeled(images, masks, frames, 4)
    assert a_img.shape == (12, 64, 64) and a_img.dtype == np.uint8
    assert a_mask.shape == (12, 64, 64) and set(np.unique(a_mask)) <= {0, 1}
    for n in range(12):
        lesions = gt_boxes(a_mask[n])
        assert len(lesions) == len(gt_boxes(masks[n // 4])), f"copy {n} lost a lesion"
        area = int(a_mask[n].sum())
        src = int(masks[n // 4].sum())
        assert src <= area <= src * 1.3**2 * 1.3, f"copy {n}: area {area} from {src} (zoom 1-1.3x)"
    # every other copy is flipped: the lesion of frame 0 (columns 5-14) moves to the right half
    assert a_mask[0][:, 32:].sum() > a_mask[0][:, :32].sum()
    # the copies depend on the frame's pool index only: the same frame gives the same copies in a smaller draw
    b_img, b_mask = augment_labeled(images[1:2], masks[1:2], frames[1:2], 4)
    np.testing.assert_array_equal(b_img, a_img[4:8])
    np.testing.assert_array_equal(b_mask, a_mask[4:8])


class _FixedCams(torch.nn.Module):
    """A stand-in head: the CAMs it is given, for the frames in order, whatever the embeddings."""

    def __init__(self, cams: np.ndarray):
        super().__init__()
        self.cams = torch.from_numpy(cams)
        self.at = 0

    def forward(self, emb):
        cam = self.cams[self.at : self.at + len(emb)]
        self.at += len(emb)
        return torch.zeros(len(emb), 1), cam


def test_pseudo_masks_keep_only_frames_the_decoder_is_sure_of():
    from sammix_recipe.medsam_eval import head_outputs, segment
    from sammix_recipe.medsam_train import pseudo_masks
    from sammix_recipe.model import DecoderHead

    torch.manual_seed(0)
    dec = DecoderHead(load_foundation()).eval()
    emb = (np.random.default_rng(0).standard_normal((3, 256, EMBED_SIZE, EMBED_SIZE)) * 0.5).astype(np.float16)
    cams = np.zeros((3, 1, EMBED_SIZE, EMBED_SIZE), np.float32)
    cams[0, 0, 10:22, 10:22] = 0.9
    cams[1, 0, 40:44, 30:60] = 0.9
    rows = np.arange(3)  # frame 2: no CAM, no box
    params = PromptParams()
    scores = np.empty(3)
    _, c = head_outputs(_FixedCams(cams), emb, rows)
    with_scores = segment(dec, emb, rows, np.ones(3, np.float32), c, params, 0.5, scores=scores)
    assert np.array_equal(with_scores, segment(dec, emb, rows, np.ones(3, np.float32), c, params, 0.5))
    assert np.isfinite(scores[:2]).all() and np.isnan(scores[2])
    assert scores[0] != scores[1]
    cut = float(scores[:2].mean())  # between the two frames' predicted IoUs: exactly the surer one stays
    kept, masks, got = pseudo_masks(_FixedCams(cams), dec, params, emb, rows, cut)
    sure = int(np.argmax(scores[:2]))
    assert np.array_equal(got, scores, equal_nan=True)
    assert list(kept) == [sure] and np.array_equal(masks[0], with_scores[sure]) and masks[0].any()
    kept, _, _ = pseudo_masks(_FixedCams(cams), dec, params, emb, rows, -1.0)
    assert list(kept) == [f for f in (0, 1) if with_scores[f].any()]  # never a frame without a mask


class _CountingEncoder:
    """A stand-in foundation: "embeddings" are the input's first channel, repeated; counts the frames it saw."""

    def __init__(self):
        self.frames = 0

    def image_encoder(self, x):
        self.frames += len(x)
        return x[:, :1].expand(-1, 256, -1, -1) * 1.0


def test_embedding_cache_grows_when_the_frame_list_is_extended(tmp_path, monkeypatch):
    import sammix_recipe.medsam as medsam

    monkeypatch.setattr(medsam, "CACHE_DIR", tmp_path)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, EMBED_SIZE, EMBED_SIZE), dtype=np.uint8)
    order = np.array([7, 2, 9, 0, 11, 5, 3, 1, 10, 4], dtype=np.int64)
    net = _CountingEncoder()
    medsam.embed_set(net, "t", images, order[:6], batch=4)
    assert net.frames == 6
    first, idx = medsam.cached_embeddings("t")
    first = np.array(first)
    assert np.array_equal(idx, order[:6])
    medsam.embed_set(net, "t", images, order, batch=4)  # the list extended: only the 4 new frames are embedded
    assert net.frames == 10
    emb, idx = medsam.cached_embeddings("t")
    assert np.array_equal(idx, order) and emb.shape[0] == 10
    assert np.array_equal(emb[:6], first)
    expect = (images[order].astype(np.float32) / 255.0).astype(np.float16)
    assert np.array_equal(emb[:, 0], expect) and np.array_equal(emb[:, 255], expect)
    with pytest.raises(RuntimeError, match="another frame list"):
        medsam.embed_set(net, "t", images, order[::-1].copy(), batch=4)


def test_encoder_input_from_gray_and_from_rgb():
    gray = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    x = to_input(gray)
    assert x.shape == (2, 3, 4, 5) and torch.equal(x[:, 0], x[:, 2])
    assert float(x[1, 1, 3, 4]) == pytest.approx(39 / 255)
    rgb = np.stack([gray, 255 - gray, gray // 2], axis=-1)  # (2,4,5,3)
    y = to_input(rgb)
    assert y.shape == (2, 3, 4, 5)
    assert float(y[1, 0, 3, 4]) == pytest.approx(39 / 255)
    assert float(y[1, 1, 3, 4]) == pytest.approx(216 / 255)
    assert float(y[1, 2, 3, 4]) == pytest.approx(19 / 255)
    with pytest.raises(ValueError, match="expected"):
        to_input(gray[0])


def test_augmented_rgb_copies_transform_each_channel_as_a_gray_frame():
    """An RGB frame's copies: flip, crop, zoom, gamma and gain alike in all three channels (the same draws as
    a gray frame of the same pool index), the masks those of the gray copies."""
    from sammix_recipe.medsam_data import augment_labeled

    images, masks = _lesion_frames()
    rgb = np.stack([images, 255 - images, images // 2], axis=-1)
    frames = np.array([7, 11, 13])
    c_img, c_mask = augment_labeled(rgb, masks, frames, 4)
    assert c_img.shape == (12, 64, 64, 3) and c_img.dtype == np.uint8
    for c in range(3):
        g_img, g_mask = augment_labeled(np.ascontiguousarray(rgb[..., c]), masks, frames, 4)
        np.testing.assert_array_equal(c_img[..., c], g_img)
        np.testing.assert_array_equal(c_mask, g_mask)
