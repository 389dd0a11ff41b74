"""Documents in, grounded signals out, through any backend: chunk → render → cache → call → validate
(bounded repair) → ground → merge.

Every kept signal quotes the document at exact offsets; an item whose quote cannot be found in the
document (only in the prompt, or nowhere) is dropped and counted, never kept without evidence.

>>> from extractor.llm.backends.llamacpp import LlamaCppBackend           # doctest: +SKIP
>>> ex = LLMExtractor(LlamaCppBackend("model.gguf"), {"refund": "wants money back"})  # doctest: +SKIP
>>> ex.extract_batch([Document(id="d", text="Refund my order by Friday!")])[0].signals  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import BudgetExceeded, LLMError
from ..types import Document, Evidence, Signal, Usage
from .backends.base import DEFAULT_MAX_TOKENS, Backend, LLMRequest
from .cache import LLMCache, cache_key
from .chunk import Chunk, chunk_document
from .ground import align, align_in_units
from .parse import parse_reply
from .prompts import Prompt, load_prompt
from .schema import LEVELS, MAX_CONSTRAINTS, MAX_QUOTE, json_schema, reply_model
from .signals import merge_chunks, reply_signals

log = logging.getLogger(__name__)

PROMPT_OVERHEAD = 700  # tokens of instructions around the document, before the taxonomy


class InvalidReply(LLMError):
    """The model's reply stayed invalid after every repair attempt (a recorded failure, not a drop)."""


@dataclass
class Outcome:
    """One document's LLM result: signals (or the reason there are none) and what it cost."""

    doc: Document
    signals: list[Signal] | None = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    stopped: bool = False


