"""``python -m xtomo``: the same command line as ``xtomo``."""
import sys

from xtomo.cli import main

sys.exit(main())
