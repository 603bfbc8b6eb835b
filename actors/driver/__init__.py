"""The driver: every decision, on the DriverActor's thread.

The DriverActor (``actor.py``) hosts the Driver HSM (``machine.py``) over ``DriverModel``
(``model.py``: the state and the operations its handlers share) and performs its effects
(``effects.py``). Each stream's lifecycle is a Stream HSM (``stream_machine.py``), one per
stream, run by the Driver HSM's handlers on this thread; its StreamActor only provisions.
One module per request path: ``attach.py`` (policy checks in ``attach_policy.py``, then
reservation, then the stream), ``stream_replies.py`` (the StreamActors' replies, to their
Stream HSM), ``leases.py`` (keepalive, detach, expiry), ``children.py`` (supervision of the
StreamActors and LeaseActors, ``supervision.py``). ``pending.py`` keeps the reservations of
pending attaches, ``replies.py`` builds the OK response and the announce; ``commands.py``
is the driver's protocol with its children. No I/O here but the actor's.
"""
