"""`signals train --fast`: a model directory with a manifest, used by extract and eval via --model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.errors import ConfigError
from extractor.pipeline import Pipeline
from extractor.taxonomy import load_taxonomy
from extractor.train import train

runner = CliRunner()


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """The shipped taxonomy's own examples (written for the project): 8 per intent to train, the rest to test."""
    tmp = tmp_path_factory.mktemp("train")
    train_rows, test_rows = [], []
    for intent in load_taxonomy().intents:
        rows = [{"text": t, "label": intent.label} for t in intent.examples]
        train_rows += rows[:8]
        test_rows += rows[8:]
    paths = tmp / "train.jsonl", tmp / "test.jsonl"
    for path, rows in zip(paths, (train_rows, test_rows)):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def test_train_writes_a_self_describing_model(tmp_path, split, pipeline):
    manifest = train("intent", split[0], tmp_path / "m", seed=1, method="fast")
    on_disk = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["encoder"] == "sentence-transformers/all-MiniLM-L6-v2" and manifest["dim"] == 384
    assert len(manifest["labels"]) == 44 and manifest["n_train"] == 44 * 8
    assert 0.0 < manifest["temperature"] and len(manifest["data_sha256"]) == 64
    assert train("intent", split[0], tmp_path / "m2", seed=1, method="fast")["data_sha256"] == manifest["data_sha256"]


def test_model_is_used_by_eval_and_extract(tmp_path, split, pipeline):
    model = tmp_path / "m"
    res = runner.invoke(app, ["train", "intent", "--fast", "--train", str(split[0]), "--out", str(model)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", "intent", "--model", str(model), "--test", str(split[1]), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["accuracy"] > 0.5
    result = Pipeline(model=model).extract("I was charged twice for the same order")
    assert result.provenance.models["intent"].startswith("linear@")
    assert result.of_kind("intent")[0].label == "billing_double_charge"


def test_bad_training_input_is_a_clear_error(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "great", "label": "5 stars"}\n{"text": "bad", "label": "1 star"}\n')
    with pytest.raises(ConfigError, match="negative / neutral / positive"):
        train("sentiment", path, tmp_path / "m")
    with pytest.raises(ConfigError, match="not a signals model"):
        Pipeline(model=tmp_path / "nothing").local  # noqa: B018


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, split):
    """One short real fine-tuning run (1 epoch) of MiniLM on the taxonomy examples, shared by the tests below."""
    from extractor.finetune import FinetuneConfig

    out = tmp_path_factory.mktemp("ft") / "model"
    steps: list[tuple[int, int]] = []
    manifest = train("intent", split[0], out, seed=0, config=FinetuneConfig(epochs=1),
                     progress=lambda done, total: steps.append((done, total)))
    return out, manifest, steps


def test_finetune_writes_its_own_encoder_and_reports_progress(finetuned):
    out, manifest, steps = finetuned
    assert manifest["method"].startswith("finetune") and manifest["model_encoder"] == "encoder"
    assert (out / "encoder" / "config.json").exists() and (out / "encoder" / "modules.json").exists()
    assert manifest["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"  # the base it started from
    # calibration run on 80% + final run on all rows, one bar over both
    assert steps[-1][0] == steps[-1][1] == len(steps)
    assert 0 < manifest["metrics"]["ece"] < 0.5 and manifest["metrics"]["n_validation"] > 0
    head = json.loads((out / "head.json").read_text())
    assert len(head["coef"]) == 44 and len(head["coef"][0]) == 384


def test_finetuned_model_serves_extract_and_eval(finetuned, split):
    out, _, _ = finetuned
    result = Pipeline(model=out).extract("I was charged twice for the same order")
    assert result.provenance.models["intent"].startswith("finetuned@")
    assert result.provenance.models["model_encoder"] == f"model:{out.name}/encoder"
    intent = result.of_kind("intent")[0]
    assert intent.label == "billing_double_charge" and 0.0 <= intent.confidence <= 1.0
    assert result.text[intent.evidence[0].start:intent.evidence[0].end] == intent.evidence[0].text
    res = runner.invoke(app, ["eval", "intent", "--model", str(out), "--test", str(split[1]), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["accuracy"] > 0.6


def test_finetune_is_deterministic_for_a_seed(tmp_path):
    from extractor.embed import resolve_encoder
    from extractor.finetune import FinetuneConfig, finetune

    texts = ["refund my order", "I want my money back", "where is my parcel", "my package has not arrived",
             "cancel my plan", "stop my subscription"]
    y = np.array([0, 0, 1, 1, 2, 2])
    _, path = resolve_encoder(None)
    cfg = FinetuneConfig(epochs=2, batch_size=4)
    a = finetune(texts, y, 3, path, seed=7, config=cfg)[1]
    b = finetune(texts, y, 3, path, seed=7, config=cfg)[1]
    c = finetune(texts, y, 3, path, seed=8, config=cfg)[1]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_trained_urgency_joins_the_rules(tmp_path, pipeline):
    """A priority head trained on project-written tickets raises urgency where the rules see no cue,
    and the rules still fire where the head is calm."""
    calm = ["How do I change the email on my account?", "Could you send me last year's invoices?",
            "What are your opening hours on Sunday?", "I'd like to know more about the family plan.",
            "Can I add a second user to my subscription?", "Is there a student discount?"]
    hot = ["Our whole office lost its connection and customers cannot pay", "Production servers unreachable, "
           "every checkout fails", "Patients cannot book appointments, the system rejects all logins",
           "Payroll run failed for all staff this morning", "All our card terminals reject payments",
           "The warehouse scanners are offline and no orders ship"]
    path = tmp_path / "tickets.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n"
                            for texts, lab in ((calm, "low"), (hot, "high")) for t in texts))
    manifest = train("urgency", path, tmp_path / "u", method="fast")
    assert manifest["labels"] == ["high", "low"]
    pipe = Pipeline(model=tmp_path / "u", ner=False)
    hot_res = pipe.extract("Checkout is failing for every customer in our shop since the update")
    urgency = hot_res.of_kind("urgency")[0]
    assert urgency.value["learned"] > urgency.value["rules"] and urgency.score == urgency.value["learned"]
    assert hot_res.provenance.models["urgency"].startswith("rules+learned@model:u#")
    cue = pipe.extract("No rush, but it caught fire and sparks came out").of_kind("urgency")[0]
    assert cue.value["rules"] >= cue.value["learned"] and cue.label in ("high", "critical")
    with pytest.raises(ConfigError, match="low / medium / high / critical"):
        path.write_text('{"text": "a", "label": "P1"}\n{"text": "b", "label": "P2"}\n')
        train("urgency", path, tmp_path / "bad", method="fast")


def test_fast_training_reports_its_stages(tmp_path, split):
    seen: list[tuple[int, int]] = []
    train("intent", split[0], tmp_path / "m", method="fast", progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    with pytest.raises(ConfigError, match="finetune, fast"):
        train("intent", split[0], tmp_path / "x", method="setfit")
