"""``python -m tinymlaas`` runs the CLI (useful where the console script is not on PATH)."""

from tinymlaas.cli.app import main

main()
