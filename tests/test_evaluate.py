"""`signals eval` metrics: hand-computed figures on tiny sets, then the real pipeline end to end."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.errors import ConfigError
from extractor.evaluate import (
    OOS,
    classification_metrics,
    evaluate,
    multilabel_f1,
    oos_metrics,
    span_f1,
    urgent_f1,
)

from .conftest import ROOT, SHARED

NLUPP = SHARED / "data" / "nluplusplus_banking" / "data.jsonl"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


# -- metric functions, figures worked out by hand ------------------------------------------------------

def test_classification_per_class_macro_micro_confusion_by_hand():
    gold = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    m = classification_metrics(gold, pred, [0.75] * 6)
    # a: tp 2 fp 0 fn 1; b: tp 1 fp 1 fn 1; c: tp 1 fp 1 fn 0
    assert m["per_class"] == {"a": {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3},
                              "b": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
                              "c": {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}}
    assert m["accuracy"] == 0.6667
    assert (m["macro_precision"], m["macro_recall"], m["macro_f1"]) == (0.6667, 0.7222, 0.6556)
    assert m["micro_precision"] == m["micro_recall"] == m["micro_f1"] == m["accuracy"]
    assert m["ece"] == round(abs(0.75 - 4 / 6), 4)  # one bin holds every row
    assert m["confusion"] == {"labels": ["a", "b", "c"], "matrix": [[2, 1, 0], [0, 1, 1], [0, 0, 1]]}
    assert sum(map(sum, m["confusion"]["matrix"])) == len(gold)
    assert m["confused_pairs"] == [["a", "b", 1], ["b", "c", 1]]


def test_a_label_only_predicted_is_listed_but_not_macro_averaged():
    m = classification_metrics(["a", "b"], ["a", "d"])
    assert m["macro_f1"] == 0.5  # over the gold labels a (1.0) and b (0.0)
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion"]["labels"] == ["a", "b", "d"]


def test_oos_metrics_follow_clinc150():
    gold = ["a", "a", OOS, OOS, "b"]
    pred = ["a", OOS, OOS, "b", "b"]
    # in scope: a ok, a→oos wrong, b ok; oos: 1 of 2 found, 1 of 2 oos predictions right
    assert oos_metrics(gold, pred) == {"in_scope_accuracy": 0.6667, "oos_recall": 0.5, "oos_precision": 0.5}


def test_multilabel_by_hand():
    gold = [{"a", "b"}, {"a"}, set(), {"c"}]
    pred = [{"a"}, {"a", "b"}, set(), set()]
    m = multilabel_f1(gold, pred)
    # pairs: gold 4, predicted 3, right 2 (a, a)
    assert (m["micro_precision"], m["micro_recall"], m["micro_f1"]) == (0.6667, 0.5, 0.5714)
    assert m["macro_f1"] == 0.3333  # a 1.0, b 0.0, c 0.0
    assert m["exact_match"] == 0.25  # only the empty row
    assert (m["gold_labels_per_row"], m["pred_labels_per_row"]) == (1.0, 0.75)
    assert m["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_urgent_f1_at_a_cut():
    gold = ["low", "medium", "high", "critical", "high"]
    pred = ["high", "medium", "critical", "low", "medium"]
    high = urgent_f1(gold, pred, "high")  # gold urgent rows 2, 3, 4; predicted 0, 2: one right
    assert (high["urgent_precision"], high["urgent_recall"], high["urgent_f1"]) == (0.5, 0.3333, 0.4)
    assert (high["urgent_support"], high["urgent_predicted"]) == (3, 2)
    critical = urgent_f1(gold, pred, "critical")
    assert (critical["urgent_support"], critical["urgent_predicted"], critical["urgent_f1"]) == (1, 1, 0.0)
    with pytest.raises(ConfigError, match="--urgent-cut"):
        urgent_f1(gold, pred, "asap")


def test_span_f1_exact_and_overlap_by_type():
    gold = [[(0, 5, "money"), (10, 15, "datetime")], [(0, 3, "money")]]
    pred = [[(0, 5, "money"), (11, 15, "datetime"), (20, 25, "location")], [(5, 8, "money")]]
    m = span_f1(gold, pred)
    assert (m["span_precision"], m["span_recall"], m["span_f1"]) == (0.5, 0.6667, 0.5714)
    assert (m["exact_precision"], m["exact_recall"], m["exact_f1"]) == (0.25, 0.3333, 0.2857)
    by = m["span_by_type"]
    assert by["money"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "exact_precision": 0.5,
                            "exact_recall": 0.5, "exact_f1": 0.5, "support": 2, "predicted": 2}
    assert (by["datetime"]["f1"], by["datetime"]["exact_f1"]) == (1.0, 0.0)
    assert (by["location"]["support"], by["location"]["predicted"], by["location"]["f1"]) == (0, 1, 0.0)
    assert m["span_f1_by_type"] == {k: v["f1"] for k, v in by.items()}


# -- the real pipeline ------------------------------------------------------------------------------------

INTENT_ROWS = [
    {"text": "I was charged twice for my order this month", "label": "billing_double_charge"},
    {"text": "You billed me two times for the same thing", "label": "billing_double_charge"},
    {"text": "Please cancel my subscription", "label": "subscription_cancel"},
    {"text": "My parcel is three days late", "label": "delivery_late"},
    {"text": "The app crashes every time I open it", "label": "tech_app_crash"},
    {"text": "I can't log in to my account", "label": "delivery_late"},  # wrong on purpose: a sure error
    {"text": "What's the weather like on Mars?", "label": OOS},
]


def _hand_counts(rows):
    tp, fp, fn = Counter(), Counter(), Counter()
    for r in rows:
        if r["gold"] == r["pred"]:
            tp[r["gold"]] += 1
        else:
            fp[r["pred"]] += 1
            fn[r["gold"]] += 1
    return tp, fp, fn


def test_intent_eval_figures_agree_with_its_own_rows(tmp_path, pipeline):
    m = evaluate("intent", write_jsonl(tmp_path / "t.jsonl", INTENT_ROWS), pipeline, keep_rows=True)
    rows = m["rows"]
    assert len(rows) == m["n"] == 7 and [r["line"] for r in rows] == list(range(1, 8))
    assert rows[0]["pred"] == "billing_double_charge" and rows[5]["correct"] is False
    assert sum(map(sum, m["confusion"]["matrix"])) == m["n"]
    tp, fp, fn = _hand_counts(rows)
    for label, v in m["per_class"].items():
        p = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        r = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 0.0
        assert (v["precision"], v["recall"], v["support"]) == (round(p, 4), round(r, 4), tp[label] + fn[label])
    assert m["accuracy"] == round(sum(r["correct"] for r in rows) / 7, 4)
    in_scope = [r for r in rows if r["gold"] != OOS]
    assert m["in_scope_accuracy"] == round(sum(r["correct"] for r in in_scope) / len(in_scope), 4)
    assert ["delivery_late", rows[5]["pred"], 1] in m["confused_pairs"]
    assert all(0.0 <= r["confidence"] <= 1.0 for r in rows)


@pytest.mark.skipif(not NLUPP.exists(), reason=f"NLU++ is read from {NLUPP} (shared data, not in the repo)")
def test_multilabel_nluplusplus_rows(tmp_path):
    from extractor.pipeline import Pipeline

    data = [json.loads(line) for line in NLUPP.read_text("utf-8").splitlines()]
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": r["text"], "labels": r["labels"]}
                                                    for r in data if r["fold"] in (0, 1)])
    test_rows = [r for r in data if r["fold"] == 19][:12] + [next(r for r in data if not r["labels"])]
    m = evaluate("intents", write_jsonl(tmp_path / "test.jsonl", test_rows), Pipeline(str(train), ner=False),
                 keep_rows=True)
    rows = m["rows"]
    assert m["multi_label"] and m["n"] == 13 and rows[-1]["gold"] == []
    gold, pred = [set(r["gold"]) for r in rows], [set(r["pred"]) for r in rows]
    tp = sum(len(g & p) for g, p in zip(gold, pred))
    prec, rec = tp / sum(map(len, pred)), tp / sum(map(len, gold))
    assert m["micro_f1"] == round(2 * prec * rec / (prec + rec) if tp else 0.0, 4)
    assert m["exact_match"] == round(sum(g == p for g, p in zip(gold, pred)) / 13, 4)
    assert all(OOS not in p for p in pred) and 0.0 < m["micro_f1"] <= 1.0


def test_urgency_labels_get_f1_at_the_cut(tmp_path, pipeline):
    rows = [{"text": "Our whole office is offline, fix it within the hour or we cancel!", "label": "critical"},
            {"text": "I need this sorted by Friday at the latest, it's urgent", "label": "high"},
            {"text": "Just wondering if you sell gift cards", "label": "low"},
            {"text": "When you get a chance, could you update my address?", "label": "low"}]
    path = write_jsonl(tmp_path / "u.jsonl", rows)
    m = evaluate("urgency", path, pipeline, urgent_cut="high", keep_rows=True)
    levels = {"low": 0, "medium": 1, "high": 2, "critical": 3}
    g = [levels[r["gold"]] >= 2 for r in m["rows"]]
    p = [levels.get(r["pred"], -1) >= 2 for r in m["rows"]]
    tp = sum(a and b for a, b in zip(g, p))
    assert (m["urgent_support"], m["urgent_predicted"]) == (sum(g), sum(p))
    assert m["urgent_recall"] == round(tp / sum(g), 4) and "spearman" in m and m["urgent_cut"] == "high"
    assert evaluate("urgency", path, pipeline, urgent_cut="critical")["urgent_support"] == 1
    scored = evaluate("urgency", write_jsonl(tmp_path / "s.jsonl", [{"text": r["text"], "score": i}
                                                                     for i, r in enumerate(rows)]), pipeline)
    assert "spearman" in scored and "urgent_f1" not in scored


def test_constraint_rows_account_for_every_span(tmp_path, pipeline):
    lines = (ROOT / "eval/data/constraints_gold.jsonl").read_text("utf-8").splitlines()[:12]
    m = evaluate("constraints", write_jsonl(tmp_path / "c.jsonl", [json.loads(x) for x in lines]), pipeline,
                 keep_rows=True)
    by = m["span_by_type"]
    n_gold = sum(len(json.loads(x)["spans"]) for x in lines)
    assert sum(v["support"] for v in by.values()) == n_gold
    missed = sum(len(r["missed"]) for r in m["rows"])
    assert m["span_recall"] == round((n_gold - missed) / n_gold, 4)
    for r in m["rows"]:
        assert all(r["text"][s["start"]:s["end"]] == s["text"] for s in r["gold"] + r["pred"])
        assert r["correct"] == (not r["missed"] and not r["spurious"])


def test_cli_eval_json_report_and_rows_opt_in(tmp_path):
    runner = CliRunner()
    rows = INTENT_ROWS + [{"text": "<script>alert('x')</script> I want my money back", "label": "order_status"}]
    test = write_jsonl(tmp_path / "t.jsonl", rows)
    report = tmp_path / "r.html"
    res = runner.invoke(app, ["eval", "intent", "--test", str(test), "--json", "--report", str(report)])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert {"n", "docs_per_s", "accuracy", "macro_f1", "ece", "in_scope_accuracy", "oos_recall",
            "per_class", "confusion", "micro_f1"} <= set(m) and "rows" not in m
    page = report.read_text("utf-8")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page and "<script" not in page
    with_rows = runner.invoke(app, ["eval", "intent", "--test", str(test), "--json", "--with-rows"])
    assert [r["text"] for r in json.loads(with_rows.stdout)["rows"]] == [r["text"] for r in rows]
    bad = runner.invoke(app, ["eval", "urgency", "--test", str(test), "--urgent-cut", "asap"])
    assert bad.exit_code == 2 and "--urgent-cut" in bad.output
