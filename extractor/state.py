"""Customer state: a customer's signals, joined to their profile, as they stand at a point in time.

``state(workspace, customer_id, as_of=None)`` reads the store and returns a ``CustomerState``:

* **intents**: each intent label with its first and last mention, count, best confidence, and whether
  it is active (mentioned within ``intent_active_days`` before ``as_of``);
* **sentiment**: the latest contact's, and the trend: an exponentially weighted mean of every
  contact's score (weight ``0.5 ** (age / half-life)``) compared with the same mean before the latest
  contact — ``improving`` / ``worsening`` beyond ``trend_delta``, else ``stable`` (``new`` for one contact);
* **urgency**: each contact's urgency decayed the same way, the highest now, and the peak kept;
* **constraints**: open ones; a deadline that has passed is closed, and a newer budget (money),
  channel preference or location supersedes the older one;
* **channels** and interaction counts, and the **profile**'s attributes.

Every field lists the documents and evidence quotes behind it. ``as_of`` reconstructs the state from
the documents created up to that time. Versions (``state_versions``) are bumped by ``bump_versions``
when new data touches a customer, so a refresh leaves everyone else's version alone.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .store import Store, norm_key
from .types import (
    ChannelCount,
    ConstraintState,
    CustomerState,
    EvidenceRef,
    IntentState,
    SentimentPoint,
    SentimentState,
    UrgencyState,
)

SINGLE_VALUED = {"money": "a newer budget", "channel": "a newer channel preference", "location": "a newer location"}


@dataclass(frozen=True)
class StateConfig:
    sentiment_half_life_days: float = 14.0
    urgency_half_life_days: float = 3.0
    intent_active_days: float = 30.0
    min_intent_confidence: float = 0.5  # intents other than a document's first must be at least this sure
    trend_delta: float = 0.15
    max_evidence: int = 5  # quotes listed per field (the count and documents are always complete)


NEVER = datetime.min.replace(tzinfo=timezone.utc)  # where a document without a date sorts


def _doc_order(docs: dict[str, dict]):
    """Sort key for a customer's document ids: by time (undated first), then by id, never by scan order."""
    return lambda doc_id: (docs[doc_id]["created_at"] or NEVER, doc_id)


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _decay(age: timedelta, half_life_days: float) -> float:
    return 0.5 ** (max(age.total_seconds(), 0.0) / 86400.0 / half_life_days)


def load(store: Store, keys: list[str], as_of: datetime | None) -> dict[str, dict[str, Any]]:
    """The documents, document-level signals and evidence of customers ``keys``, up to ``as_of``."""
    cut = "" if as_of is None else "AND d.created_at IS NOT NULL AND d.created_at <= ?"
    params: list[Any] = [keys] + ([as_of] if as_of is not None else [])
    store.db.execute(f"CREATE OR REPLACE TEMP TABLE st_docs AS SELECT d.customer_key, d.customer_id, d.doc_id, "
                     f"d.channel, d.created_at FROM documents d WHERE d.customer_key IN "
                     f"(SELECT unnest(?::VARCHAR[])) {cut}", params)
    out: dict[str, dict[str, Any]] = {k: {"docs": {}, "signals": [], "evidence": defaultdict(list), "overrides": []}
                                      for k in keys}
    owner: dict[str, str] = {}
    for key, cid, doc_id, channel, created in store.db.execute("SELECT * FROM st_docs").fetchall():
        out[key]["docs"][doc_id] = {"customer_id": cid, "channel": channel, "created_at": _utc(created)}
        owner[doc_id] = key
    for row in store.db.execute(
            "SELECT g.doc_id, g.sig_idx, g.kind, g.label, g.score, g.confidence, g.value FROM signals g "
            "JOIN st_docs USING (doc_id) WHERE g.scope = 'document' ORDER BY g.doc_id, g.sig_idx").fetchall():
        out[owner[row[0]]]["signals"].append(row)
    corrections = store.db.execute("SELECT o.doc_id, o.target, o.new, o.reason, o.override_id, o.old FROM overrides o "
                                   "JOIN st_docs USING (doc_id) WHERE o.kind = 'signal' "
                                   "ORDER BY o.created_at, o.override_id").fetchall()  # listed as they were made
    for doc_id, kind, new, reason, oid, old in corrections:
        out[owner[doc_id]]["overrides"].append({"override_id": oid, "doc_id": doc_id, "kind": kind, "old": old,
                                                "new": new, "reason": reason})
    for data in out.values():
        if data["overrides"]:
            data["signals"] = _apply_corrections(data["signals"], data["overrides"])
    for doc_id, sig_idx, turn, start, end, text in store.db.execute(
            'SELECT e.doc_id, e.sig_idx, e.turn, e.start, e."end", e.text FROM evidence e JOIN st_docs USING '
            '(doc_id) ORDER BY e.doc_id, e.sig_idx, e.start').fetchall():
        out[owner[doc_id]]["evidence"][(doc_id, sig_idx)].append((turn, start, end, text))
    return out


