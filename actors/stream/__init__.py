"""One StreamActor per stream (supervised by the driver): the Stream HSM and its SHM I/O."""
