"""The strict shape of an LLM reply, built as pydantic models from the taxonomy, and its JSON Schema.

Labels are enums, so a grammar- or schema-constrained decoder cannot invent one; quotes come first
in each item (evidence before the label); arrays and strings are bounded, so a constrained decoder
cannot run on forever. ``json_schema`` inlines every ``$ref``: llama.cpp grammars and strict
OpenAI schemas both want one self-contained object with ``additionalProperties: false``.

>>> Reply = reply_model(["refund", "cancel"], turns=[0, 1])
>>> r = Reply.model_validate({"intents": [{"quote": "I want my money back", "turn": 1, "label": "refund"}],
...     "sentiment": {"quote": "awful", "turn": 1, "label": "negative"},
...     "urgency": {"quote": "today", "turn": 1, "level": "high"}, "constraints": []})
>>> r.intents[0].label
'refund'
>>> json_schema(Reply)["properties"]["intents"]["items"]["properties"]["label"]["enum"]
['refund', 'cancel', 'out_of_scope']
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

SENTIMENTS = ("negative", "neutral", "positive")
LEVELS = ("low", "medium", "high", "critical")
CONSTRAINT_TYPES = ("datetime", "money", "product", "quantity", "location", "channel", "language", "other")
OUT_OF_SCOPE = "out_of_scope"
MAX_INTENTS, MAX_CONSTRAINTS, MAX_QUOTE, MAX_VALUE = 3, 6, 200, 60

_STRICT = ConfigDict(extra="forbid")


def _item(name: str, turns: tuple[int, ...] | None, label_field: str, labels: tuple[str, ...], max_quote: int,
          quotes: tuple[str, ...] | None, **extra: Any) -> type[BaseModel]:
    described = "Exact words copied from the document (one turn)."
    quote = (Literal[quotes], Field(description=described)) if quotes else (  # type: ignore[valid-type]
        str, Field(max_length=max_quote, description=described))
    fields: dict[str, Any] = {"quote": quote}
    if turns is not None:  # an enum of the turns shown, so a constrained decoder cannot run on in digits
        fields["turn"] = (Literal[turns], Field(description="Number of the turn the quote comes from."))
    fields.update(extra)
    fields[label_field] = (Literal[labels], ...)  # type: ignore[valid-type]
    return create_model(name, __config__=_STRICT, **fields)


@lru_cache(maxsize=64)
def _reply_model(intents: tuple[str, ...], turns: tuple[int, ...] | None, refs: tuple[str, ...] | None,
                 max_constraints: int, max_quote: int, quotes: tuple[str, ...] | None) -> type[BaseModel]:
    labels = tuple(dict.fromkeys((*intents, OUT_OF_SCOPE)))
    intent = _item("Intent", turns, "label", labels, max_quote, quotes)
    sentiment = _item("Sentiment", turns, "label", SENTIMENTS, max_quote, quotes)
    urgency = _item("Urgency", turns, "level", LEVELS, max_quote, quotes)
    constraint = _item("Constraint", turns, "type", CONSTRAINT_TYPES, max_quote, quotes,
                       value=(str, Field(max_length=MAX_VALUE, description="Normalised value, e.g. 2026-11-28.")))
    fields: dict[str, Any] = {
        "intents": (list[intent], Field(max_length=MAX_INTENTS)),  # type: ignore[valid-type]
        "sentiment": (sentiment, ...),
        "urgency": (urgency, ...),
        "constraints": (list[constraint], Field(max_length=max_constraints)),  # type: ignore[valid-type]
    }
    if refs is None:
        return create_model("Reply", __config__=_STRICT, **fields)
    doc = create_model("DocumentReply", __config__=_STRICT, ref=(Literal[refs], ...), **fields)  # type: ignore
    n = len(refs)
    return create_model("PackedReply", __config__=_STRICT,
                        documents=(list[doc], Field(min_length=n, max_length=n)))  # type: ignore[valid-type]


def reply_model(intents: list[str] | tuple[str, ...], *, turns: list[int] | tuple[int, ...] | None = None,
                refs: list[str] | tuple[str, ...] | None = None, max_constraints: int = MAX_CONSTRAINTS,
                max_quote: int = MAX_QUOTE, quotes: list[str] | tuple[str, ...] | None = None) -> type[BaseModel]:
    """The reply model for one document (or, with ``refs``, for several packed into one call).

    ``turns``: the turn numbers shown to the model (None for a document without turns).
    ``quotes``: when given, a quote must be one of these strings (the document's own sentences), so a
    constrained decoder can only quote the document; otherwise a quote is free text of ``max_quote`` chars.
    ``max_constraints`` and ``max_quote`` bound the reply's length (a small model tends to fill every
    array to its limit under a grammar)."""
    shown = tuple(dict.fromkeys(turns)) if turns is not None else None
    return _reply_model(tuple(intents), shown, tuple(refs) if refs is not None else None, max_constraints, max_quote,
                        tuple(dict.fromkeys(quotes)) if quotes else None)


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema with every ``$ref`` inlined and titles dropped."""
    raw = model.model_json_schema()
    defs = raw.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]))
            return {k: inline(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(raw)
