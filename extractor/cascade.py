"""The LLM stage of the pipeline: ``--mode llm`` (every document) and ``--mode cascade`` (only the hard ones).

Cascade runs the local models first and sends a document to the LLM when the local models are
unsure of it: no intent, an ``out_of_scope`` intent, or an intent or sentiment confidence below
``threshold``. The LLM's grounded intent, sentiment and urgency then replace the local ones;
its constraints are added where they do not overlap a local span (the rules are precise on spans).
If the LLM call fails, the document keeps its local signals and the failure is counted.

This is the one module that uses both ``extractor.local`` results and ``extractor.llm``.

>>> from extractor.types import Signal
>>> needs_llm([Signal(kind="intent", label="refund", confidence=0.4)], threshold=0.6)
True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .types import Signal

log = logging.getLogger(__name__)

MODES = ("local", "llm", "cascade")
REPLACED = ("intent", "sentiment", "urgency")


@dataclass
class LLMOptions:
    """What the LLM stage loads: ``backend`` + ``model`` (see ``llm.backends.BACKENDS``) and how it runs."""

    backend: str = "llamacpp"
    model: Any = None
    base_url: str | None = None
    prompt: str = "extract"
    workspace: Path | None = None
    cache: bool = True
    max_repairs: int = 2
    max_tokens: int = 768
    max_constraints: int = 6
    max_quote: int = 200
    pack: int = 1
    budget: int | None = None
    threshold: float = 0.6
    backend_options: dict[str, Any] = field(default_factory=dict)


def needs_llm(signals: list[Signal], threshold: float) -> bool:
    """Whether the local result is unsure enough to ask the LLM."""
    intents = [s for s in signals if s.kind == "intent"]
    if not intents or any(s.label == "out_of_scope" for s in intents):
        return True
    judged = [s.confidence for s in signals if s.kind in ("intent", "sentiment")]
    return min(judged) < threshold


def _overlaps(a: Signal, b: Signal) -> bool:
    ea, eb = a.evidence[0], b.evidence[0]
    return ea.turn == eb.turn and ea.start < eb.end and eb.start < ea.end


def merge(local: list[Signal], llm: list[Signal]) -> list[Signal]:
    """Local signals with the LLM's intent/sentiment/urgency in place of the local ones it has."""
    from_llm = {s.kind for s in llm if s.kind in REPLACED}
    kept = [s for s in local if s.kind not in from_llm]
    local_spans = [s for s in local if s.kind == "constraint" and s.evidence]
    extra = [s for s in llm if s.kind == "constraint" and not any(_overlaps(s, c) for c in local_spans)]
    replaced = [s for s in llm if s.kind in from_llm]
    return replaced + kept + extra


def build_llm(options: LLMOptions, intents: dict[str, str]):
    """The ``LLMExtractor`` for ``options``, with its cache under the workspace."""
    from .llm.backends import load_backend
    from .llm.cache import LLMCache
    from .llm.extractor import LLMExtractor
    from .llm.prompts import load_prompt

    if not 0.0 <= options.threshold <= 1.0:
        raise ConfigError(f"--cascade-threshold must be in [0, 1], not {options.threshold}")
    if options.budget is not None and options.budget < 1:
        raise ConfigError(f"--max-tokens-budget must be positive, not {options.budget}")
    backend = load_backend(options.backend, options.model, base_url=options.base_url, **options.backend_options)
    cache_path = None
    if options.cache and options.workspace is not None:
        cache_path = Path(options.workspace) / "cache" / "llm.sqlite"
    return LLMExtractor(backend, intents, prompt=load_prompt(options.prompt), cache=LLMCache(cache_path),
                        max_repairs=options.max_repairs, max_tokens=options.max_tokens, budget=options.budget,
                        max_constraints=options.max_constraints, max_quote=options.max_quote, pack=options.pack)


def taxonomy_intents(taxonomy) -> dict[str, str]:
    """label → what the prompt says about it: the description, else up to two examples."""
    out = {}
    for it in taxonomy.intents:
        hint = it.description or "; ".join(f'e.g. "{e[:80]}"' for e in it.examples[:2])
        out[it.label] = " ".join(hint.split())
    return out


def llm_stage(pipe, docs: list, local: list | None) -> list:
    """Results for ``docs`` in llm mode (``local`` None) or cascade mode (``local``: the local results).

    An item is None where the token budget ran out before the document's turn."""
    from .pipeline import _has_customer_text, _no_customer_text
    from .types import ExtractionResult, Reject

    if local is None:
        todo = [i for i, d in enumerate(docs) if _has_customer_text(d)]
        wanted = set(todo)
        results: list = [None if i in wanted else _no_customer_text(d) for i, d in enumerate(docs)]
    else:
        results = list(local)
        todo = [i for i, r in enumerate(local) if isinstance(r, ExtractionResult)
                and needs_llm(r.signals, pipe.llm_options.threshold)]
    prov = pipe.provenance()
    for i, outcome in zip(todo, pipe.llm.extract_batch([docs[i] for i in todo])):
        if outcome.stopped:
            results[i] = None
        elif local is None:
            results[i] = (Reject(source=f"document {docs[i].id}", id=docs[i].id, stage="extract",
                                 reason=f"LLM extraction failed: {outcome.error}") if outcome.error
                          else _llm_result(docs[i], outcome.signals, outcome.usage, prov))
        elif outcome.error:
            log.warning("document %s: LLM failed (%s); keeping the local signals", docs[i].id, outcome.error)
            outcome.usage.error = outcome.error[:500]
            results[i] = local[i].model_copy(update={"usage": outcome.usage, "provenance": prov})
        else:
            results[i] = local[i].model_copy(update={"signals": merge(local[i].signals, outcome.signals),
                                                     "usage": outcome.usage, "provenance": prov})
    if local is not None:  # documents the cascade kept local still say the run's mode
        results = [r.model_copy(update={"provenance": prov}) if isinstance(r, ExtractionResult) and r.usage is None
                   else r for r in results]
    return results


def _llm_result(doc, signals, usage, prov):
    from .types import ExtractionResult

    return ExtractionResult(id=doc.id, customer_id=doc.customer_id, channel=doc.channel, created_at=doc.created_at,
                            text=doc.text, turns=doc.turns, signals=signals, provenance=prov, usage=usage)


def llm_summary(summary, tally, pipe) -> None:
    """Fill the run summary's LLM totals from the run's tally and the extractor's grounding counts."""
    u = tally.usage
    summary.mode = pipe.mode
    summary.model_calls, summary.cache_hits = u["model_calls"], u["cache_hits"]
    summary.prompt_tokens, summary.completion_tokens = u["prompt_tokens"], u["completion_tokens"]
    summary.llm_docs, summary.llm_failures = u["llm_docs"], u["llm_failures"]
    fresh = tally.n_ok - tally.n_resumed
    if pipe.mode == "cascade":
        summary.routed_fraction = round(u["llm_docs"] / fresh, 4) if fresh else 0.0
    summary.grounding = pipe.llm.grounding_summary()
    summary.stopped = tally.stopped
