"""Sentiment of short texts the encoder reads poorly: clear-cut emoji shift the odds."""

from __future__ import annotations

import pytest

from extractor.types import Document


@pytest.mark.parametrize("text,label", [("😡😡😡", "negative"), ("👍👍 thanks", "positive"),
                                        ("The router arrived broken 😡", "negative")])
def test_emoji_carry_sentiment(pipeline, text, label):
    res = pipeline.extract_batch([Document(id="e", text=text)])[0]
    assert res.of_kind("sentiment")[0].label == label


def test_score_sign_follows_label(pipeline):
    res = pipeline.extract_batch([Document(id="a", text="Absolutely love it, works perfectly!"),
                                  Document(id="b", text="Terrible, it broke after a day and nobody helps.")])
    pos, neg = (r.of_kind("sentiment")[0] for r in res)
    assert pos.label == "positive" and pos.score > 0.3
    assert neg.label == "negative" and neg.score < -0.3
