"""SAM-Mix model: a CAM classifier branch and a LoRA-adapted Segment Anything branch.

The SAM branch is assembled from the official ``segment_anything`` modules
(``ImageEncoderViT``, ``PromptEncoder``, ``MaskDecoder``, ``TwoWayTransformer``)
with their original parameter names, so an official ``vit_b`` checkpoint loads
into :func:`build_sam` (``SamConfig.vit_b()``) unchanged.

The decoder head used in training (:class:`DecoderHead`) computes exactly what
the official ONNX export (``segment_anything.utils.onnx.SamOnnxModel``) computes
from ``point_coords`` / ``point_labels`` / ``mask_input`` / ``has_mask_input``,
batched over images, so what we train is what we export.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)
from torch import nn

PROMPT_EMBED_DIM = 256  # SAM's prompt / image-embedding width, the same in every SAM
PATCH_SIZE = 16  # ViT patch size: the embedding grid is input / 16
NUM_MULTIMASK_OUTPUTS = 3  # mask tokens 1..3; token 0 is the single-mask output
LORA_RANK = 8


@dataclass(frozen=True)
class SamConfig:
    """Shape of a SAM: everything that decides the graph's size."""

    img_size: int
    in_chans: int
    embed_dim: int
    depth: int
    num_heads: int
    window_size: int
    global_attn_indexes: tuple[int, ...]
    pixel_mean: tuple[float, ...]
    pixel_std: tuple[float, ...]

    @property
    def embedding_size(self) -> int:
        """E: the side of the E×E image embedding."""
        return self.img_size // PATCH_SIZE

    @staticmethod
    def tiny() -> "SamConfig":
        """The edge configuration: 256×256 grayscale in, 16×16 embedding, 4 blocks."""
        return SamConfig(
            img_size=256,
            in_chans=1,
            embed_dim=192,
            depth=4,
            num_heads=3,
            window_size=8,
            global_attn_indexes=(1, 3),
            pixel_mean=(128.0,),
            pixel_std=(64.0,),
        )

    @staticmethod
    def vit_b() -> "SamConfig":
        """The official SAM ViT-B (1024×1024 RGB in, 64×64 embedding)."""
        return SamConfig(
            img_size=1024,
            in_chans=3,
            embed_dim=768,
            depth=12,
            num_heads=12,
            window_size=14,
            global_attn_indexes=(2, 5, 8, 11),
            pixel_mean=(123.675, 116.28, 103.53),
            pixel_std=(58.395, 57.12, 57.375),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def build_sam(cfg: SamConfig) -> Sam:
    """Build a SAM with the official module tree (parameter names as in the checkpoints)."""
    emb = cfg.embedding_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=cfg.depth,
            embed_dim=cfg.embed_dim,
            img_size=cfg.img_size,
            in_chans=cfg.in_chans,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=cfg.num_heads,
            patch_size=PATCH_SIZE,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=cfg.global_attn_indexes,
            window_size=cfg.window_size,
            out_chans=PROMPT_EMBED_DIM,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=PROMPT_EMBED_DIM,
            image_embedding_size=(emb, emb),
            input_image_size=(cfg.img_size, cfg.img_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=NUM_MULTIMASK_OUTPUTS,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=PROMPT_EMBED_DIM, mlp_dim=2048, num_heads=8
            ),
            transformer_dim=PROMPT_EMBED_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
        pixel_mean=list(cfg.pixel_mean),
        pixel_std=list(cfg.pixel_std),
    )
    return sam


# --------------------------------------------------------------------------- LoRA


