"""A linear head over frozen sentence embeddings, as an intent classifier (``signals train --fast``).

It offers the same interface as the prototype classifier (``scores``, ``decide``, ``with_sentiment``,
``labels``), so the runner uses either. Confidence is ``softmax(logits / T)`` with ``T`` fitted on a
validation split; below ``threshold`` it abstains to ``out_of_scope``.
"""

from __future__ import annotations

import numpy as np

from ..taxonomy import OUT_OF_SCOPE
from .intent import IntentPrediction, _softmax


class LinearHead:
    """The rows of a ``signals.linear_head/1`` spec: ``logits = x @ coef.T + intercept``, probabilities
    ``softmax(logits / temperature)``, columns in ``labels`` order."""

    def __init__(self, spec: dict):
        self.labels: list[str] = list(spec["labels"])
        self.coef = np.asarray(spec["coef"], dtype=np.float32)
        self.intercept = np.asarray(spec["intercept"], dtype=np.float32)
        self.temperature = float(spec.get("temperature", 1.0))

    def scores(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef.T + self.intercept

    def proba(self, x: np.ndarray) -> np.ndarray:
        return _softmax(self.scores(x) / self.temperature)


class LinearIntent(LinearHead):
    def __init__(self, spec: dict, model_id: str):
        super().__init__(spec)
        self.threshold = float(spec.get("threshold", 0.0))
        self.taxonomy_id = model_id
        self.polarity = np.zeros(len(self.labels), dtype=np.float32)

    def with_sentiment(self, s: np.ndarray, sentiment: np.ndarray) -> np.ndarray:
        return s  # a trained head has no polarity prior

    def decide(self, s: np.ndarray) -> list[IntentPrediction]:
        p = _softmax(s / self.temperature)
        out = []
        for row, probs in zip(s, p):
            j = int(np.argmax(probs))
            if probs[j] < self.threshold:
                out.append(IntentPrediction(OUT_OF_SCOPE, float(1.0 - probs[j]), float(row[j]), self.labels[j],
                                            float(probs[j])))
            else:
                out.append(IntentPrediction(self.labels[j], float(probs[j]), float(row[j])))
        return out

    def predict(self, x: np.ndarray) -> list[IntentPrediction]:
        return self.decide(self.scores(x)) if len(x) else []
