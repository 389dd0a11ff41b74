"""A linear head over frozen sentence embeddings, as an intent classifier (``signals train --fast``).

It offers the same interface as the prototype classifier (``scores``, ``decide``, ``with_sentiment``,
``labels``), so the runner uses either. Confidence is ``softmax(logits / T)`` with ``T`` fitted on a
validation split; below ``threshold`` it abstains to ``out_of_scope``. A multi-label head
(``signals train intents``) scores each label on its own, ``sigmoid(a * logit + b)``, and every label
at or above ``threshold`` applies; none above it is ``out_of_scope``.
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
        self.multi_label = bool(spec.get("multi_label", False))
        self.platt = tuple(spec.get("platt", (1.0, 0.0)))

    def scores(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef.T + self.intercept

    def proba(self, x: np.ndarray) -> np.ndarray:
        return self._proba(self.scores(x))

    def _proba(self, s: np.ndarray) -> np.ndarray:
        if self.multi_label:
            from ..train_multi import sigmoid

            return sigmoid(self.platt[0] * s + self.platt[1])
        return _softmax(s / self.temperature)


class LinearIntent(LinearHead):
    def __init__(self, spec: dict, model_id: str):
        super().__init__(spec)
        self.threshold = float(spec.get("threshold", 0.0))
        self.taxonomy_id = model_id
        self.polarity = np.zeros(len(self.labels), dtype=np.float32)
        self.max_labels = int(spec.get("max_labels", 1))  # labels one message may carry (multi-label heads)

    def with_sentiment(self, s: np.ndarray, sentiment: np.ndarray) -> np.ndarray:
        return s  # a trained head has no polarity prior

    def decide(self, s: np.ndarray) -> list[IntentPrediction]:
        p = self._proba(s)
        out = []
        for row, probs in zip(s, p):
            j = int(np.argmax(probs))
            if probs[j] < self.threshold:
                out.append(IntentPrediction(OUT_OF_SCOPE, float(1.0 - probs[j]), float(row[j]), self.labels[j],
                                            float(probs[j])))
                continue
            also = ()
            if self.multi_label:  # the other labels that apply, most probable first
                rest = [k for k in np.argsort(-probs)[: self.max_labels] if k != j and probs[k] >= self.threshold]
                also = tuple((self.labels[k], float(probs[k]), float(row[k])) for k in rest)
            out.append(IntentPrediction(self.labels[j], float(probs[j]), float(row[j]), also=also))
        return out

    def predict(self, x: np.ndarray) -> list[IntentPrediction]:
        return self.decide(self.scores(x)) if len(x) else []
