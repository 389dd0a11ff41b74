"""Many short texts in one call: pack reviews and survey answers, then unpack each reply item by its ref.

A pack is rendered as marked documents ``D1..Dn`` (prompt ``extract_many``); the reply must hold
exactly one item per ref (the schema says so, and a check refuses a reply with a ref missing or
repeated). Each item is grounded against its own document only, so a quote taken from a
neighbour is dropped, never misattributed. If a pack still fails after its repairs, its documents
are retried one by one, so packing can cost a call but never a document.

The pack's calls and tokens are booked on its first document (``usage.packed`` on every member says
how many documents shared the call), so run totals stay exact.
"""

from __future__ import annotations

import logging
from typing import Any

from ..types import Document, Usage
from .chunk import chunk_document, pack
from .prompts import load_prompt, render_pack
from .signals import merge_chunks

log = logging.getLogger(__name__)

SHORT_TOKENS = 160  # documents up to this many tokens are packed


def packable(doc: Document, count) -> bool:
    return doc.turns is None and count(doc.text or "") <= SHORT_TOKENS


def plan(docs: list[Document], size: int, budget: int, count) -> list[list[int]]:
    """Indices of ``docs`` grouped into work items: packs of short texts, every other document alone."""
    if size <= 1:
        return [[i] for i in range(len(docs))]
    short = [i for i, d in enumerate(docs) if packable(d, count)]
    by_id = {id(docs[i]): i for i in short}
    groups = [[by_id[id(d)] for d in p] for p in pack([docs[i] for i in short], budget=budget, count=count,
                                                      max_docs=size)]
    alone = [[i] for i in range(len(docs)) if i not in set(short)]
    return sorted(groups + alone)


def extract_pack(ex, docs: list[Document], usages: list[Usage]) -> list[list]:
    """The grounded signals of each of ``docs`` from one packed call (raises like ``ex.ask``)."""
    prompt = load_prompt("extract_many")
    block, marker, refs = render_pack([d.text or "" for d in docs])
    messages = prompt.render(document=block, taxonomy=ex.taxonomy_text, turns=False, marker=marker)
    chunks = [chunk_document(d, budget=10 ** 9, count=len)[0] for d in docs]

    def build(limits: dict) -> tuple[Any, dict]:
        quotes = list(dict.fromkeys(q for c in chunks for q in c.sentences(limits["max_quote"])))
        return ex._models(quotes, limits, refs=refs)

    def check(obj: Any) -> str | None:
        got = [item.ref for item in obj.documents]
        if sorted(got) != sorted(refs):
            return f"expected exactly one item for each of {', '.join(refs)}, got {', '.join(got)}"
        return None

    reply = ex.ask(prompt, messages, build, usages[0], [d.customer_id for d in docs], check=check,
                   max_tokens=ex.max_tokens * (1 + len(docs)) // 2)
    items = {item.ref: item for item in reply.documents}
    out = []
    for ref, chunk, usage in zip(refs, chunks, usages):
        usage.chunks, usage.packed = 1, len(docs)
        out.append(merge_chunks([ex.grounded_signals(items[ref], chunk, usage, f"llm:{prompt.id}")]))
    return out
