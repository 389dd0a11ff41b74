"""Quality floor on the hand-checked sample gold file (24 documents written for this project).

The floors sit below what the shipped models measure today (eval/RESULTS.md, `eval/sample_gold.py`),
so they catch regressions, not noise.
"""

from __future__ import annotations

from extractor.evaluate import document_gold_scores


def test_gold_sample_quality_floor(pipeline, sample_docs, gold):
    results = pipeline.extract_batch([sample_docs[g["id"]] for g in gold])
    scores = document_gold_scores(results, gold)
    assert scores["intent_accuracy"] >= 0.5, scores
    assert scores["sentiment_accuracy"] >= 0.7, scores
    assert scores["urgency_within_one_level"] >= 0.8, scores
    assert scores["span_f1"] >= 0.6, scores


def test_gold_scores_count_only_matching_turns():
    from datetime import datetime, timezone

    from extractor.types import Evidence, ExtractionResult, Provenance, Signal

    prov = Provenance(version="0", created=datetime.now(timezone.utc))
    sig = Signal(kind="constraint", label="money", confidence=0.9,
                 evidence=[Evidence(start=0, end=3, text="$10", turn=2)])
    res = ExtractionResult(id="a", signals=[sig], provenance=prov)
    gold = [{"intent": "x", "sentiment": "neutral", "urgency": "low",
             "constraints": [{"turn": 1, "start": 0, "end": 3, "label": "money"}]}]
    assert document_gold_scores([res], gold)["span_f1"] == 0.0
