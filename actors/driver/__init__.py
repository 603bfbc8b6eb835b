"""The driver: every decision, on the DriverActor's thread.

The DriverActor (``actor.py``) hosts the Driver HSM (``machine.py``) over ``DriverModel``
(``model.py``: the state and small typed helpers) and performs its effects (``effects.py``).
One module per request path: ``attach.py`` (policy checks in ``attach_policy.py``, then
reservation, provisioning and grant), ``leases.py`` (keepalive, detach, expiry, epoch bumps),
``children.py`` (supervision of the StreamActors and LeaseActors, ``supervision.py``).
``pending.py`` keeps the pending attaches, ``replies.py`` builds the OK response and the
announce; ``commands.py`` is the driver's protocol with its children. No I/O here but the
actor's.
"""
