"""CURVE checks for the optional TCP status endpoint: never a TCP admin socket without them.

A plain TCP status port would tell anyone on the network which clients hold which leases, so
a ``tcp_endpoint`` without a valid server key pair and at least one authorized client key is
a configuration error, reported before any socket exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import zmq
import zmq.auth.thread
from zmq.utils import z85

from actors.admin.rundir import AdminConfigError

if TYPE_CHECKING:
    from tensorpool_config import DriverConfig

_Z85_KEY_CHARS = 40
ZAP_DOMAIN = "tensorpool-admin"


@dataclass(frozen=True, slots=True)
class CurveServerKeys:
    """Validated Z85 keys (as bytes, the form zmq socket options take)."""

    public_key: bytes
    secret_key: bytes
    authorized_clients: frozenset[bytes]


def _decode_key(name: str, text: str) -> bytes:
    raw = text.strip().encode("ascii", errors="replace")
    if len(raw) != _Z85_KEY_CHARS:
        raise AdminConfigError(
            f"admin.{name}: expected a 40-character Z85 CURVE key, got {len(raw)} characters"
        )
    try:
        z85.decode(raw)
    except (ValueError, KeyError, IndexError) as exc:
        raise AdminConfigError(f"admin.{name}: not a valid Z85 CURVE key") from exc
    return raw


def curve_keys_for(config: DriverConfig) -> CurveServerKeys | None:
    """None without a TCP endpoint; AdminConfigError when its keys are unusable."""
    admin = config.admin
    if not admin.tcp_endpoint:
        return None
    if not admin.tcp_endpoint.startswith("tcp://"):
        raise AdminConfigError(f"admin.tcp_endpoint: {admin.tcp_endpoint!r} is not a tcp:// URL")
    if not zmq.has("curve"):
        raise AdminConfigError("admin.tcp_endpoint: this libzmq has no CURVE support")
    if not admin.curve_public_key or not admin.curve_secret_key:
        raise AdminConfigError(
            "admin.tcp_endpoint is set but admin.curve_public_key/admin.curve_secret_key are"
            " missing: the TCP status endpoint is only served with CURVE"
        )
    public = _decode_key("curve_public_key", admin.curve_public_key)
    secret = _decode_key("curve_secret_key", admin.curve_secret_key)
    if zmq.curve_public(secret) != public:
        raise AdminConfigError("admin.curve_public_key does not belong to admin.curve_secret_key")
    if not admin.curve_authorized_clients:
        raise AdminConfigError(
            "admin.tcp_endpoint is set but admin.curve_authorized_clients is empty:"
            " no client could ever connect"
        )
    clients = frozenset(
        _decode_key("curve_authorized_clients", key) for key in admin.curve_authorized_clients
    )
    return CurveServerKeys(public, secret, clients)


class _AllowListed:
    """ZAP credentials provider: a client is let in only if its public key is listed."""

    def __init__(self, allowed: frozenset[bytes]) -> None:
        self._allowed = allowed

    def callback(self, domain: str, key: bytes) -> bool:
        return domain == ZAP_DOMAIN and key in self._allowed


def start_authenticator(
    context: zmq.Context[zmq.Socket[bytes]], keys: CurveServerKeys
) -> zmq.auth.thread.ThreadAuthenticator:
    """Start the ZAP handler; call before binding any CURVE server socket."""
    auth = zmq.auth.thread.ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve_callback(
        domain=ZAP_DOMAIN, credentials_provider=_AllowListed(keys.authorized_clients)
    )
    return auth


def make_curve_server(socket: zmq.Socket[bytes], keys: CurveServerKeys) -> None:
    """Turn ``socket`` into a CURVE server in our ZAP domain (before bind)."""
    socket.curve_secretkey = keys.secret_key
    socket.curve_publickey = keys.public_key
    socket.curve_server = True
    socket.zap_domain = ZAP_DOMAIN.encode()
