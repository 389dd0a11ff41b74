"""Human overrides: an analyst corrects a signal or suppresses an action, with a reason. Overrides win.

They live in the store's ``overrides`` table, apart from the extracted signals, so re-extracting a
document never undoes them. ``corrections_as_training`` turns signal corrections into labelled rows
(``{"text", "label"}``) for ``signals train``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .store import Store, norm_key

KINDS = ("intent", "sentiment", "urgency")
SENTIMENT_SCORE = {"negative": -0.6, "neutral": 0.0, "positive": 0.6}  # a corrected label's score
URGENCY_SCORE = {"low": 0.125, "medium": 0.375, "high": 0.625, "critical": 0.875}  # the middle of each level


def _known_intents(store: Store) -> set[str]:
    """Intent labels the workspace's results use, and the default taxonomy's."""
    from .taxonomy import load_taxonomy

    seen = {r[0] for r in store.db.execute("SELECT DISTINCT label FROM signals WHERE kind = 'intent'").fetchall()}
    return seen | {i.label for i in load_taxonomy(None).intents} | {"out_of_scope"}


def correct_signal(workspace: str | Path, doc_id: str, kind: str, label: str, reason: str, *,
                   new_label: bool = False) -> dict[str, Any]:
    """Record that document ``doc_id``'s ``kind`` is ``label`` (whatever the model said).

    An intent label nobody has used yet is refused unless ``new_label`` (a typo would become a label);
    a second correction of the same signal replaces the first, and says which it replaced."""
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind!r}: corrections are for {', '.join(KINDS)}")
    if kind == "sentiment" and label not in SENTIMENT_SCORE:
        raise ConfigError(f"sentiment labels are {', '.join(SENTIMENT_SCORE)}")
    if kind == "urgency" and label not in URGENCY_SCORE:
        raise ConfigError(f"urgency levels are {', '.join(URGENCY_SCORE)}")
    if not reason.strip():
        raise ConfigError("an override needs a --reason")
    from .index import close_readers
    from .state import bump_versions

    close_readers(workspace)
    with Store(workspace) as store:
        row = store.db.execute("SELECT customer_key, customer_id FROM documents WHERE doc_id = ?", [doc_id]).fetchone()
        if row is None:
            raise ConfigError(f"No document {doc_id!r} in the store of {workspace}")
        if kind == "intent" and not new_label and label not in (known := _known_intents(store)):
            import difflib

            near = difflib.get_close_matches(label, sorted(known), n=3)
            raise ConfigError(f"intent {label!r} is not a label of this workspace's results or the default taxonomy"
                              + (f" (did you mean {', '.join(near)}?)" if near else "")
                              + "; to introduce a new label on purpose, add --new-label")
        old = store.db.execute("SELECT label FROM signals WHERE doc_id = ? AND kind = ? AND scope = 'document' "
                               "ORDER BY sig_idx LIMIT 1", [doc_id, kind]).fetchone()
        oid = uuid.uuid4().hex[:12]
        replaced = store.db.execute("DELETE FROM overrides WHERE kind = 'signal' AND doc_id = ? AND target = ? "
                                    "RETURNING override_id", [doc_id, kind]).fetchall()
        store.db.execute("INSERT INTO overrides VALUES (?, ?, ?, 'signal', ?, ?, ?, ?, ?)",
                         [oid, row[0], doc_id, kind, old[0] if old else None, label, reason.strip(),
                          datetime.now(timezone.utc)])
        bump_versions(store, [row[1]])
    return {"override_id": oid, "doc_id": doc_id, "kind": kind, "old": old[0] if old else None, "new": label,
            "replaced": replaced[0][0] if replaced else None}


def suppress_action(workspace: str | Path, customer_id: str, action: str, reason: str) -> dict[str, Any]:
    """Suppress an action (its text or a rule name) for a customer."""
    if not reason.strip():
        raise ConfigError("an override needs a --reason")
    from .index import close_readers
    from .store import STORE_FILE

    if not (Path(workspace) / STORE_FILE).exists():
        raise ConfigError(f"No store in {workspace}: name the workspace with --workspace")
    close_readers(workspace)
    oid = uuid.uuid4().hex[:12]
    key = norm_key(customer_id)
    with Store(workspace) as store:
        known = store.db.execute("SELECT count(*) FROM documents WHERE customer_key = $k", {"k": key}).fetchone()[0] \
            + store.db.execute("SELECT count(*) FROM profiles WHERE customer_key = $k AND NOT opted_out",
                               {"k": key}).fetchone()[0]
        if not known:
            raise ConfigError(f"No customer {customer_id!r} in {workspace}: check the id (`signals state ID`)")
        store.db.execute("INSERT INTO overrides VALUES (?, ?, NULL, 'suppress', ?, NULL, NULL, ?, ?)",
                         [oid, key, action.strip(), reason.strip(), datetime.now(timezone.utc)])
    return {"override_id": oid, "customer_id": customer_id, "suppressed": action}


def remove(workspace: str | Path, override_id: str) -> int:
    from .index import close_readers
    from .state import bump_versions

    close_readers(workspace)
    with Store(workspace) as store:
        gone = store.db.execute("DELETE FROM overrides WHERE override_id = ? RETURNING kind, customer_key",
                                [override_id]).fetchall()
        bump_versions(store, [key for kind, key in gone if kind == "signal"])  # the model's label is back
        return len(gone)


def listing(store: Store) -> list[dict[str, Any]]:
    cols = ("override_id", "customer_key", "doc_id", "kind", "target", "old", "new", "reason", "created_at")
    return [dict(zip(cols, r)) for r in store.db.execute(f"SELECT {', '.join(cols)} FROM overrides "
                                                         "ORDER BY created_at").fetchall()]


def suppressions(store: Store, keys: list[str]) -> dict[str, dict[str, str]]:
    """``{customer_key: {action or rule: reason}}``."""
    out: dict[str, dict[str, str]] = {}
    for key, target, reason in store.db.execute(
            "SELECT customer_key, target, reason FROM overrides WHERE kind = 'suppress' AND customer_key IN "
            "(SELECT unnest(?::VARCHAR[]))", [keys]).fetchall():
        out.setdefault(key, {})[target.strip().lower()] = reason  # matched without regard to case
    return out


def customer_text(store: Store, doc_id: str) -> str:
    """What the customer wrote in a document (their turns, in order), as training text."""
    rows = store.db.execute("SELECT text FROM segments WHERE doc_id = ? AND (role IS NULL OR role IN "
                            "('customer', 'unknown')) ORDER BY turn NULLS FIRST, start", [doc_id]).fetchall()
    return " ".join(r[0] for r in rows)


def corrections_as_training(workspace: str | Path, out: str | Path, kind: str | None = None) -> int:
    """Write signal corrections as ``{"text", "label", "task"}`` JSONL for ``signals train``; rows written.

    The file is registered as a managed output, so ``signals forget`` removes a customer's rows from it."""
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"--kind {kind!r}: corrections are of {', '.join(KINDS)}")
    from . import outputs
    from .index import close_readers

    close_readers(workspace)
    with Store(workspace, read_only=True) as store:
        rows = store.db.execute("SELECT o.doc_id, o.target, o.new, d.customer_id FROM overrides o JOIN documents d "
                                "USING (doc_id) WHERE o.kind = 'signal' ORDER BY o.created_at").fetchall()
        lines = [json.dumps({"text": customer_text(store, doc), "label": new, "task": target, "id": doc,
                             "customer_id": cid}, ensure_ascii=False) + "\n"
                 for doc, target, new, cid in rows if kind is None or target == kind]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), "utf-8")
    outputs.register(workspace, path)
    return len(lines)
