"""Sentiment (negative / neutral / positive) by a linear head over sentence embeddings.

The shipped head (``extractor/data/sentiment_head.json``) is a temperature-calibrated logistic
regression trained on permissively licensed sets by ``eval/train_sentiment.py``. The file is JSON,
never a pickle, and records its encoder, labels, data hash and metrics.

>>> head = SentimentHead.load()                              # doctest: +SKIP
>>> head.predict_proba(load_embedder().encode(["love it"]))  # doctest: +SKIP
array([[0.02, 0.08, 0.90]], dtype=float32)
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .intent import _softmax

HEAD_FORMAT = "signals.linear_head/1"


class SentimentHead:
    """``predict_proba`` columns follow ``labels``; ``score`` = p(positive) - p(negative)."""

    def __init__(self, spec: dict, source: str):
        if spec.get("format") != HEAD_FORMAT:
            raise ModelError(f"{source} is not a {HEAD_FORMAT} file (format={spec.get('format')!r}).")
        self.labels: list[str] = list(spec["labels"])
        self.coef = np.asarray(spec["coef"], dtype=np.float32)
        self.intercept = np.asarray(spec["intercept"], dtype=np.float32)
        self.temperature = float(spec.get("temperature", 1.0))
        self.encoder = spec.get("encoder", "")
        self.dim = int(spec.get("dim", self.coef.shape[1]))
        self.id = f"sentiment-head@{spec.get('data_sha256', 'unknown')[:12]}"
        self._neg, self._pos = self.labels.index("negative"), self.labels.index("positive")

    @classmethod
    def load(cls, path: str | Path | None = None) -> SentimentHead:
        """The head at ``path``, else ``$SIGNALS_SENTIMENT_HEAD``, else the shipped one."""
        path = path or os.environ.get("SIGNALS_SENTIMENT_HEAD") or None
        try:
            if path is None:
                raw = resources.files("extractor").joinpath("data/sentiment_head.json").read_text("utf-8")
            else:
                raw = Path(path).read_text("utf-8")
            return cls(json.loads(raw), str(path or "the shipped sentiment head"))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(
                f"Cannot load sentiment head {path or 'extractor/data/sentiment_head.json'}: {exc}. "
                "Rebuild it with: python eval/train_sentiment.py"
            ) from exc

    def check_encoder(self, embedder) -> None:
        """Refuse an encoder whose vectors this head was not trained on."""
        if embedder.dim != self.dim or (self.encoder and embedder.model_id != self.encoder):
            raise ModelError(
                f"The sentiment head was trained on {self.encoder} ({self.dim}-d) but the encoder is "
                f"{embedder.model_id} ({embedder.dim}-d). Train a head for that encoder "
                "(eval/train_sentiment.py) and pass it with SIGNALS_SENTIMENT_HEAD, or use the default encoder."
            )

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return _softmax((x @ self.coef.T + self.intercept) / self.temperature).astype(np.float32)

    def score(self, proba: np.ndarray) -> np.ndarray:
        return proba[..., self._pos] - proba[..., self._neg]


# The encoder reads emoji poorly ("😡😡😡" comes out positive), so clear-cut ones shift the odds.
POSITIVE_EMOJI = frozenset("😀😃😄😁😊🙂😍🥰😘👍🎉💯⭐🌟💖💕❤👏🤩😎✅")
NEGATIVE_EMOJI = frozenset("😡🤬😠😤😞😢😭👎💔🙄😒😩😫🤮😖😣😾")
EMOJI_WEIGHT = 1.0  # log-odds per emoji, at most three counted


def emoji_shift(texts: list[str], proba: np.ndarray, labels: list[str]) -> np.ndarray:
    """Multiply p(positive) by e^(w*s) and p(negative) by e^(-w*s), s = (#positive - #negative emoji), renormalise.

    >>> int(emoji_shift(["😡😡😡"], np.array([[0.2, 0.3, 0.5]]), ["negative", "neutral", "positive"]).argmax())
    0
    """
    neg, pos = labels.index("negative"), labels.index("positive")
    out = proba.copy()
    for i, text in enumerate(texts):
        score = sum(ch in POSITIVE_EMOJI for ch in text) - sum(ch in NEGATIVE_EMOJI for ch in text)
        if score:
            score = max(-3, min(3, score))
            out[i, pos] *= np.exp(EMOJI_WEIGHT * score)
            out[i, neg] *= np.exp(-EMOJI_WEIGHT * score)
            out[i] /= out[i].sum()
    return out
