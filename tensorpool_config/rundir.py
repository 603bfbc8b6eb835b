"""Where the admin plane's sockets live when the configuration does not say.

Resolved by the loader, so the driver and ``launcher.py status`` compute the same directory
from the same configuration and environment.
"""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

_NOT_USER_CHAR = re.compile(r"[^A-Za-z0-9_-]")


def effective_user_name() -> str:
    """The effective uid's login name, kept to ``[A-Za-z0-9_-]`` (as for SHM paths, A-27)."""
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        name = ""
    return _NOT_USER_CHAR.sub("", name) or str(uid)


def default_run_dir(instance_id: str, env: Mapping[str, str], user: str | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/tensorpool-<user>/<instance_id>``, else the same under ``/tmp``.

    An unset, empty or relative ``XDG_RUNTIME_DIR`` is ignored, as the XDG base directory
    specification asks. The instance id becomes one safe path component.
    """
    runtime = env.get("XDG_RUNTIME_DIR", "")
    root = Path(runtime) if runtime.startswith("/") else Path("/tmp")  # noqa: S108
    component = re.sub(r"[^A-Za-z0-9_-]", "_", instance_id) or "driver"
    return root / f"tensorpool-{user or effective_user_name()}" / component
