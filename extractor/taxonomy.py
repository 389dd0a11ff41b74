"""Intent taxonomies: labels with descriptions and examples, from YAML or labelled JSONL.

>>> tax = load_taxonomy()                    # the shipped customer-support taxonomy
>>> "billing_double_charge" in tax.labels
True
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from .errors import ConfigError

OUT_OF_SCOPE = "out_of_scope"
DEFAULT_TAXONOMY = "support"


class Intent(BaseModel):
    label: str
    group: str | None = None
    polarity: Literal["positive", "negative"] | None = Field(
        default=None, description="Sentiment the intent implies (praise: positive; problems: negative).")
    description: str = ""
    examples: list[str] = Field(default_factory=list)


class Taxonomy(BaseModel):
    id: str
    name: str = ""
    description: str = ""
    intents: list[Intent]

    @property
    def labels(self) -> list[str]:
        return [i.label for i in self.intents]

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


def _from_yaml(path: Path | None) -> Taxonomy:
    import yaml

    try:
        if path is None:
            raw = resources.files("extractor").joinpath("data/taxonomy_support.yaml").read_text("utf-8")
        else:
            raw = path.read_text("utf-8")
        tax = Taxonomy.model_validate(yaml.safe_load(raw))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(
            f"Cannot read taxonomy {path or DEFAULT_TAXONOMY}: {exc}. "
            "A taxonomy is YAML with 'id' and 'intents: [{label, description, examples}]'."
        ) from exc
    labels = tax.labels
    if len(set(labels)) != len(labels):
        raise ConfigError(f"Taxonomy {tax.id} repeats a label; each label must appear once.")
    return tax


def from_examples(
    path: Path, shots: int | None = None, seed: int = 0, label_field: str = "label"
) -> Taxonomy:
    """Build a taxonomy from labelled JSONL (``{"text", "label"}``), optionally K examples per label."""
    by_label: dict[str, list[str]] = defaultdict(list)
    n = 0
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):  # noqa: B007 - n names the bad line in the error
                if not line.strip():
                    continue
                row = json.loads(line)
                labels = row.get("labels") or [row.get(label_field)]
                for label in labels:
                    if label is not None and isinstance(row.get("text"), str):
                        by_label[str(label)].append(row["text"])
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read labelled examples {path} (line {n}): {exc}") from exc
    if not by_label:
        raise ConfigError(f"{path} holds no rows with 'text' and '{label_field}'.")
    rng = random.Random(seed)
    intents = []
    for label in sorted(by_label):
        texts = list(dict.fromkeys(by_label[label]))
        if shots is not None and len(texts) > shots:
            texts = rng.sample(texts, shots)
        intents.append(Intent(label=label, examples=texts))
    digest = hashlib.sha256(json.dumps([i.model_dump() for i in intents]).encode()).hexdigest()[:12]
    return Taxonomy(id=f"{path.stem}@{digest}", name=path.stem, intents=intents)


def load_taxonomy(spec: str | Path | None = None, shots: int | None = None, seed: int = 0,
                  label_field: str = "label") -> Taxonomy:
    """Load the default taxonomy, a YAML file, or a labelled JSONL file (by extension)."""
    if spec in (None, "", DEFAULT_TAXONOMY):
        return _from_yaml(None)
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"Taxonomy file {path} does not exist. Pass a .yaml taxonomy or a labelled .jsonl.")
    if path.suffix in (".jsonl", ".ndjson"):
        return from_examples(path, shots=shots, seed=seed, label_field=label_field)
    return _from_yaml(path)
