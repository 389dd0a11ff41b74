"""Helpers shared by the io tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from extractor.io import iter_documents
from extractor.types import Document, Reject


def docs_and_rejects(*inputs: str | Path, **kw: Any) -> tuple[list[Document], list[Reject]]:
    items = list(iter_documents([str(i) for i in inputs], **kw))
    return [d for d in items if isinstance(d, Document)], [r for r in items if isinstance(r, Reject)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
