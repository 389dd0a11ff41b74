"""Reading inputs and writing outputs.

Ingest: :func:`iter_documents` (a thin wrapper around :class:`DocumentReader`) streams
JSONL / JSON / CSV / TSV / Parquet / TXT files, folders, globs or stdin and yields one
:class:`~extractor.types.Document` or :class:`~extractor.types.Reject` per row. It never raises
for a bad row, never drops one silently, and keeps text exactly as written.

Output: :class:`ResultSink` (JSONL, or Parquet by extension) and :class:`RejectSink` append
with resume, :func:`write_summary` writes ``OUT.summary.json`` atomically and
:func:`read_results` reads results back.

Every reject reason starts with a stable category before the first colon
(``"invalid JSON: ..."``); :func:`reject_category` returns it for summaries.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from extractor.errors import ConfigError, InputError
from extractor.ingest import (
    FORMATS,
    FieldMap,
    Options,
    expand_inputs,
    fsync_dir,
    normalise_format,
    read_parquet_results,
    read_source,
    reject,
    scan_jsonl,
    speaker_role,
    truncate_partial_line,
    write_parquet_results,
)
from extractor.types import Document, ExtractionResult, Reject, RunSummary

__all__ = [
    "FieldMap",
    "speaker_role",
    "DocumentReader",
    "iter_documents",
    "reject_category",
    "ResultSink",
    "RejectSink",
    "rejects_path_for",
    "reject_key",
    "summary_path_for",
    "partial_path_for",
    "write_summary",
    "read_results",
]

log = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")


def reject_category(reason: str) -> str:
    """The stable category at the start of a reject reason.

    >>> reject_category("invalid JSON: Expecting value at column 1; ...")
    'invalid JSON'
    """
    return reason.split(":", 1)[0].strip()


class DocumentReader:
    """Iterates documents and rejects from ``inputs`` and counts them.

    ``n_read`` counts everything yielded (``n_ok`` documents + ``n_rejected`` rejects);
    ``reject_reasons`` counts rejects by :func:`reject_category`.

    >>> reader = DocumentReader(["tickets.jsonl"], FieldMap(text="body"))
    >>> docs = [d for d in reader if isinstance(d, Document)]  # doctest: +SKIP
    >>> reader.n_read == reader.n_ok + reader.n_rejected  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        inputs: Sequence[str],
        fields: FieldMap = FieldMap(),
        *,
        fmt: str | None = None,
        max_chars: int = 1_000_000,
        encoding: str = "utf-8",
        agent_names: frozenset[str] = frozenset(),
        exclude: Sequence[str | Path] = (),
    ) -> None:
        self.exclude = frozenset(Path(p).resolve() for p in exclude)
        if isinstance(inputs, (str, os.PathLike)):
            inputs = [str(inputs)]
        self.inputs = [str(i) for i in inputs]
        self.fmt = normalise_format(fmt)
        if self.fmt is not None and self.fmt not in FORMATS:
            raise ConfigError(f"unknown --format {fmt!r}; use one of {', '.join(FORMATS)}")
        if max_chars < 1:
            raise ConfigError(f"--max-chars must be a positive number, not {max_chars}")
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ConfigError(f"unknown --encoding {encoding!r}; try utf-8, cp1252, latin-1 or utf-16") from None
        self.options = Options(
            fields=fields, max_chars=max_chars, encoding=encoding, agent_names=frozenset(agent_names)
        )
        self.n_read = 0
        self.n_ok = 0
        # doc id -> (source, line) of documents read and not yet done with (the pipeline pops them), so that
        # a document rejected at extraction still names its file and line
        self.where: dict[str, tuple[str, int | None]] = {}
        self.n_rejected = 0
        self.reject_reasons: Counter[str] = Counter()

    def __iter__(self) -> Iterator[Document | Reject]:
        first_seen: dict[str, tuple[int, int | None]] = {}  # id -> (source index, line)
        sources: list[str] = []
        for src in expand_inputs(self.inputs, self.fmt, self.exclude):
            if isinstance(src, Reject):
                yield self._count(src)
                continue
            log.info("reading %s as %s", src.name, src.fmt)
            sources.append(src.name)
            for line, raw, item in read_source(src, self.options):
                if isinstance(item, Document):
                    prev = first_seen.get(item.id)
                    at = "" if line is None else f":{line}"  # a .txt file's id is its name alone
                    longer = f"{Path(src.name).with_suffix('')}{at}"
                    if prev is not None and item.id == f"{src.stem}{at}" and longer not in first_seen:
                        # an id made from the file name (the row had none) met the same name in another
                        # folder: the path as given tells them apart
                        item = item.model_copy(update={"id": longer})
                        prev = None
                    if prev is not None:
                        where = f"{sources[prev[0]]}:{prev[1]}" if prev[1] is not None else sources[prev[0]]
                        item = reject(
                            src.name,
                            line,
                            f"duplicate id: '{item.id}' was already read at {where}; "
                            "ids must be unique within a run — fix the id or drop the duplicate row",
                            "validate",
                            raw if raw is not None else item.model_dump(mode="json"),
                            item.id,
                        )
                    else:
                        first_seen[item.id] = (len(sources) - 1, line)
                        self.where[item.id] = (src.name, line)  # until the consumer is done with it
                yield self._count(item)

    def _count(self, item: Document | Reject) -> Document | Reject:
        self.n_read += 1
        if isinstance(item, Reject):
            self.n_rejected += 1
            self.reject_reasons[reject_category(item.reason)] += 1
            log.debug("reject %s:%s %s", item.source, item.line, item.reason)
        else:
            self.n_ok += 1
        return item


