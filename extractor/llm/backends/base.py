"""The one small protocol every LLM backend implements, and the request/response records it speaks.

A backend turns chat messages (plus, optionally, a JSON Schema the reply must follow) into one
reply with token counts. It does not parse, repair, ground or cache: ``llm.extractor`` does that,
the same way for every backend.

>>> req = LLMRequest(messages=[{"role": "user", "content": "hi"}], schema=None, max_tokens=8)
>>> req.max_tokens
8
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

DEFAULT_MAX_TOKENS = 768


@dataclass(frozen=True)
class LLMRequest:
    """Messages in OpenAI chat form; ``schema`` is the JSON Schema the reply must follow (or None)."""

    messages: list[dict[str, str]]
    schema: dict[str, Any] | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.0
    seed: int = 0


@dataclass
class LLMResponse:
    """One reply. ``finish_reason`` is ``stop`` or ``length`` (truncated) as the backend reports it."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str = "stop"
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """What ``LLMExtractor`` needs from a model.

    ``model_id`` and ``params()`` go into provenance and into the cache key, so they must change
    whenever the answers could: another model file, another server-side model, other decoding settings.
    ``context_tokens`` is the model's context window; ``parallel`` how many requests may run at once.
    """

    name: str
    model_id: str
    context_tokens: int
    parallel: int

    def params(self) -> dict[str, Any]:
        """Settings that change the output (temperature, schema mode, ...), for the cache key."""
        ...

    def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer one request, or raise ``LLMError`` (after the backend's own retries)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model (an estimate where the tokenizer is not at hand)."""
        ...


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about 4 characters a token for English, 1 per CJK character.

    >>> estimate_tokens("hello world!")
    3
    """
    wide = sum(1 for ch in text if ord(ch) > 0x2E80)
    return max(1, (len(text) - wide + 3) // 4 + wide) if text else 0
