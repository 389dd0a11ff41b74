"""The ``llamacpp`` backend: a GGUF file run in-process by llama-cpp-python, with grammar-constrained JSON.

When a request carries a JSON Schema, decoding is constrained by a llama.cpp grammar compiled from
it (``LlamaGrammar.from_json_schema``), so every reply parses and every label is one of the enums.

>>> backend = LlamaCppBackend("SmolLM2-135M-Instruct.Q4_1.gguf")       # doctest: +SKIP
>>> backend.complete(LLMRequest([{"role": "user", "content": "Say hi"}], max_tokens=8)).text  # doctest: +SKIP
'Hi there!'
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

DEFAULT_CONTEXT = 4096


def file_fingerprint(path: Path, block: int = 1 << 20) -> str:
    """A cheap content id for a large model file: size plus sha256 of its first and last MiB."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        h.update(fh.read(block))
        if size > 2 * block:
            fh.seek(size - block)
            h.update(fh.read(block))
    return h.hexdigest()[:12]


def _unsafe_constant(node: Any) -> str | None:
    """The first enum/const string holding ``"`` or ``\\`` (which break llama-cpp-python's grammar converter)."""
    if isinstance(node, dict):
        for key, value in node.items():
            values = value if key == "enum" else [value] if key == "const" else []
            for v in values:
                if isinstance(v, str) and ('"' in v or "\\" in v):
                    return v
            found = _unsafe_constant(value) if isinstance(value, (dict, list)) else None
            if found is not None:
                return found
    elif isinstance(node, list):
        for v in node:
            found = _unsafe_constant(v)
            if found is not None:
                return found
    return None


class LlamaCppBackend:
    """One GGUF model loaded once; calls are serialised (a llama.cpp context is not thread-safe)."""

    name = "llamacpp"
    parallel = 1
    constrained = True  # the grammar holds the reply to the schema, enums and quote lists included

    def __init__(self, model_path: str | Path, *, context_tokens: int = DEFAULT_CONTEXT, seed: int = 0,
                 threads: int | None = None):
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelError(f"--llm-model {model_path}: no such GGUF file. The llamacpp backend loads a local "
                             ".gguf file, e.g. --backend llamacpp --llm-model ~/models/qwen2.5-7b-instruct-q4_k_m.gguf")
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingExtra("llama-cpp-python", "llm") from exc
        self.path, self.seed = path, seed
        self.model_id = f"llamacpp:{path.name}#{file_fingerprint(path)}"
        try:
            self._llm = Llama(model_path=str(path), n_ctx=context_tokens, seed=seed, n_threads=threads,
                              verbose=False)
        except Exception as exc:  # llama.cpp raises ValueError for a file it cannot read
            raise ModelError(f"--llm-model {path} could not be loaded by llama.cpp ({exc}); is it a GGUF file?") \
                from exc
        self.context_tokens = self._llm.n_ctx()
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {"backend": self.name, "seed": self.seed, "constrained": "grammar"}

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _grammar(self, schema: dict[str, Any]):
        key = json.dumps(schema)  # not sorted: the grammar generates properties in the schema's order
        bad = _unsafe_constant(schema)
        if bad is not None:  # llama.cpp would fail to parse the grammar and crash the process
            raise LLMError(f"The schema has a constant with a double quote or backslash ({bad[:60]!r}), which "
                           "llama-cpp-python's grammar converter cannot escape; rename that label.")
        if key not in self._grammars:
            from llama_cpp import LlamaGrammar

            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def complete(self, request: LLMRequest) -> LLMResponse:
        t0 = time.perf_counter()
        with self._lock:
            grammar = self._grammar(request.schema) if request.schema else None
            try:
                out = self._llm.create_chat_completion(
                    messages=request.messages, grammar=grammar, temperature=request.temperature,
                    max_tokens=request.max_tokens, seed=request.seed)
            except ValueError as exc:  # e.g. the prompt does not fit the context window
                raise LLMError(f"llama.cpp refused the request: {exc}") from exc
        choice, usage = out["choices"][0], out.get("usage") or {}
        return LLMResponse(text=choice["message"].get("content") or "",
                           prompt_tokens=int(usage.get("prompt_tokens", 0)),
                           completion_tokens=int(usage.get("completion_tokens", 0)),
                           seconds=time.perf_counter() - t0, finish_reason=choice.get("finish_reason") or "stop")
