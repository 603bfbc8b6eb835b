"""The one exception the configuration layer raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value (file, embedded default or environment) is unusable.

    The launcher prints ``str(error)`` and exits, so the text is one line that names the
    dotted key (or the file, or the environment variable) and what is wrong with it.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = " ".join(problem.split())  # one line, whatever tomllib or the OS said
        super().__init__(f"{self.key}: {self.problem}")
