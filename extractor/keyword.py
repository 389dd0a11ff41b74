"""BM25 keyword ranking over segments: built with bm25s, queried with numpy alone.

bm25s builds the index (tokenising, the BM25 "lucene" weights, a sparse score matrix with one column
per token). Querying a built index only needs that matrix's three arrays and the vocabulary, so they
are saved as plain ``.npy`` files and a query sums the columns of its tokens with numpy. That keeps
bm25s, and the scipy it imports (~0.3-0.7 s), out of a search process's start-up; a test checks the
scores equal bm25s's own.

>>> kw = KeywordIndex.build(["refund for order 4412", "the app crashes on login"], [11, 12])
>>> kw.rank("order 4412", None, 5)[0][0]
11
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default pattern (scikit-learn's CountVectorizer)
FILES = ("kw_data.npy", "kw_indices.npy", "kw_indptr.npy", "kw_ids.npy", "kw_vocab.json")


def _bm25s():
    """bm25s, with its logger quietened (it sets its own level to DEBUG on import)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class KeywordIndex:
    """BM25 over texts with int64 ids; ``rank(query, allowed, pool)`` → ``[(id, score)]`` best first."""

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, ids: np.ndarray,
                 vocab: dict[str, int], stopwords: frozenset[str]):
        self.data, self.indices, self.indptr, self.ids = data, indices, indptr, ids
        self.vocab, self.stopwords = vocab, stopwords

    def __len__(self) -> int:
        return int(len(self.ids))

    @classmethod
    def empty(cls) -> KeywordIndex:
        return cls(np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(1, np.int64), np.zeros(0, np.int64),
                   {}, frozenset())

    @classmethod
    def build(cls, texts: list[str], ids: list[int] | np.ndarray) -> KeywordIndex:
        if not len(texts):
            return cls.empty()
        bm25s = _bm25s()
        from bm25s.stopwords import STOPWORDS_EN

        bm25 = bm25s.BM25()
        bm25.index(bm25s.tokenize(list(texts), stopwords="english", show_progress=False), show_progress=False)
        s = bm25.scores
        return cls(np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"]),
                   np.asarray(ids, dtype=np.int64), dict(bm25.vocab_dict), frozenset(STOPWORDS_EN))

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        for name, arr in zip(FILES, (self.data, self.indices, self.indptr, self.ids)):
            np.save(directory / name, arr)
        (directory / FILES[4]).write_text(json.dumps({"vocab": self.vocab, "stopwords": sorted(self.stopwords)}),
                                          "utf-8")

    @classmethod
    def load(cls, directory: Path) -> KeywordIndex:
        if not (directory / FILES[0]).exists():
            return cls.empty()
        arrays = [np.load(directory / name, mmap_mode="r") for name in FILES[:4]]
        meta = json.loads((directory / FILES[4]).read_text("utf-8"))
        return cls(*arrays, meta["vocab"], frozenset(meta["stopwords"]))

    # -- querying -------------------------------------------------------------------------------------
    def tokens(self, query: str) -> list[int]:
        """The query's token ids, as bm25s would tokenise it (lower-cased, stopwords out, unknown dropped)."""
        words = (w for w in TOKEN.findall(query.lower()) if w not in self.stopwords)
        return [self.vocab[w] for w in words if w in self.vocab]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed text for ``query`` (a repeated query word counts again, as in bm25s)."""
        out = np.zeros(len(self.ids), dtype=np.float32)
        for t in self.tokens(query):
            lo, hi = int(self.indptr[t]), int(self.indptr[t + 1])
            np.add.at(out, self.indices[lo:hi], self.data[lo:hi])
        return out

    def rank(self, query: str, allowed: np.ndarray | None, pool: int) -> list[tuple[int, float]]:
        """The ``pool`` best-scoring ids among ``allowed`` (None: all); texts scoring 0 are not hits."""
        if not len(self.ids):
            return []
        scores = self.scores(query)
        if allowed is not None:
            scores[~np.isin(self.ids, np.asarray(allowed, dtype=np.int64))] = 0.0
        hits = np.flatnonzero(scores > 0)
        order = hits[np.argsort(-scores[hits], kind="stable")][:pool]
        return [(int(self.ids[i]), float(scores[i])) for i in order]
