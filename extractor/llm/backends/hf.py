"""The ``transformers`` backend: a local transformers causal-LM directory, run on CPU with greedy decoding.

``--llm-model`` is a directory holding ``config.json``, the weights and a tokenizer with a chat template
(what ``save_pretrained`` writes). Nothing is fetched: everything loads with ``local_files_only=True``.

transformers has no grammar-constrained decoding here, so a request's JSON Schema goes into the prompt
(one sentence appended to the system message); ``llm.extractor`` validates and repairs the reply.

>>> backend = TransformersBackend("~/models/SmolLM2-135M-Instruct")       # doctest: +SKIP
>>> backend.complete(LLMRequest([{"role": "user", "content": "Say hi"}], max_tokens=8)).text  # doctest: +SKIP
'Hi there!'
>>> with_schema([{"role": "user", "content": "hi"}], {"type": "object"})[0]["content"]
'Reply with one JSON object that follows this JSON Schema: {"type":"object"}'
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from ...errors import LLMError, MissingExtra, ModelError
from .base import LLMRequest, LLMResponse

log = logging.getLogger(__name__)

MAX_CONTEXT = 8192
FALLBACK_CONTEXT = 2048
SCHEMA_SENTENCE = "Reply with one JSON object that follows this JSON Schema: "
VALID_MODEL = ("a valid --llm-model for the transformers backend is a local transformers model directory "
               "containing config.json (a causal LM with a chat template, as written by save_pretrained), "
               "e.g. --backend transformers --llm-model ~/models/SmolLM2-135M-Instruct")


def config_fingerprint(path: Path) -> str:
    """sha256 of ``config.json`` plus each weight file's name, size and first/last MiB: 12 hex characters.

    Two fine-tunes of one architecture share a config, so the weights must be in the id (and the cache key)."""
    from .llamacpp import file_fingerprint

    h = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted([*path.glob("*.safetensors"), *path.glob("*.bin")]):
        h.update(f"{weights.name}:{file_fingerprint(weights)}".encode())
    return h.hexdigest()[:12]


def with_schema(messages: list[dict[str, str]], schema: dict[str, Any] | None) -> list[dict[str, str]]:
    """The messages with the schema sentence appended to the last system message (or a new one first)."""
    if not schema:
        return list(messages)
    sentence = SCHEMA_SENTENCE + json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
    out = [dict(m) for m in messages]
    for msg in reversed(out):
        if msg.get("role") == "system":
            msg["content"] = f"{msg.get('content', '').rstrip()}\n\n{sentence}".lstrip()
            return out
    return [{"role": "system", "content": sentence}, *out]


def _check_dir(model_path: str | Path) -> Path:
    path = Path(model_path).expanduser()
    if not path.is_dir():
        raise ModelError(f"--llm-model {model_path}: no such directory; {VALID_MODEL}")
    if not (path / "config.json").is_file():
        raise ModelError(f"--llm-model {model_path}: no config.json in this directory; {VALID_MODEL}")
    return path


def _check_causal(path: Path) -> None:
    """ModelError unless ``config.json`` names a model type (and architecture) transformers runs as a causal LM."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as CAUSAL

    try:
        config = json.loads((path / "config.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"--llm-model {path}: config.json cannot be read ({exc}); {VALID_MODEL}") from exc
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind not in CAUSAL:
        raise ModelError(f"--llm-model {path}: model_type {kind!r} is not a causal LM; {VALID_MODEL}")
    archs = config.get("architectures") or []
    if archs and not set(archs) & set(CAUSAL.values()):
        raise ModelError(f"--llm-model {path}: architectures {archs} hold no causal-LM head; {VALID_MODEL}")


def _load(path: Path) -> tuple[Any, Any]:
    """(tokenizer, model) from a local directory, or ModelError saying what a valid directory is."""
    try:
        import torch  # noqa: F401 - transformers needs it for the model
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingExtra("transformers", "llm") from exc
    _check_causal(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # OSError (no weights/tokenizer), ValueError, safetensors errors, ...
        raise ModelError(f"--llm-model {path} could not be loaded as a transformers causal LM ({exc}); "
                         f"{VALID_MODEL}") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(f"--llm-model {path}: its tokenizer has no chat template (a base model, not an "
                         f"instruct/chat model); {VALID_MODEL}")
    model.eval()
    return tokenizer, model


def _eos_ids(tokenizer: Any, model: Any) -> set[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    eos = set(ids if isinstance(ids, (list, tuple)) else [] if ids is None else [ids])
    if tokenizer.eos_token_id is not None:
        eos.add(int(tokenizer.eos_token_id))
    return eos


class TransformersBackend:
    """One local transformers causal LM, loaded once on CPU; calls are serialised."""

    name = "transformers"
    parallel = 1

    def __init__(self, model_path: str | Path, *, context_tokens: int | None = None, seed: int = 0):
        path = _check_dir(model_path)
        self.path, self.seed = path, seed
        self.model_id = f"transformers:{path.name}#{config_fingerprint(path)}"
        t0 = time.perf_counter()
        self._tokenizer, self._model = _load(path)
        log.info("loaded %s in %.1fs", self.model_id, time.perf_counter() - t0)
        window = getattr(self._model.config, "max_position_embeddings", None) or FALLBACK_CONTEXT
        self.context_tokens = int(context_tokens) if context_tokens else min(int(window), MAX_CONTEXT)
        self._eos = _eos_ids(self._tokenizer, self._model)
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        return {"backend": self.name, "seed": self.seed, "do_sample": False, "constrained": "prompt",
                "dtype": str(self._model.dtype)}

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def _encode(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        enc = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                  return_dict=True)
        if hasattr(enc, "keys"):  # BatchEncoding (transformers 5.x, or return_dict=True)
            return {k: enc[k] for k in ("input_ids", "attention_mask") if k in enc}
        import torch

        return {"input_ids": enc, "attention_mask": torch.ones_like(enc)}

    def _generate(self, inputs: dict[str, Any], max_new_tokens: int) -> Any:
        import torch
        from transformers import GenerationConfig

        pad = self._tokenizer.pad_token_id
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=sorted(self._eos),
                                  pad_token_id=pad if pad is not None else min(self._eos, default=0))
        torch.manual_seed(self.seed)
        with torch.inference_mode():
            return self._model.generate(**inputs, generation_config=config)

    def complete(self, request: LLMRequest) -> LLMResponse:
        t0 = time.perf_counter()
        max_new = max(1, int(request.max_tokens))
        with self._lock:
            inputs = self._encode(with_schema(request.messages, request.schema))
            prompt_tokens = int(inputs["input_ids"].shape[1])
            if prompt_tokens + max_new > self.context_tokens:
                raise LLMError(f"the prompt ({prompt_tokens} tokens) plus max_tokens ({max_new}) does not fit "
                               f"the context window of {self.model_id} ({self.context_tokens} tokens)")
            try:
                out = self._generate(inputs, max_new)
            except (RuntimeError, ValueError) as exc:
                raise LLMError(f"transformers could not generate with {self.model_id}: {exc}") from exc
        new = out[0, prompt_tokens:].tolist()
        stopped = bool(new) and new[-1] in self._eos
        text = self._tokenizer.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= max_new and not stopped else "stop"
        return LLMResponse(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(new),
                           seconds=time.perf_counter() - t0, finish_reason=finish)
