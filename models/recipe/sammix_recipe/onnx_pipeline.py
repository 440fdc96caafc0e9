"""The SAM-Mix pipeline on exported graphs with onnxruntime: the reference the runtime must match.

Per frame (uint8 H×W): resize to the input size (bilinear, align_corners =
False, when the frame differs) → normalise → classifier → presence gate →
CAM → prompt → encoder → decoder (box corners, dense prompt, has_mask_input
= 1) → multimask output (tokens 1..3) with the best predicted IoU → its
``low_res_masks`` logits upsampled bilinearly to the frame size → > 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .export import ort_session
from .prompt import Prompt, PromptParams, cam_to_prompt, decoder_prompt


@dataclass
class FrameResult:
    mask: np.ndarray  # (H,W) uint8
    presence: float
    prompt: Prompt | None
    iou: float | None
    tensors: dict  # every graph input/output of this frame, for reference vectors


def resize_bilinear(img: np.ndarray, h: int, w: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
    return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()


class OrtSamMix:
    def __init__(
        self,
        classifier: Path,
        encoder: Path,
        decoder: Path,
        img_size: int,
        mean: float,
        std: float,
        params: PromptParams,
        presence_threshold: float,
    ):
        self.clf = ort_session(classifier)
        self.enc = ort_session(encoder)
        self.dec = ort_session(decoder)
        self.size = img_size
        self.embed = img_size // 16
        self.mean, self.std = mean, std
        self.params = params
        self.presence_threshold = presence_threshold

    def input_tensor(self, frame: np.ndarray) -> np.ndarray:
        f = frame.astype(np.float32)
        if f.shape != (self.size, self.size):
            f = resize_bilinear(f, self.size, self.size)
        return ((f - self.mean) / self.std).astype(np.float32)[None, None]

    def __call__(self, frame: np.ndarray, force_segment: bool = False) -> FrameResult:
        h, w = frame.shape
        x = self.input_tensor(frame)
        logits, cam = self.clf.run(["logits", "cam"], {"image": x})
        presence = float(1.0 / (1.0 + np.exp(-logits[0, 0])))
        tensors = {"input": x, "logits": logits, "cam": cam}
        empty = FrameResult(np.zeros((h, w), np.uint8), presence, None, None, tensors)
        if presence < self.presence_threshold and not force_segment:
            return empty
        prompt = cam_to_prompt(cam[0, 0], self.size, self.embed, self.params)
        if prompt is None:
            return empty
        (emb,) = self.enc.run(["image_embeddings"], {"image": x})
        coords, labels = decoder_prompt(prompt)
        feeds = {
            "image_embeddings": emb,
            "point_coords": coords,
            "point_labels": labels,
            "mask_input": prompt.dense[None, None],
            "has_mask_input": np.ones(1, np.float32),
            "orig_im_size": np.array([self.size, self.size], np.float32),
        }
        masks, iou, low = self.dec.run(["masks", "iou_predictions", "low_res_masks"], feeds)
        best = int(np.argmax(iou[0, 1:4])) + 1
        up = resize_bilinear(low[0, best], h, w)
        tensors.update(feeds)
        tensors.update({"masks": masks, "iou_predictions": iou, "low_res_masks": low})
        return FrameResult((up > 0).astype(np.uint8), presence, prompt, float(iou[0, best]), tensors)

    def run_set(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        masks = np.zeros(images.shape, np.uint8)
        probs = np.zeros(len(images), np.float32)
        for i, img in enumerate(images):
            r = self(img)
            masks[i], probs[i] = r.mask, r.presence
        return masks, probs
