"""Every error signals raises, under one root. Each message says what to do next.

    SignalsError
     ├── ConfigError        a bad option, file or taxonomy the user gave
     ├── InputError         an input file that cannot be opened at all (bad rows are rejects, not errors)
     ├── ModelError         a model that cannot be found or loaded
     ├── MissingExtra       an optional stack is not installed; names the extra to install
     ├── LLMError           an LLM backend failed after its retries, or its answer is unusable
     └── BudgetExceeded     a run spent its --max-tokens-budget (it stops cleanly; rerun to resume)
"""

from __future__ import annotations


class SignalsError(Exception):
    """Root of everything signals raises on purpose."""


class ConfigError(SignalsError):
    """Raised when an option, taxonomy or model directory given by the user is invalid."""


class InputError(SignalsError):
    """Raised when an input path cannot be opened or its format is unknown."""


class ModelError(SignalsError):
    """Raised when a model cannot be located or loaded offline."""


class MissingExtra(SignalsError):
    """Raised when an optional dependency is missing; the message names the extra."""

    def __init__(self, package: str, extra: str):
        super().__init__(
            f"{package} is not installed. Install it with: pip install 'signals-extractor[{extra}]'"
        )
        self.package = package
        self.extra = extra


class LLMError(SignalsError):
    """Raised when an LLM backend cannot answer (after its retries) or its answer cannot be used."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class BudgetExceeded(SignalsError):
    """Raised when a run's ``--max-tokens-budget`` is spent; the run stops cleanly and can be resumed."""
