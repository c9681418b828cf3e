"""``python -m tokensmith.demo [--check] ...`` runs ``tokensmith demo``."""

from tokensmith.demo.cli import main

main()
