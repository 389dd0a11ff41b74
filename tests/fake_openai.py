"""A fake OpenAI-compatible ``/v1/chat/completions`` server for the error paths of the ``openai`` backend.

Standard library only: a ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) in a daemon thread. Each
request takes the next step of a *script*; when the script runs out, ``default`` answers. A step is:

- ``("ok",)``: a valid reply for the extract schema, built from the request (``valid_reply``);
- ``("status", code)`` or ``("status", code, {"retry-after": "0"})``: that HTTP status (and headers);
- ``("reply", content, finish_reason)``: a 200 chat completion whose message content is ``content``;
- ``("sleep", seconds)`` or ``("sleep", seconds, step)``: wait, then answer ``step`` (``("ok",)``);
- ``("raw", status, body)``: that status with ``body`` as it is (e.g. not JSON);
- ``("reject_json_schema",)``: HTTP 500 when ``response_format.type`` is ``json_schema``, else ``("ok",)``;
- ``("drop",)``: close the connection without answering.

``script`` may also be a callable ``(body, n) -> step`` (``n`` counts requests from 0).

>>> with FakeOpenAI([("status", 503)]) as srv:
...     srv.base_url.startswith("http://127.0.0.1:") and srv.base_url.endswith("/v1")
True
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Step = tuple
Script = Sequence[Step] | Callable[[dict[str, Any], int], Step]

_DOC = re.compile(r"^<<<DOCUMENT (?P<nonce>\S+)>>>\n(?P<doc>.*?)\n?<<<END (?P=nonce)>>>", re.S | re.M)
_TURN = re.compile(r"^\[turn (?P<n>\d+)\] (?P<speaker>[^:]*): (?P<text>.*)$")
_LABEL = re.compile(r"^- (?P<label>[^:\n]+?)(?::|$)")


def document_of(messages: list[dict[str, str]]) -> str:
    """The rendered document inside the user message (between the DOCUMENT and END marker lines)."""
    for m in messages:
        if m.get("role") == "user":
            found = _DOC.search(m.get("content", ""))
            if found:
                return found["doc"]
    raise ValueError("no <<<DOCUMENT ...>>> block in the user message")


def first_label(messages: list[dict[str, str]]) -> str:
    """The first intent label the system prompt lists under "Intent labels:"."""
    system = next(m["content"] for m in messages if m.get("role") == "system")
    tail = system.split("Intent labels:", 1)[1]
    for line in tail.splitlines():
        found = _LABEL.match(line.strip())
        if found:
            return found["label"].strip()
    raise ValueError("no '- label' line after 'Intent labels:' in the system prompt")


def allowed_quotes(schema: dict[str, Any] | None) -> list[str] | None:
    """The quotes ``schema`` allows, when it pins them to a list (``enum``/``const``); None for free text."""
    try:
        prop = schema["properties"]["sentiment"]["properties"]["quote"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    if "enum" in prop:
        return list(prop["enum"])
    return [prop["const"]] if "const" in prop else None


def valid_reply(messages: list[dict[str, str]], schema: dict[str, Any] | None = None, *,
                words: int = 5) -> dict[str, Any]:
    """A reply that passes the extract schema and grounds: the quote is the first ``words`` words of the
    first customer line (the first line when no speaker is a customer), with its turn number; for a
    plain-text document, the first words of the text and no ``turn``. Where ``schema`` allows only
    certain quotes (an enum of the document's sentences), the first allowed one from that line."""
    doc = document_of(messages)
    lines = [ln for ln in doc.splitlines() if ln.strip()]
    turns = [m for m in (_TURN.match(ln) for ln in lines) if m]
    line = next((t for t in turns if "customer" in t["speaker"].lower()), turns[0]) if turns else None
    text = line["text"] if line else doc
    quote = " ".join(text.split()[:words])
    allowed = allowed_quotes(schema)
    if allowed:
        quote = next((q for q in allowed if q in text), allowed[0])
        if turns and quote not in text:  # quote some other line: give that line's turn
            line = next((t for t in turns if quote in t["text"]), line)
    item: dict[str, Any] = {"quote": quote}
    if line is not None:
        item["turn"] = int(line["n"])
    return {"intents": [{**item, "label": first_label(messages)}],
            "sentiment": {**item, "label": "negative"},
            "urgency": {**item, "level": "high"},
            "constraints": []}


def schema_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema a request's ``response_format`` carries (either form), or None."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return fmt["json_schema"]["schema"]
    return fmt.get("schema")


def completion(content: str, *, finish_reason: str = "stop", prompt_tokens: int = 100,
               completion_tokens: int = 20, model: str = "fake-model") -> dict[str, Any]:
    """A standard chat-completion response body."""
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


class FakeOpenAI:
    """The server. ``requests``: ``{"path", "headers", "body"}`` per request received, in arrival order;
    ``max_in_flight``: the most requests handled at once; ``usage``: the token counts every reply reports."""

    def __init__(self, script: Script = (), *, default: Step = ("ok",), usage: tuple[int, int] = (100, 20)):
        self.script, self.default, self.usage = script, default, usage
        self.requests: list[dict[str, Any]] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # a client that hung up is not an error here
        host, port = self._server.server_address[:2]
        self._base_url = f"http://{host}:{port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # wakes handlers that are sleeping
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (still readable after ``close``)."""
        assert self._base_url is not None, "start the server first"
        return self._base_url

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]

    # -- one request ----------------------------------------------------------------------------------
    def _next_step(self, body: dict[str, Any], n: int) -> Step:
        if callable(self.script):
            return self.script(body, n)
        return self.script[n] if n < len(self.script) else self.default

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        raw = h.rfile.read(int(h.headers.get("content-length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        with self._lock:
            n = len(self.requests)
            self.requests.append({"path": h.path, "headers": {k.lower(): v for k, v in h.headers.items()},
                                  "body": body})
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if h.path.rstrip("/") != "/v1/chat/completions":
                self._send(h, 404, {"error": {"message": f"no route {h.path}"}})
                return
            self._answer(h, body, self._next_step(body, n))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, h: BaseHTTPRequestHandler, body: dict[str, Any], step: Step) -> None:
        kind = step[0]
        if kind == "sleep":
            self._stop.wait(step[1])
            if self._stop.is_set():
                return
            self._answer(h, body, step[2] if len(step) > 2 else ("ok",))
        elif kind == "ok":
            content = json.dumps(valid_reply(body["messages"], schema_of(body)))
            self._send(h, 200, completion(content, prompt_tokens=self.usage[0], completion_tokens=self.usage[1]))
        elif kind == "reply":
            finish = step[2] if len(step) > 2 else "stop"
            self._send(h, 200, completion(step[1], finish_reason=finish, prompt_tokens=self.usage[0],
                                          completion_tokens=self.usage[1]))
        elif kind == "status":
            headers = step[2] if len(step) > 2 else {}
            self._send(h, step[1], {"error": {"message": f"fake error {step[1]}", "type": "server_error"}}, headers)
        elif kind == "raw":
            self._send(h, step[1], step[2])
        elif kind == "reject_json_schema":
            if (body.get("response_format") or {}).get("type") == "json_schema":
                self._send(h, 500, {"error": {"message": "response_format json_schema is not supported"}})
            else:
                self._answer(h, body, ("ok",))
        elif kind == "drop":
            h.close_connection = True
            h.connection.close()
        else:
            raise ValueError(f"unknown script step {step!r}")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload.encode("utf-8") if isinstance(payload, str) else json.dumps(payload).encode("utf-8")
        h.send_response(status)
        h.send_header("Content-Type", "application/json" if not isinstance(payload, str) else "text/plain")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
