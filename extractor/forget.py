"""Erasure: ``forget(workspace, customer)`` removes a customer from everything the workspace holds.

Store rows (documents, segments, signals, evidence, profile, state history, overrides), index vectors
and keywords, cached LLM replies and the managed output files lose the customer's rows; then the
database and the cache are rewritten so none of the bytes stay on disk. The audit log gets a record
with counts and an audit id only: no id, name, e-mail or text of the customer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .store import Store, norm_key, optout_marker

log = logging.getLogger(__name__)


def forget(workspace: str | Path, customer_id: str, *, reason: str = "erasure request",
           keep_profile: bool = False) -> dict[str, Any]:
    """Erase ``customer_id`` (matched as a normalised key). ``keep_profile`` keeps only an opt-out marker."""
    from . import audit, outputs
    from .index import Index, close_readers

    key = norm_key(customer_id)
    if key is None:
        from .errors import ConfigError

        raise ConfigError("signals forget needs a customer id")
    ws = Path(workspace)
    close_readers(ws)
    counts: dict[str, int] = {}
    found = False
    if (ws / "store.duckdb").exists():
        idx = Index.open(ws)
        with Store(ws) as store:
            held = store.db.execute(  # anything of theirs at all: an erasure of nobody is reported as such
                "SELECT (SELECT count(*) FROM documents WHERE customer_key = $k) + (SELECT count(*) FROM profiles "
                "WHERE customer_key IN ($k, $m)) + (SELECT count(*) FROM state_versions WHERE customer_key = $k) + "
                "(SELECT count(*) FROM overrides WHERE customer_key = $k)",
                {"k": key, "m": optout_marker(key)}).fetchone()[0]
            found = bool(held)
            docs, seg_ids = store.delete_customer(key, keep_profile=keep_profile)
            idx.apply([], seg_ids, store, erase=True, docs=docs)
            idx.save()
            store.compact()
        counts.update(documents=len(docs), segments=len(seg_ids))
    else:
        docs = []
    cache = ws / "cache" / "llm.sqlite"
    if cache.exists():
        from .llm.cache import LLMCache

        c = LLMCache(cache)
        counts["cached_replies"] = c.forget(key)
        c.close()
    counts["output_rows"] = sum(outputs.scrub(p, key, set(docs)) for p in outputs.paths(ws))
    found = found or bool(counts.get("cached_replies") or counts["output_rows"])
    audit_id = audit.record(ws, "forget", reason=reason, removed=counts, found=found)
    log.info("forgot a customer: %s (audit id %s)", counts, audit_id)
    return {**counts, "found": found, "audit_id": audit_id}
