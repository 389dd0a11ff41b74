"""The signal store: extraction results in an embedded DuckDB database inside the workspace.

Tables: ``documents``, ``segments`` (sentences of each turn or text, with offsets into that unit),
``signals`` and ``evidence``. A search hit is a segment; it joins to its document's signals
without loading anything else. Re-storing a document replaces its rows, so there are no duplicates.

>>> import tempfile
>>> from datetime import datetime, timezone
>>> from extractor.types import ExtractionResult, Provenance
>>> res = ExtractionResult(id="d1", customer_id="C1", text="Refund me. Now!",
...                        provenance=Provenance(version="0", created=datetime.now(timezone.utc)))
>>> with Store(tempfile.mkdtemp()) as st:
...     added, removed = st.upsert([res])
...     [s.text for s in added], st.counts()["segments"]
(['Refund me.', 'Now!'], 2)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .types import ExtractionResult

log = logging.getLogger(__name__)

STORE_FILE = "store.duckdb"

_DDL = """
CREATE TABLE IF NOT EXISTS documents (doc_id VARCHAR PRIMARY KEY, customer_id VARCHAR, channel VARCHAR,
    created_at TIMESTAMPTZ, text VARCHAR, n_turns INTEGER, customer_key VARCHAR);
CREATE TABLE IF NOT EXISTS segments (seg_id BIGINT PRIMARY KEY, doc_id VARCHAR, turn INTEGER, speaker VARCHAR,
    role VARCHAR, start INTEGER, "end" INTEGER, text VARCHAR);
CREATE TABLE IF NOT EXISTS signals (doc_id VARCHAR, sig_idx INTEGER, kind VARCHAR, label VARCHAR, score DOUBLE,
    confidence DOUBLE, speaker VARCHAR, value VARCHAR, extractor VARCHAR, scope VARCHAR);
CREATE TABLE IF NOT EXISTS evidence (doc_id VARCHAR, sig_idx INTEGER, turn INTEGER, start INTEGER, "end" INTEGER,
    text VARCHAR, match VARCHAR);
