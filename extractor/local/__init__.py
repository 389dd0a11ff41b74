"""Local extractors: embedding classifiers (intent, sentiment), urgency cues, constraint rules + NER.

Nothing here imports the LLM path; the cascade that combines both lives in ``extractor.pipeline``.
"""
