"""The openai backend against a REAL OpenAI-compatible server: llama-cpp-python's, started on 127.0.0.1 by
this module with the SmolLM2 GGUF (the same model the llamacpp tests load in-process)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx
import pytest

from extractor.llm.backends.openai_http import OpenAIBackend
from extractor.llm.extractor import LLMExtractor
from extractor.types import Document, Turn

from .llm_fixtures import INTENTS, LIMITS, assert_valid_llm_signals, smollm2_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed (the dev extra is)")
    port = _free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()),
                             "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                             "--n_ctx", "2048", "--verbose", "False"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not come up within 90 s")
    yield base
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


DOC = Document(id="s1", turns=[Turn(speaker="Agent", text="Hello, Nimbus support, how can I help?", role="agent"),
                               Turn(speaker="Customer", text="My internet has been down since Monday. Fix it today "
                                    "or I cancel.", role="customer")])


def test_real_llama_cpp_server_auto_mode_falls_back_to_json_object_and_grounds(server):
    backend = OpenAIBackend("smollm2", base_url=server, parallel=1, backoff=0.05)
    [out] = LLMExtractor(backend, INTENTS, **LIMITS).extract_batch([DOC])
    # llama-cpp-python's server answers the json_schema form with HTTP 500 and takes json_object + schema
    assert backend.schema_mode == "json_object"
    assert out.error is None, out.error
    assert assert_valid_llm_signals(DOC, out.signals) >= 1
    assert out.usage.model_calls >= 1 and out.usage.prompt_tokens > 0


def test_real_llama_cpp_server_rejects_the_json_schema_form(server):
    """The server behaviour the auto mode exists for (if this changes, auto mode still works)."""
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}}}
    assert httpx.post(f"{server}/chat/completions", json=body, timeout=60).status_code >= 400


def test_real_llama_cpp_server_json_object_mode_follows_the_schema(server):
    backend = OpenAIBackend("smollm2", base_url=server, schema_mode="json_object", parallel=1)
    ex = LLMExtractor(backend, INTENTS, **LIMITS)
    [out] = ex.extract_batch([Document(id="t", text="I was charged twice for October. Please refund it.")])
    assert out.error is None and out.usage.repairs == 0  # constrained by the server: valid at the first try
    assert_valid_llm_signals(Document(id="t", text="I was charged twice for October. Please refund it."),
                             out.signals)
    assert json.loads(json.dumps([s.model_dump(mode="json") for s in out.signals]))
