"""Turn a reply's text into a validated reply model, or a short error the model can act on.

>>> from extractor.llm.schema import reply_model
>>> Reply = reply_model(["refund"])
>>> obj, err = parse_reply('```json\\n{"intents": []}\\n```', Reply)
>>> obj is None and "sentiment" in err
True
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError


def _json_text(text: str) -> str:
    """The JSON object inside ``text``: code fences and chatter around it removed."""
    s = text.strip()
    if s.startswith("```"):
        s = s.split("\n", 1)[1] if "\n" in s else ""
        s = s.rsplit("```", 1)[0]
    start, end = s.find("{"), s.rfind("}")
    return s[start:end + 1] if start != -1 and end > start else s


def _describe(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(x) for x in e["loc"]) or "(root)"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def parse_reply(text: str, model: type[BaseModel], *, truncated: bool = False) -> tuple[Any | None, str]:
    """``(validated object, "")`` or ``(None, reason)``; ``truncated`` says the reply hit max_tokens."""
    if not text.strip():
        return None, "the reply was empty"
    try:
        data = json.loads(_json_text(text))
    except json.JSONDecodeError as exc:
        cut = " (the reply was cut off at the token limit: keep quotes shorter)" if truncated else ""
        return None, f"not valid JSON: {exc.msg} at char {exc.pos}{cut}"
    if not isinstance(data, dict):
        return None, f"expected one JSON object, got {type(data).__name__}"
    try:
        return model.model_validate(data), ""
    except ValidationError as exc:
        return None, f"the JSON does not match the schema: {_describe(exc)}"
