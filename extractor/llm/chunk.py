"""Fit documents to a model's context: split long ones (on turn boundaries, with overlap), pack short ones.

A chunk is a list of *pieces*: a slice of one unit (a turn, or the plain text) that starts at
``offset`` in that unit. Quotes are grounded inside a piece and shifted by its offset, so evidence
always points into the original document, whichever chunk found it.

>>> from extractor.types import Document, Turn
>>> doc = Document(id="t", turns=[Turn(speaker="Agent", text="Hi"), Turn(speaker="Customer", text="Refund\\nplease")])
>>> [c.render() for c in chunk_document(doc, budget=100, count=len)]
['[turn 0] Agent: Hi\\n[turn 1] Customer: Refund please']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..types import Document

_SPLIT = re.compile(r"(?<=[.!?…。！？])\s+|\n+")
_UNQUOTABLE = re.compile(r'["\\]')  # llama-cpp-python's schema→grammar converter cannot escape these in enums


@dataclass(frozen=True)
class Piece:
    turn: int | None
    speaker: str | None
    text: str
    offset: int = 0


@dataclass(frozen=True)
class Chunk:
    doc: Document
    pieces: tuple[Piece, ...]

    @property
    def turns(self) -> bool:
        return self.doc.turns is not None

    def sentences(self, max_chars: int) -> list[str]:
        """The chunk's sentences (each an exact slice of one piece, at most ``max_chars``), in order."""
        out: list[str] = []
        for p in self.pieces:
            for part in (x for sentence in _SPLIT.split(p.text) for x in _UNQUOTABLE.split(sentence)):
                part = part.strip()
                if len(part) > max_chars:  # a prefix that ends on a word is still an exact slice
                    part = part[:max_chars].rsplit(" ", 1)[0].strip() or part[:max_chars]
                if len(part) >= 3 and part not in out:
                    out.append(part)
        return out

    def render(self) -> str:
        if not self.turns:
            return "\n".join(p.text for p in self.pieces)
        return "\n".join(f"[turn {p.turn}] {p.speaker}: {' '.join(p.text.split())}" for p in self.pieces)


def _windows(text: str, budget: int, count: Callable[[str], int], overlap: int) -> list[tuple[int, str]]:
    """``text`` cut into (offset, slice) windows of at most ``budget`` tokens at sentence breaks."""
    if count(text) <= budget:
        return [(0, text)]
    bounds = [0] + [m.end() for m in _SPLIT.finditer(text)] + [len(text)]
    out, start = [], 0
    while start < len(text):
        end = start
        for b in bounds:
            if b > start and count(text[start:b]) <= budget:
                end = b
        if end == start:  # one sentence over budget: cut it by characters
            end = start + max(1, len(text[start:]) * budget // max(1, count(text[start:])))
        out.append((start, text[start:end]))
        if end >= len(text):
            break
        back = max(start + 1, end - overlap)
        start = next((b for b in bounds if back <= b < end), end)
    return out


def chunk_document(doc: Document, *, budget: int, count: Callable[[str], int], overlap_turns: int = 1,
                   overlap_chars: int = 200) -> list[Chunk]:
    """``doc`` as chunks of at most ``budget`` tokens (as ``count`` measures a rendered piece)."""
    if doc.turns is None:
        return [Chunk(doc, (Piece(None, None, w, o),)) for o, w in _windows(doc.text or "", budget, count,
                                                                             overlap_chars)]
    pieces = []
    for i, t in enumerate(doc.turns):
        for o, w in _windows(t.text, max(1, budget - 8), count, overlap_chars):
            pieces.append(Piece(i, t.speaker, w, o))
    chunks, start = [], 0
    while start < len(pieces):
        end, used = start, 0
        while end < len(pieces) and (end == start or used + count(_line(pieces[end])) <= budget):
            used += count(_line(pieces[end]))
            end += 1
        chunks.append(Chunk(doc, tuple(pieces[start:end])))
        if end >= len(pieces):
            break
        start = max(start + 1, end - overlap_turns)
    return chunks


def _line(p: Piece) -> str:
    return f"[turn {p.turn}] {p.speaker}: {p.text}\n"


def pack(docs: list[Document], *, budget: int, count: Callable[[str], int], max_docs: int) -> list[list[Document]]:
    """Group short plain-text documents into packs of at most ``max_docs`` and ``budget`` tokens, in order."""
    packs: list[list[Document]] = []
    used = 0
    for d in docs:
        n = count(d.text or "") + 12
        if packs and len(packs[-1]) < max_docs and used + n <= budget:
            packs[-1].append(d)
            used += n
        else:
            packs.append([d])
            used = n
    return packs
