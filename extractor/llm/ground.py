"""Ground a quote an LLM says it copied back to exact character offsets in the original text.

Offsets are Python ``str`` indices (code points), end exclusive, into the *original* text, so
``text[a.start:a.end]`` is always the evidence. Three tiers are tried in order:

* ``exact``: the (cleaned) quote occurs verbatim;
* ``casefold``: it occurs once case, runs of whitespace, curly quotes, compatibility forms (NFKC)
  and combining marks are folded away on both sides;
* ``fuzzy``: ``rapidfuzz`` partial alignment of the folded strings, widened to whole words.

Before matching, the quote is cleaned: surrounding whitespace and quote marks, a leading or trailing
ellipsis and a copied speaker/turn prefix (``Customer: ``, ``[turn 3] Agent: ``, ``[3] ``) go.

>>> align("charged TWICE", "I was charged twice!")
Alignment(start=6, end=19, match='casefold', score=1.0)
>>> text = "Agent: hello\\nCustomer: I want a refund, now."
>>> a = align("[turn 2] Customer: “I want a refund…”", text)
>>> a.match, text[a.start:a.end]
('exact', 'I want a refund')
>>> align("the weather in Paris is lovely", text) is None
True
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

__all__ = ["Alignment", "align", "align_in_units"]

_QUOTE_CHARS = "\"'“”‘’«»„‚‹›`"
_PUNCT_FOLD = {
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'", "´": "'",
    "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"',
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-",
}
_LEAD_ELLIPSIS = re.compile(r"^(?:\.{3,}|…)+")
_TRAIL_ELLIPSIS = re.compile(r"(?:\.{3,}|…)+$")
# An optional "[turn 3]" / "[3]" tag, an optional "turn 3:" and an optional speaker label of up to
# three words followed by a colon and whitespace ("Customer: ", "Support Agent: ").
_PREFIX = re.compile(
    r"^(?:\[[^\]\n]{1,24}\]\s*)?"
    r"(?:turn\s*\d+\s*[:.)]\s*)?"
    r"(?:[^\W\d_][\w'.-]{0,24}(?:[ \t][^\W\d_][\w'.-]{0,24}){0,2}[ \t]*:\s+)?",
    re.IGNORECASE,
)
_MAX_WORD_GROW = 24


@dataclass(frozen=True)
class Alignment:
    """Where a quote sits in the original text: ``text[start:end]``, how it matched and how well."""

    start: int
    end: int
    match: str  # "exact" | "casefold" | "fuzzy"
    score: float  # 1.0 for exact/casefold, rapidfuzz ratio / 100 for fuzzy


# --------------------------------------------------------------------------- quote cleaning


def _strip_decor(q: str) -> str:
    """Strip whitespace, surrounding quote marks and leading/trailing ellipses until nothing changes."""
    prev = None
    while q != prev:
        prev = q
        q = q.strip().strip(_QUOTE_CHARS).strip()
        q = _TRAIL_ELLIPSIS.sub("", _LEAD_ELLIPSIS.sub("", q))
    return q


def _has_content(q: str) -> bool:
    """True when ``q`` has something besides punctuation, separators, controls and whitespace."""
    return any(not ch.isspace() and unicodedata.category(ch)[0] not in "PZC" for ch in q)


def _candidates(quote: str, min_chars: int) -> tuple[list[str], list[str]]:
    """Quote variants to look for: (for exact/casefold, most literal first; for fuzzy).

    Empty lists when the fully cleaned quote is too short or only punctuation. The literal variants
    let a quote that really contains a label or quote marks in the text still match as written.
    """
    raw = quote.strip()
    decor = _strip_decor(raw)
    clean = _strip_decor(_PREFIX.sub("", decor, count=1))
    if len(clean) < min_chars or not _has_content(clean):
        return [], []
    literal: list[str] = []
    for cand in (raw, decor, clean):
        if len(cand) >= min_chars and _has_content(cand) and cand not in literal:
            literal.append(cand)
    fuzzy = [c for c in dict.fromkeys((clean, decor)) if len(c) >= min_chars]
    return literal, fuzzy


# --------------------------------------------------------------------------- folding


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"


def _fold_char(ch: str) -> str:
    """Fold one original character: whitespace -> " ", NFKC, casefold, curly -> straight, no marks."""
    if ch.isspace():
        return " "
    s = unicodedata.normalize("NFKC", _PUNCT_FOLD.get(ch, ch)).casefold()
    s = unicodedata.normalize("NFD", s)
    s = "".join(_PUNCT_FOLD.get(c, c) for c in s if not unicodedata.combining(c) and not _is_mark(c))
    s = "".join(c for c in s if unicodedata.category(c) != "Cf")
    return unicodedata.normalize("NFC", s)


@lru_cache(maxsize=512)
def _fold(text: str) -> tuple[str, tuple[int, ...]]:
    """The folded text and, for each folded character, the index of the original character it came from.

    Every whitespace run collapses to one space. Folding is per character, so length changes
    (``"ß"`` -> ``"ss"``, ``"İ"`` -> ``"i"``) and dropped marks keep the map exact.
    """
    out: list[str] = []
    idx: list[int] = []
    for i, ch in enumerate(text):
        for c in _fold_char(ch):
            if c.isspace():
                if out and out[-1] == " ":
                    continue
                c = " "
            out.append(c)
            idx.append(i)
    return "".join(out), tuple(idx)


def _fold_quote(q: str) -> str:
    return _fold(q)[0].strip(" ")


def _to_original(text: str, idx: tuple[int, ...], fs: int, fe: int) -> tuple[int, int]:
    """Map folded span ``[fs, fe)`` to original offsets, keeping the last character's trailing marks."""
    start, end = idx[fs], idx[fe - 1] + 1
    while end < len(text) and _is_mark(text[end]):
        end += 1
    return start, end


