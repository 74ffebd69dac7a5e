"""`python -m composer` runs the `compose` command."""

from composer.cli import main

main()
