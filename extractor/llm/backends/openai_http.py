"""The ``openai`` backend: any OpenAI-compatible ``/v1/chat/completions`` server, over httpx.

Works with vLLM, Ollama, llama.cpp's server and hosted APIs. The API key comes from the environment
(``SIGNALS_LLM_API_KEY``, else ``OPENAI_API_KEY``) and is never logged or written anywhere.

Structured output: servers disagree on ``response_format``. vLLM and hosted APIs take
``{"type": "json_schema", "json_schema": {...}}``; llama-cpp-python's server rejects that (HTTP 500)
and takes ``{"type": "json_object", "schema": {...}}``. ``schema_mode="auto"`` (the default) sends
the first form and, if the server refuses it, switches to the second for the rest of the run.

Retries are ours (tenacity): 429, 5xx, timeouts and dropped connections are retried with
exponential backoff (honouring ``Retry-After``), then the request fails with ``LLMError`` and the
document goes to the dead-letter (rejects) file.

>>> OpenAIBackend("qwen2.5", base_url="http://127.0.0.1:8000/v1").model_id
'openai:qwen2.5@127.0.0.1:8000'
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any
from urllib.parse import urlparse

from ...errors import ConfigError, LLMError
from .base import LLMRequest, LLMResponse, estimate_tokens

log = logging.getLogger(__name__)

SCHEMA_MODES = ("auto", "json_schema", "json_object", "none")
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
REFUSED_FORMAT = {400, 404, 415, 422, 500, 501}


def api_key_from_env() -> str | None:
    return os.environ.get("SIGNALS_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or None


class OpenAIBackend:
    """An OpenAI-compatible chat-completions endpoint. ``parallel`` bounds concurrent requests."""

    name = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, schema_mode: str = "auto",
                 timeout: float = 120.0, max_retries: int = 4, parallel: int = 4, context_tokens: int = 8192,
                 seed: int = 0, backoff: float = 0.5):
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ConfigError("--backend openai needs the server's URL: --base-url http://127.0.0.1:8000/v1 "
                              "(or set OPENAI_BASE_URL).")
        if schema_mode not in SCHEMA_MODES:
            raise ConfigError(f"--schema-mode {schema_mode!r}: choose one of {', '.join(SCHEMA_MODES)}.")
        if parallel < 1 or max_retries < 0:
            raise ConfigError("--concurrency must be at least 1 and the retry count at least 0.")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.schema_mode, self.timeout, self.max_retries = schema_mode, timeout, max_retries
        self.parallel, self.context_tokens, self.seed, self.backoff = parallel, context_tokens, seed, backoff
        url = urlparse(self.base_url)  # never user:password@ in ids or messages
        self.where = f"{url.hostname}{f':{url.port}' if url.port else ''}"
        self.model_id = f"openai:{model}@{self.where}"
        self.constrained = schema_mode != "none"  # the server is asked to hold the reply to the schema
        self._client = None
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        # The schema mode is not in the key: it changes how the schema is sent, not what is asked for.
        return {"backend": self.name, "seed": self.seed}

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                import httpx

                key = api_key_from_env()
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout,
                                            limits=httpx.Limits(max_connections=self.parallel))
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- one request ----------------------------------------------------------------------------------
    def complete(self, request: LLMRequest) -> LLMResponse:
        mode = self.schema_mode if request.schema else "none"
        if mode != "auto":
            return self._with_retries(request, mode)
        try:  # one probe, no retries: a refusal is an answer about the format, not a transient fault
            out = self._post(request, "json_schema")
        except LLMError as exc:
            if exc.status in REFUSED_FORMAT:
                log.info("server refused response_format json_schema (HTTP %s); trying json_object + schema",
                         exc.status)
                out = self._with_retries(request, "json_object")
                self.schema_mode = "json_object"
                return out
            if not exc.retryable or self.max_retries == 0:
                raise
            time.sleep(self._delay(exc, 1))
            out = self._with_retries(request, "json_schema", attempts=self.max_retries)
        self.schema_mode = "json_schema"
        return out

    def _with_retries(self, request: LLMRequest, mode: str, attempts: int | None = None) -> LLMResponse:
        from tenacity import Retrying, retry_if_exception, stop_after_attempt

        n = self.max_retries + 1 if attempts is None else attempts
        retrying = Retrying(stop=stop_after_attempt(n), wait=self._wait, reraise=True,
                            retry=retry_if_exception(lambda e: isinstance(e, LLMError) and e.retryable))
        return retrying(self._post, request, mode)

    def _wait(self, state) -> float:
        return self._delay(state.outcome.exception() if state.outcome else None, state.attempt_number)

    def _delay(self, exc: BaseException | None, attempt: int) -> float:
        """Seconds before the next try: the server's Retry-After, else exponential backoff (capped)."""
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return min(float(after), 60.0)
        return min(self.backoff * 2 ** (attempt - 1), 30.0)

    def _body(self, request: LLMRequest, mode: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": request.messages, "temperature": request.temperature,
                                "max_tokens": request.max_tokens, "seed": request.seed}
        if mode == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "signals", "schema": request.schema, "strict": True}}
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object", "schema": request.schema}
        return body

    def _post(self, request: LLMRequest, mode: str) -> LLMResponse:
        import httpx

        t0 = time.perf_counter()
        try:
            resp = self.client.post("/chat/completions", json=self._body(request, mode))
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise LLMError(f"{self.where}: {type(exc).__name__} after {time.perf_counter() - t0:.1f}s",
                           retryable=True) from exc
        if resp.status_code != 200:
            err = LLMError(f"{self.where}: HTTP {resp.status_code}: {resp.text[:200]}",
                           retryable=resp.status_code in RETRY_STATUS, status=resp.status_code)
            err.retry_after = _retry_after(resp.headers.get("retry-after"))  # type: ignore[attr-defined]
            raise err
        return _parse_reply(resp, self.where, time.perf_counter() - t0)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _parse_reply(resp, where: str, seconds: float) -> LLMResponse:
    try:
        data = resp.json()
        choice = data["choices"][0]
        text = (choice.get("message") or {}).get("content") or ""
        if not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}, not text")
        usage = data.get("usage") or {}
        return LLMResponse(text=text, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                           completion_tokens=int(usage.get("completion_tokens") or 0), seconds=seconds,
                           finish_reason=str(choice.get("finish_reason") or "stop"), extra={"model": data.get("model")})
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise LLMError(f"{where}: the reply is not an OpenAI chat completion ({exc}): {resp.text[:200]!r}",
                       retryable=True) from exc
