"""The accurate bundle's pipeline on exported graphs with onnxruntime: the reference the runtime must match.

Per frame (uint8 H×W gray or H×W×3 RGB): bilinear to S×S (align_corners = False)
when the frame differs → /255, gray in all three channels → encoder → classifier head
on the image embeddings (presence, CAM) → gate → one box per kept CAM
component (at most ``max_boxes``) + the dense prompt of all kept components →
a decoder call per box (multimask tokens 1..3, best predicted IoU), refined
``refine_rounds`` times (box from the mask, ``mask_input`` = its logits) →
element-wise maximum of the chosen low-resolution logits → bilinear to the
frame size → > ``mask_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .export import ort_session
from .onnx_pipeline import resize_bilinear
from .prompt import PromptParams, box_from_low_res, cam_to_prompt, component_boxes

BOX_LABELS = np.array([[2.0, 3.0]], np.float32)


@dataclass
class MedFrameResult:
    mask: np.ndarray  # (H,W) uint8
    presence: float
    boxes: list  # the boxes of the first decoder calls (input pixels)
    iou: float | None  # the first box's final chosen predicted IoU
    tensors: dict = field(default_factory=dict)  # inputs/outputs of each graph's first call


class OrtMedSamMix:
    def __init__(self, paths: dict[str, Path], size: int, params: PromptParams,
                 presence_threshold: float, mask_threshold: float = 0.0):
        # weight-only int8 (DequantizeLinear) computes in f32, as in tract; see ort_session
        self.clf = ort_session(paths["classifier"], qdq_fusion=False)
        self.enc = ort_session(paths["encoder"], qdq_fusion=False)
        self.dec = ort_session(paths["decoder"], qdq_fusion=False)
        # C and E from the encoder graph: LiteMedSAM's 3 channels and E = 64, a gray student's 1 and 32
        self.channels = int(self.enc.get_inputs()[0].shape[1])
        self.size, self.embed = size, int(self.enc.get_outputs()[0].shape[-1])
        self.params = params
        self.presence_threshold = presence_threshold
        self.mask_threshold = mask_threshold

    def input_tensor(self, frame: np.ndarray) -> np.ndarray:
        """(1,C,S,S) in [0, 1]: a gray frame in every channel, an RGB frame's channels in order."""
        if frame.ndim == 3 and self.channels == 1:
            raise ValueError("a one-channel encoder takes gray frames, not RGB")
        planes = [frame.astype(np.float32)] if frame.ndim == 2 else [frame[..., c].astype(np.float32) for c in range(3)]
        if planes[0].shape != (self.size, self.size):
            planes = [resize_bilinear(f, self.size, self.size) for f in planes]
        x = np.stack([(f / np.float32(255.0)).astype(np.float32) for f in planes])[None]
        return np.ascontiguousarray(np.broadcast_to(x, (1, self.channels, self.size, self.size)))

    def decode(self, emb: np.ndarray, box: np.ndarray, dense: np.ndarray):
        feeds = {
            "image_embeddings": emb,
            "point_coords": box.reshape(1, 2, 2).astype(np.float32),
            "point_labels": BOX_LABELS,
            "mask_input": dense[None, None].astype(np.float32),
            "has_mask_input": np.ones(1, np.float32),
            "orig_im_size": np.array([self.size, self.size], np.float32),
        }
        masks, iou, low = self.dec.run(["masks", "iou_predictions", "low_res_masks"], feeds)
        best = int(np.argmax(iou[0, 1:4])) + 1
        return low[0, best], float(iou[0, best]), feeds, (masks, iou, low)

    def __call__(self, frame: np.ndarray, force_segment: bool = False) -> MedFrameResult:
        h, w = frame.shape[:2]
        x = self.input_tensor(frame)
        (emb,) = self.enc.run(["image_embeddings"], {"image": x})
        logits, cam = self.clf.run(["logits", "cam"], {"image_embeddings": emb})
        presence = float(1.0 / (1.0 + np.exp(-logits[0, 0])))
        tensors = {"input": x, "image_embeddings": emb, "logits": logits, "cam": cam}
        empty = MedFrameResult(np.zeros((h, w), np.uint8), presence, [], None, tensors)
        if presence < self.presence_threshold and not force_segment:
            return empty
        boxes = component_boxes(cam[0, 0], self.size, self.params)
        if not boxes:
            return empty
        dense = cam_to_prompt(cam[0, 0], self.size, self.embed, self.params).dense
        union, first_iou = None, None
        for n, box in enumerate(boxes):
            low, iou, feeds, outs = self.decode(emb, box, dense)
            if n == 0:
                tensors.update({k: v for k, v in feeds.items() if k != "image_embeddings"})
                tensors.update(dict(zip(["masks", "iou_predictions", "low_res_masks"], outs)))
            for _ in range(self.params.refine_rounds):
                b = box_from_low_res(low, self.size, self.mask_threshold, self.params.box_margin)
                if b is None:
                    break
                low, iou, _, _ = self.decode(emb, b, low)
            if n == 0:
                first_iou = iou
            union = low if union is None else np.maximum(union, low)
        tensors["low_res_union"] = union
        up = resize_bilinear(union, h, w)
        return MedFrameResult((up > self.mask_threshold).astype(np.uint8), presence, boxes, first_iou, tensors)

    def run_set(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        masks = np.zeros(images.shape[:3], np.uint8)
        probs = np.zeros(len(images), np.float32)
        for i, img in enumerate(images):
            r = self(img)
            masks[i], probs[i] = r.mask, r.presence
        return masks, probs
