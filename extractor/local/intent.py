"""Intent by embedding similarity to a taxonomy's examples, with calibrated confidence and abstention.

Each label's score for a text is the mean of (a) the cosine similarity to the label's centroid and
(b) the mean of its top-3 most similar examples. Confidence is ``softmax(scores / T)``, with the
temperature ``T`` fitted by leave-one-out over the taxonomy's own examples, so a 0.8 means about
80% right on data like the examples. Texts whose best in-scope score is below a threshold (also
chosen by leave-one-out, using the taxonomy's ``out_of_scope`` examples when it has them) abstain
to ``out_of_scope``.

>>> clf = IntentClassifier.fit(load_taxonomy(), load_embedder())     # doctest: +SKIP
>>> clf.predict(load_embedder().encode(["I was billed twice"]))[0].label  # doctest: +SKIP
'billing_double_charge'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..embed import Embedder
from ..taxonomy import OUT_OF_SCOPE, Taxonomy

log = logging.getLogger(__name__)

TOP_K = 3
POLARITY_WEIGHT = 0.1
_TEMPERATURES = np.geomspace(0.005, 0.5, 60)


@dataclass(frozen=True)
class IntentPrediction:
    label: str
    confidence: float
    similarity: float  # best raw in-scope score, for explanations
    nearest: str | None = None  # on an abstention: the in-scope intent that came closest
    nearest_confidence: float | None = None
    also: tuple[tuple[str, float, float], ...] = ()  # multi-label: (label, confidence, score) that also apply


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class IntentClassifier:
    """Scores texts against labelled examples; ``labels`` order is the column order of ``scores``."""

    def __init__(self, examples: np.ndarray, example_labels: np.ndarray, labels: list[str],
                 centroids: np.ndarray, taxonomy_id: str, model_id: str):
        self.examples = examples
        self.example_labels = example_labels
        self.labels = labels
        self.centroids = centroids
        self.taxonomy_id = taxonomy_id
        self.model_id = model_id
        self._members = [np.flatnonzero(example_labels == j) for j in range(len(labels))]
        self.oos_index = labels.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in labels else None
        self.temperature = 0.05
        self.threshold = 0.0
        self.polarity = np.zeros(len(labels), dtype=np.float32)  # +1 praise, -1 problems, 0 none

    @classmethod
    def fit(cls, taxonomy: Taxonomy, embedder: Embedder) -> IntentClassifier:
        """Embed the taxonomy (examples, and each description as one more example) and calibrate."""
        labels, texts, ids = [], [], []
        for intent in taxonomy.intents:
            items = list(intent.examples) + ([intent.description] if intent.description else [])
            if not items:
                items = [intent.label.replace("_", " ")]
            labels.append(intent.label)
            texts.extend(items)
            ids.extend([len(labels) - 1] * len(items))
        vecs = embedder.encode(texts)
        y = np.asarray(ids)
        cent = np.stack([vecs[y == j].mean(axis=0) for j in range(len(labels))])
        cent /= np.linalg.norm(cent, axis=1, keepdims=True) + 1e-12
        clf = cls(vecs, y, labels, cent.astype(np.float32), taxonomy.id, embedder.model_id)
        clf.polarity = np.array([{"positive": 1.0, "negative": -1.0}.get(i.polarity or "", 0.0)
                                 for i in taxonomy.intents], dtype=np.float32)
        clf._calibrate()
        return clf

    def scores(self, x: np.ndarray, exclude_self: bool = False, offset: int = 0) -> np.ndarray:
        """``(n, n_labels)`` similarity scores; ``exclude_self`` masks row i's own example (LOO)."""
        sims = x @ self.examples.T
        if exclude_self:
            rows = np.arange(len(x))
            sims[rows, rows + offset] = -np.inf
        out = np.empty((len(x), len(self.labels)), dtype=np.float32)
        for j, members in enumerate(self._members):
            s = sims[:, members]
            k = min(TOP_K, len(members))
            top = -np.partition(-s, k - 1, axis=1)[:, :k] if k < len(members) else s
            top = np.where(np.isfinite(top), top, np.nan)
            with np.errstate(invalid="ignore"):
                knn = np.nanmean(top, axis=1) if top.shape[1] else np.zeros(len(x))
            out[:, j] = np.nan_to_num(knn, nan=0.0)
        return 0.5 * out + 0.5 * (x @ self.centroids.T)

    def _loo_scores(self) -> np.ndarray:
        parts = []
        for lo in range(0, len(self.examples), 1024):
            parts.append(self.scores(self.examples[lo : lo + 1024], exclude_self=True, offset=lo))
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)))

    def _calibrate(self) -> None:
        """Fit temperature and the out-of-scope threshold by leave-one-out over the examples."""
        if len(self.examples) < 2 * len(self.labels):
            log.warning("taxonomy %s has too few examples to calibrate; using defaults", self.taxonomy_id)
            return
        s, y = self._loo_scores(), self.example_labels
        nll = [-np.log(_softmax(s / t)[np.arange(len(y)), y] + 1e-12).mean() for t in _TEMPERATURES]
        self.temperature = float(_TEMPERATURES[int(np.argmin(nll))])
        in_scope = self._in_scope_columns()
        best = s[:, in_scope].max(axis=1)
        pred = np.asarray(in_scope)[s[:, in_scope].argmax(axis=1)]
        is_oos = y == self.oos_index if self.oos_index is not None else np.zeros(len(y), bool)
        if is_oos.any():
            full_pred = s.argmax(axis=1)
            candidates = np.quantile(best, np.linspace(0.0, 0.6, 61))
            acc = [np.mean(np.where(is_oos, (best < t) | (full_pred == self.oos_index),
                                    (best >= t) & (pred == y) & (full_pred != self.oos_index)))
                   for t in candidates]
            self.threshold = float(candidates[int(np.argmax(acc))])
        else:  # no out-of-scope examples: reject only what is less similar than 98% of correct examples
            correct = best[pred == y]
            self.threshold = float(np.quantile(correct, 0.02)) if len(correct) else 0.0
        log.info("intent calibration: T=%.4f threshold=%.3f", self.temperature, self.threshold)

    def with_sentiment(self, s: np.ndarray, sentiment: np.ndarray) -> np.ndarray:
        """Nudge scores toward intents whose polarity agrees with the text's sentiment score in [-1, 1].

        A glowing review that mentions Wi-Fi is praise, not a connectivity problem. Taxonomies without
        polarities (e.g. built from labelled examples) are unchanged.
        """
        return s + POLARITY_WEIGHT * sentiment[:, None] * self.polarity[None, :]

    def _in_scope_columns(self) -> list[int]:
        return [j for j in range(len(self.labels)) if j != self.oos_index]

    def decide(self, s: np.ndarray) -> list[IntentPrediction]:
        """Turn score rows into predictions with calibrated confidence and abstention."""
        p = _softmax(s / self.temperature)
        in_scope = self._in_scope_columns()
        out = []
        for row, probs in zip(s, p):
            j = in_scope[int(np.argmax(row[in_scope]))] if in_scope else int(np.argmax(row))
            best = float(row[j])
            top = int(np.argmax(row))
            if (self.oos_index is not None and top == self.oos_index) or best < self.threshold:
                conf = max(float(probs[self.oos_index]) if self.oos_index is not None else 0.0,
                           1.0 - float(probs[j]))
                out.append(IntentPrediction(OUT_OF_SCOPE, min(conf, 1.0), best, self.labels[j], float(probs[j])))
            else:
                out.append(IntentPrediction(self.labels[j], float(probs[j]), best))
        return out

    def predict(self, x: np.ndarray) -> list[IntentPrediction]:
        return self.decide(self.scores(x)) if len(x) else []
