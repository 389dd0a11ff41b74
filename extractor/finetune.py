"""Fine-tune the sentence encoder end to end with a cosine classification head.

This is the default ``signals train`` method: every layer of the encoder learns from the labelled
examples, starting from the frozen model's geometry (the head starts at each label's mean
embedding, so the first step is already a nearest-centroid classifier). The loss is cross-entropy
over ``scale * cos(embedding, label weight)``; the trained encoder is saved as a normal
sentence-transformers directory and the head as ``signals.linear_head/1`` rows
(``coef = scale * unit weight``, zero intercept) over its normalised embeddings. With a multi-hot
``y`` (multi-label intents) each label also learns a bias and the loss is binary cross-entropy
over ``scale * cos + bias``.

Training is deterministic for a given ``seed`` on the same machine and library versions (torch's
CPU kernels are; thread count can change float rounding in the last bits).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters. The defaults are common values for fine-tuning small sentence encoders, set once
    and not tuned (a sweep costs 15-20 minutes of CPU per setting here); eval/RESULTS.md has what they give."""

    epochs: int | None = None  # None: enough passes for about ``min_steps`` optimiser steps, at least 2
    min_steps: int = 600
    max_epochs: int = 30
    batch_size: int = 32
    lr: float = 6e-5  # encoder
    head_lr: float = 3e-3
    scale: float = 24.0  # cosine logit scale
    warmup: float = 0.06
    weight_decay: float = 0.01
    max_length: int = 128
    freeze_word_embeddings: bool = True  # ~25% less time per step here; the table is half the weights

    def total_steps(self, n_rows: int) -> int:
        return self.n_epochs(n_rows) * math.ceil(n_rows / self.batch_size)

    def n_epochs(self, n_rows: int) -> int:
        if self.epochs is not None:
            return self.epochs
        per_epoch = max(1, math.ceil(n_rows / self.batch_size))
        return int(min(self.max_epochs, max(2, math.ceil(self.min_steps / per_epoch))))


def _seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def finetune(texts: list[str], y: np.ndarray, n_labels: int, encoder_path: Path, *, seed: int = 0,
             config: FinetuneConfig | None = None,
             progress: Callable[[int, int], None] | None = None):
    """Train on ``(texts, y)``; returns ``(sentence_transformer, coef, intercept)`` with ``coef`` of shape
    ``(n_labels, dim)`` to apply to the model's unit-normalised embeddings. ``y``: label indices, or a
    ``(rows, n_labels)`` 0/1 matrix for multi-label training.

    ``progress(done, total)`` is called after every optimiser step.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    cfg = config or FinetuneConfig()
    _seed_all(seed)
    model = SentenceTransformer(str(encoder_path), device="cpu")
    model.max_seq_length = min(cfg.max_length, model.max_seq_length or cfg.max_length)
    with torch.no_grad():
        x0 = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                          show_progress_bar=False)
    multi = np.ndim(y) == 2
    if multi:
        ym = np.asarray(y, dtype=np.float32)
        centroids = ym.T @ x0
    else:
        centroids = np.zeros((n_labels, x0.shape[1]), dtype=np.float32)
        np.add.at(centroids, y, x0)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
    weight = torch.nn.Parameter(torch.from_numpy(centroids.astype(np.float32)))
    bias = torch.nn.Parameter(torch.from_numpy(_initial_bias(x0 @ centroids.T, ym, cfg.scale) if multi
                                               else np.zeros(n_labels, dtype=np.float32)))
    if cfg.freeze_word_embeddings:
        for name, param in model.named_parameters():
            if "word_embeddings" in name:
                param.requires_grad_(False)
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    trainable = [p for p in model.parameters() if p.requires_grad]

    epochs = cfg.n_epochs(len(texts))
    steps_per_epoch = math.ceil(len(texts) / cfg.batch_size)
    total = epochs * steps_per_epoch
    optimiser = torch.optim.AdamW([
        {"params": trainable, "lr": cfg.lr,
         "weight_decay": cfg.weight_decay},
        {"params": [weight, bias] if multi else [weight], "lr": cfg.head_lr, "weight_decay": 0.0},
    ])
    warm = max(1, int(cfg.warmup * total))

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to zero
        return step / warm if step < warm else max(0.0, (total - step) / max(1, total - warm))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
    labels = torch.as_tensor(ym) if multi else torch.as_tensor(np.asarray(y), dtype=torch.long)
    rng = np.random.default_rng(seed)
    model.train()
    step = 0
    log.info("fine-tuning %s: %d rows, %d labels, %d epochs, %d steps", encoder_path, len(texts), n_labels,
             epochs, total)
    for _ in range(epochs):
        order = rng.permutation(len(texts))
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            features = tokenize([texts[i] for i in idx])
            emb = model(features)["sentence_embedding"]
            emb = torch.nn.functional.normalize(emb, dim=-1)
            logits = cfg.scale * emb @ torch.nn.functional.normalize(weight, dim=-1).T
            if multi:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits + bias, labels[idx])
            else:
                loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable + [weight], 1.0)
            optimiser.step()
            scheduler.step()
            step += 1
            if progress is not None:
                progress(step, total)
    model.eval()
    with torch.no_grad():
        coef = cfg.scale * torch.nn.functional.normalize(weight, dim=-1).numpy()
        intercept = bias.numpy().copy()
    return model, coef.astype(np.float32), intercept.astype(np.float32)


def _initial_bias(cos: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray:
    """Per label, a bias that puts the decision half-way between the mean cosine of its positive rows
    and that of its negative rows (a label no row has starts far below)."""
    pos, neg = y.sum(axis=0), (1 - y).sum(axis=0)
    mid = ((cos * y).sum(axis=0) / np.maximum(pos, 1) + (cos * (1 - y)).sum(axis=0) / np.maximum(neg, 1)) / 2
    return np.where(pos > 0, -scale * mid, -scale).astype(np.float32)


def _batches(lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar-length rows: shuffle, sort each run of 8 batches by length, then
    shuffle the batches (less padding, same randomness of batch membership across epochs)."""
    order = rng.permutation(len(lengths))
    out = []
    for start in range(0, len(order), size * 8):
        chunk = order[start:start + size * 8]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    return [out[i] for i in rng.permutation(len(out))]


def encode(model, texts: list[str]) -> np.ndarray:
    """Unit-normalised embeddings from a (fine-tuned) sentence-transformers model."""
    return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False).astype(np.float32, copy=False)