def _apply_corrections(rows: list[tuple], corrections: list[dict]) -> list[tuple]:
    """An analyst's label replaces the model's (first) signal of that kind in that document; it is sure."""
    from .overrides import SENTIMENT_SCORE, URGENCY_SCORE

    fix = {(c["doc_id"], c["kind"]): c["new"] for c in corrections}
    out, done = [], set()
    for doc_id, sig_idx, kind, label, score, conf, value in rows:
        key = (doc_id, kind)
        if key not in fix:
            out.append((doc_id, sig_idx, kind, label, score, conf, value))
        elif key not in done:  # the first one carries the correction (and keeps its quotes); the rest go
            done.add(key)
            new = fix[key]
            score = SENTIMENT_SCORE.get(new, URGENCY_SCORE.get(new)) if kind != "intent" else score
            out.append((doc_id, sig_idx, kind, new, score, 1.0, value))
    for (doc_id, kind), new in fix.items():
        if (doc_id, kind) not in done:  # the model had none: the correction stands alone
            score = SENTIMENT_SCORE.get(new, URGENCY_SCORE.get(new)) if kind != "intent" else None
            out.append((doc_id, -1, kind, new, score, 1.0, None))
    return out


def _written_id(data: dict[str, Any]) -> str | None:
    """The customer id as the customer's documents write it: as the earliest that has one writes it (not the
    first the store happens to return, which could change between two reads of the same documents)."""
    docs = data["docs"]
    return next((docs[d]["customer_id"] for d in sorted(docs, key=_doc_order(docs)) if docs[d]["customer_id"]), None)


def build(customer_id: str, data: dict[str, Any], profile: dict | None, as_of: datetime,
          cfg: StateConfig = StateConfig(), version: int | None = None) -> CustomerState:
    """The state of one customer from ``load``'s rows (pure: no I/O)."""
    docs = data["docs"]

    def refs(doc_id: str, sig_idx: int, kind: str, label: str) -> list[EvidenceRef]:
        d = docs[doc_id]
        return [EvidenceRef(doc_id=doc_id, created_at=d["created_at"], channel=d["channel"], signal=f"{kind}:{label}",
                            turn=turn, start=start, end=end, text=text)
                for turn, start, end, text in data["evidence"].get((doc_id, sig_idx), [])]

    def when(doc_id: str) -> datetime:
        return docs[doc_id]["created_at"] or NEVER

    order = _doc_order(docs)  # documents of the same moment by id, not by hash or scan order

    by_kind: dict[str, list[tuple]] = defaultdict(list)
    first_intent_seen: set[str] = set()
    for doc_id, sig_idx, kind, label, score, conf, value in sorted(data["signals"], key=lambda r: (when(r[0]), r[1])):
        val = json.loads(value) if value else None
        if kind == "intent":
            primary = doc_id not in first_intent_seen
            first_intent_seen.add(doc_id)
            if label == "out_of_scope" or (not primary and conf < cfg.min_intent_confidence):
                continue
        by_kind[kind].append((doc_id, sig_idx, label, score, conf, val))

    channels: dict[str, list[str]] = defaultdict(list)
    for doc_id in sorted(docs, key=order):
        channels[docs[doc_id]["channel"] or "unknown"].append(doc_id)
    times = [d["created_at"] for d in docs.values() if d["created_at"] is not None]
    return CustomerState(
        customer_id=customer_id, as_of=as_of, version=version, profile=profile, interactions=len(docs),
        first_contact=min(times, default=None), last_contact=max(times, default=None),
        channels=[ChannelCount(channel=c, count=len(ids), documents=ids) for c, ids in sorted(channels.items())],
        intents=_intents(by_kind["intent"], when, order, refs, as_of, cfg),
        sentiment=_sentiment(by_kind["sentiment"], when, refs, as_of, cfg),
        urgency=_urgency(by_kind["urgency"], when, refs, as_of, cfg),
        **_constraints(by_kind["constraint"], when, order, refs, as_of, cfg),
        documents=sorted(docs, key=order), overrides=data.get("overrides", []))


