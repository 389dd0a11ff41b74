"""Thin shim so ``python cli.py ...`` works from a checkout; the app lives in ``extractor.cli``."""

from extractor.cli import app

if __name__ == "__main__":
    app()
