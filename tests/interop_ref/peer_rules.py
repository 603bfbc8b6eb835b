"""The acceptance rules the reference client libraries apply to driver output, restated.

Each function re-expresses, in our own terms, a check that a C or Julia peer performs on
bytes or files coming from the driver (driver-protocol.md §3.2, wire-protocol.md §1/§3,
shm-layout.md §8, ambiguities A-18/A-20). The tests feed our encoders' and provisioner's
output through them: a failure here means a reference client would refuse what we send.
Every function returns a list of problems (empty = the peer accepts).
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import Final

from shm import parse_region_uri

HEADER: Final = struct.Struct("<HHHH")
GROUP: Final = struct.Struct("<HH")
VAR_LEN: Final = struct.Struct("<I")
HEADER_SLOT_BYTES: Final = 256
SUPERBLOCK: Final = struct.Struct("<QIQIhHIIIQQQ")
MAGIC: Final = 0x544F504C53484D31
# C clients refuse to map a region whose mode has any of these bits (their default policy).
C_FORBIDDEN_MODE: Final = 0o007
# The allowlist the C example programs configure.
C_EXAMPLE_ALLOWED: Final = ("/dev/shm", "/tmp")

_U16_NULL: Final = 0xFFFF
_U32_NULL: Final = 0xFFFFFFFF
_U64_NULL: Final = 0xFFFFFFFFFFFFFFFF


def strict_header(data: bytes, schema: int, template: int, block: int) -> list[str]:
    """C decoders: same schema/template, version <= 1 and block length exactly the schema's."""
    if len(data) < HEADER.size:
        return ["shorter than the message header"]
    got_block, got_template, got_schema, version = HEADER.unpack_from(data)
    problems = []
    if (got_schema, got_template) != (schema, template):
        problems.append(f"schema/template {got_schema}/{got_template}")
    if version > 1:
        problems.append(f"version {version} > 1")
    if got_block != block:
        problems.append(f"block length {got_block} != {block}")
    if len(data) < HEADER.size + block:
        problems.append("root block truncated")
    return problems


def _var(data: bytes, pos: int) -> tuple[bytes, int]:
    (length,) = VAR_LEN.unpack_from(data, pos)
    start = pos + VAR_LEN.size
    return data[start:start + length], start + length


def _pools(data: bytes, pos: int, header_nslots: int) -> tuple[list[str], int, int]:
    """Walk a payloadPools group (entry block 10 + regionUri); (problems, count, end)."""
    problems = []
    entry_block, count = GROUP.unpack_from(data, pos)
    if entry_block != 10:
        problems.append(f"group entry block length {entry_block} != 10")
    pos += GROUP.size
    for _ in range(count):
        _pool_id, nslots, stride = struct.unpack_from("<HII", data, pos)
        uri, pos = _var(data, pos + entry_block)
        if _U32_NULL in (nslots, stride):
            problems.append("pool field null")
        if nslots != header_nslots:
            problems.append(f"pool nslots {nslots} != header nslots {header_nslots}")
        if not uri:
            problems.append("empty pool uri")
        else:
            parse_region_uri(uri.decode("ascii"))
    return problems, count, pos


def attach_response_ok(data: bytes) -> list[str]:
    """What a C/Julia client requires of an OK ShmAttachResponse before using the lease."""
    problems = strict_header(data, 901, 2, 54)
    if problems:
        return problems
    body = HEADER.size
    (code,) = struct.unpack_from("<i", data, body + 8)
    lease, expiry, stream, epoch, layout, nslots, slot_bytes, node = struct.unpack_from(
        "<QQIQIIHI", data, body + 12)
    if code != 0:
        problems.append(f"code {code} is not OK")
    nulls = {"leaseId": lease == _U64_NULL, "streamId": stream == _U32_NULL,
             "epoch": epoch == _U64_NULL, "layoutVersion": layout == _U32_NULL,
             "headerNslots": nslots == _U32_NULL, "headerSlotBytes": slot_bytes == _U16_NULL,
             "nodeId": node == _U32_NULL, "leaseExpiry": expiry == _U64_NULL}
    problems.extend(f"{name} is null" for name, is_null in nulls.items() if is_null)
    if slot_bytes != HEADER_SLOT_BYTES:
        problems.append(f"headerSlotBytes {slot_bytes}")
    if nslots == 0 or nslots & (nslots - 1):
        problems.append(f"headerNslots {nslots} not a non-zero power of two")
    if layout != 1:
        problems.append(f"layoutVersion {layout} (consumers map only layout 1)")
    pool_problems, count, pos = _pools(data, body + 54, nslots)
    problems.extend(pool_problems)
    if count == 0:
        problems.append("no payload pools")
    header_uri, pos = _var(data, pos)
    if not header_uri:
        problems.append("empty header uri")
    else:
        parse_region_uri(header_uri.decode("ascii"))
    error, pos = _var(data, pos)
    if error:
        problems.append("error message on OK")
    if pos != len(data):
        problems.append(f"{len(data) - pos} trailing bytes")
    return problems