def _intents(rows, when, order, refs, as_of, cfg) -> list[IntentState]:
    groups: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        groups[row[2]].append(row)
    out = []
    for label, items in groups.items():
        seen = [when(r[0]) for r in items]
        evidence = [e for r in reversed(items) for e in refs(r[0], r[1], "intent", label)][: cfg.max_evidence]
        out.append(IntentState(label=label, active=as_of - max(seen) <= timedelta(days=cfg.intent_active_days),
                               count=len(items), first_seen=min(seen), last_seen=max(seen),
                               confidence=round(max(r[4] for r in items), 4),
                               documents=sorted({r[0] for r in items}, key=order), evidence=evidence))
    return sorted(out, key=lambda i: (not i.active, -i.last_seen.timestamp(), -i.count, i.label))


def _weighted(rows, when, as_of, half_life) -> tuple[float, list[float]]:
    weights = [_decay(as_of - when(r[0]), half_life) for r in rows]
    total = sum(weights)
    mean = sum(w * r[3] for w, r in zip(weights, rows)) / total if total > 0 else sum(r[3] for r in rows) / len(rows)
    return mean, weights


def _sentiment(rows, when, refs, as_of, cfg) -> SentimentState | None:
    rows = [r for r in rows if r[3] is not None]
    if not rows:
        return None
    latest = rows[-1]
    mean, weights = _weighted(rows, when, as_of, cfg.sentiment_half_life_days)
    before = _weighted(rows[:-1], when, as_of, cfg.sentiment_half_life_days)[0] if len(rows) > 1 else None
    trend = "new" if before is None else "improving" if mean - before > cfg.trend_delta else \
        "worsening" if before - mean > cfg.trend_delta else "stable"
    history = [SentimentPoint(doc_id=r[0], created_at=when(r[0]), label=r[2], score=r[3], weight=round(w, 4))
               for r, w in zip(rows, weights)]
    evidence = [e for r in reversed(rows) for e in refs(r[0], r[1], "sentiment", r[2])][: cfg.max_evidence]
    return SentimentState(label=latest[2], score=latest[3], at=when(latest[0]), trend_score=round(mean, 4),
                          trend=trend, previous_trend_score=None if before is None else round(before, 4),
                          half_life_days=cfg.sentiment_half_life_days, history=history, evidence=evidence)


def _urgency(rows, when, refs, as_of, cfg) -> UrgencyState | None:
    from .local.urgency import level

    rows = [r for r in rows if r[3] is not None]
    if not rows:
        return None
    decayed = [r[3] * _decay(as_of - when(r[0]), cfg.urgency_half_life_days) for r in rows]
    now_i = max(range(len(rows)), key=lambda i: (decayed[i], when(rows[i][0])))
    peak = max(rows, key=lambda r: (r[3], when(r[0])))
    evidence = refs(rows[now_i][0], rows[now_i][1], "urgency", rows[now_i][2])
    if peak is not rows[now_i]:
        evidence += refs(peak[0], peak[1], "urgency", peak[2])
    return UrgencyState(score=round(decayed[now_i], 4), level=level(decayed[now_i]),
                        half_life_days=cfg.urgency_half_life_days, peak=round(peak[3], 4), peak_level=level(peak[3]),
                        peak_at=when(peak[0]), peak_doc=peak[0], now_doc=rows[now_i][0],
                        evidence=evidence[: cfg.max_evidence])


