"""The agent's words never become the customer's intent, sentiment, urgency or constraints."""

from __future__ import annotations

from extractor.types import Document, Turn


def _doc(turns):
    return Document(id="s", turns=[Turn(speaker=s, text=t, role="agent" if s == "Agent" else "customer")
                                   for s, t in turns])


def test_agent_words_do_not_become_customer_intent(pipeline):
    doc = _doc([
        ("Agent", "I understand you want to cancel your subscription. Shall I cancel it today?"),
        ("Customer", "No! I was charged twice for the same month, I want that money back."),
        ("Agent", "We can also offer you 50% off the Premium plan for three months, call me anytime."),
    ])
    res = pipeline.extract_batch([doc])[0]
    intent = res.of_kind("intent")[0]
    assert intent.label in {"billing_double_charge", "billing_refund_request"}
    assert all(e.turn == 1 for s in res.of_kind("intent") for e in s.evidence)
    assert all(e.turn == 1 for s in res.of_kind("constraint") for e in s.evidence)
    assert all(e.turn == 1 for e in res.of_kind("urgency")[0].evidence)


def test_customer_and_agent_sentiment_are_separate(pipeline):
    doc = _doc([
        ("Agent", "Thank you so much for calling, it's wonderful to hear from you! Have a fantastic day!"),
        ("Customer", "This is awful. Three weeks without internet and nobody cares. I'm furious."),
        ("Agent", "I'm delighted to help, we love our customers and really appreciate your patience!"),
    ])
    res = pipeline.extract_batch([doc])[0]
    doc_level = [s for s in res.of_kind("sentiment") if s.scope == "document"]
    agent = [s for s in res.of_kind("sentiment") if s.scope == "speaker"]
    assert doc_level[0].speaker == "customer" and doc_level[0].label == "negative"
    assert agent[0].speaker == "agent" and agent[0].label == "positive"
    per_turn = [s for s in res.of_kind("sentiment") if s.scope == "turn"]
    assert [s.evidence[0].turn for s in per_turn] == [0, 1, 2]
    assert all(e.turn == 1 for e in doc_level[0].evidence)
