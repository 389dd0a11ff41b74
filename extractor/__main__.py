"""``python -m extractor ...`` runs the ``signals`` command."""

from extractor.cli import main

main()