def _deadline_end(iso: str | None) -> datetime | None:
    """The last moment of a deadline written as ISO date, date-time or month (None when unknown)."""
    if not iso:
        return None
    try:
        if len(iso) == 7:  # YYYY-MM: the end of that month
            first = datetime.strptime(iso, "%Y-%m").replace(tzinfo=timezone.utc)
            return (first + timedelta(days=32)).replace(day=1) - timedelta(microseconds=1)
        if len(iso) == 10:
            return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc) + timedelta(days=1, microseconds=-1)
        return _utc(datetime.fromisoformat(iso))
    except ValueError:
        return None


def _constraints(rows, when, order, refs, as_of, cfg) -> dict[str, list[ConstraintState]]:
    groups: dict[tuple, list[tuple]] = {}
    for r in rows:
        label, value = r[2], r[5]
        if label == "datetime" and not (isinstance(value, dict) and value.get("deadline")):
            continue  # a date mentioned is not a constraint; a deadline is
        key = (label, json.dumps(value, sort_keys=True)) if label not in SINGLE_VALUED else \
            (label, bool(isinstance(value, dict) and value.get("avoid")))
        groups.setdefault(key, []).append(r)
    open_, closed = [], []
    for (label, _), items in groups.items():
        chain = items if label in SINGLE_VALUED else [items[-1]]  # single-valued: each older one is superseded
        for i, r in enumerate(chain):
            same = [x for x in items if x[5] == r[5]] if label not in SINGLE_VALUED else [r]
            c = ConstraintState(type="deadline" if label == "datetime" else label, value=r[5], status="open",
                                first_seen=min(when(x[0]) for x in same), last_seen=max(when(x[0]) for x in same),
                                documents=sorted({x[0] for x in same}, key=order),
                                evidence=[e for x in same for e in refs(x[0], x[1], "constraint", label)]
                                [: cfg.max_evidence])
            end = _deadline_end(r[5].get("iso")) if label == "datetime" and isinstance(r[5], dict) else None
            if i < len(chain) - 1:
                newer = when(chain[-1][0])
                c.status, c.reason = "superseded", f"superseded by {SINGLE_VALUED[label]} on {newer:%Y-%m-%d}"
            elif end is not None and end < as_of:
                c.status, c.reason = "closed", f"the deadline passed on {end:%Y-%m-%d}"
            (open_ if c.status == "open" else closed).append(c)
    key = lambda c: (c.type, c.last_seen or NEVER)  # noqa: E731
    return {"constraints": sorted(open_, key=key), "closed_constraints": sorted(closed, key=key)}


# -- the workspace API --------------------------------------------------------------------------------------------
def state(workspace: str | Path, customer_id: str, *, as_of: datetime | None = None,
          cfg: StateConfig = StateConfig(), store: Store | None = None) -> CustomerState | None:
    """The state of ``customer_id`` at ``as_of`` (default: now); None when the workspace has nothing of them."""
    from .index import _reader_for
    from .profiles import profile_of

    store = store or _reader_for(workspace)
    key = norm_key(customer_id)
    when = _utc(as_of) or datetime.now(timezone.utc)
    data = load(store, [key], when if as_of is not None else None)[key]
    profile = profile_of(store, key)
    if not data["docs"] and profile is None:
        return None
    # as of a time: the last version whose data ended by then (versions record their last contact)
    row = store.db.execute("SELECT max(version) FROM state_versions WHERE customer_key = ?" +
                           ("" if as_of is None else " AND last_contact <= ?"),
                           [key] + ([] if as_of is None else [when])).fetchone()
    return build(_written_id(data) or customer_id, data, profile, when, cfg, version=row[0] if row else None)


def customer_keys(store: Store) -> list[str]:
    """Every customer the workspace knows: with documents or a profile (opted-out markers excluded)."""
    return [r[0] for r in store.db.execute(
        "SELECT customer_key FROM documents WHERE customer_key IS NOT NULL UNION "
        "SELECT customer_key FROM profiles WHERE NOT opted_out ORDER BY 1").fetchall()]


