"""Time to provision an epoch (prefault on) vs a plain zero fill of the same bytes.

For 1, 4 and 16 payload pools of 64 MiB each, provision a fresh epoch (header ring + pools,
superblocks, fsync, build-dir rename) and, in the same run, write the same number of bytes with
a plain memset-style fill (ftruncate + mmap + numpy fill of zeros) in the same directory.
Prints the median of a few runs and the ratio. Uses a temp dir under /dev/shm (or $TMPDIR when
/dev/shm is missing) and removes it.

    .venv/bin/python bench/provision.py [runs]
"""

from __future__ import annotations

import mmap
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from shm import ProvisionRequest, provision_epoch

POOL_BYTES = 64 << 20
STRIDE = 65536
NSLOTS = POOL_BYTES // STRIDE


def provision_once(base: Path, npools: int, epoch: int) -> float:
    req = ProvisionRequest(
        base_dir=base,
        namespace="bench",
        allowed_base_dirs=(base,),
        stream_id=1,
        epoch=epoch,
        header_nslots=NSLOTS,
        pools=tuple((i + 1, STRIDE) for i in range(npools)),
        permissions_mode=0o600,
        prefault=True,
        mlock=False,
        hugepages=False,
        pid=os.getpid(),
        now_ns=time.monotonic_ns(),
    )
    start = time.perf_counter()
    provisioned = provision_epoch(req)
    elapsed = time.perf_counter() - start
    shutil.rmtree(provisioned.directory)
    return elapsed


def fill_once(base: Path, nbytes: int) -> float:
    path = base / "fill.bin"
    start = time.perf_counter()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, nbytes)
        mapping = mmap.mmap(fd, nbytes)
        view = np.frombuffer(mapping, dtype=np.uint8)
        view.fill(0)
        del view
        mapping.close()
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - start
    path.unlink()
    return elapsed


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    root = "/dev/shm" if Path("/dev/shm").is_dir() else None
    base = Path(os.path.realpath(tempfile.mkdtemp(prefix="tp-bench-", dir=root)))
    try:
        print(f"dir {base}, {runs} runs, median; pools of {POOL_BYTES >> 20} MiB, prefault on")
        print(f"{'pools':>5} {'bytes (MiB)':>11} {'provision ms':>12} {'fill ms':>8} {'ratio':>6}")
        epoch = 1
        for npools in (1, 4, 16):
            nbytes = npools * (64 + NSLOTS * STRIDE) + 64 + NSLOTS * 256
            prov, fill = [], []
            for _ in range(runs):
                prov.append(provision_once(base, npools, epoch))
                epoch += 1
                fill.append(fill_once(base, nbytes))
            p, f = statistics.median(prov) * 1e3, statistics.median(fill) * 1e3
            print(f"{npools:>5} {nbytes / (1 << 20):>11.1f} {p:>12.1f} {f:>8.1f} {p / f:>6.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
