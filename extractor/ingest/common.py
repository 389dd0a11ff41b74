"""Shared pieces of the readers: the field map and options, one input :class:`Source`, one
parsed :class:`Row`, the internal :class:`RowError`, :func:`reject`, which builds every
:class:`~extractor.types.Reject` (with a short, UTF-8-safe ``raw``), and the JSON value helpers
:func:`kind` and :func:`jsonable`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from extractor.types import Document, Reject

RAW_CHARS = 200
BATCH = 1024  # Parquet rows per batch, in and out

JSON_DECODER = json.JSONDecoder(strict=False)  # strict=False: raw tabs etc. inside strings are accepted
SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class FieldMap:
    """Which input field holds what. ``FieldMap(text="body", id="ticket_id")`` maps other schemas."""

    text: str = "text"
    id: str = "id"
    customer: str = "customer_id"
    turns: str = "turns"
    channel: str = "channel"
    created_at: str = "created_at"


@dataclass(frozen=True)
class Options:
    fields: FieldMap
    max_chars: int
    encoding: str
    agent_names: frozenset[str]


@dataclass(frozen=True)
class Source:
    """One input: a file, or stdin when ``path`` is None."""

    name: str
    fmt: str
    path: Path | None = None
    key: str | None = None  # path below the folder it was found in, without extension

    @property
    def stem(self) -> str:
        """Base for generated ids: ``a/call`` for ``a/call.txt`` found under a folder, else the file stem."""
        if self.key:
            return self.key
        return self.path.stem if self.path is not None else "stdin"


class Row(NamedTuple):
    line: int | None
    data: dict[str, Any]
    raw: str | None


Item = tuple[int | None, str | None, "Document | Reject"]  # (line, raw, document or reject)


class RowError(Exception):
    """Internal: a row that cannot become a Document. ``reason`` is the user-facing text."""

    def __init__(self, reason: str, stage: str = "validate"):
        super().__init__(reason)
        self.reason = reason
        self.stage = stage


def reject(
    src: str, line: int | None, reason: str, stage: str = "read", raw: Any = None, id: str | None = None
) -> Reject:
    """A Reject with ``raw`` cut to 200 characters and made safe to write as UTF-8."""
    if isinstance(raw, bytes):
        raw = raw[: RAW_CHARS * 4].decode("utf-8", "replace")
    elif raw is not None and not isinstance(raw, str):
        raw = json.dumps(jsonable(raw), ensure_ascii=False, default=str)
    if raw is not None:
        raw = SURROGATE.sub("\ufffd", raw[:RAW_CHARS])
    return Reject(source=src, line=line, id=id, stage=stage, reason=reason, raw=raw)  # type: ignore[arg-type]


def kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float, Decimal)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, (list, tuple)):
        return "array"
    return type(v).__name__


def jsonable(v: Any) -> Any:
    """A JSON-serialisable copy of ``v`` (for metadata)."""
    if v is None or isinstance(v, (bool, int)):
        return v
    if isinstance(v, str):
        return SURROGATE.sub("\ufffd", v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [jsonable(x) for x in v]
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, Decimal):
        return str(v)
    if hasattr(v, "model_dump"):
        return jsonable(v.model_dump(mode="json"))
    if hasattr(v, "item"):  # numpy scalars
        return jsonable(v.item())
    return str(v)