CHUNK = 20_000  # customers read from the store at a time (bounds memory for large workspaces)


def iter_states(workspace: str | Path, *, as_of: datetime | None = None, cfg: StateConfig = StateConfig(),
                keys: list[str] | None = None, store: Store | None = None):
    """The state of every customer (or of ``keys``), read from the store ``CHUNK`` customers at a time."""
    from .index import _reader_for
    from .profiles import profiles_of

    store = store or _reader_for(workspace)
    keys = customer_keys(store) if keys is None else [k for k in map(norm_key, keys) if k]
    when = _utc(as_of) or datetime.now(timezone.utc)
    versions = dict(store.db.execute("SELECT customer_key, max(version) FROM state_versions WHERE customer_key IN "
                                     "(SELECT unnest(?::VARCHAR[])) GROUP BY 1", [keys]).fetchall())
    for lo in range(0, len(keys), CHUNK):
        chunk = keys[lo:lo + CHUNK]
        loaded = load(store, chunk, when if as_of is not None else None)
        profiles = profiles_of(store, chunk)
        for key in chunk:
            data, profile = loaded[key], profiles.get(key)
            if not data["docs"] and profile is None:
                continue
            shown = _written_id(data) or (profile or {}).get("attributes", {}).get("customer_id") or key
            yield build(str(shown), data, profile, when, cfg, version=versions.get(key) if as_of is None else None)


def states(workspace: str | Path, **kwargs) -> list[CustomerState]:
    """``list(iter_states(...))``."""
    return list(iter_states(workspace, **kwargs))


def digest(data: dict[str, Any], profile: dict | None) -> str:
    """A hash of everything a customer's state is computed from (documents, signals, evidence, profile)."""
    payload = json.dumps({"docs": sorted((k, v["channel"], str(v["created_at"])) for k, v in data["docs"].items()),
                          "signals": sorted(map(list, data["signals"])),
                          "evidence": sorted((list(k), v) for k, v in data["evidence"].items()),
                          "profile": (profile or {}).get("attributes"), "overrides": data.get("overrides")},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def bump_versions(store: Store, customer_ids: list[str | None], *, on_state=None,
                  cfg: StateConfig = StateConfig()) -> dict[str, int]:
    """Give each touched customer whose inputs changed a new state version; ``{key: version}`` of those bumped.

    ``on_state(state)``: also called with each touched customer's current state, built from the same read."""
    keys = sorted({k for k in map(norm_key, customer_ids) if k})
    bumped: dict[str, int] = {}
    for lo in range(0, len(keys), CHUNK):
        bumped.update(_bump(store, keys[lo:lo + CHUNK], on_state, cfg))
    return bumped


def _bump(store: Store, keys: list[str], on_state=None, cfg: StateConfig = StateConfig()) -> dict[str, int]:
    from .profiles import profiles_of

    if not keys:
        return {}
    loaded = load(store, keys, None)
    profiles = profiles_of(store, keys)
    known = store.db.execute("SELECT customer_key, arg_max(digest, version), max(version) FROM state_versions "
                             "WHERE customer_key IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1", [keys]).fetchall()
    latest, top = {k: d for k, d, _ in known}, {k: v for k, _, v in known}
    now, bumped, rows = datetime.now(timezone.utc), {}, []
    for key in keys:
        data = loaded[key]
        d = digest(data, profiles.get(key))
        if latest.get(key) == d:
            continue
        bumped[key] = top.get(key, 0) + 1
        times = [v["created_at"] for v in data["docs"].values() if v["created_at"] is not None]
        rows.append((key, bumped[key], now, d, len(data["docs"]), max(times, default=None)))
    if rows:
        store.insert("state_versions", rows, 6)
    if on_state is not None:
        for key in keys:
            data, profile = loaded[key], profiles.get(key)
            if data["docs"] or profile is not None:
                on_state(build(str(_written_id(data) or key), data, profile, now, cfg,
                               version=bumped.get(key, top.get(key))))
    return bumped
