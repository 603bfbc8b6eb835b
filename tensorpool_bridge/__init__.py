"""The Aeron-UDP bridge (bridge.md): frames of one host's stream carried to another host.

A sender reads frames of a local stream as a consumer of its local driver and publishes them
as ``BridgeFrameChunk`` (schema 902) on ``aeron:udp``; a receiver reassembles them and writes
them into its own driver's pool as that stream's producer, so far consumers use the plain
local protocol. Aeron does the networking.
"""