def attach_response_reject(data: bytes) -> tuple[list[str], str]:
    """A non-OK response: nulls, empty group 10/0, empty header uri; returns the error text."""
    problems = strict_header(data, 901, 2, 54)
    if problems:
        return problems, ""
    body = HEADER.size
    lease, expiry, stream, epoch, layout, nslots, slot_bytes, node = struct.unpack_from(
        "<QQIQIIHI", data, body + 12)
    if (lease, expiry, epoch) != (_U64_NULL,) * 3 or (stream, layout, nslots, node) != (
            _U32_NULL,) * 4 or slot_bytes != _U16_NULL:
        problems.append("optional fields not null on a reject")
    entry_block, count = GROUP.unpack_from(data, body + 54)
    if (entry_block, count) != (10, 0):
        problems.append(f"group header {entry_block}/{count} != 10/0")
    header_uri, pos = _var(data, body + 54 + GROUP.size)
    if header_uri:
        problems.append("header uri on a reject")
    error, pos = _var(data, pos)
    if pos != len(data):
        problems.append("trailing bytes")
    return problems, error.decode("ascii")


def announce(data: bytes) -> list[str]:
    """What a C consumer requires of a ShmPoolAnnounce before remapping (block 35, schema 900)."""
    problems = strict_header(data, 900, 1, 35)
    if problems:
        return problems
    body = HEADER.size
    _stream, _producer, _epoch, _ts, clock, layout, nslots, slot_bytes = struct.unpack_from(
        "<IIQQBIIH", data, body)
    if clock != 1:
        problems.append(f"clock domain {clock} (driver must say MONOTONIC)")
    if slot_bytes != HEADER_SLOT_BYTES:
        problems.append(f"headerSlotBytes {slot_bytes}")
    if layout != 1:
        problems.append(f"layout {layout}")
    pool_problems, count, pos = _pools(data, body + 35, nslots)
    problems.extend(pool_problems)
    if count == 0:
        problems.append("no payload pools")
    header_uri, pos = _var(data, pos)
    if not header_uri:
        problems.append("empty header uri")
    if pos != len(data):
        problems.append("trailing bytes")
    return problems


def consumer_config(data: bytes) -> list[str]:
    """C consumer: a channel and its stream id are both set or both empty/zero."""
    problems = strict_header(data, 900, 3, 18)
    if problems:
        return problems
    body = HEADER.size
    _stream, _consumer, use_shm, _mode, desc_id, ctrl_id = struct.unpack_from(
        "<IIBBII", data, body)
    if use_shm != 1:
        problems.append("useShm is not TRUE (the consumer would drop to fallback)")
    _fallback, pos = _var(data, body + 18)
    desc_channel, pos = _var(data, pos)
    ctrl_channel, pos = _var(data, pos)
    if bool(desc_channel) != bool(desc_id):
        problems.append("descriptor channel/id half set")
    if bool(ctrl_channel) != bool(ctrl_id):
        problems.append("control channel/id half set")
    if pos != len(data):
        problems.append("trailing bytes")
    return problems


def region_file(uri: str, allowed: tuple[str, ...], expected: dict[str, int]) -> list[str]:
    """The C/Julia mapper checks of shm-layout.md §8 on one region named by ``uri``."""
    problems = []
    path = parse_region_uri(uri).path
    real = os.path.realpath(path)
    canon = [os.path.realpath(a) for a in allowed]
    if not any(real == a or real.startswith(a.rstrip("/") + "/") for a in canon):
        problems.append(f"{real} outside {canon}")
    walked = Path("/")
    for part in path.split("/")[1:-1]:
        walked /= part
        if walked.is_symlink():
            problems.append(f"symlink component {walked} (C opens with O_NOFOLLOW)")
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        problems.append("not a regular file")
    if st.st_mode & C_FORBIDDEN_MODE:
        problems.append(f"mode {stat.S_IMODE(st.st_mode):o} has 'other' bits")
    size = expected["size"]
    if st.st_size < max(SUPERBLOCK.size, size):
        problems.append(f"size {st.st_size} < {size}")
    with Path(path).open("rb") as f:
        head = f.read(SUPERBLOCK.size)
    (magic, layout, epoch, stream, region_type, pool_id, nslots, slot_bytes, stride, _pid,
     _start, activity) = SUPERBLOCK.unpack(head)
    want = {"magic": MAGIC, "layout": 1, "epoch": expected["epoch"],
            "stream": expected["stream_id"], "region_type": expected["region_type"],
            "pool_id": expected["pool_id"], "nslots": expected["nslots"],
            "slot_bytes": expected["slot_bytes"], "stride": expected["stride_bytes"]}
    got = {"magic": magic, "layout": layout, "epoch": epoch, "stream": stream,
           "region_type": region_type, "pool_id": pool_id, "nslots": nslots,
           "slot_bytes": slot_bytes, "stride": stride}
    problems.extend(f"superblock {k} {got[k]} != {v}" for k, v in want.items() if got[k] != v)
    if activity == 0:
        problems.append("activity timestamp 0")
    return problems
