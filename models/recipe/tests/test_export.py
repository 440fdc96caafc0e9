"""Export round trip: onnxruntime on the exported f32 graphs vs PyTorch, within 1e-4."""

import numpy as np
import onnx
import pytest
import torch

from sammix_recipe.export import (
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    export_classifier,
    export_decoder,
    export_encoder,
    ort_session,
    quantize_dynamic_graph,
)
from sammix_recipe.model import CamClassifier, SamConfig, add_lora, build_sam

ATOL = 1e-4


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    cfg = SamConfig.tiny()
    sam = build_sam(cfg).eval()
    lora = add_lora(sam.image_encoder)
    with torch.no_grad():
        for p in lora[1::2]:
            p.normal_(0, 0.02)  # a non-trivial LoRA update, merged at export
    clf = CamClassifier().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, folded at export
        for m in clf.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return cfg, sam, clf


def test_classifier_round_trip(models, tmp_path):
    cfg, _, clf = models
    path = tmp_path / "classifier.onnx"
    export_classifier(clf, cfg, path)
    x = torch.randn(1, 1, 256, 256)
    logits, cam = ort_session(path).run(["logits", "cam"], {"image": x.numpy()})
    with torch.no_grad():
        ref_logits, ref_cam = clf(x)
    np.testing.assert_allclose(logits, ref_logits.numpy(), atol=ATOL)
    np.testing.assert_allclose(cam, ref_cam.numpy(), atol=ATOL)


def test_encoder_round_trip_with_lora_merged(models, tmp_path):
    cfg, sam, _ = models
    path = tmp_path / "encoder.onnx"
    export_encoder(sam, cfg, path)
    x = torch.randn(1, 1, 256, 256)
    (emb,) = ort_session(path).run(["image_embeddings"], {"image": x.numpy()})
    with torch.no_grad():
        ref = sam.image_encoder(x)  # LoRA unmerged in the live model
    assert emb.shape == (1, 256, 16, 16)
    np.testing.assert_allclose(emb, ref.numpy(), atol=ATOL)


def test_decoder_has_official_interface_and_round_trips(models, tmp_path):
    from segment_anything.utils.onnx import SamOnnxModel

    cfg, sam, _ = models
    path = tmp_path / "decoder.onnx"
    export_decoder(sam, cfg, path)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == DECODER_INPUTS
    assert [o.name for o in graph.output] == DECODER_OUTPUTS
    g = torch.Generator().manual_seed(3)
    feeds = {
        "image_embeddings": torch.randn(1, 256, 16, 16, generator=g),
        "point_coords": torch.tensor([[[30.0, 40.0], [200.0, 180.0]]]),
        "point_labels": torch.tensor([[2.0, 3.0]]),
        "mask_input": torch.randn(1, 1, 64, 64, generator=g),
        "has_mask_input": torch.tensor([1.0]),
        "orig_im_size": torch.tensor([256.0, 256.0]),
    }
    out = ort_session(path).run(DECODER_OUTPUTS, {k: v.numpy() for k, v in feeds.items()})
    with torch.no_grad():
        ref = SamOnnxModel(sam, return_single_mask=False)(*feeds.values())
    for o, r in zip(out, ref):
        np.testing.assert_allclose(o, r.numpy(), atol=ATOL)
    # a different number of points (dynamic axis) still runs
    feeds3 = dict(feeds, point_coords=torch.rand(1, 3, 2) * 255, point_labels=torch.tensor([[1.0, 0.0, -1.0]]))
    masks, iou, low = ort_session(path).run(DECODER_OUTPUTS, {k: v.numpy() for k, v in feeds3.items()})
    assert iou.shape == (1, 4) and low.shape == (1, 4, 64, 64)


def test_dynamic_int8_uses_integer_ops(models, tmp_path):
    cfg, sam, _ = models
    f32, q = tmp_path / "encoder.onnx", tmp_path / "encoder_q.onnx"
    export_encoder(sam, cfg, f32)
    quantize_dynamic_graph(f32, q)
    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert q.stat().st_size < f32.stat().st_size / 2
