"""Input names: the formats known by extension, and :func:`expand_inputs`, which turns paths,
folders, globs and ``-`` into :class:`~extractor.ingest.common.Source` objects (or rejects).
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from extractor.ingest.common import Source, reject
from extractor.types import Reject

log = logging.getLogger("extractor.io")

EXTENSIONS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".txt": "txt",
}
FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "txt")
FORMAT_ALIASES = {"ndjson": "jsonl", "jsonlines": "jsonl", "text": "txt", "pq": "parquet"}
OWN_OUTPUTS = (".rejects.jsonl", ".summary.json", ".partial.jsonl")  # skipped when walking folders


def normalise_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    f = fmt.strip().lower().lstrip(".")
    return FORMAT_ALIASES.get(f, f)


def expand_inputs(inputs: Sequence[str], fmt: str | None,
                  exclude: frozenset[Path] = frozenset()) -> Iterator[Source | Reject]:
    """Turn paths, folders, globs and ``-`` into Sources (each file once), or Rejects.

    ``exclude`` holds resolved paths never to read (the run's own output files).
    """
    seen: set[Path] = set(exclude)

    def one(path: Path, given: str, root: Path | None = None) -> Source | Reject | None:
        key = path.resolve()
        if key in seen:
            log.info("%s is listed more than once or is this run's output; not reading it", path)
            return None
        seen.add(key)
        kind = fmt or EXTENSIONS.get(path.suffix.lower())
        if kind is None:
            return reject(
                given,
                None,
                f"unknown format: cannot tell the format of '{path.name}' from its "
                f"extension; supported: {', '.join(EXTENSIONS)} — or pass --format "
                f"({'|'.join(FORMATS)})",
            )
        rel = path.relative_to(root).with_suffix("").as_posix() if root is not None else None
        return Source(str(path), kind, path, key=rel if rel and "/" in rel else None)

    def walk(folder: Path) -> Iterator[Path]:
        for p in sorted(folder.rglob("*")):
            hidden = any(part.startswith(".") for part in p.relative_to(folder).parts)
            if p.is_file() and p.suffix.lower() in EXTENSIONS and not hidden:
                if p.name.endswith(OWN_OUTPUTS):
                    log.info("skipping %s: it looks like an output of signals", p)
                    continue
                yield p

    for given in inputs:
        if given == "-":
            yield Source("<stdin>", fmt or "jsonl")
            continue
        path = Path(given).expanduser()
        root = None
        if path.is_dir():
            root = path
            files = list(walk(path))
            if not files:
                log.warning("folder %s holds no %s files", path, "/".join(EXTENSIONS))
        elif path.exists():
            files = [path]
        elif glob.has_magic(given):
            files = []
            for m in sorted(glob.glob(str(path), recursive=True)):
                files.extend(walk(Path(m)) if Path(m).is_dir() else [Path(m)])
            if not files:
                yield reject(
                    given,
                    None,
                    f"path not found: the pattern '{given}' matched no files; "
                    "check the path (quote it so the shell does not expand it)",
                )
                continue
        else:
            yield reject(given, None, f"path not found: '{given}' does not exist; check the path")
            continue
        for f in files:
            item = one(f, str(f), root)
            if item is not None:
                yield item
