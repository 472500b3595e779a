"""``python -m deliverypulse`` runs the CLI."""

from deliverypulse.cli import run

run()
