"""A content-addressed cache of LLM replies, in SQLite under the workspace (``cache/llm.sqlite``).

The key hashes everything that could change a reply: prompt id, model id, backend parameters, the
exact messages and the schema. A changed prompt, model or text is a miss, never a stale hit (the
opposite of caches keyed on token sums or on the text alone). Rows carry the customer id so
``forget`` can erase a customer's cached replies.

>>> c = LLMCache(None)                         # an in-memory cache
>>> k = cache_key("extract@v1+abc", "m", {}, [{"role": "user", "content": "hi"}], None)
>>> c.get(k) is None
True
>>> c.put(k, {"text": "{}", "prompt_tokens": 3}, customer_id="C1"); c.get(k)["prompt_tokens"]
3
>>> c.forget("C1")
1
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

_SCHEMA = """CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, created TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS reply_customers (key TEXT NOT NULL, customer_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reply_customers_id ON reply_customers (customer_id)"""


def cache_key(prompt_id: str, model_id: str, params: dict[str, Any], messages: list[dict[str, str]],
              schema: dict[str, Any] | None) -> str:
    payload = json.dumps({"prompt": prompt_id, "model": model_id, "params": params, "messages": messages,
                          "schema": schema}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class LLMCache:
    """Thread-safe get/put/forget. ``path=None`` keeps the cache in memory for this process only."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", check_same_thread=False,
                                   isolation_level=None)
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM replies WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any], *, customer_id: str | None = None,
            customer_ids: list[str | None] | None = None) -> None:
        """Store a reply; ``customer_ids`` when one call covered several customers' documents."""
        from ..store import norm_key

        ids = {norm_key(c) for c in (customer_ids or [customer_id]) if norm_key(c)}
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO replies (key, value) VALUES (?, ?)",
                             (key, json.dumps(value, ensure_ascii=False)))
            self._db.execute("DELETE FROM reply_customers WHERE key = ?", (key,))
            self._db.executemany("INSERT INTO reply_customers (key, customer_id) VALUES (?, ?)",
                                 [(key, c) for c in sorted(ids)])

    def forget(self, customer_id: str) -> int:
        """Delete every reply that holds ``customer_id``'s text, then vacuum so the bytes leave the disk."""
        from ..store import norm_key

        with self._lock:
            n = self._db.execute("DELETE FROM replies WHERE key IN (SELECT key FROM reply_customers WHERE "
                                 "customer_id = ?)", (norm_key(customer_id),)).rowcount
            self._db.execute("DELETE FROM reply_customers WHERE key NOT IN (SELECT key FROM replies)")
            if n and self.path is not None:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.execute("VACUUM")
        return n

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
