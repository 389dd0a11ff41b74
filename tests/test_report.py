"""`signals eval --report`: one self-contained, escaped HTML page."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from extractor.evaluate import classification_metrics, evaluate
from extractor.report import highlight, render_report, write_report

from .conftest import ROOT

HOSTILE = "<script>alert(1)</script> \"><img src=x onerror=alert(2)> & fix it"


class Page(HTMLParser):
    """Tags seen, and the confusion-matrix cell counts, read back from the page."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.in_cm = False
        self.in_cell = False
        self.cm_cells: list[int] = []
        self.cm_rows = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table" and ("class", "cm") in attrs:
            self.in_cm = True
        self.in_cell = self.in_cm and tag == "td"
        self.cm_rows += self.in_cm and tag == "tr"

    def handle_endtag(self, tag):
        self.in_cm = self.in_cm and tag != "table"
        self.in_cell = False

    def handle_data(self, data):
        if self.in_cell and data.strip():
            self.cm_cells.append(int(data))


def read(page: str) -> Page:
    parsed = Page()
    parsed.feed(page)
    return parsed


def test_customer_text_and_labels_are_escaped_and_nothing_is_fetched():
    gold, pred = ["<b>a</b>", "b", "b"], ["b", "b", "<b>a</b>"]
    metrics = {"task": "intent", "n": 3} | classification_metrics(gold, pred, [0.9, 0.8, 0.7])
    rows = [{"line": i + 1, "text": HOSTILE, "gold": g, "pred": p, "confidence": c, "correct": g == p}
            for i, (g, p, c) in enumerate(zip(gold, pred, [0.9, 0.8, 0.7]))]
    page = render_report(metrics, rows, source="<tests>.jsonl")
    assert "<script" not in page and "<img" not in page and "<b>a" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x onerror=alert(2)&gt; &amp; fix it" in page
    assert "&lt;tests&gt;.jsonl" in page and "&lt;b&gt;a&lt;/b&gt;" in page
    assert not re.search(r"(src|href)\s*=|https?://|@import|url\(", page.replace("src=x", ""))
    assert set(read(page).tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "div", "b", "span",
                                    "table", "thead", "tbody", "tr", "th", "td", "p", "ol", "li", "mark", "br"}


def test_77_labels_heat_map_and_confused_pairs():
    labels = [f"intent_{i:02d}" for i in range(77)]
    gold = [lab for lab in labels for _ in range(4)]
    pred = [labels[(i // 4 + (i % 4 == 3)) % 77] for i in range(len(gold))]  # every 4th row: the next label
    metrics = {"task": "intent", "n": len(gold)} | classification_metrics(gold, pred)
    page = render_report(metrics, [])
    parsed = read(page)
    assert parsed.cm_rows == 1 + 77 and sum(parsed.cm_cells) == len(gold)
    assert '<th title="intent_76">77</th>' in page
    pairs = re.search(r"<h2>Most confused pairs.*?</ol>", page, re.S).group(0)
    assert pairs.count("<li>") == 20


def test_report_from_a_real_eval_lists_worst_errors_by_confidence(tmp_path, pipeline):
    rows = [{"text": "I was charged twice for my order", "label": "billing_double_charge"},
            {"text": HOSTILE + " my parcel is late", "label": "account_delete"},  # wrong on purpose
            {"text": "Please cancel my subscription", "label": "delivery_late"},  # wrong on purpose
            {"text": "The app crashes every time I open it", "label": "tech_app_crash"}]
    test = tmp_path / "t.jsonl"
    test.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    metrics = evaluate("intent", test, pipeline, keep_rows=True)
    got = metrics.pop("rows")
    path = write_report(tmp_path / "out" / "report.html", metrics, got, source=str(test), top=50)
    page = path.read_text("utf-8")
    assert sum(read(page).cm_cells) == metrics["n"] == 4
    wrong = sorted((r for r in got if not r["correct"]), key=lambda r: -r["confidence"])
    assert len(wrong) >= 2
    errors = page[page.index("<h2>Worst errors"):]
    lines = [int(x) for x in re.findall(r"<tr><td class=num>(\d+)</td>", errors)]
    assert lines == [r["line"] for r in wrong]
    assert "<script" not in page and "&lt;script&gt;" in errors
    assert f"{metrics['accuracy']:.4f}".rstrip("0").rstrip(".") in page


def test_constraint_report_marks_missed_and_spurious_spans(tmp_path, pipeline):
    lines = (ROOT / "eval/data/constraints_gold.jsonl").read_text("utf-8").splitlines()[:12]
    test = tmp_path / "c.jsonl"
    test.write_text("\n".join(lines) + "\n", "utf-8")
    metrics = evaluate("constraints", test, pipeline, keep_rows=True)
    rows = metrics.pop("rows")
    page = render_report(metrics, rows)
    assert "<h2>Spans by type</h2>" in page
    for lab in metrics["span_by_type"]:
        assert f'<td class="lab">{lab}</td>' in page
    n_missed = sum(len(r["missed"]) for r in rows if not r["correct"])
    assert page.count('<mark class="miss"') <= n_missed  # overlapping marks keep the first
    assert highlight("by <Friday>", [(3, 11, "miss", "missed datetime")]) == \
        'by <mark class="miss" title="missed datetime">&lt;Friday&gt;</mark>'
