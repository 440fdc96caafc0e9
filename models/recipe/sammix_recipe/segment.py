"""The SAM-Mix forward pass in PyTorch: losses, prompting from CAMs, inference.

Inference (also what the runtime does, graph by graph):
classifier → presence probability and CAM → gate → CAM → prompt (box + dense)
→ encoder → decoder → the multimask output (tokens 1..3) with the highest
predicted IoU → bilinear upsample of its 4E×4E logits to the input size → > 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .model import CamClassifier, DecoderHead, SamConfig, normalize
from .prompt import PromptParams, cam_to_prompt

MULTIMASK = slice(1, 4)  # the tokens the runtime chooses among
FOCAL_WEIGHT = 20.0  # SAM's focal : dice weighting


def mask_loss(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-mask SAM loss: 20 × focal + dice. logits (B,M,H,W), gt (B,H,W)."""
    g = gt.unsqueeze(1).expand_as(logits).float()
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, g, reduction="none")
    p_t = p * g + (1 - p) * (1 - g)
    alpha_t = 0.25 * g + 0.75 * (1 - g)
    focal = (alpha_t * ce * (1 - p_t) ** 2).mean(dim=(2, 3))
    inter = (p * g).sum(dim=(2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum(dim=(2, 3)) + g.sum(dim=(2, 3)) + 1)
    return FOCAL_WEIGHT * focal + dice


def seg_loss(low_res: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Min-over-multimask loss plus IoU-head regression, as SAM trains ambiguous prompts."""
    size = gt.shape[-1]
    logits = F.interpolate(low_res[:, MULTIMASK], size=(size, size), mode="bilinear", align_corners=False)
    per_mask = mask_loss(logits, gt)
    with torch.no_grad():
        pred = logits > 0
        g = gt.unsqueeze(1).bool()
        inter = (pred & g).sum(dim=(2, 3)).float()
        union = (pred | g).sum(dim=(2, 3)).float()
        true_iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    iou_loss = F.mse_loss(iou_pred[:, MULTIMASK], true_iou)
    return per_mask.min(dim=1).values.mean() + iou_loss


def prompts_from_cams(
    cams: np.ndarray, cfg: SamConfig, params: PromptParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rule prompts for a batch of CAMs: coords (B,2,2), dense (B,1,4E,4E), valid (B,) bool."""
    b = cams.shape[0]
    e4 = 4 * cfg.embedding_size
    coords = np.zeros((b, 2, 2), np.float32)
    dense = np.full((b, 1, e4, e4), -params.dense_logit, np.float32)
    valid = np.zeros(b, bool)
    for i in range(b):
        pr = cam_to_prompt(cams[i], cfg.img_size, cfg.embedding_size, params)
        if pr is None:
            continue
        coords[i] = pr.box.reshape(2, 2)
        dense[i, 0] = pr.dense
        valid[i] = True
    return coords, dense, valid


BOX_LABELS = torch.tensor([2.0, 3.0])


def run_sam(
    sam, head: DecoderHead, x: torch.Tensor, coords: np.ndarray, dense: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder + decoder with box + dense prompts; returns low-res logits and IoU predictions."""
    dev = x.device
    b = x.shape[0]
    emb = sam.image_encoder(x)
    return head(
        emb,
        torch.from_numpy(coords).to(dev),
        BOX_LABELS.to(dev).expand(b, 2),
        torch.from_numpy(dense).to(dev),
        torch.ones(b, device=dev),
    )


def choose_masks(low_res: torch.Tensor, iou_pred: torch.Tensor, size: int) -> torch.Tensor:
    """The multimask output with the best predicted IoU, upsampled to size×size, thresholded."""
    best = iou_pred[:, MULTIMASK].argmax(dim=1) + MULTIMASK.start
    chosen = low_res[torch.arange(low_res.shape[0]), best].unsqueeze(1)
    up = F.interpolate(chosen, size=(size, size), mode="bilinear", align_corners=False)
    return up[:, 0] > 0


@dataclass
class SamMixPrediction:
    masks: np.ndarray  # (N,S,S) uint8
    presence: np.ndarray  # (N,) float32 probability


@torch.no_grad()
def predict(
    classifier: CamClassifier,
    sam,
    head: DecoderHead,
    images: np.ndarray,
    cfg: SamConfig,
    params: PromptParams,
    presence_threshold: float,
    device: torch.device,
    batch: int = 32,
    gate: bool = True,
) -> SamMixPrediction:
    """SAM-Mix inference on uint8 (N,S,S) images at the model input size."""
    classifier.eval()
    sam.eval()
    masks = np.zeros(images.shape, np.uint8)
    probs = np.zeros(len(images), np.float32)
    for i in range(0, len(images), batch):
        x = normalize(torch.from_numpy(images[i : i + batch]).to(device), cfg)
        logits, cam = classifier(x)
        prob = torch.sigmoid(logits[:, 0]).cpu().numpy()
        probs[i : i + batch] = prob
        coords, dense, valid = prompts_from_cams(cam.cpu().numpy(), cfg, params)
        run = valid & (prob >= presence_threshold) if gate else valid
        if not run.any():
            continue
        idx = np.nonzero(run)[0]
        low, iou = run_sam(sam, head, x[idx], coords[idx], dense[idx])
        out = choose_masks(low, iou, cfg.img_size).cpu().numpy().astype(np.uint8)
        masks[i + idx] = out
    return SamMixPrediction(masks=masks, presence=probs)
