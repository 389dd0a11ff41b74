"""Scores of the local pipeline on the hand-checked sample gold file (sample_data/gold.jsonl, 24 docs).

    .venv/bin/python eval/sample_gold.py
"""

from __future__ import annotations

import json
from pathlib import Path

from extractor.evaluate import document_gold_scores
from extractor.io import iter_documents
from extractor.pipeline import Pipeline

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def main() -> None:
    gold = [json.loads(line) for line in (SAMPLE / "gold.jsonl").read_text("utf-8").splitlines() if line.strip()]
    sources = [str(SAMPLE / g) for g in sorted({g["source"] for g in gold})]
    docs = {d.id: d for d in iter_documents(sources) if hasattr(d, "text")}
    results = Pipeline(catalog=SAMPLE / "catalog.yaml").extract_batch([docs[g["id"]] for g in gold])
    print(json.dumps({"n": len(gold), **document_gold_scores(results, gold)}))


if __name__ == "__main__":
    main()
