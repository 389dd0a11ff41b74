"""A LangChain retriever over the signals index, for pipelines that already use LangChain.

Each hit becomes a ``Document`` whose ``page_content`` is the quote and whose metadata carries the
hit's ids, offsets, speaker, customer, date, score and signals. Needs the ``langchain`` extra.

>>> from extractor.retriever import SignalsRetriever                     # doctest: +SKIP
>>> SignalsRetriever(workspace=".signals", where="sentiment=negative", k=5).invoke("delivery fees")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .errors import MissingExtra

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtra("langchain-core", "langchain") from exc


class SignalsRetriever(BaseRetriever):
    """``Index.open(workspace).search(query, where=..., k=..., mode=...)`` as LangChain documents."""

    workspace: str = ".signals"
    where: str | None = None
    k: int = 10
    mode: str = "hybrid"
    _index: Any = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        from .index import Index

        if self._index is None:
            self._index = Index.open(self.workspace)
        result = self._index.search(query, where=self.where, k=self.k, mode=self.mode)
        return [Document(page_content=h.text, metadata={k: v for k, v in h.as_json().items() if k != "text"})
                for h in result.hits]
