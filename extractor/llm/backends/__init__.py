"""Backend registry: ``load_backend("llamacpp", "model.gguf")`` and friends.

>>> sorted(BACKENDS)
['langchain', 'llamacpp', 'openai', 'transformers']
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError
from .base import Backend, LLMRequest, LLMResponse

BACKENDS = {
    "llamacpp": "A GGUF file run in-process by llama-cpp-python (extra: llm).",
    "transformers": "A local transformers causal-LM directory.",
    "openai": "Any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, a hosted API).",
    "langchain": "A LangChain chat model object (Python API), or module:attribute naming one.",
}

__all__ = ["BACKENDS", "Backend", "LLMRequest", "LLMResponse", "load_backend"]


def load_backend(name: str, model: Any, *, base_url: str | None = None, **options: Any) -> Backend:
    """The backend ``name`` for ``model`` (a GGUF path, a model directory, a server-side model name,
    or a LangChain chat model). ``options`` go to the backend (``context_tokens``, ``seed``, ...)."""
    if name not in BACKENDS:
        raise ConfigError(f"Unknown --backend {name!r}; choose one of: {', '.join(sorted(BACKENDS))}.")
    if model is None or model == "":
        raise ConfigError(f"--backend {name} needs --llm-model: {BACKENDS[name]}")
    if name == "llamacpp":
        from .llamacpp import LlamaCppBackend

        return LlamaCppBackend(model, **options)
    if name == "transformers":
        from .hf import TransformersBackend

        return TransformersBackend(model, **options)
    if name == "openai":
        from .openai_http import OpenAIBackend

        return OpenAIBackend(model, base_url=base_url, **options)
    from .langchain import LangChainBackend

    return LangChainBackend(model, **options)
