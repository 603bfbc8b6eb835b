"""``python launcher.py``: the driver run from a checkout, same as ``tensorpool-driver``.

A thin shim over the installed package ``tensorpool_launcher`` (``cli``: arguments;
``process``: start order, signals, exit codes, ``run_driver``), which the console script runs
too. Kept at the top level because ``python launcher.py`` is how a checkout is used (README,
examples, tests); embedding code imports ``run_driver`` from ``actors`` or
``tensorpool_launcher``, which the wheel ships (this file it does not).
"""

from __future__ import annotations

import sys

from tensorpool_launcher import ExitCode, build_parser, main, run_driver

__all__ = ["ExitCode", "build_parser", "main", "run_driver"]

if __name__ == "__main__":
    sys.exit(main())
