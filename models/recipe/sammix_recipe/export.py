"""Export SAM-Mix to the three ONNX graphs of a bundle, f32 and int8.

- ``classifier.onnx``: ``image`` (1,C,S,S) normalised → ``logits`` (1,1), ``cam`` (1,1,S/16,S/16)
- ``encoder.onnx``: ``image`` (1,C,S,S) normalised → ``image_embeddings`` (1,256,E,E), LoRA merged
- ``decoder.onnx``: the official ``SamOnnxModel`` interface (``return_single_mask=False``)

int8 forms (see DESIGN "What we measured"): ``dynamic`` (MatMulInteger /
ConvInteger with per-tensor u8 activations quantised at run time, s8 weights)
and ``qdq`` (static QuantizeLinear/DequantizeLinear pairs calibrated on pool
frames). Which one a bundle ships is decided by timing both in tract.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from .model import CamClassifier, SamConfig, merge_lora

OPSET = 17
DECODER_INPUTS = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"]
DECODER_OUTPUTS = ["masks", "iou_predictions", "low_res_masks"]


def _export(module: nn.Module, args: tuple, path: Path, inputs, outputs, dynamic_axes=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter keeps initializer names and plain ops
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)


class _EncoderGraph(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, image):
        return self.encoder(image)


def export_classifier(clf: CamClassifier, cfg: SamConfig, path: Path) -> None:
    x = torch.zeros(1, cfg.in_chans, cfg.img_size, cfg.img_size)
    _export(copy.deepcopy(clf).cpu().eval(), (x,), path, ["image"], ["logits", "cam"])


def export_encoder(sam, cfg: SamConfig, path: Path) -> None:
    enc = copy.deepcopy(sam.image_encoder).cpu().eval()
    merge_lora(enc)
    x = torch.zeros(1, cfg.in_chans, cfg.img_size, cfg.img_size)
    _export(_EncoderGraph(enc), (x,), path, ["image"], ["image_embeddings"])


def export_decoder(sam, cfg: SamConfig, path: Path) -> None:
    """The official decoder graph. ``orig_im_size`` is exported with a square dummy:
    the exporter bakes the dummy's crop into ``masks`` (DESIGN "Traps"), so ``masks``
    is right only for square frames; ``low_res_masks`` is right for all."""
    from segment_anything.utils.onnx import SamOnnxModel

    s = copy.deepcopy(sam).cpu().eval()
    merge_lora(s)
    onnx_model = SamOnnxModel(s, return_single_mask=False)
    e = cfg.embedding_size
    dummy = (
        torch.randn(1, 256, e, e),
        torch.randint(0, cfg.img_size, (1, 2, 2), dtype=torch.float),
        torch.tensor([[2.0, 3.0]]),
        torch.randn(1, 1, 4 * e, 4 * e),
        torch.tensor([1.0]),
        torch.tensor([float(cfg.img_size), float(cfg.img_size)]),
    )
    axes = {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}}
    _export(onnx_model, dummy, path, DECODER_INPUTS, DECODER_OUTPUTS, axes)


def quantize_dynamic_graph(src: Path, dst: Path) -> None:
    """int8 weights (per output channel), u8 activations quantised at run time."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        # only the weight-bearing ops: quantizing Transpose / Gather too leaves
        # DequantizeLinear nodes with run-time scales, which tract cannot type
        op_types_to_quantize=["MatMul", "Conv"],
        nodes_to_exclude=positional_encoding_nodes(src),
    )


def positional_encoding_nodes(path: Path) -> list[str]:
    """The MatMuls of SAM's random-Fourier positional encoding, kept f32 in int8 graphs.

    Quantizing their input to 8 bits per tensor would round the prompt's point
    coordinates to about one pixel of a 256 frame (and the dense grid's too): the
    masks then move with the rounding. They are two tiny products (N × 2 · 2 × 128).
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and any("positional_encoding_gaussian_matrix" in i for i in n.input)
    ]


def quantize_qdq_graph(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """Static QDQ (s8 weights per channel, u8 activations) calibrated on ``feeds``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )


def ort_session(path: Path, qdq_fusion: bool = True):
    """One-thread CPU session. ``qdq_fusion=False`` keeps a graph's DequantizeLinear → MatMul in f32, as the
    ONNX semantics say and as tract computes it: by default onnxruntime fuses weight-only DequantizeLinear
    into an integer MatMul that also quantizes the activations (LiteMedSAM's int8-weights encoder: 0.017
    off the f32 computation of the same weights, tract agrees with the unfused one to 1e-6)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    if not qdq_fusion:
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
