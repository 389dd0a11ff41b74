"""What the ``signals`` command modules share: error exit, logging set-up, common options."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from .errors import SignalsError

Workspace = Annotated[Path, typer.Option(help="Workspace holding the store, index, profiles and audit log.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
AgentNames = Annotated[list[str] | None, typer.Option(
    "--agent-name", help="A transcript speaker who is an agent although the label does not say so (\"Dana\"); "
                         "repeat for several. Labels like Agent, Support, Rep are recognised without it.")]


def fail(exc: SignalsError) -> None:
    typer.secho(f"error: {exc}", err=True, fg="red")
    raise typer.Exit(2)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("sentence_transformers", "transformers", "httpx", "huggingface_hub", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