CREATE TABLE IF NOT EXISTS profiles (customer_key VARCHAR PRIMARY KEY, customer_id VARCHAR, attrs VARCHAR,
    opted_out BOOLEAN, source VARCHAR, imported_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS state_versions (customer_key VARCHAR, version INTEGER, computed_at TIMESTAMPTZ,
    digest VARCHAR, n_documents INTEGER, last_contact TIMESTAMPTZ, PRIMARY KEY (customer_key, version));
CREATE TABLE IF NOT EXISTS overrides (override_id VARCHAR PRIMARY KEY, customer_key VARCHAR, doc_id VARCHAR,
    kind VARCHAR, target VARCHAR, old VARCHAR, new VARCHAR, reason VARCHAR, created_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS ingested (path VARCHAR, sha256 VARCHAR, n_in INTEGER, n_ok INTEGER, n_rejected INTEGER,
    n_opted_out INTEGER, output VARCHAR, arrived_at TIMESTAMPTZ, done_at TIMESTAMPTZ, PRIMARY KEY (path, sha256));
CREATE INDEX IF NOT EXISTS segments_doc ON segments (doc_id);
CREATE INDEX IF NOT EXISTS documents_customer ON documents (customer_key);
CREATE INDEX IF NOT EXISTS signals_doc ON signals (doc_id);
"""


def norm_key(value: object) -> str | None:
    """A customer key as it is matched: NFC, trimmed, lower-case (``" Ann@X.com "`` → ``"ann@x.com"``)."""
    if value is None:
        return None
    key = unicodedata.normalize("NFC", str(value)).strip().lower()
    return key or None


def optout_marker(key: str | None) -> str | None:
    """What the store keeps of an opted-out customer: a hash of the key, never the key itself."""
    return None if key is None else "optout:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def is_opted_out(customer_id: str | None, markers: set[str]) -> bool:
    return bool(markers) and optout_marker(norm_key(customer_id)) in markers


@dataclass(frozen=True)
class SegmentRow:
    seg_id: int
    doc_id: str
    turn: int | None
    speaker: str | None
    role: str | None
    start: int
    end: int
    text: str


def segment_id(doc_id: str, turn: int | None, start: int) -> int:
    """A stable 63-bit id for a segment (FAISS ids are int64)."""
    digest = hashlib.blake2b(f"{doc_id}\x00{turn}\x00{start}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big") & 0x7FFF_FFFF_FFFF_FFFF


def document_id(doc_id: str) -> int:
    """The 63-bit id of a document's vector (no segment has turn -1 and start -1)."""
    return segment_id(doc_id, -1, -1)


def segments_of(res: ExtractionResult) -> list[SegmentRow]:
    """The sentences of every unit (turn, or the text) of a result, with offsets into that unit."""
    from .segment import sentence_spans

    units = [(None, None, "customer", res.text or "")] if res.turns is None else \
        [(i, t.speaker, t.role, t.text) for i, t in enumerate(res.turns)]
    out = []
    for turn, speaker, role, text in units:
        for start, end in sentence_spans(text):
            out.append(SegmentRow(segment_id(res.id, turn, start), res.id, turn, speaker, role, start, end,
                                  text[start:end]))
    return out


LOCK_WAIT = 30.0  # seconds to wait for another process (a watcher, a search) to release the file


def _connect(path: Path, *, read_only: bool):
    """Open the DuckDB file, waiting while another process holds its lock (DuckDB allows one writer)."""
    import time

    import duckdb

    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Store:
    """One DuckDB file per workspace. Use as a context manager, or call ``close()``."""

    def __init__(self, workspace: str | Path, *, read_only: bool = False):
        self.workspace = Path(workspace)
        self.path = self.workspace / STORE_FILE
        if read_only and not self.path.exists():
            from .errors import ConfigError

            raise ConfigError(f"No store in {self.workspace}: add results first (`signals index build RESULTS`, "
                              "`signals extract ... --index`, `signals watch DIR`), or pass --workspace")
        if not read_only:
            self.workspace.mkdir(parents=True, exist_ok=True)
        self.db = _connect(self.path, read_only=read_only)
        if not read_only:
            self._migrate()
            self.db.execute(_DDL)

    def _migrate(self) -> None:
        """Bring a store written by an earlier version up to date (documents gained ``customer_key``)."""
        cols = {r[0] for r in self.db.execute("SELECT column_name FROM information_schema.columns WHERE "
                                              "table_name = 'documents'").fetchall()}
        if cols and "customer_key" not in cols:
            self.db.execute("ALTER TABLE documents ADD COLUMN customer_key VARCHAR")
            ids = [r[0] for r in self.db.execute("SELECT DISTINCT customer_id FROM documents").fetchall()]
            self.db.executemany("UPDATE documents SET customer_key = ? WHERE customer_id = ?",
                                [(norm_key(c), c) for c in ids if c is not None])

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- writing --------------------------------------------------------------------------------------
    def upsert(self, results: Iterable[ExtractionResult]) -> tuple[list[SegmentRow], list[int]]:
        """Store ``results``, replacing earlier rows of the same documents.

        Returns the segments added and the ids of the segments removed (for the index to follow)."""
        results = list(results)
        removed = self.delete_docs([r.id for r in results])
        added: list[SegmentRow] = []
        docs, sigs, evs = [], [], []
        for r in results:
            docs.append((r.id, r.customer_id, r.channel, r.created_at, r.text, len(r.turns) if r.turns else None,
                         norm_key(r.customer_id)))
            added += segments_of(r)
            for i, s in enumerate(r.signals):
                sigs.append((r.id, i, s.kind, s.label, s.score, s.confidence, s.speaker,
                             json.dumps(s.value, ensure_ascii=False, default=str) if s.value is not None else None,
                             s.extractor, s.scope))
                evs += [(r.id, i, e.turn, e.start, e.end, e.text, e.match) for e in s.evidence]
        self.db.execute("BEGIN")
        try:
            self.insert("documents", docs, 7)
            self.insert("segments", [tuple(vars(s).values()) for s in added], 8)
            self.insert("signals", sigs, 10)
            self.insert("evidence", evs, 7)
            self.db.execute("COMMIT")
        except Exception:
            self.db.execute("ROLLBACK")
            raise
        return added, removed

    def insert(self, table: str, rows: list[tuple], width: int) -> None:
        """Bulk insert through Arrow (``executemany`` costs about a millisecond a row)."""
        if not rows:
            return
        import pyarrow as pa

        cols = [f"c{i}" for i in range(width)]
        arrow = pa.table(dict(zip(cols, map(list, zip(*rows)))))
        self.db.register("_rows", arrow)
        try:
            self.db.execute(f"INSERT INTO {table} SELECT * FROM _rows")
        finally:
            self.db.unregister("_rows")

    def delete_docs(self, doc_ids: list[str]) -> list[int]:
        """Remove documents and everything of theirs; returns the removed segment ids."""
        if not doc_ids:
            return []
        self.db.execute("CREATE OR REPLACE TEMP TABLE gone AS SELECT doc_id FROM documents "
                        "WHERE doc_id IN (SELECT unnest(?::VARCHAR[]))", [doc_ids])
        if not self.db.execute("SELECT count(*) FROM gone").fetchone()[0]:  # all new (the usual refresh): done
            return []
        seg_ids = [r[0] for r in self.db.execute("SELECT seg_id FROM segments JOIN gone USING (doc_id)").fetchall()]
        for table in ("evidence", "signals", "segments", "documents"):
            self.db.execute(f"DELETE FROM {table} WHERE doc_id IN (SELECT doc_id FROM gone)")
        return seg_ids

    def clear_documents(self) -> None:
        """Remove every document and what was extracted from it (profiles, versions and overrides stay)."""
        for table in ("evidence", "signals", "segments", "documents"):
            self.db.execute(f"DELETE FROM {table}")

    def delete_customer(self, customer_id: str, *, keep_profile: bool = False) -> tuple[list[str], list[int]]:
        """Remove every document, the profile and the state history of ``customer_id`` (matched as a key).

        ``keep_profile`` leaves an opt-out marker (a hash of the key) so later runs still skip them.
        Returns ``(doc ids, segment ids)`` removed."""
        key = norm_key(customer_id)
        docs = [r[0] for r in self.db.execute("SELECT doc_id FROM documents WHERE customer_key = ?",
                                              [key]).fetchall()]
        seg_ids = self.delete_docs(docs)
        for table in ("profiles", "state_versions", "overrides"):
            self.db.execute(f"DELETE FROM {table} WHERE customer_key = ?", [key])
        if keep_profile:
            self.db.execute("INSERT OR REPLACE INTO profiles VALUES (?, NULL, NULL, true, NULL, now())",
                            [optout_marker(key)])
        return docs, seg_ids

    def opted_out(self) -> set[str]:
        """Opt-out markers of the customers to skip (see ``is_opted_out``)."""
        return {r[0] for r in self.db.execute("SELECT customer_key FROM profiles WHERE opted_out").fetchall()}

    def compact(self) -> None:
        """Rewrite the database into a fresh file and swap it in, so deleted rows leave the disk.

        DuckDB reuses freed blocks but does not wipe them, so after a delete the bytes can still be in
        the file; copying the live rows to a new file is the only way to be sure they are gone."""
        fresh = self.path.with_name(self.path.name + ".compact")
        for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
            leftover.unlink(missing_ok=True)
        self.db.execute("CHECKPOINT")
        self.db.execute(f"ATTACH '{fresh.as_posix()}' AS fresh")
        name = self.db.execute("SELECT current_database()").fetchone()[0]
        self.db.execute(f'COPY FROM DATABASE "{name}" TO fresh')
        self.db.execute("DETACH fresh")
        self.db.close()
        with fresh.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(fresh, self.path)
        self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
        self.db = _connect(self.path, read_only=False)

    # -- reading --------------------------------------------------------------------------------------
    def _filter(self, where: str | None, columns: str):
        """The rows (``columns`` of segment ``s``) matching ``where``; None without a filter."""
        if not where or not where.strip():
            return None
        from .where import parse, to_sql

        cond, params = to_sql(parse(where))
        join = " JOIN documents d USING (doc_id)" if "d." in cond else ""  # signal-only filters skip the join
        return self.db.execute(f"SELECT {columns} FROM segments s{join} WHERE {cond}", params).fetchnumpy()

    def filter_ids(self, where: str | None) -> np.ndarray | None:
        """Segment ids (int64 array) matching ``where`` (the ``--where`` grammar); None without a filter."""
        rows = self._filter(where, "s.seg_id")
        return None if rows is None else rows["seg_id"].astype(np.int64)

    def filter_with_docs(self, where: str | None) -> tuple[np.ndarray, list[str]] | None:
        """``filter_ids`` and the ids of the documents those segments belong to, from one query."""
        rows = self._filter(where, "s.seg_id, s.doc_id")
        if rows is None:
            return None
        return rows["seg_id"].astype(np.int64), sorted(set(rows["doc_id"].tolist()))

    def segment_ids_of(self, doc_ids: list[str], allowed: np.ndarray | None = None) -> dict[str, list[int]]:
        """Each document's segment ids (only those in ``allowed``, when given)."""
        out: dict[str, list[int]] = {d: [] for d in doc_ids}
        rows = self.db.execute("SELECT doc_id, seg_id FROM segments WHERE doc_id IN (SELECT unnest(?::VARCHAR[])) "
                               "ORDER BY doc_id, turn NULLS FIRST, start", [list(doc_ids)]).fetchall()
        keep = None if allowed is None else set(np.asarray(allowed).tolist())
        for doc, seg in rows:
            if keep is None or seg in keep:
                out[doc].append(seg)
        return out

    def segments(self, seg_ids: list[int]) -> dict[int, dict]:
        """Segment rows joined to their document's customer, channel and date, by segment id."""
        if not seg_ids:
            return {}
        rows = self.db.execute(
            "SELECT s.seg_id, s.doc_id, s.turn, s.speaker, s.role, s.start, s.\"end\", s.text, d.customer_id, "
            "d.channel, d.created_at FROM segments s JOIN documents d USING (doc_id) "
            "WHERE s.seg_id IN (SELECT unnest(?::BIGINT[]))", [[int(i) for i in seg_ids]]).fetchall()
        keys = ("seg_id", "doc_id", "turn", "speaker", "role", "start", "end", "text", "customer_id", "channel",
                "created_at")
        return {r[0]: dict(zip(keys, r)) for r in rows}

    def signals_of(self, doc_ids: list[str]) -> dict[str, list[dict]]:
        """Each document's document-level signals (kind, label, score, confidence, speaker, value).

        Per-turn and per-speaker sentiments stay in the store (and in the result file), not in hits."""
        out: dict[str, list[dict]] = {d: [] for d in doc_ids}
        if not doc_ids:
            return out
        rows = self.db.execute("SELECT doc_id, kind, label, score, confidence, speaker, value FROM signals "
                               "WHERE doc_id IN (SELECT unnest(?::VARCHAR[])) AND scope = 'document' "
                               "ORDER BY doc_id, sig_idx", [list(doc_ids)]).fetchall()
        for doc_id, kind, label, score, conf, speaker, value in rows:
            out[doc_id].append({"kind": kind, "label": label, "score": score, "confidence": conf, "speaker": speaker,
                                "value": json.loads(value) if value else None})
        return out

    def all_segments(self) -> list[SegmentRow]:
        rows = self.db.execute("SELECT seg_id, doc_id, turn, speaker, role, start, \"end\", text FROM segments "
                               "ORDER BY seg_id").fetchall()
        return [SegmentRow(*r) for r in rows]

    def counts(self) -> dict[str, int]:
        return {t: self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("documents", "segments", "signals", "evidence")}

    def export_parquet(self, directory: str | Path) -> list[Path]:
        """Every table as ``DIR/<table>.parquet``, for other tools."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for t in ("documents", "segments", "signals", "evidence"):
            path = out / f"{t}.parquet"
            self.db.execute(f"COPY {t} TO '{path.as_posix()}' (FORMAT PARQUET)")
            paths.append(path)
        return paths
