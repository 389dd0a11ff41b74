"""``signals watch DIR``: extract, store, index and refresh state for each file as it lands, exactly once.

The models and the index stay loaded, so a new file costs its own extraction and an index save, not a
start-up. A file is taken once its size and modification time have held still for ``settle``
seconds (a half-copied file is not read); names starting with ``.`` or ending in ``.tmp``/``.part``
are ignored. Each processed file is recorded in the store's ``ingested`` table by path and content
hash in the same session that stores its results, so a restart skips it, and a crash in between
re-processes it without duplicates (storing a document replaces it). ``-`` reads JSONL documents
from stdin instead, in micro-batches.

Polling (``os.scandir`` every ``poll`` seconds) is used rather than inotify so that it works the same
on network and container file systems.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .store import Store

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet", ".ndjson")
IGNORED = (".tmp", ".part", ".partial", ".crdownload", ".swp")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Watcher:
    """Keeps the pipeline and index warm; ``process(path)`` handles one file, ``run(dir)`` loops."""

    def __init__(self, workspace: str | Path, pipeline, *, settle: float = 0.2, fields=None):
        self.workspace, self.pipeline, self.settle, self.fields = Path(workspace), pipeline, settle, fields
        self.out_dir = self.workspace / "watch"
        self._seen: dict[Path, tuple[int, int, float]] = {}  # path -> (size, mtime_ns, first seen unchanged)
        self._index = None

    @property
    def index(self):
        if self._index is None:
            from .index import Index

            embedder = self.pipeline.local.embedder if self.pipeline.mode != "llm" else None
            self._index = Index.open(self.workspace, embedder)
        return self._index

    def done(self) -> set[tuple[str, str]]:
        from .index import close_readers

        if not (self.workspace / "store.duckdb").exists():
            return set()
        close_readers(self.workspace)
        with Store(self.workspace) as store:
            return {(p, h) for p, h in store.db.execute("SELECT path, sha256 FROM ingested").fetchall()}

    def ready(self, directory: Path, done: set[tuple[str, str]]) -> list[tuple[Path, str]]:
        """Files in ``directory`` that have settled and were not processed before, oldest first."""
        now, out = time.monotonic(), []
        try:
            entries = sorted(os.scandir(directory), key=lambda e: (e.stat().st_mtime_ns, e.name))
        except FileNotFoundError:
            return []
        for e in entries:
            name = e.name.lower()
            if not e.is_file() or name.startswith(".") or name.endswith(IGNORED) or not name.endswith(SUFFIXES):
                continue
            st, path = e.stat(), Path(e.path).resolve()
            sig = (st.st_size, st.st_mtime_ns)
            prev = self._seen.get(path)
            if prev is None or prev[:2] != sig:
                self._seen[path] = (*sig, now)
                continue
            if prev[2] == -1.0 or now - prev[2] < self.settle:
                continue
            digest = _sha256(path)
            if (str(path), digest) in done:
                self._seen[path] = (*sig, -1.0)  # done: do not hash it again until it changes
                continue
            out.append((path, digest))
        return out

    def process(self, path: Path, digest: str | None = None, arrived: datetime | None = None) -> dict[str, Any]:
        """Extract ``path`` into the workspace's watch folder, store and index it, refresh touched states."""
        from .index import index_results
        from .profiles import opted_out_markers

        digest = digest or _sha256(path)
        arrived = arrived or datetime.now(timezone.utc)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        out = self.out_dir / f"{path.stem}-{digest[:12]}.jsonl"
        from . import outputs

        outputs.register(self.workspace, out)
        summary = self.pipeline.run([str(path)], out, fields=self.fields, resume=False,
                                    opted_out=opted_out_markers(self.workspace))

        def record(store: Store) -> None:
            store.db.execute("INSERT OR REPLACE INTO ingested VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [str(path), digest, summary.n_in, summary.n_ok, summary.n_rejected,
                              summary.n_opted_out, str(out), arrived, datetime.now(timezone.utc)])

        indexed = index_results(self.workspace, [str(out)], index=self.index, then=record)
        if path in self._seen:
            self._seen[path] = (*self._seen[path][:2], -1.0)
        return {"file": str(path), "output": str(out), "n_in": summary.n_in, "n_ok": summary.n_ok,
                "n_rejected": summary.n_rejected, "n_opted_out": summary.n_opted_out,
                "customers_updated": indexed["customers_updated"]}

    def run(self, directory: str | Path, *, poll: float = 0.25, once: bool = False,
            on_file: Callable[[dict], None] | None = None, stop: threading.Event | None = None) -> int:
        """Process files as they land until ``stop`` is set (or, with ``once``, until none is left)."""
        directory = Path(directory)
        self.pipeline.load()
        done, n = self.done(), 0
        while stop is None or not stop.is_set():
            batch = self.ready(directory, done)
            for path, digest in batch:
                try:
                    info = self.process(path, digest)
                except Exception as exc:  # noqa: BLE001 - one bad file must not stop the watcher
                    log.error("could not process %s: %s", path, exc)
                    info = {"file": str(path), "error": f"{exc.__class__.__name__}: {exc}"}
                done.add((str(path), digest))
                n += 1
                if on_file:
                    on_file(info)
            if once and not batch and not self._pending():
                break
            time.sleep(poll)
        return n

    def _pending(self) -> bool:
        return any(v[2] != -1.0 for v in self._seen.values())

    def run_stdin(self, *, batch: int = 64, wait: float = 1.0, on_file: Callable[[dict], None] | None = None,
                  stream=None) -> int:
        """Read JSONL documents from stdin; every ``batch`` lines (or ``wait`` seconds) becomes one file."""
        stream = stream or sys.stdin
        lines: queue.Queue[tuple[int, str] | None] = queue.Queue()

        def reader() -> None:
            for no, line in enumerate(stream, 1):
                lines.put((no, line))
            lines.put(None)

        threading.Thread(target=reader, daemon=True).start()
        self.pipeline.load()
        inbox = self.out_dir / "stdin"
        inbox.mkdir(parents=True, exist_ok=True)
        n, pending, ended = 0, [], False
        while not ended:
            deadline = time.monotonic() + wait
            while len(pending) < batch and time.monotonic() < deadline:
                try:
                    line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
                except queue.Empty:
                    break
                if line is None:
                    ended = True
                    break
                if line[1].strip():
                    pending.append((line[0], line[1] if line[1].endswith("\n") else line[1] + "\n"))
            if pending:  # a transient file: opted-out customers' lines never reach the disk, and it goes after
                from .profiles import opted_out_markers

                markers = opted_out_markers(self.workspace)
                field = self.fields.customer if self.fields else "customer_id"
                kept = [(no, text) for no, text in pending if _without_opted_out([text], markers, field)[0]]
                skipped = len(pending) - len(kept)
                pending = []
                path = inbox / f"stdin-{time.time_ns()}.jsonl"
                path.write_text("".join(text for _, text in kept), "utf-8")
                try:
                    info = self.process(path)
                    _point_rejects_at_stdin(Path(info.pop("output")), path.name, [no for no, _ in kept])
                finally:
                    path.unlink(missing_ok=True)
                info.update(file="<stdin>", lines=[kept[0][0], kept[-1][0]] if kept else None,
                            n_in=info["n_in"] + skipped, n_opted_out=info["n_opted_out"] + skipped)
                n += 1
                if on_file:
                    on_file(info)
        return n


def _point_rejects_at_stdin(out: Path, name: str, line_nos: list[int]) -> None:
    """Rewrite a micro-batch's rejects so they name ``<stdin>`` and the line there, not the transient file."""
    from .io import rejects_path_for
    from .types import Reject

    path = rejects_path_for(out)
    if not path.exists():
        return
    rows = []
    for text in path.read_text("utf-8", errors="surrogateescape").splitlines():
        rej = Reject.model_validate_json(text)
        if Path(rej.source).name == name:
            line = line_nos[rej.line - 1] if rej.line and 0 < rej.line <= len(line_nos) else None
            rej = rej.model_copy(update={"source": "<stdin>", "line": line})
        rows.append(rej.model_dump_json() + "\n")
    path.write_text("".join(rows), "utf-8", errors="surrogateescape")


def _without_opted_out(lines: list[str], markers: set[str], field: str = "customer_id") -> tuple[list[str], int]:
    """The lines whose customer (JSON ``field``) is not opted out (unparsable lines stay: the reader rejects them)."""
    from .outputs import partition_lines
    from .store import is_opted_out

    if not markers:
        return lines, 0
    return partition_lines(lines, lambda row: is_opted_out(row.get(field), markers))
