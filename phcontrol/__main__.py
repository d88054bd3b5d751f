"""Run the command line as ``python -m phcontrol``."""

import sys

from .cli import main

sys.exit(main())
