"""``python launcher.py``: the driver run from a checkout, same as ``tensorpool-driver``.

A thin shim: the code lives in ``actors.cli`` (arguments) and ``actors.process`` (start
order, signals, exit codes), which the installed console script runs too. Kept at the top
level because ``python launcher.py`` is how a checkout is used (README, examples, tests) and
``launcher.run_driver`` is how embedding code starts a driver.
"""

from __future__ import annotations

import sys

from actors.cli import build_parser, main
from actors.process import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, run_driver

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "build_parser", "main", "run_driver"]

if __name__ == "__main__":
    sys.exit(main())
