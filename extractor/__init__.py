"""signals: evidence-linked customer signals from support text.

>>> from extractor import extract
>>> result = extract("I was charged twice, fix it by Friday")      # doctest: +SKIP
>>> {s.kind for s in result.signals} >= {"intent", "sentiment", "urgency"}  # doctest: +SKIP
True

Importing this package is cheap: the model stacks load on the first extraction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Pipeline", "customer_state", "extract", "__version__"]

if TYPE_CHECKING:
    from .pipeline import Pipeline
    from .types import CustomerState, ExtractionResult

_default: Any = None


def __getattr__(name: str):
    if name == "Pipeline":
        from .pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'extractor' has no attribute {name!r}")


def extract(text: str, **fields: Any) -> ExtractionResult:
    """Extract signals from one text with the default local models (loaded once per process).

    ``fields`` may set ``id``, ``customer_id``, ``channel`` or ``created_at`` (used to resolve
    relative dates such as "by Friday").
    """
    global _default
    if _default is None:
        from .pipeline import Pipeline

        _default = Pipeline()
    return _default.extract(text, **fields)


def customer_state(customer_id: str, workspace: str = ".signals", **kwargs: Any) -> CustomerState | None:
    """The state of one customer in ``workspace`` (``as_of=``, ``cfg=`` as in ``extractor.state.state``)."""
    from .state import state

    return state(workspace, customer_id, **kwargs)
