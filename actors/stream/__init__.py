"""One StreamActor per stream (supervised by the driver): the SHM I/O of its Stream HSM."""
