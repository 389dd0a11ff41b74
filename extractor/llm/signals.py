"""A validated reply → ``Signal`` records with evidence, and several chunks' signals → one document's.

Confidence: an LLM's own numbers are not calibrated, and no labelled set here can calibrate a model
the user brings. So a signal's confidence is a fixed prior by how its quote was found
(``PRIOR``), recorded as such in ``value.confidence_source``; calibrate it with ``signals eval``
on your own labelled data before relying on it.

>>> PRIOR["exact"] > PRIOR["fuzzy"]
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from ..types import Evidence, Signal
from .schema import LEVELS, MAX_INTENTS

PRIOR = {"exact": 0.7, "casefold": 0.65, "fuzzy": 0.5}
SENTIMENT_SCORE = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
LEVEL_SCORE = {lv: round((i + 0.5) / len(LEVELS), 4) for i, lv in enumerate(LEVELS)}  # mid-point of each band

Ground = Callable[[str, "int | None"], "Evidence | None"]


def reply_signals(reply: Any, chunk, ground: Ground, extractor: str, model_id: str) -> list[Signal]:
    """The grounded signals of one validated reply for one chunk (ungrounded items are left out)."""
    roles = {i: t.role for i, t in enumerate(chunk.doc.turns or [])}

    def make(kind: str, label: str, item: Any, **extra: Any) -> Signal | None:
        ev = ground(item.quote, getattr(item, "turn", None))
        if ev is None:
            return None
        value = {"model": model_id, "confidence_source": f"prior:{ev.match}", **extra.pop("value", {})}
        return Signal(kind=kind, label=label, confidence=PRIOR[ev.match], speaker=roles.get(ev.turn, "customer"),
                      value=value, evidence=[ev], extractor=extractor, **extra)

    out = [make("intent", it.label, it) for it in reply.intents]
    out.append(make("sentiment", reply.sentiment.label, reply.sentiment, score=SENTIMENT_SCORE[reply.sentiment.label]))
    out.append(make("urgency", reply.urgency.level, reply.urgency, score=LEVEL_SCORE[reply.urgency.level]))
    out += [make("constraint", c.type, c, value={"normalised": c.value}) for c in reply.constraints]
    return [s for s in out if s is not None]


def _key(s: Signal) -> tuple:
    ev = s.evidence[0]
    return s.kind, s.label, ev.turn, ev.start, ev.end


def merge_chunks(per_chunk: list[list[Signal]]) -> list[Signal]:
    """One document's signals from its chunks' (overlapping chunks, or a repetitive model, may give
    the same item twice).

    Intents: the first ``MAX_INTENTS`` distinct labels in reading order. Sentiment: the most common
    label (the later one on a tie). Urgency: the highest level. Constraints: every distinct span.
    """
    flat = [s for sigs in per_chunk for s in sigs]
    intents: dict[str, Signal] = {}
    for s in flat:
        if s.kind == "intent" and s.label not in intents and len(intents) < MAX_INTENTS:
            intents[s.label] = s
    out = list(intents.values())
    sentiments = [s for s in flat if s.kind == "sentiment"]
    if sentiments:
        votes = Counter(s.label for s in sentiments)
        top = max(votes.values())
        out.append([s for s in sentiments if votes[s.label] == top][-1])
    urgencies = [s for s in flat if s.kind == "urgency"]
    if urgencies:
        out.append(max(urgencies, key=lambda s: LEVELS.index(s.label)))
    seen: set[tuple] = set()
    for s in flat:
        if s.kind == "constraint" and _key(s) not in seen:
            seen.add(_key(s))
            out.append(s)
    return out
