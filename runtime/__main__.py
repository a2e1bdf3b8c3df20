"""``python -m runtime`` works like ``netbuilder`` for every subcommand."""
import sys

from runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
