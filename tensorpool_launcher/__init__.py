"""The composition root: argv, start order, signals, exit codes; everything else is wired here.

``cli`` is the command line (``tensorpool-driver``, ``python launcher.py``), ``process``
runs one driver (``run_driver``): namespace lock -> media driver -> gateway -> admin plane
-> actor system, torn down in reverse. Importing this package stays light (no pykka, numpy,
pyaeron or zmq) so ``status``/``events``/``keygen`` start fast: the driver's parts are
imported when ``run_driver`` runs.
"""

from tensorpool_launcher.cli import build_parser, main
from tensorpool_launcher.process import ExitCode, run_driver

__all__ = ["ExitCode", "build_parser", "main", "run_driver"]