def iter_documents(inputs: Sequence[str], fields: FieldMap = FieldMap(), **options: Any) -> Iterator[Document | Reject]:
    """Stream documents (and rejects for rows that cannot be read) from files, folders, globs or ``-``.

    ``options`` are :class:`DocumentReader`'s (``fmt``, ``max_chars``, ``encoding``, ``agent_names``,
    ``exclude``).

    >>> for item in iter_documents(["sample_data/*.jsonl"], FieldMap(text="body")):  # doctest: +SKIP
    ...     print(item.id if isinstance(item, Document) else item.reason)
    """
    return iter(DocumentReader(inputs, fields, **options))


# ---------------------------------------------------------------- paths


def rejects_path_for(out: Path) -> Path:
    """Where the rejects of output ``out`` go.

    >>> rejects_path_for(Path("runs/out.jsonl")).as_posix()
    'runs/out.rejects.jsonl'
    """
    out = Path(out)
    return out.with_name(out.name[: -len(out.suffix)] + ".rejects.jsonl" if out.suffix else out.name + ".rejects.jsonl")


def summary_path_for(out: Path) -> Path:
    """Where the run summary of output ``out`` goes: ``str(out) + ".summary.json"``.

    >>> summary_path_for(Path("out.jsonl")).as_posix()
    'out.jsonl.summary.json'
    """
    return Path(str(out) + ".summary.json")


def partial_path_for(out: Path) -> Path:
    """The JSONL file a Parquet output is written to during a run: ``str(out) + ".partial.jsonl"``.

    >>> partial_path_for(Path("out.parquet")).as_posix()
    'out.parquet.partial.jsonl'
    """
    return Path(str(out) + ".partial.jsonl")


