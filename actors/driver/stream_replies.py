"""Driver HSM handlers of the StreamActors' replies: each goes to its stream's Stream HSM.

What a reply means (grant or fail an attach, announce a new epoch, settle) depends on the
stream's state, so the Stream HSM decides it (``stream_machine.py``) and
``DriverModel.run_stream`` carries it out. A reply for a stream the driver has forgotten
(a dynamic stream whose creating attach failed) is dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from actors.runtime.hsm import HANDLED, Outcome
from messages.events import COUNTER_PROVISION_FAILED

if TYPE_CHECKING:
    from actors.driver.commands import (
        EpochProvisioned,
        EpochProvisionFailed,
        ProvisionFailed,
        StreamReady,
    )
    from actors.driver.model import DriverModel

logger = logging.getLogger(__name__)


def on_stream_reply(
    m: DriverModel, ev: StreamReady | ProvisionFailed | EpochProvisioned | EpochProvisionFailed
) -> Outcome:
    stream = m.streams.get(ev.stream_id)
    if stream is not None:
        m.run_stream(stream, stream.dispatch(ev))
    return HANDLED


def on_epoch_provision_failed(m: DriverModel, ev: EpochProvisionFailed) -> Outcome:
    """Re-provisioning after a producer's end or a restart failed: logged and counted; the
    Stream HSM keeps the old epoch and settles all the same."""
    if ev.stream_id in m.streams:
        logger.error("stream %d: re-provisioning failed: %s", ev.stream_id, ev.detail)
        m.count(COUNTER_PROVISION_FAILED)
    return on_stream_reply(m, ev)
