"""Quality floor on the hand-checked sample gold file (24 documents written for this project).

The floors are below what the shipped models measure today (see eval/RESULTS.md), so they catch
regressions, not noise.
"""

from __future__ import annotations

from extractor.evaluate import URGENCY_ORDER, span_f1


def _predictions(pipeline, sample_docs, gold):
    docs = [sample_docs[g["id"]] for g in gold]
    return docs, pipeline.extract_batch(docs)


def test_gold_intent_sentiment_urgency(pipeline, sample_docs, gold):
    _, results = _predictions(pipeline, sample_docs, gold)
    intent = sum(r.of_kind("intent")[0].label == g["intent"] for g, r in zip(gold, results)) / len(gold)
    sentiment = sum(r.of_kind("sentiment")[0].label == g["sentiment"] for g, r in zip(gold, results)) / len(gold)
    near = sum(abs(URGENCY_ORDER[r.of_kind("urgency")[0].label] - URGENCY_ORDER[g["urgency"]]) <= 1
               for g, r in zip(gold, results)) / len(gold)
    assert intent >= 0.5, intent
    assert sentiment >= 0.7, sentiment
    assert near >= 0.8, near


def test_gold_constraint_spans(pipeline, sample_docs, gold):
    _, results = _predictions(pipeline, sample_docs, gold)
    gold_spans = [[(c["turn"], c["start"], c["end"], c["label"]) for c in g["constraints"]] for g in gold]
    types = {c[3] for spans in gold_spans for c in spans}
    pred = [[(e.turn, e.start, e.end, s.label) for s in r.of_kind("constraint") if s.label in types
             for e in s.evidence] for r in results]
    # span_f1 matches on (start, end, label); fold the turn into the offsets so turns never cross-match
    fold = [[(t * 100_000 + s if t is not None else s, t * 100_000 + e if t is not None else e, lab)
             for t, s, e, lab in spans] for spans in (gold_spans + pred)]
    scores = span_f1(fold[:len(gold)], fold[len(gold):])
    assert scores["span_f1"] >= 0.6, scores
