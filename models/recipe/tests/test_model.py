"""Model assembly, LoRA merge, the batched decoder head, and one training step of each model."""

import numpy as np
import torch

from sammix_recipe.model import (
    CamClassifier,
    DecoderHead,
    LoRALinear,
    SamConfig,
    add_lora,
    build_sam,
    focal_loss,
    merge_lora,
    normalize,
)
from sammix_recipe.segment import choose_masks, seg_loss
from sammix_recipe.train_unet import UNet


def tiny_sam(seed=0):
    torch.manual_seed(seed)
    return build_sam(SamConfig.tiny()).eval()


def test_vit_b_has_official_parameter_names_and_shapes():
    sam = build_sam(SamConfig.vit_b())
    sd = sam.state_dict()
    assert sd["image_encoder.patch_embed.proj.weight"].shape == (768, 3, 16, 16)
    assert sd["image_encoder.blocks.11.attn.rel_pos_h"].shape == (127, 64)
    assert sd["mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight"].shape == (128, 256)
    assert sd["prompt_encoder.mask_downscaling.0.weight"].shape == (4, 1, 2, 2)
    assert sum(p.numel() for p in sam.parameters()) > 90_000_000


def test_decoder_head_equals_official_onnx_model():
    from segment_anything.utils.onnx import SamOnnxModel

    sam = tiny_sam()
    head = DecoderHead(sam)
    onnx_model = SamOnnxModel(sam, return_single_mask=False)
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(2, 256, 16, 16, generator=g)
    coords = torch.rand(2, 2, 2, generator=g) * 255
    labels = torch.tensor([[2.0, 3.0], [2.0, 3.0]])
    mask_in = torch.randn(2, 1, 64, 64, generator=g)
    with torch.no_grad():
        low, iou = head(emb, coords, labels, mask_in, torch.ones(2))
        for i in range(2):
            _, iou_ref, low_ref = onnx_model(emb[i : i + 1], coords[i : i + 1], labels[i : i + 1],
                                             mask_in[i : i + 1], torch.ones(1), torch.tensor([256.0, 256.0]))
            torch.testing.assert_close(low[i : i + 1], low_ref, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(iou[i : i + 1], iou_ref, atol=1e-5, rtol=1e-5)


def test_lora_starts_as_identity_and_merges_exactly():
    sam = tiny_sam()
    x = torch.randn(1, 1, 256, 256)
    with torch.no_grad():
        before = sam.image_encoder(x)
    params = add_lora(sam.image_encoder)
    assert len(params) == 2 * 2 * 4  # (A, B) × (qkv, proj) × 4 blocks
    with torch.no_grad():
        torch.testing.assert_close(sam.image_encoder(x), before)
        for p in params[1::2]:
            p.normal_(0, 0.02)  # make the update non-zero
        adapted = sam.image_encoder(x)
    assert (adapted - before).abs().max() > 1e-4
    assert merge_lora(sam.image_encoder) == 8
    assert not any(isinstance(m, LoRALinear) for m in sam.modules())
    with torch.no_grad():
        torch.testing.assert_close(sam.image_encoder(x), adapted, atol=1e-5, rtol=1e-4)


def test_classifier_outputs_cam_at_one_sixteenth():
    clf = CamClassifier().eval()
    logits, cam = clf(torch.randn(2, 1, 256, 256))
    assert logits.shape == (2, 1) and cam.shape == (2, 1, 16, 16)
    assert (cam >= 0).all()


def test_one_training_step_of_each_model_lowers_nothing_to_nan():
    torch.manual_seed(0)
    cfg = SamConfig.tiny()
    img = torch.randint(0, 255, (2, 256, 256), dtype=torch.uint8)
    gt = torch.zeros(2, 256, 256, dtype=torch.uint8)
    gt[:, 100:150, 80:160] = 1
    x = normalize(img, cfg)

    sam = build_sam(cfg).train()
    add_lora(sam.image_encoder)
    head = DecoderHead(sam)
    trainable = [p for p in sam.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, 1e-3)
    before = [p.detach().clone() for p in trainable]
    low, iou = head(sam.image_encoder(x), torch.tensor([[[80.0, 100.0], [160.0, 150.0]]] * 2),
                    torch.tensor([[2.0, 3.0]] * 2), torch.zeros(2, 1, 64, 64), torch.ones(2))
    loss = seg_loss(low, iou, gt)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any((p - b).abs().max() > 0 for p, b in zip(trainable, before))
    assert choose_masks(low, iou, 256).shape == (2, 256, 256)

    clf = CamClassifier().train()
    opt = torch.optim.AdamW(clf.parameters(), 1e-3)
    logits, _ = clf(x)
    loss = focal_loss(logits[:, 0], torch.tensor([1.0, 0.0]))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)

    unet = UNet().train()
    opt = torch.optim.AdamW(unet.parameters(), 1e-3)
    out = unet(x)
    assert out.shape == (2, 1, 256, 256)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], gt.float())
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)


def test_focal_loss_prefers_right_answers():
    y = torch.tensor([1.0, 0.0])
    assert focal_loss(torch.tensor([4.0, -4.0]), y) < focal_loss(torch.tensor([-4.0, 4.0]), y)
    assert np.isclose(focal_loss(torch.tensor([20.0, -20.0]), y).item(), 0.0, atol=1e-6)