class LoRALinear(nn.Module):
    """``base(x) + scale * B(A(x))`` with a frozen base; merged into ``base`` at export.

    Wraps the module in place, keeping ``.weight`` / ``.bias`` reachable under the
    original name (``qkv.base.weight``) until :func:`merge_lora` puts a plain
    ``nn.Linear`` back.
    """

    def __init__(self, base: nn.Linear, rank: int = LORA_RANK, alpha: float = LORA_RANK):
        super().__init__()
        self.base = base
        self.rank = rank
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        for p in self.base.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` whose weight includes the low-rank update."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scale * self.lora_b @ self.lora_a)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def add_lora(encoder: ImageEncoderViT, rank: int = LORA_RANK) -> list[nn.Parameter]:
    """Put LoRA on every attention projection (``qkv`` and ``proj``); return its parameters."""
    params: list[nn.Parameter] = []
    for blk in encoder.blocks:
        for name in ("qkv", "proj"):
            lin = getattr(blk.attn, name)
            if isinstance(lin, LoRALinear):
                continue
            wrapped = LoRALinear(lin, rank=rank)
            setattr(blk.attn, name, wrapped)
            params += [wrapped.lora_a, wrapped.lora_b]
    return params


def merge_lora(module: nn.Module) -> int:
    """Replace every ``LoRALinear`` below ``module`` by its merged ``nn.Linear``."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, LoRALinear):
            setattr(module, name, child.merged())
            count += 1
        else:
            count += merge_lora(child)
    return count


# --------------------------------------------------------------------------- decoder head


class DecoderHead(nn.Module):
    """Prompt encoder + mask decoder, the computation of the official ONNX decoder, batched.

    Inputs are per image: ``image_embeddings`` (B,256,E,E), ``point_coords`` (B,N,2)
    in input pixels, ``point_labels`` (B,N) with SAM's codes (1 fg, 0 bg, 2/3 box
    corners, -1 padding), ``mask_input`` (B,1,4E,4E) logits and ``has_mask_input``
    (B,) in {0,1}. Returns low-resolution mask logits (B,4,4E,4E) and IoU predictions (B,4).
    """

    def __init__(self, sam: Sam):
        super().__init__()
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder
        self.img_size = sam.image_encoder.img_size

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        pe = self.prompt_encoder
        emb = pe.pe_layer._pe_encoding((coords + 0.5) / self.img_size)
        lab = labels.unsqueeze(-1)
        emb = emb * (lab != -1) + pe.not_a_point_embed.weight * (lab == -1)
        for i in range(pe.num_point_embeddings):
            emb = emb + pe.point_embeddings[i].weight * (lab == i)
        return emb

    def embed_masks(self, mask_input: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
        pe = self.prompt_encoder
        has = has_mask.view(-1, 1, 1, 1)
        return has * pe.mask_downscaling(mask_input) + (1 - has) * pe.no_mask_embed.weight.reshape(
            1, -1, 1, 1
        )

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        md = self.mask_decoder
        sparse = self.embed_points(point_coords, point_labels)
        dense = self.embed_masks(mask_input, has_mask_input)
        b = image_embeddings.shape[0]
        tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight], dim=0)
        tokens = torch.cat([tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)
        src = image_embeddings + dense
        pos = self.prompt_encoder.get_dense_pe().expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = md.transformer(src, pos, tokens)
        iou_token = hs[:, 0, :]
        mask_tokens = hs[:, 1 : 1 + md.num_mask_tokens, :]
        up = md.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        hyper = torch.stack(
            [md.output_hypernetworks_mlps[i](mask_tokens[:, i, :]) for i in range(md.num_mask_tokens)],
            dim=1,
        )
        _, c2, h2, w2 = up.shape
        masks = (hyper @ up.view(b, c2, h2 * w2)).view(b, -1, h2, w2)
        iou = md.iou_prediction_head(iou_token)
        return masks, iou


def normalize(images_u8: torch.Tensor, cfg: SamConfig) -> torch.Tensor:
    """uint8 (B,H,W) or (B,C,H,W) → float model input with the manifest's mean/std."""
    x = images_u8.float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.shape[1] != cfg.in_chans:
        x = x.expand(-1, cfg.in_chans, -1, -1)
    mean = torch.tensor(cfg.pixel_mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(cfg.pixel_std, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


# --------------------------------------------------------------------------- classifier


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convs, BN, ReLU, projection shortcut when needed)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + skip)


@dataclass(frozen=True)
class ClassifierConfig:
    """A light ResNet: stem stride 2, then stages; total stride 16 so the CAM is input/16."""

    in_chans: int = 1
    stem: int = 16
    widths: tuple[int, ...] = (32, 64, 128, 128)
    strides: tuple[int, ...] = (2, 2, 2, 1)
    blocks: tuple[int, ...] = (1, 1, 2, 1)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class CamClassifier(nn.Module):
    """Target presence classifier with a class activation map.

    ``forward`` returns ``(logits (B,1), cam (B,1,H/16,W/16))`` where ``cam`` is
    ReLU(sum_k w_k A_k), the CAM of the target class (for a GAP + linear head
    this equals Grad-CAM).
    """

    def __init__(self, cfg: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.cfg = cfg
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_chans, cfg.stem, 3, 2, 1, bias=False),
            nn.BatchNorm2d(cfg.stem),
            nn.ReLU(inplace=True),
        )
        layers = []
        cin = cfg.stem
        for width, stride, n in zip(cfg.widths, cfg.strides, cfg.blocks):
            for i in range(n):
                layers.append(BasicBlock(cin, width, stride if i == 0 else 1))
                cin = width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 1)

    def forward(self, x: torch.Tensor):
        feat = self.features(self.stem(x))
        logits = self.fc(feat.mean(dim=(2, 3)))
        cam = F.relu(F.conv2d(feat, self.fc.weight[:, :, None, None]))
        return logits, cam


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha=0.25, gamma=2.0) -> torch.Tensor:
    """Binary focal loss (Lin et al.), mean over elements."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    a_t = alpha * target + (1 - alpha) * (1 - target)
    return (a_t * ce * (1 - p_t) ** gamma).mean()