def _finish(text: str, start: int, end: int, match: str, score: float) -> Alignment | None:
    """Trim whitespace off both ends; None if nothing is left (rule: never an empty or padded span)."""
    start, end = max(0, start), min(len(text), end)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Alignment(start, end, match, score) if start < end else None


# --------------------------------------------------------------------------- the three tiers


def _exact(cands: list[str], text: str) -> Alignment | None:
    """First verbatim occurrence that does not split a base character from its combining marks."""
    for cand in cands:
        pos = text.find(cand)
        while pos >= 0:
            end = pos + len(cand)
            if not _is_mark(text[pos]) and not (end < len(text) and _is_mark(text[end])):
                return _finish(text, pos, end, "exact", 1.0)
            pos = text.find(cand, pos + 1)
    return None


def _casefold(cands: list[str], text: str) -> Alignment | None:
    folded, idx = _fold(text)
    for cand in cands:
        qf = _fold_quote(cand)
        pos = folded.find(qf) if qf else -1
        if pos >= 0:
            start, end = _to_original(text, idx, pos, pos + len(qf))
            return _finish(text, start, end, "casefold", 1.0)
    return None


def _is_word_at(text: str, i: int) -> bool:
    """Is ``text[i]`` part of a space-delimited word? (CJK and other wide characters stand alone.)"""
    ch = text[i]
    if ch in "'’":
        return 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
    if unicodedata.east_asian_width(ch) in "WF":
        return False
    return ch.isalnum() or _is_mark(ch)


