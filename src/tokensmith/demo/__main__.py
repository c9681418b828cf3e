"""``python -m tokensmith.demo [--check] ...`` runs ``tokensmith demo``."""

import typer

from tokensmith.cli.demo import demo

typer.run(demo)