class _Tally:
    """Run totals shared by worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens = 0
        self.grounding: Counter = Counter()

    def add(self, usage: Usage, grounding: Counter) -> None:
        with self.lock:
            self.tokens += usage.prompt_tokens + usage.completion_tokens
            self.grounding.update(grounding)


class LLMExtractor:
    """Extract signals with an LLM. ``intents`` maps label → description (the taxonomy put in the prompt).

    ``max_repairs`` bounds the fix-your-JSON round trips; ``budget`` (tokens, prompt + completion)
    stops the run cleanly once spent; ``cache`` makes a second run over the same text free.
    """

    def __init__(self, backend: Backend, intents: dict[str, str], *, prompt: Prompt | None = None,
                 cache: LLMCache | None = None, max_repairs: int = 2, max_tokens: int = DEFAULT_MAX_TOKENS,
                 budget: int | None = None, seed: int = 0, max_constraints: int = MAX_CONSTRAINTS,
                 max_quote: int = MAX_QUOTE, pack: int = 1):
        self.backend, self.intents = backend, dict(intents)
        self.prompt = prompt or load_prompt("extract")
        self.cache = cache if cache is not None else LLMCache(None)
        self.max_repairs, self.max_tokens, self.budget, self.seed = max_repairs, max_tokens, budget, seed
        self.taxonomy_text = "\n".join(f"- {k}: {v}" if v else f"- {k}" for k, v in self.intents.items())
        self.limits = {"max_constraints": max_constraints, "max_quote": max_quote}
        self.pack = max(1, pack)
        self.tally = _Tally()

    @property
    def id(self) -> str:
        return f"llm:{self.prompt.id}"

    def grounding_summary(self) -> dict[str, float]:
        g = self.tally.grounding
        total = sum(g[k] for k in ("exact", "casefold", "fuzzy", "dropped"))
        kept = total - g["dropped"]
        return {"quotes": total, "kept": kept, "exact": g["exact"], "casefold": g["casefold"], "fuzzy": g["fuzzy"],
                "dropped": g["dropped"], "instruction_copies": g["instruction_copies"],
                "rate": round(kept / total, 4) if total else 0.0}

    # -- documents --------------------------------------------------------------------------------------
    def extract_batch(self, docs: list[Document]) -> list[Outcome]:
        """One ``Outcome`` per document, in order; up to ``backend.parallel`` calls at a time.

        With ``pack`` > 1, short plain texts share calls (see ``llm.packing``)."""
        from .packing import plan

        stop = threading.Event()
        outcomes = [Outcome(d) for d in docs]
        room = self._room() - self.max_tokens * max(0, self.pack - 1) // 2
        items = plan(docs, self.pack if room >= 200 else 1, room, self.backend.count_tokens)

        def work(idx: list[int]) -> None:
            if len(idx) == 1:
                self._guarded(outcomes[idx[0]], stop)
            else:
                self._guarded_pack([outcomes[i] for i in idx], stop)

        if self.backend.parallel <= 1 or len(items) <= 1:
            for idx in items:
                work(idx)
        else:
            with ThreadPoolExecutor(max_workers=self.backend.parallel, thread_name_prefix="llm") as pool:
                list(pool.map(work, items))
        return outcomes

    def _guarded(self, out: Outcome, stop: threading.Event) -> None:
        if stop.is_set():
            out.stopped = True
            return
        try:
            out.signals = self._extract(out.doc, out.usage)
        except BudgetExceeded:
            stop.set()
            out.stopped = True
        except LLMError as exc:
            out.error = str(exc)

    def _guarded_pack(self, outs: list[Outcome], stop: threading.Event) -> None:
        from .packing import extract_pack

        if stop.is_set():
            for o in outs:
                o.stopped = True
            return
        try:
            for o, signals in zip(outs, extract_pack(self, [o.doc for o in outs], [o.usage for o in outs])):
                o.signals = signals
        except BudgetExceeded:
            stop.set()
            for o in outs:
                o.stopped = True
        except LLMError as exc:  # packing may cost a call, never a document: retry each one alone
            log.info("a pack of %d documents failed (%s); extracting them one by one", len(outs), exc)
            for o in outs:
                o.signals = None
                self._guarded(o, stop)

    def _room(self) -> int:
        """Tokens left for document text in one call: context - reply - instructions - taxonomy."""
        return self.backend.context_tokens - self.max_tokens - PROMPT_OVERHEAD \
            - self.backend.count_tokens(self.taxonomy_text)

    def _extract(self, doc: Document, usage: Usage) -> list[Signal]:
        budget = self._room()
        if budget < 64:
            raise LLMError(f"The model's context ({self.backend.context_tokens} tokens) leaves no room for a "
                           "document after the prompt and the reply; use a model with a larger context or a "
                           "smaller taxonomy.")
        chunks = chunk_document(doc, budget=budget, count=self.backend.count_tokens)
        per_chunk = [self.grounded_signals(self._ask(chunk, usage), chunk, usage, self.id) for chunk in chunks]
        usage.chunks = len(chunks)
        return merge_chunks(per_chunk)

    # -- one call, validated ------------------------------------------------------------------------------
    def _ask(self, chunk: Chunk, usage: Usage) -> Any:
        shown = [p.turn for p in chunk.pieces] if chunk.turns else None
        messages = self.prompt.render(document=chunk.render(), taxonomy=self.taxonomy_text, turns=chunk.turns)

        def build(limits: dict) -> tuple[Any, dict]:
            return self._models(chunk.sentences(limits["max_quote"]), limits, turns=shown)

        return self.ask(self.prompt, messages, build, usage, [chunk.doc.customer_id])

    def ask(self, prompt: Prompt, messages: list[dict[str, str]], build, usage: Usage,
            customers: list[str | None], check=None, max_tokens: int | None = None) -> Any:
        """One validated reply to ``messages``: from the cache, or from the model with bounded repair.

        ``build(limits)`` gives (model to validate against, schema to send); ``check(obj)`` may return
        an error for a reply that validates but is still unusable (e.g. a packed document missing)."""
        limits, tokens = dict(self.limits), max_tokens or self.max_tokens
        model, schema = build(limits)
        key = cache_key(prompt.id, self.backend.model_id,
                        {**self.backend.params(), "max_tokens": tokens, "max_repairs": self.max_repairs},
                        messages, schema)
        hit = self.cache.get(key)
        if hit is not None:
            usage.cache_hits += 1
            if "error" in hit:
                raise InvalidReply(hit["error"])
            return build(hit["limits"])[0].model_validate_json(hit["text"])
        first, err = messages, ""
        for attempt in range(self.max_repairs + 1):
            self._check_budget()
            resp = self.backend.complete(LLMRequest(messages, schema, tokens, seed=self.seed))
            self._count(usage, resp, attempt)
            truncated = resp.finish_reason == "length"
            obj, err = parse_reply(resp.text, model, truncated=truncated)
            if obj is not None and check is not None:
                err = check(obj) or ""
                obj = None if err else obj
            if obj is not None:
                self.cache.put(key, {"text": obj.model_dump_json(), "limits": limits, "attempts": attempt + 1},
                               customer_ids=customers)
                return obj
            log.info("invalid reply (%s); %s", err,
                     "asking for a repair" if attempt < self.max_repairs else "giving up")
            if truncated:  # the same request would be cut off again: ask for a shorter reply, enforced by schema
                limits = {"max_constraints": max(1, limits["max_constraints"] // 2),
                          "max_quote": max(40, limits["max_quote"] // 2)}
                (model, schema), messages = build(limits), first
            else:
                messages = [*messages, {"role": "assistant", "content": resp.text[:4000]}, prompt.repair_message(err)]
        reason = f"the model's reply was invalid after {self.max_repairs + 1} attempts: {err}"
        self.cache.put(key, {"error": reason}, customer_ids=customers)
        raise InvalidReply(reason)

    def _models(self, quotes: list[str], limits: dict, **shape: Any) -> tuple[Any, dict]:
        """The model a reply is validated against, and the schema sent with the request.

        A constrained backend is sent a schema whose quotes must be the document's own sentences, so
        it cannot quote anything else; replies are still validated with free-text quotes (a server
        that ignores the schema may quote part of a sentence, which grounding handles)."""
        model = reply_model(list(self.intents), **shape, **limits)
        if not getattr(self.backend, "constrained", False):
            return model, json_schema(model)
        return model, json_schema(reply_model(list(self.intents), quotes=quotes, **shape, **limits))

    def _count(self, usage: Usage, resp, attempt: int) -> None:
        usage.model_calls += 1
        usage.repairs += attempt > 0
        usage.prompt_tokens += resp.prompt_tokens
        usage.completion_tokens += resp.completion_tokens
        usage.seconds = round(usage.seconds + resp.seconds, 4)
        self.tally.add(Usage(prompt_tokens=resp.prompt_tokens, completion_tokens=resp.completion_tokens), Counter())

    def _check_budget(self) -> None:
        if self.budget is not None and self.tally.tokens >= self.budget:
            raise BudgetExceeded(f"the token budget of {self.budget} is spent ({self.tally.tokens} used)")

    # -- grounding ------------------------------------------------------------------------------------
    def grounded_signals(self, reply: Any, chunk: Chunk, usage: Usage, extractor: str) -> list[Signal]:
        """The signals of one validated reply whose quotes are found in ``chunk``; the rest are counted."""
        grounding: Counter = Counter()
        signals = reply_signals(reply, chunk, self._ground(chunk, grounding), extractor, self.backend.model_id)
        usage.ungrounded += grounding["dropped"]
        self.tally.add(Usage(), grounding)
        return signals

    def _ground(self, chunk: Chunk, counts: Counter):
        """A function quote, turn → Evidence (or None, counted as dropped) for this chunk."""
        units = [(i, p.text) for i, p in enumerate(chunk.pieces)]
        instructions = self.prompt.system

        def ground(quote: str, turn: int | None) -> Evidence | None:
            prefer = next((i for i, p in enumerate(chunk.pieces) if p.turn == turn), None)
            found = align_in_units(quote, units, prefer=prefer)
            if found is None:
                counts["dropped"] += 1
                if align(quote, instructions) is not None:
                    counts["instruction_copies"] += 1
                return None
            idx, a = found
            piece = chunk.pieces[idx]
            counts[a.match] += 1
            source = chunk.doc.unit_text(piece.turn)
            return Evidence.of(source, a.start + piece.offset, a.end + piece.offset, turn=piece.turn, match=a.match)

        return ground


__all__ = ["LEVELS", "InvalidReply", "LLMExtractor", "Outcome"]
