"""The ``langchain`` backend: any LangChain chat model object, for pipelines that already use LangChain.

Pass the object itself from Python, or ``module:attribute`` on the command line (the attribute is a
chat model, or a function of no arguments returning one). Token counts come from the message's
``usage_metadata`` where the model reports it.

>>> from langchain_core.language_models.fake_chat_models import FakeListChatModel  # doctest: +SKIP
>>> LangChainBackend(FakeListChatModel(responses=["{}"])).complete(LLMRequest([])).text  # doctest: +SKIP
'{}'
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from typing import Any

from ...errors import ConfigError, LLMError, MissingExtra
from .base import LLMRequest, LLMResponse, estimate_tokens

ROLES = {"system": "SystemMessage", "user": "HumanMessage", "assistant": "AIMessage"}


def _resolve(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    if not attr:
        raise ConfigError(f"--llm-model {spec!r}: for --backend langchain give module:attribute, e.g. "
                          "myapp.models:chat_model")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--llm-model {spec!r} could not be imported: {exc}") from exc
    return obj() if callable(obj) and not hasattr(obj, "invoke") else obj


class LangChainBackend:
    """Wraps ``chat_model.invoke(messages)``. ``parallel`` defaults to 1: LangChain models decide their own."""

    name = "langchain"

    def __init__(self, chat_model: Any, *, context_tokens: int = 8192, parallel: int = 1, seed: int = 0):
        try:
            import langchain_core.messages  # noqa: F401
        except ImportError as exc:
            raise MissingExtra("langchain-core", "langchain") from exc
        self.chat_model = _resolve(chat_model) if isinstance(chat_model, str) else chat_model
        if not hasattr(self.chat_model, "invoke"):
            raise ConfigError(f"{type(self.chat_model).__name__} is not a LangChain chat model (no .invoke)")
        self.context_tokens, self.parallel, self.seed = context_tokens, parallel, seed
        described = json.dumps(_describe(self.chat_model), sort_keys=True, default=str)
        digest = hashlib.sha256(described.encode()).hexdigest()[:12]
        self.model_id = f"langchain:{type(self.chat_model).__name__}#{digest}"

    def params(self) -> dict[str, Any]:
        return {"backend": self.name, "seed": self.seed}

    def count_tokens(self, text: str) -> int:
        # Not chat_model.get_num_tokens: its default loads GPT-2's tokenizer from the hub (a hang offline).
        return estimate_tokens(text)

    def complete(self, request: LLMRequest) -> LLMResponse:
        from langchain_core import messages as lc

        msgs = [getattr(lc, ROLES.get(m["role"], "HumanMessage"))(content=m["content"]) for m in request.messages]
        t0 = time.perf_counter()
        try:
            reply = self.chat_model.invoke(msgs)
        except Exception as exc:
            raise LLMError(f"LangChain model {type(self.chat_model).__name__} failed: {exc}") from exc
        usage = getattr(reply, "usage_metadata", None) or {}
        meta = getattr(reply, "response_metadata", None) or {}
        content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        return LLMResponse(text=content, prompt_tokens=int(usage.get("input_tokens", 0)),
                           completion_tokens=int(usage.get("output_tokens", 0)), seconds=time.perf_counter() - t0,
                           finish_reason=str(meta.get("finish_reason") or "stop"))


def _describe(model: Any) -> dict[str, Any]:
    """The model's identifying parameters (name, temperature, ...), for the model id."""
    for attr in ("_identifying_params", "dict"):
        try:
            value = getattr(model, attr)
            return dict(value() if callable(value) else value)
        except Exception:  # noqa: S112 - not every chat model exposes either
            continue
    return {"type": type(model).__name__}
