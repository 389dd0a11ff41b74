"""Users bring their own taxonomy: a YAML file, or labelled JSONL examples (optionally K shots)."""

from __future__ import annotations

import json

import pytest

from extractor.errors import ConfigError
from extractor.local.intent import IntentClassifier
from extractor.taxonomy import load_taxonomy

YAML = """
id: pets@1
intents:
  - label: vet_booking
    description: The customer wants to book an appointment with a vet.
    examples: ["I need a vet appointment for my dog", "can I book a check-up for my cat", "book my puppy in"]
  - label: food_order
    description: The customer wants to order pet food.
    examples: ["send me another bag of kibble", "I want to reorder the cat food", "order 2 tins of dog food"]
  - label: out_of_scope
    description: The message fits none of the intents.
    examples: ["what's the weather", "tell me a joke", "who won the match"]
"""


def test_yaml_taxonomy(tmp_path, pipeline):
    path = tmp_path / "pets.yaml"
    path.write_text(YAML)
    tax = load_taxonomy(path)
    clf = IntentClassifier.fit(tax, pipeline.local.embedder)
    x = pipeline.local.embedder.encode(["my rabbit needs to see the vet on Monday", "please ship more dry food"])
    assert [p.label for p in clf.predict(x)] == ["vet_booking", "food_order"]


def test_labelled_jsonl_with_shots(tmp_path):
    rows = [{"text": f"example {i} for {lab}", "label": lab} for lab in ("a", "b") for i in range(20)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tax = load_taxonomy(path, shots=5, seed=1)
    assert tax.labels == ["a", "b"] and all(len(i.examples) == 5 for i in tax.intents)
    assert load_taxonomy(path, shots=5, seed=1).id == tax.id  # deterministic with the seed


def test_bad_taxonomy_says_what_is_expected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("intents: 3\n")
    with pytest.raises(ConfigError, match="intents"):
        load_taxonomy(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_taxonomy(tmp_path / "missing.yaml")
