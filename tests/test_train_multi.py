"""`signals train intents`: multi-label intents (``--fast``: one calibrated logistic regression per label;
default: the encoder fine-tuned with a biased cosine head)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.errors import ConfigError
from extractor.evaluate import evaluate
from extractor.pipeline import Pipeline
from extractor.taxonomy import load_taxonomy
from extractor.train import train
from extractor.train_multi import sample_shots, scores
from tests.ioutil import write_jsonl

runner = CliRunner()
LABELS = ["billing_double_charge", "subscription_cancel", "delivery_late", "account_password_reset",
          "billing_refund_request", "delivery_address_change", "account_login_problem", "delivery_damaged_item"]


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """Multi-label rows built from the shipped taxonomy's examples (written for the project): a message
    is one example (one label) or two examples of different intents joined (both labels)."""
    by_label = {i.label: list(i.examples) for i in load_taxonomy().intents}
    missing = [lab for lab in LABELS if lab not in by_label]
    assert not missing, f"taxonomy lost {missing}"
    rng = random.Random(0)
    split = {lab: (by_label[lab][:7], by_label[lab][7:]) for lab in LABELS}

    def rows(part: int, n_pairs: int) -> list[dict]:
        out = [{"text": t, "labels": [lab]} for lab in LABELS for t in split[lab][part]]
        for _ in range(n_pairs):
            a, b = rng.sample(LABELS, 2)
            out.append({"text": f"{rng.choice(split[a][part])} {rng.choice(split[b][part])}",
                        "labels": sorted([a, b])})
        return out

    tmp = tmp_path_factory.mktemp("multi")
    return write_jsonl(tmp / "train.jsonl", rows(0, 60)), write_jsonl(tmp / "test.jsonl", rows(1, 30))


@pytest.fixture(scope="module")
def model(multi, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "intents"
    res = runner.invoke(app, ["train", "intents", "--fast", "--train", str(multi[0]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_manifest_records_what_validation_chose(model):
    manifest = json.loads((model / "manifest.json").read_text())
    head = json.loads((model / "head.json").read_text())
    assert manifest["task"] == "intents" and manifest["labels"] == sorted(LABELS)
    assert head["multi_label"] and head["max_labels"] == 2 and len(head["coef"]) == len(LABELS)
    assert 0.2 <= manifest["threshold"] <= 0.8 and manifest["settings"]["C"] in (10.0, 100.0)
    assert manifest["metrics"]["n_validation"] > 0 and 0.0 <= manifest["metrics"]["micro_f1"] <= 1.0


def test_multi_label_model_finds_both_intents_where_the_prototype_finds_one(model, multi):
    trained = evaluate("intents", multi[1], Pipeline(model=model, ner=False))
    prototype = evaluate("intents", multi[1], Pipeline(str(multi[0]), ner=False))
    assert trained["micro_f1"] > 0.75, trained
    assert trained["micro_recall"] > prototype["micro_recall"]
    assert trained["pred_labels_per_row"] > 1.1
    assert trained["ece"] is not None and 0.0 <= trained["ece"] <= 1.0


def test_each_emitted_intent_quotes_its_own_sentence(model):
    text = "I was charged twice for the same order 💳. I also can't log in to my account at all!"
    res = Pipeline(model=model, ner=False).extract(text)
    intents = res.of_kind("intent")
    assert {s.label for s in intents} == {"billing_double_charge", "account_login_problem"}
    for s in intents:
        assert 0.0 <= s.confidence <= 1.0
        ev = s.evidence[0]
        assert text[ev.start:ev.end] == ev.text
    quotes = {s.label: s.evidence[0].text for s in intents}
    assert "charged twice" in quotes["billing_double_charge"] and "log in" in quotes["account_login_problem"]


def test_shots_and_errors(multi, tmp_path):
    rows = [json.loads(line) for line in multi[0].read_text().splitlines()]
    few = sample_shots(rows, 3, labels_of=lambda r: r["labels"])
    counts = {lab: sum(lab in r["labels"] for r in few) for lab in LABELS}
    assert all(c >= 3 for c in counts.values()) and len(few) < len(rows)
    manifest = train("intents", multi[0], tmp_path / "m3", shots=3, method="fast")
    assert manifest["n_train"] == len(few) and manifest["shots"] == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "labels": "not a list"}\n')
    with pytest.raises(ConfigError, match="labels"):
        train("intents", bad, tmp_path / "b", method="fast")


def test_scores_counts_pairs():
    p = np.array([[0.9, 0.6, 0.1], [0.2, 0.1, 0.7]])
    y = np.array([[1, 0, 0], [0, 0, 1]])
    m = scores(p, y, 0.5)
    assert (m["micro_precision"], m["micro_recall"], m["exact_match"]) == (0.6667, 1.0, 0.5)


def test_finetuned_multi_label_model_serves_extract(multi, tmp_path):
    """The default method (fine-tuning, here one short epoch) writes its own encoder and a biased head."""
    from extractor.finetune import FinetuneConfig

    out = tmp_path / "ft"
    manifest = train("intents", multi[0], out, config=FinetuneConfig(epochs=1), seed=3)
    head = json.loads((out / "head.json").read_text())
    assert manifest["model_encoder"] == "encoder" and (out / "encoder").is_dir()
    assert head["multi_label"] and any(b != 0.0 for b in head["intercept"])
    text = "I was charged twice for the same order. My parcel is a week late."
    res = Pipeline(model=out, ner=False).extract(text)
    assert res.provenance.models["intent"].startswith("finetuned@")
    intents = res.of_kind("intent")
    assert intents and all(text[s.evidence[0].start:s.evidence[0].end] == s.evidence[0].text for s in intents)
    assert {s.label for s in intents} & {"billing_double_charge", "delivery_late"}
