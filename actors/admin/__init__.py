"""The admin plane: the driver's status/events over zmq, on its own thread.

The only code of the driver that imports zmq (tests/architecture/test_import_boundaries.py
holds it to that): ``plane`` owns the sockets and the thread, ``rundir`` the run directory
and socket files, ``curve`` the CURVE keys of the TCP status endpoint, ``to_json`` the JSON
a status or an event becomes. The wire contract it shares with the admin CLI is ``messages.admin``.
"""

from actors.admin.plane import AdminPlane, start_admin
from actors.admin.rundir import AdminConfigError, AdminStartError

__all__ = ["AdminConfigError", "AdminPlane", "AdminStartError", "start_admin"]
