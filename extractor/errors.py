"""Every error signals raises, under one root. Each message says what to do next.

    SignalsError
     ├── ConfigError        a bad option, file or taxonomy the user gave
     ├── InputError         an input file that cannot be opened at all (bad rows are rejects, not errors)
     ├── ModelError         a model that cannot be found or loaded
     └── MissingExtra       an optional stack is not installed; names the extra to install
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
