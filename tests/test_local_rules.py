"""Rule parts of the local extractor: dates, constraints, urgency cues, segmentation, metrics."""

from __future__ import annotations

from datetime import datetime

import pytest

from extractor.evaluate import accuracy_f1, ece, oos_metrics, span_f1
from extractor.local.constraints import ConstraintExtractor
from extractor.local.dates import normalise_datetime
from extractor.local.urgency import combine, find_calm, find_cues, level
from extractor.segment import sentence_spans

REF = datetime(2026, 11, 24, 9, 30)  # a Tuesday


@pytest.mark.parametrize("expr,ctx,iso", [
    ("Friday", "by ", "2026-11-27"),
    ("next Friday", "", "2026-12-04"),
    ("tomorrow", "", "2026-11-25"),
    ("48 hours", "within ", "2026-11-26T09:30:00"),
    ("3 December", "before ", "2026-12-03"),
    ("Nov 30th", "", "2026-11-30"),
    ("end of the month", "by the ", "2026-11-30"),
    ("2027-01-15", "", "2027-01-15"),
    ("Monday at 10am", "", "2026-11-30T10:00"),
])
def test_dates_normalise_relative_to_created_at(expr, ctx, iso):
    assert normalise_datetime(expr, REF, context=ctx)["iso"] == iso


def test_deadline_flag_reads_the_preposition():
    assert normalise_datetime("Friday", REF, context="fix it by ")["deadline"] is True
    assert normalise_datetime("Friday", REF, context="it broke on ")["deadline"] is False


def _spans(text, catalog=None):
    return [(c.label, c.text, c.value) for c in ConstraintExtractor(None, catalog).extract(text, REF)]


def test_money_quantity_channel_language_rules():
    got = _spans("Please email me. I paid $49.99 for 2 routers; my mother only speaks Spanish.")
    labels = {(lab, text) for lab, text, _ in got}
    assert {("channel", "email me"), ("money", "$49.99"), ("quantity", "2 routers"),
            ("language", "Spanish")} <= labels
    money = next(v for lab, _, v in got if lab == "money")
    assert money == {"amount": 49.99, "currency": "USD"}


def test_catalog_products_are_canonicalised():
    got = _spans("Is the premium plan cheaper than Basic?", {"premium plan": "Nimbus Premium"})
    assert ("product", "premium plan", {"name": "Nimbus Premium"}) in got


def test_numbers_that_are_not_constraints():
    assert not [g for g in _spans("Order #48213 failed with error E-502, I tried 3 times") if g[0] != "other"]


def test_channel_avoidance_is_recorded():
    got = _spans("Don't call me, I'm at work")
    assert got[0][0] == "channel" and got[0][2] == {"channel": "phone", "avoid": True}


def test_urgency_cues_and_levels():
    text = "This is the third time I call. Fix it by Friday or I will cancel my subscription!"
    cues = find_cues(text)
    cats = {c.category for c in cues}
    assert {"repeated_contact", "deadline", "churn_threat"} <= cats
    assert all(text[c.start:c.end] == c.text for c in cues)
    assert level(combine(cues, 0.5, calm=False)) in ("high", "critical")
    calm = "No rush, whenever you get a chance: how do I change my address?"
    assert find_calm(calm) and level(combine(find_cues(calm), 0.2, calm=True)) == "low"
    assert level(combine(find_cues("The charger is sparking and smoking"), 0.9, calm=False)) == "critical"


def test_sentence_spans_cover_crlf_and_cjk():
    text = "Hi.\r\n我的订单还没到。Where is it?!  Mr. Smith paid $3.50."
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["Hi.", "我的订单还没到。", "Where is it?!", "Mr. Smith paid $3.50."]


def test_metrics():
    assert accuracy_f1(["a", "b"], ["a", "a"])["accuracy"] == 0.5
    assert ece([1.0, 1.0], [True, False]) == 0.5
    assert ece([0.8] * 10, [True] * 8 + [False] * 2) == 0.0
    m = oos_metrics(["a", "out_of_scope", "out_of_scope"], ["a", "out_of_scope", "b"])
    assert m == {"in_scope_accuracy": 1.0, "oos_recall": 0.5, "oos_precision": 1.0}
    f = span_f1([[(0, 5, "money"), (10, 12, "datetime")]], [[(1, 5, "money"), (10, 12, "location")]])
    assert f["span_precision"] == 0.5 and f["span_recall"] == 0.5 and f["exact_f1"] == 0.0


@pytest.mark.parametrize("ctx,expr,iso", [
    ("down since ", "Monday", "2026-11-23"),          # past reference: the Monday before
    ("she told me on ", "Tuesday", "2026-11-17"),
    ("see you on ", "Monday", "2026-11-30"),
    ("most of ", "September", "2026-09"),             # a month, not a day in it
    ("", "this weekend", "2026-11-28"),
])
def test_past_references_and_month_precision(ctx, expr, iso):
    assert normalise_datetime(expr, REF, context=ctx)["iso"] == iso
