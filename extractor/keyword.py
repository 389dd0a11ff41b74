"""BM25 keyword ranking over segments: built with bm25s, queried with numpy alone, grown without a rebuild.

bm25s builds the main index (tokenising, the BM25 "lucene" weights, a sparse score matrix with one
column per token). Querying it only needs that matrix's three arrays and the vocabulary, so they are
saved as plain ``.npy`` files and a query sums the columns of its tokens with numpy. That keeps
bm25s, and the scipy it imports (~0.3-0.7 s), out of a search process's start-up; a test checks the
scores equal bm25s's own.

Adding or removing segments does not rebuild the main index (re-tokenising a million segments takes
over a minute here). Added segments go to a small **delta** that is scored at query time with the
same formula and the statistics of main + delta together (so a new segment scores exactly as a full
rebuild would score it); removed ones are masked out of the main index. Once the delta and the
removals pass ``REBUILD_FRACTION`` of the main index (and ``REBUILD_MIN``), the owner rebuilds.

>>> kw = KeywordIndex.build(["refund for order 4412", "the app crashes on login"], [11, 12])
>>> kw.rank("order 4412", None, 5)[0][0]
11
>>> kw.add(["order 9981 never came"], [13]); kw.rank("order 9981", None, 5)[0][0]
13
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default pattern (scikit-learn's CountVectorizer)
# runs of Han, kana and Hangul have no spaces between words: they are indexed as overlapping character
# pairs (as Lucene's CJK analyzer does), so 订单 finds 我的订单还没到
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u3131-\u318e]{2,}")
TOKENIZER = "nfkc+cjk-bigrams"  # recorded with the index; an index without it was built before


def prepare(text: str) -> str:
    """Text as it is tokenised, for documents and queries alike: NFKC (so a precomposed é and e + U+0301
    are one word), CJK runs as character pairs."""
    text = unicodedata.normalize("NFKC", text)
    return _CJK.sub(lambda m: " " + " ".join(m[0][i:i + 2] for i in range(len(m[0]) - 1)) + " ", text)
FILES = ("kw_data.npy", "kw_indices.npy", "kw_indptr.npy", "kw_ids.npy", "kw_vocab.json")
DELTA_FILE, DEAD_FILE = "kw_delta.json", "kw_dead.npy"
K1, B = 1.5, 0.75  # bm25s's defaults
REBUILD_FRACTION, REBUILD_MIN = 0.1, 2_000


def _bm25s():
    """bm25s, with its logger quietened (it sets its own level to DEBUG on import)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class KeywordIndex:
    """BM25 over texts with int64 ids; ``rank(query, allowed, pool)`` → ``[(id, score)]`` best first."""

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, ids: np.ndarray,
                 vocab: dict[str, int], stopwords: frozenset[str], total_len: float = 0.0):
        self.data, self.indices, self.indptr, self.ids = data, indices, indptr, ids
        self.vocab, self.stopwords, self.total_len = vocab, stopwords, float(total_len)
        self.delta: dict[int, list[str]] = {}  # id -> tokens of segments added since the main build
        self.dead: set[int] = set()  # main ids removed or replaced since the build (a replaced one is in delta too)
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] | None = None  # word -> (delta rows, tf)
        self._main: set[int] | None = None  # the main ids as a set (they never change), made on first need
        self._gone: np.ndarray | None = None  # mask over the main ids of the dead ones; reset by add/remove

    def __len__(self) -> int:
        """Live segments: main ones not removed, plus the delta."""
        return int(len(self.ids) - np.count_nonzero(self._dead_mask()) + len(self.delta))

    def _main_ids(self) -> set[int]:
        if self._main is None:
            self._main = set(np.asarray(self.ids).tolist())
        return self._main

    def _dead_mask(self) -> np.ndarray:
        if self._gone is None:
            self._gone = np.isin(np.asarray(self.ids), np.fromiter(self.dead, np.int64, len(self.dead)))
        return self._gone

    def _changed(self) -> None:
        self._postings = self._gone = None

    @classmethod
    def empty(cls) -> KeywordIndex:
        return cls(np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(1, np.int64), np.zeros(0, np.int64),
                   {}, frozenset())  # stopwords are loaded when something is added

    @classmethod
    def build(cls, texts: list[str], ids: list[int] | np.ndarray) -> KeywordIndex:
        if not len(texts):
            return cls.empty()
        bm25s = _bm25s()

        tokenized = bm25s.tokenize([prepare(t) for t in texts], stopwords="english", show_progress=False)
        bm25 = bm25s.BM25(k1=K1, b=B)
        bm25.index(tokenized, show_progress=False)
        s = bm25.scores
        total = float(sum(len(doc) for doc in tokenized.ids))
        return cls(np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"]),
                   np.asarray(ids, dtype=np.int64), dict(bm25.vocab_dict), _stopwords(), total)

    # -- growing --------------------------------------------------------------------------------------
    def add(self, texts: list[str], ids: list[int] | np.ndarray) -> None:
        """Add (or replace) segments without rebuilding the main index."""
        if not len(ids):
            return
        if not self.stopwords:
            self.stopwords = _stopwords()
        self._changed()
        main = self._main_ids()
        for text, i in zip(texts, ids):
            i = int(i)
            if i in main:
                self.dead.add(i)  # its old text in the main index no longer counts
            self.delta[i] = self.words(text)

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if not len(ids):
            return
        self._changed()
        main = self._main_ids()
        for i in map(int, ids):
            self.delta.pop(i, None)
            if i in main:
                self.dead.add(i)

    def needs_rebuild(self) -> bool:
        churn = len(self.delta) + len(self.dead)
        return churn > max(REBUILD_MIN, REBUILD_FRACTION * len(self.ids))

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        for name, arr in zip(FILES, (self.data, self.indices, self.indptr, self.ids)):
            np.save(directory / name, arr)
        (directory / FILES[4]).write_text(json.dumps({"vocab": self.vocab, "stopwords": sorted(self.stopwords),
                                                      "total_len": self.total_len, "tokenizer": TOKENIZER}), "utf-8")
        (directory / DELTA_FILE).write_text(json.dumps({"ids": list(self.delta), "tokens": list(self.delta.values())},
                                                       ensure_ascii=False), "utf-8")
        np.save(directory / DEAD_FILE, np.asarray(sorted(self.dead), dtype=np.int64))

    @classmethod
    def load(cls, directory: Path) -> KeywordIndex:
        if not (directory / FILES[0]).exists():
            return cls.empty()
        arrays = [np.load(directory / name, mmap_mode="r") for name in FILES[:4]]
        meta = json.loads((directory / FILES[4]).read_text("utf-8"))
        kw = cls(*arrays, meta["vocab"], frozenset(meta["stopwords"]), meta.get("total_len", 0.0))
        if meta.get("tokenizer") != TOKENIZER and any(_CJK.search(w) or not unicodedata.is_normalized("NFKC", w)
                                                      for w in meta["vocab"]):
            log.warning("the keyword index was built before words were NFKC-normalised and CJK text split into "
                        "character pairs: rebuild it (`signals index build --rebuild RESULTS`) for keyword "
                        "search to match such text")
        if (directory / DELTA_FILE).exists():
            delta = json.loads((directory / DELTA_FILE).read_text("utf-8"))
            kw.delta = dict(zip(map(int, delta["ids"]), delta["tokens"]))
            kw.dead = set(np.load(directory / DEAD_FILE).tolist())
        return kw

    # -- querying -------------------------------------------------------------------------------------
    def words(self, text: str) -> list[str]:
        """Tokens as bm25s makes them: lower-cased, the default pattern, English stopwords out."""
        return [w for w in TOKEN.findall(prepare(text).lower()) if w not in self.stopwords]

    def tokens(self, query: str) -> list[int]:
        """The query's main-index token ids (unknown words dropped)."""
        return [self.vocab[w] for w in self.words(query) if w in self.vocab]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every main-index text for ``query`` (a repeated query word counts again, as in bm25s)."""
        out = np.zeros(len(self.ids), dtype=np.float32)
        for t in self.tokens(query):
            lo, hi = int(self.indptr[t]), int(self.indptr[t + 1])
            np.add.at(out, self.indices[lo:hi], self.data[lo:hi])
        return out

    def _delta_postings(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """word -> (rows of the delta holding it, term frequencies); rebuilt after a change."""
        if self._postings is None:
            rows: dict[str, list[tuple[int, int]]] = {}
            for r, words in enumerate(self.delta.values()):
                for w, tf in Counter(words).items():
                    rows.setdefault(w, []).append((r, tf))
            self._postings = {w: (np.asarray([r for r, _ in v]), np.asarray([tf for _, tf in v], np.float64))
                              for w, v in rows.items()}
            self._delta_ids = np.fromiter(self.delta, np.int64, len(self.delta))
            self._delta_lens = np.asarray([len(d) for d in self.delta.values()], dtype=np.float64)
        return self._postings

    def delta_scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, scores)`` of the delta, scored with main + delta document counts and lengths.

        With those statistics a delta segment scores exactly as a full rebuild would score it."""
        if not self.delta:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        postings = self._delta_postings()
        lens = self._delta_lens
        n = len(self.ids) + len(lens)
        avg = (self.total_len + lens.sum()) / n
        out = np.zeros(len(lens), dtype=np.float64)
        for w in self.words(query):
            if w not in postings:
                continue
            rows, tf = postings[w]
            t = self.vocab.get(w)
            df = len(rows) + (int(self.indptr[t + 1] - self.indptr[t]) if t is not None else 0)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            out[rows] += idf * tf / (K1 * ((1 - B) + B * lens[rows] / avg) + tf)
        return self._delta_ids, out.astype(np.float32)

    def rank(self, query: str, allowed: np.ndarray | None, pool: int) -> list[tuple[int, float]]:
        """The ``pool`` best-scoring ids among ``allowed`` (None: all); texts scoring 0 are not hits."""
        ids = np.asarray(self.ids)
        scores = self.scores(query) if len(ids) else np.zeros(0, np.float32)
        if self.dead:  # removed or replaced since the build
            scores[self._dead_mask()] = 0.0
        d_ids, d_scores = self.delta_scores(query)
        ids, scores = np.concatenate([ids, d_ids]), np.concatenate([scores, d_scores])
        if allowed is not None:
            scores[~np.isin(ids, np.asarray(allowed, dtype=np.int64))] = 0.0
        hits = np.flatnonzero(scores > 0)
        order = hits[np.argsort(-scores[hits], kind="stable")][:pool]
        return [(int(ids[i]), float(scores[i])) for i in order]


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN  # a plain list module: no scipy

    return frozenset(STOPWORDS_EN)
