"""Which image encoder a SAM-Mix run sits on: LiteMedSAM's own (E = 64) or a distilled student (E = 32).

A run names it in ``train.json`` (``encoder``: ``litemedsam``, or ``student:NAME`` for the student
run ``runs/NAME``); its head and decoder are trained, swept, evaluated and bundled on that
encoder's embeddings. The student's embeddings are cached like the teacher's, under names that
carry the student's weights' digest, so a student distilled again never meets stale embeddings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from .common import RUNS_DIR, log
from .medsam import EMBED_SIZE, cached_embeddings, embed_set, embeddings_path, load_foundation
from .medsam_data import Domain
from .model import DecoderHead

TEACHER = "litemedsam"


class _StudentNet:
    """The student behind :func:`medsam.embed_set`'s ``net.image_encoder(to_input(frames))`` call."""

    def __init__(self, net):
        self.net = net

    def image_encoder(self, x: torch.Tensor) -> torch.Tensor:
        # to_input gives (B,3,H,W) in [0, 1], gray replicated; a gray student takes one channel
        if self.net.config["in_chans"] == 1:
            x = x[:, :1]
        return self.net(x)


class Encoder:
    """The teacher (``litemedsam``) or a student (``student:NAME``): its E, its caches, its decoder."""

    def __init__(self, spec: str = TEACHER):
        self.spec = spec
        self.student_run: Path | None = None
        if spec == TEACHER:
            self.size = EMBED_SIZE
            self.tag = ""
        elif spec.startswith("student:"):
            from .student import STUDENT_E

            self.student_run = RUNS_DIR / spec[len("student:"):]
            weights = self.student_run / "student.pt"
            if not weights.exists():
                raise FileNotFoundError(f"{weights}: no such student (python -m sammix_recipe.student --distill)")
            digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
            self.size = STUDENT_E
            self.tag = f"{self.student_run.name}-{digest}-"
        else:
            raise ValueError(f"encoder: expected {TEACHER!r} or 'student:NAME', got {spec!r}")
        self._net = None

    @property
    def is_student(self) -> bool:
        return self.student_run is not None

    def net(self):
        """An object with ``image_encoder(x)`` for ``x`` (B,3,S,S) in [0, 1]."""
        if self._net is None:
            if self.is_student:
                from .student import load_student

                self._net = _StudentNet(load_student(self.student_run))
            else:
                self._net = load_foundation()
        return self._net

    def cache(self, domain: Domain, split: str) -> str:
        return self.tag + domain.cache(split)

    def embeddings(self, domain: Domain, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (N,256,E,E) f16, frame indices) of a set. The teacher's are made by ``medsam --embed``
        (seconds a frame); a student's, for the same frames in the same order, are made here when missing."""
        if not self.is_student:
            return cached_embeddings(domain.cache(split))
        _, idx = cached_embeddings(domain.cache(split))
        name = self.cache(domain, split)
        done = embeddings_path(name).with_name(f"medsam_emb_{name}_done.txt")
        if not (done.exists() and int(done.read_text()) == len(idx)):
            log.info("%s: embedding %d frames with the student", name, len(idx))
            embed_set(self.net(), name, domain.frames(split)["images"], idx, batch=16, embed_size=self.size)
        return cached_embeddings(name)

    def embed(self, name: str, frames: np.ndarray) -> np.ndarray:
        """Embeddings of extra frames (augmented copies, a clip), cached under ``name`` for this encoder."""
        from .medsam import embed_augmented

        return embed_augmented(self.net(), self.tag + name, frames, embed_size=self.size)

    def decoder(self) -> DecoderHead:
        """LiteMedSAM's prompt encoder and mask decoder, on an E×E grid (same weights for any E)."""
        sam = load_foundation()
        sam.prompt_encoder.image_embedding_size = (self.size, self.size)
        sam.prompt_encoder.mask_input_size = (4 * self.size, 4 * self.size)
        return DecoderHead(sam)


def run_encoder(run: Path) -> Encoder:
    """The encoder a trained run names in its ``train.json`` (runs older than the field: LiteMedSAM's)."""
    p = Path(run) / "train.json"
    spec = json.loads(p.read_text()).get("encoder", TEACHER) if p.exists() else TEACHER
    return Encoder(spec)
