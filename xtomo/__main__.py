"""``python -m xtomo``: the same command line as ``xtomo``."""
import sys

from .cli import main

sys.exit(main())
