"""One LeaseActor per lease (supervised by the driver): the Lease HSM and the revoke message."""
