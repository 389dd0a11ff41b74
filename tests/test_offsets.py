"""Every evidence span must satisfy text[start:end] == quote — on emoji, CJK, combining marks and CRLF."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from extractor.types import Document, Turn

from .conftest import assert_evidence_exact

TRICKY = [
    "😡😡 I was charged twice for Nimbus Plus!! Fix it by Friday or I cancel. 🙏",
    "我的订单还没到。I need my 2 routers delivered to Leeds before 3 December, £40 was already paid.",
    "Zoe\u0308 here: the cafe\u0301 app crashed again.\r\nPlease email me, it's urgent!\r\n",
    "Line one\r\nLine two with $49.99 charged twice\r\n\r\nthird line: call me after 6pm 👍🏽",
    "👨‍👩‍👧 family plan: we need three lines by next week, and my mother only speaks Spanish.",
    "e\u0301\u0301\u0301 combining pile-up, then a deadline: within 48 hours or I go to the ombudsman.",
]


@pytest.mark.parametrize("text", TRICKY)
def test_plain_text_offsets_are_exact(pipeline, text):
    doc = Document(id="x", text=text, created_at=datetime(2026, 11, 24, tzinfo=timezone.utc))
    result = pipeline.extract_batch([doc])[0]
    assert {s.kind for s in result.signals} >= {"intent", "sentiment", "urgency"}
    assert assert_evidence_exact(doc, result) >= 3


def test_transcript_offsets_point_into_turns(pipeline):
    turns = [Turn(speaker="Agent", text="Hello 😊 how can I help?", role="agent")]
    turns += [Turn(speaker="Customer", text=t, role="customer") for t in TRICKY]
    doc = Document(id="t", turns=turns, created_at=datetime(2026, 11, 24, tzinfo=timezone.utc))
    result = pipeline.extract_batch([doc])[0]
    n = assert_evidence_exact(doc, result)
    assert n > len(TRICKY)
    constraint_turns = {e.turn for s in result.of_kind("constraint") for e in s.evidence}
    assert constraint_turns and 0 not in constraint_turns  # nothing from the agent's turn


def test_all_sample_documents_have_exact_evidence(pipeline, sample_docs):
    docs = list(sample_docs.values())
    results = pipeline.extract_batch(docs)
    total = 0
    for doc, res in zip(docs, results):
        assert res.id == doc.id
        for kind in ("intent", "sentiment", "urgency"):
            assert res.of_kind(kind), (doc.id, kind)
        for sig in res.signals:
            assert 0.0 <= sig.confidence <= 1.0
        total += assert_evidence_exact(doc, res)
    assert total > 5 * len(docs)
