"""A query encoder that starts in well under a second: the index's MiniLM exported to ONNX.

``signals search`` must answer from a cold start in under a second, but importing
sentence-transformers (and torch) takes seconds. So ``signals index build`` exports the encoder
once (mean pooling and normalisation inside the graph) into ``WORKSPACE/index/query_encoder/``,
and a query runs it with onnxruntime and the tokenizer's ``tokenizer.json``. The export is checked
against the original on a few sentences (cosine ≥ 0.9999) before it is kept; if onnx or
onnxruntime is missing, or the check fails, search falls back to the full encoder.

>>> enc = OnnxQueryEncoder.load(".signals/index/query_encoder")       # doctest: +SKIP
>>> enc.encode(["charged twice"]).shape                                  # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DIR = "query_encoder"
CHECK = ["I was charged twice for my October bill.", "ok", "Mi internet no funciona desde el lunes 😡"]


class OnnxQueryEncoder:
    """Same ``model_id``, ``dim`` and vectors as the encoder it was exported from."""

    def __init__(self, session, tokenizer, model_id: str, dim: int, max_length: int):
        self.session, self.tokenizer, self.model_id, self.dim = session, tokenizer, model_id, dim
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding()

    @classmethod
    def load(cls, directory: str | Path) -> OnnxQueryEncoder | None:
        """The exported encoder in ``directory``, or None when there is none (or onnxruntime is absent)."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / "meta.json").read_text("utf-8"))
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except (OSError, ValueError, ImportError):
            return None
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(directory / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        return cls(session, Tokenizer.from_file(str(directory / "tokenizer.json")), meta["model_id"], meta["dim"],
                   meta["max_length"])

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(texts[i:i + batch_size])
            feeds = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                     "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                     "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}
            out.append(self.session.run(None, feeds)[0])
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)


def export(embedder, directory: str | Path) -> bool:
    """Export ``embedder`` (a sentence-transformers MiniLM-style model) to ``directory``; True if kept."""
    directory = Path(directory)
    meta_path = directory / "meta.json"
    if meta_path.exists() and json.loads(meta_path.read_text("utf-8")).get("model_id") == embedder.model_id:
        return True
    try:
        import onnx  # noqa: F401 - torch's exporter needs it
        import onnxruntime  # noqa: F401
    except ImportError:
        log.info("onnx/onnxruntime not installed: search will load the full encoder for each query process")
        return False
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _export_graph(embedder, tmp)
        enc = OnnxQueryEncoder.load(tmp)
        if enc is None:
            return False
        ref = embedder.encode(CHECK)
        alone = np.concatenate([enc.encode([t]) for t in CHECK])  # a query is one text: no padding
        cos = np.concatenate([(enc.encode(CHECK) * ref).sum(1), (alone * ref).sum(1)])
        if float(cos.min()) < 0.9999:
            log.warning("the ONNX query encoder differs from %s (cosine %.5f); not using it", embedder.model_id,
                        float(cos.min()))
            return False
    except Exception:  # any exporter trouble: fall back to the full encoder, never fail the build
        log.warning("could not export the query encoder to ONNX; search will load the full encoder", exc_info=True)
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return True


def _export_graph(embedder, out: Path) -> None:
    import torch

    st = embedder._model  # the SentenceTransformer
    transformer = st[0].auto_model.eval()
    tokenizer_dir = embedder.path

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    import warnings

    enc = st.tokenizer(CHECK[:2], return_tensors="pt", padding=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter; the result is checked against the encoder instead
        torch.onnx.export(Pooled(transformer), tuple(enc[n] for n in names), str(out / "model.onnx"),
                          input_names=names, output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names})
    shutil.copy(tokenizer_dir / "tokenizer.json", out / "tokenizer.json")
    (out / "meta.json").write_text(json.dumps({"model_id": embedder.model_id, "dim": int(embedder.dim),
                                               "max_length": int(st.max_seq_length)}), "utf-8")
