"""One exception class per failure condition of the shm package, so callers branch on the class."""

from __future__ import annotations


class ShmError(Exception):
    """Base class of every error raised by the shm package."""


class UriError(ShmError):
    """A region URI does not follow the ``shm:file?path=...`` grammar (shm-layout.md §6)."""


class PathError(ShmError):
    """A path is unsafe: relative, outside the allowed base dirs, through a symlink, or invalid."""


class RegionValidationError(ShmError):
    """A region file failed one of the mapper's checks (shm-layout.md §8); ``check`` names it."""

    def __init__(self, check: str, problem: str) -> None:
        super().__init__(f"{check}: {problem}")
        self.check = check
        self.problem = problem


class ProvisionError(ShmError):
    """An epoch could not be provisioned; ``str()`` is the spec's ``<detail>`` text."""


class HugepagesUnavailable(ProvisionError):  # noqa: N818 - name fixed by docs/CONTRACTS.md
    """Hugepages were required but the base directory is not on hugetlbfs (never a fallback)."""
