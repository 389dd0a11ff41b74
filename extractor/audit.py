"""The workspace's append-only audit log (``audit.jsonl``): runs, imports and erasures, no personal data.

Each line is one JSON record with an ``event`` (``extract``, ``index``, ``refresh``, ``profiles``,
``forget``), a UTC time, a random ``audit_id`` and counts, input hashes, models and prompt versions.
Customer ids, names, e-mail addresses and text never go in; an erasure is recorded by its audit id,
which the CLI prints so it can be filed with the request.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

AUDIT_FILE = "audit.jsonl"


def record(workspace: str | Path, event: str, **fields: Any) -> str:
    """Append one record (fsynced) and return its audit id."""
    ws = Path(workspace)
    ws.mkdir(parents=True, exist_ok=True)
    audit_id = uuid.uuid4().hex
    line = json.dumps({"event": event, "at": datetime.now(timezone.utc).isoformat(), "audit_id": audit_id,
                       **fields}, ensure_ascii=False, sort_keys=True, default=str)
    with (ws / AUDIT_FILE).open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return audit_id


def read(workspace: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(workspace) / AUDIT_FILE
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def file_digest(path: str | Path) -> str | None:
    """sha256 of a file's bytes (None for stdin or a missing file)."""
    p = Path(path)
    if str(path) == "-" or not p.is_file():
        return None
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
