"""Shared fixtures: one real pipeline (MiniLM + spaCy + shipped heads) for the whole session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def pipeline():
    from extractor.pipeline import Pipeline

    pipe = Pipeline(catalog=SAMPLE / "catalog.yaml")
    pipe.local  # noqa: B018 - load once
    return pipe


@pytest.fixture(scope="session")
def sample_docs():
    """Every sample document, read by the real reader, keyed by id."""
    from extractor.io import iter_documents
    from extractor.types import Document

    docs = {}
    for item in iter_documents([str(SAMPLE / "transcripts.jsonl"), str(SAMPLE / "reviews.jsonl"),
                                str(SAMPLE / "surveys.csv"), str(SAMPLE / "transcripts")]):
        assert isinstance(item, Document), item
        docs[item.id] = item
    return docs


@pytest.fixture(scope="session")
def gold():
    return [json.loads(line) for line in (SAMPLE / "gold.jsonl").read_text("utf-8").splitlines() if line.strip()]


def assert_evidence_exact(doc, result) -> int:
    """Every evidence span slices the original text to exactly its quote. Returns the span count."""
    n = 0
    for sig in result.signals:
        for ev in sig.evidence:
            source = doc.unit_text(ev.turn)
            assert source[ev.start:ev.end] == ev.text, (sig.kind, sig.label, ev)
            n += 1
    return n


@pytest.fixture(scope="session")
def results_file(pipeline, sample_docs, tmp_path_factory):
    """The real pipeline's results for every sample document, as `signals extract` writes them."""
    path = tmp_path_factory.mktemp("results") / "results.jsonl"
    results = pipeline.extract_batch(list(sample_docs.values()))
    path.write_text("".join(r.model_dump_json() + "\n" for r in results), "utf-8")
    return path


@pytest.fixture(scope="session")
def built(results_file, pipeline, tmp_path_factory):
    """A workspace with those results stored and indexed (copy it before changing it)."""
    from extractor.index import index_results

    ws = tmp_path_factory.mktemp("built") / "ws"
    index_results(ws, [str(results_file)], embedder=pipeline.local.embedder)
    return ws