def write_summary(summary: RunSummary, out: Path) -> None:
    """Write ``summary`` to :func:`summary_path_for(out)` atomically (temp file, fsync, rename).

    >>> write_summary(RunSummary(n_in=2, n_ok=2), Path("out.jsonl"))  # doctest: +SKIP
    """
    path = summary_path_for(Path(out))
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(summary.model_dump_json(indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path)


# ---------------------------------------------------------------- sinks


class _JsonlAppender:
    """An append-only JSONL file that resumes after a crash."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume and path.exists():
            truncate_partial_line(path)
            for row in scan_jsonl(path):
                self._seen(row)
            self._f: IO[bytes] = open(path, "ab")
        else:
            self._f = open(path, "wb")

    def _seen(self, row: dict[str, Any]) -> None:
        raise NotImplementedError

    def _append(self, line: str) -> None:
        self._f.write(line.encode("utf-8") + b"\n")

    def flush(self) -> None:
        """Flush to disk (``os.fsync``), so a crash loses nothing written so far."""
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())

    def _close_file(self) -> None:
        if not self._f.closed:
            self.flush()
            self._f.close()


def content_key(text: str | None, turns: list[tuple[Any, Any]] | None) -> bytes:
    """A short digest of a document's words (its text, or its turns' speakers and texts)."""
    import hashlib

    payload = json.dumps([text, turns], ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(payload, digest_size=8).digest()


class ResultSink(_JsonlAppender):
    """Writes :class:`ExtractionResult` rows: JSONL, or Parquet when ``path`` ends in .parquet/.pq.

    With ``resume=True`` an existing output is kept, its ids go into ``done_ids`` and new rows are
    appended (a result whose id is already there is skipped). Parquet is written as JSONL to
    :func:`partial_path_for(path)` during the run and converted on :meth:`close`.

    >>> with ResultSink("out.jsonl") as sink:  # doctest: +SKIP
    ...     sink.write(result)
    """

    def __init__(self, path: str | Path, resume: bool = True) -> None:
        self.out = Path(path)
        self.parquet = self.out.suffix.lower() in PARQUET_SUFFIXES
        # id -> (a digest of its text, the first label of each kind) of the rows already in the output
        self.done_ids: dict[str, tuple[bytes | None, dict[str, str]]] = {}
        self.n_skipped = 0
        self._closed = False
        target = partial_path_for(self.out) if self.parquet else self.out
        if self.parquet and not resume:
            target.unlink(missing_ok=True)
        elif self.parquet and self.out.exists() and not target.exists():
            log.info("resuming %s: copying its rows to %s", self.out, target)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(target, "wb") as f:
                    for r in read_results(self.out):
                        f.write(r.model_dump_json(exclude_none=False).encode("utf-8") + b"\n")
            except Exception as e:  # a damaged Parquet file: pyarrow raises several types
                target.unlink(missing_ok=True)
                raise InputError(
                    f"cannot resume from {self.out}: it is not a readable result file ({e}); "
                    "move it away or run with --no-resume to overwrite it"
                ) from e
        super().__init__(target, resume)
        self.n_resumed = len(self.done_ids)
        if self.n_resumed:
            log.info("resuming %s: %d results already written", self.out, self.n_resumed)

    def _seen(self, row: dict[str, Any]) -> None:
        if "id" in row:
            turns = row.get("turns")
            firsts = {}
            for s in row.get("signals") or []:
                firsts.setdefault(s.get("kind"), s.get("label"))
            self.done_ids[str(row["id"])] = (content_key(row.get("text"), [(t.get("speaker"), t.get("text"))
                                                                            for t in turns] if turns else None),
                                             firsts)

    def changed(self, doc) -> bool:
        """Whether ``doc``'s id is in the output with another text (resuming would keep a stale result)."""
        have = self.done_ids.get(doc.id)
        turns = [(t.speaker, t.text) for t in doc.turns] if doc.turns else None
        return have is not None and have[0] is not None and have[0] != content_key(doc.text, turns)

    def write(self, result: ExtractionResult) -> None:
        """Append one result (one JSON line)."""
        if result.id in self.done_ids:
            self.n_skipped += 1
            log.debug("result %s is already in %s; not written again", result.id, self.out)
            return
        self._append(result.model_dump_json(exclude_none=False))
        self.done_ids[result.id] = (None, {})

    def close(self) -> None:
        """Flush and close; for Parquet output, convert the partial JSONL to ``path`` and delete it."""
        if self._closed:
            return
        self._closed = True
        self._close_file()
        if self.parquet:
            write_parquet_results(read_results(self.path), self.out)
            self.path.unlink()

    def __enter__(self) -> ResultSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # keep the partial file so the run can resume
            self._closed = True
            self._close_file()


def reject_key(row: dict[str, Any] | Reject) -> str:
    """What makes a reject the same one on a rerun: its source and line, or its source and id without a line."""
    row = row.model_dump() if isinstance(row, Reject) else row
    if row.get("line") is not None:
        return f"{row.get('source')}:{row.get('line')}"
    return f"{row.get('source')}:id={row.get('id')}"


class RejectSink(_JsonlAppender):
    """Appends :class:`Reject` rows to a JSONL file, resuming like :class:`ResultSink`.

    ``done_keys`` holds the :func:`reject_key` of every reject already in the file;
    ``count`` is the rejects present before plus those written now.

    >>> sink = RejectSink(rejects_path_for(Path("out.jsonl")))  # doctest: +SKIP
    >>> sink.write(Reject(source="a.jsonl", line=3, reason="empty text: ..."))  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, resume: bool = True) -> None:
        self.done_keys: set[str] = set()
        self.count = 0
        super().__init__(Path(path), resume)

    def _seen(self, row: dict[str, Any]) -> None:
        self.count += 1
        self.done_keys.add(reject_key(row))

    def write(self, reject: Reject) -> None:
        """Append one reject."""
        self._append(reject.model_dump_json())
        self._seen(reject.model_dump())

    def close(self) -> None:
        """Flush and close the file."""
        self._close_file()

    def __enter__(self) -> RejectSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_results(path: str | Path) -> Iterator[ExtractionResult]:
    """Read results written by :class:`ResultSink` (JSONL, or Parquet by extension).

    >>> ids = [r.id for r in read_results("out.jsonl")]  # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; check the path")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        yield from read_parquet_results(path)
        return
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield ExtractionResult.model_validate_json(line)
            except ValueError as e:
                if not line.endswith(b"\n"):
                    log.warning("%s:%d: skipping a partial last line left by an interrupted run", path, n)
                    return
                raise InputError(f"{path}:{n} is not a valid result row ({e}); was it written by signals?") from e
