"""The LLM path: backends, versioned prompts, strict output schemas, parse + repair, grounding, cache.

Nothing here imports ``extractor.local`` (and the reverse): the cascade that uses both lives in
``extractor.cascade``. Heavy stacks (llama-cpp-python, transformers, langchain) load lazily.
"""