def _widen_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow ``[start, end)`` to the enclosing word edges, unless a side would grow implausibly far."""
    s = start
    while s > 0 and start - s <= _MAX_WORD_GROW and _is_word_at(text, s - 1) and _is_word_at(text, s):
        s -= 1
    e = end
    while e < len(text) and e - end <= _MAX_WORD_GROW and _is_word_at(text, e - 1) and _is_word_at(text, e):
        e += 1
    s = s if start - s <= _MAX_WORD_GROW else start
    e = e if e - end <= _MAX_WORD_GROW else end
    return s, e


def _refine(qf: str, folded: str, fs: int, fe: int) -> tuple[float, int, int]:
    """Nudge the window rapidfuzz found (it has the quote's length) to the edges that best fit the quote.

    A typo that drops or adds a character makes the true span one longer or shorter than the quote,
    so the fixed-width window cuts a word; this picks the ``fuzz.ratio``-best edges close by, then
    trims folded spaces off both ends. Returns ``(ratio, start, end)`` in folded offsets.
    """
    k = min(12, max(2, len(qf) // 8))
    best = (fuzz.ratio(qf, folded[fs:fe]), fs, fe)
    for s in range(max(0, fs - k), min(fe, fs + k) + 1):
        for e in range(max(s + 1, fe - k), min(len(folded), fe + k) + 1):
            r = fuzz.ratio(qf, folded[s:e], score_cutoff=best[0])
            if r > best[0]:
                best = (r, s, e)
    score, fs, fe = best
    while fs < fe and folded[fs] == " ":
        fs += 1
    while fe > fs and folded[fe - 1] == " ":
        fe -= 1
    return score, fs, fe


def _fuzzy(cands: list[str], text: str, fuzzy_min: float) -> Alignment | None:
    """Best partial alignment over the quote variants, widened to whole words and length-checked."""
    folded, idx = _fold(text)
    best: Alignment | None = None
    for cand in cands:
        qf = _fold_quote(cand)
        if not qf or not folded:
            continue
        res = fuzz.partial_ratio_alignment(qf, folded, score_cutoff=fuzzy_min * 100)
        if res is None or res.score < fuzzy_min * 100:
            continue
        score, fs, fe = _refine(qf, folded, res.dest_start, res.dest_end)
        if fs >= fe or score < fuzzy_min * 100:
            continue
        start, end = _widen_to_words(text, *_to_original(text, idx, fs, fe))
        found = _finish(text, start, end, "fuzzy", score / 100)
        if found and 0.5 * len(cand) <= found.end - found.start <= 2 * len(cand):
            if best is None or found.score > best.score:
                best = found
    return best


# --------------------------------------------------------------------------- public API


def _prepare(quote: str, fuzzy_min: float = 0.85, min_chars: int = 3) -> tuple[list[str], list[str], float]:
    literal, fuzzy = _candidates(quote, min_chars)
    return literal, fuzzy, fuzzy_min


def align(quote: str, text: str, *, fuzzy_min: float = 0.85, min_chars: int = 3) -> Alignment | None:
    """Locate ``quote`` in ``text``: exact, then case/whitespace/Unicode-folded, then fuzzy; None if absent.

    When the quote occurs several times the first occurrence wins. A returned span is never empty
    and never starts or ends on whitespace.

    >>> align("Straße", "I live on STRASSE 5")
    Alignment(start=10, end=17, match='casefold', score=1.0)
    >>> align("I", "I was charged") is None
    True
    """
    literal, fuzzy, fmin = _prepare(quote, fuzzy_min, min_chars)
    if not literal or not text:
        return None
    return _exact(literal, text) or _casefold(literal, text) or _fuzzy(fuzzy, text, fmin)


def align_in_units(
    quote: str, units: list[tuple[int | None, str]], prefer: int | None = None, **kw: float
) -> tuple[int | None, Alignment] | None:
    """Locate ``quote`` in one of several ``(turn index or None, text)`` units.

    The ``prefer`` turn is tried first, then the rest in order. Exact is tried in every unit before
    casefold, and casefold before fuzzy, where the best score wins. ``kw`` is ``fuzzy_min`` /
    ``min_chars`` as for :func:`align`. Returns ``(turn, alignment)`` or None.

    >>> units = [(0, "Hi, how can I help?"), (1, "I want a refund."), (2, "Really, I want a refund!")]
    >>> align_in_units("I want a refund", units, prefer=2)
    (2, Alignment(start=8, end=23, match='exact', score=1.0))
    >>> align_in_units("i WANT a refund", units)
    (1, Alignment(start=0, end=15, match='casefold', score=1.0))
    """
    literal, fuzzy, fmin = _prepare(quote, **kw)
    if not literal:
        return None
    first = [u for u in units if prefer is not None and u[0] == prefer]
    order = [u for u in first + [u for u in units if u not in first] if u[1]]
    for tier in (_exact, _casefold):
        for turn, text in order:
            found = tier(literal, text)
            if found:
                return turn, found
    best: tuple[int | None, Alignment] | None = None
    for turn, text in order:
        found = _fuzzy(fuzzy, text, fmin)
        if found and (best is None or found.score > best[1].score):
            best = (turn, found)
    return best
