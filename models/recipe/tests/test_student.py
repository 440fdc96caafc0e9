"""The real-time student: its shapes and export, the decoder on its E = 32 grid, its embedding caches."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sammix_recipe.student import STUDENT_E, build, export_onnx, macs


def test_student_gives_e32_embeddings_and_exports_exactly(tmp_path):
    torch.manual_seed(0)
    net = build("xs").eval()
    x = torch.rand(2, 1, 256, 256)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 256, STUDENT_E, STUDENT_E)
    # the last op is SAM's channel LayerNorm: every position has mean ≈ bias, unit spread before the affine
    assert torch.allclose(y.mean(1), net.norm.bias.mean().expand(2, STUDENT_E, STUDENT_E), atol=1e-5)
    export_onnx(net, tmp_path / "encoder.onnx")
    sess = ort.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert sess.get_inputs()[0].shape == [1, 1, 256, 256]
    (got,) = sess.run(["image_embeddings"], {"image": x[:1].numpy()})
    np.testing.assert_allclose(got, y[:1].numpy(), atol=1e-4, rtol=1e-4)
    assert 1e8 < macs(net, 1) < 1e9


def _student_run(root, name, seed):
    torch.manual_seed(seed)
    net = build("xs")
    (root / name).mkdir(parents=True)
    torch.save({"config": net.config, "state": net.state_dict(), "step": 0}, root / name / "student.pt")
    return net.eval()


def test_student_decoder_runs_on_a_32_grid_with_the_foundation_weights(tmp_path, monkeypatch):
    import sammix_recipe.encoders as encoders
    from sammix_recipe.medsam_train import call_decoder

    monkeypatch.setattr(encoders, "RUNS_DIR", tmp_path)
    _student_run(tmp_path, "st", 0)
    enc = encoders.Encoder("student:st")
    assert enc.size == 32 and enc.is_student
    dec = enc.decoder().eval()
    teacher = encoders.Encoder().decoder()
    assert all(torch.equal(a, b) for a, b in zip(dec.state_dict().values(), teacher.state_dict().values()))
    assert dec.prompt_encoder.get_dense_pe().shape == (1, 256, 32, 32)
    emb = torch.randn(2, 256, 32, 32) * 0.1
    boxes = np.array([[20, 30, 90, 100], [100, 100, 200, 180]], np.float32)
    dense = np.full((2, 128, 128), -8.0, np.float32)
    with torch.no_grad():
        low, iou = call_decoder(dec, emb, boxes, dense)
    assert low.shape == (2, 128, 128) and iou.shape == (2,)
    assert torch.isfinite(low).all()


def test_student_caches_carry_the_weights_digest_and_follow_the_teacher_order(tmp_path, monkeypatch):
    import sammix_recipe.encoders as encoders
    import sammix_recipe.medsam as medsam

    monkeypatch.setattr(encoders, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(medsam, "CACHE_DIR", tmp_path / "cache")
    (tmp_path / "cache").mkdir()
    net_a = _student_run(tmp_path / "runs", "a", 0)
    _student_run(tmp_path / "runs", "b", 1)
    a, b = encoders.Encoder("student:a"), encoders.Encoder("student:b")
    assert a.tag != b.tag and a.tag.startswith("a-") and b.tag.startswith("b-")
    with pytest.raises(FileNotFoundError, match="no such student"):
        encoders.Encoder("student:missing")
    with pytest.raises(ValueError, match="litemedsam"):
        encoders.Encoder("tinyvit")

    # the teacher's cache holds 3 of 5 frames, in its own order: the student embeds those, in that order
    images = np.random.default_rng(0).integers(0, 256, (5, 256, 256), dtype=np.uint8)
    order = np.array([3, 0, 4], np.int64)
    np.save(tmp_path / "cache" / "medsam_emb_pool_index.npy", order)
    (tmp_path / "cache" / "medsam_emb_pool_done.txt").write_text("3")
    np.save(tmp_path / "cache" / "medsam_emb_pool.npy", np.zeros((3, 1, 1, 1), np.float16))

    class Domain:
        def cache(self, split):
            return split

        def frames(self, split):
            return {"images": images}

    emb, idx = a.embeddings(Domain(), "pool")
    assert np.array_equal(idx, order) and emb.shape == (3, 256, 32, 32)
    with torch.no_grad():
        want = net_a(torch.from_numpy(images[order]).float()[:, None] / 255.0).numpy()
    np.testing.assert_allclose(np.asarray(emb, np.float32), want, atol=2e-3, rtol=2e-3)
    assert (tmp_path / "cache" / f"medsam_emb_{a.tag}pool.npy").exists()
