"""One tensorpool driver per SHM namespace: an exclusive ``flock`` on ``driver.lock``.

Two drivers on one namespace would provision the same stream directories and hand out
conflicting leases. The kernel drops a ``flock`` when its holder dies, so a crashed driver
never blocks the next start. The lock file holds the owner's pid for the error message.
It lives in ``shm/`` because it is a fact of the namespace directory, like the stream
directories beside it; the launcher takes it first and releases it last.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import TYPE_CHECKING, Self

from shm.errors import ShmError
from shm.safe_fs import make_dirs_nofollow

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

__all__ = ["LOCK_NAME", "InstanceLock", "InstanceLockError"]

LOCK_NAME = "driver.lock"


class InstanceLockError(RuntimeError):
    """Another driver holds the namespace, or the lock file cannot be created."""


class InstanceLock:
    """Held from ``acquire`` to ``release``; a context manager as well."""

    def __init__(
        self, directory: Path, dir_mode: int = 0o770, *, owned_below: Path | None = None
    ) -> None:
        self.directory = directory
        self._owned_below = owned_below
        self.path = directory / LOCK_NAME
        self._dir_mode = dir_mode
        self._fd: int | None = None

    def acquire(self) -> None:
        """Create the namespace directory if needed and take the lock, or raise."""
        try:
            os.close(
                make_dirs_nofollow(self.directory, self._dir_mode, owned_below=self._owned_below)
            )
        except OSError as exc:
            raise InstanceLockError(f"cannot create {self.directory}: {exc.strerror}") from exc
        except ShmError as exc:
            raise InstanceLockError(f"cannot create {self.directory}: {exc}") from exc
        for _ in range(3):  # the file may be unlinked by a releasing owner between our steps
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_pid(fd)
                os.close(fd)
                who = f"pid {owner}" if owner else "another process"
                raise InstanceLockError(
                    f"another tensorpool driver ({who}) already runs on {self.directory} "
                    f"(lock {self.path})"
                ) from None
            if _same_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._fd = fd
                return
            os.close(fd)
        raise InstanceLockError(f"cannot take the lock {self.path}: it keeps being replaced")

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InstanceLockError(f"cannot open {self.path}: {exc.strerror}") from exc

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(fd)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = path.lstat()
    except OSError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)
