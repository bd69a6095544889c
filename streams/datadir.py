"""``DW_DATA_DIR`` checked at start: a directory this worker can write, with room to write.

A data directory that is a file, read-only, or full would otherwise fail later and deep inside
RocksDB with a traceback; ``prepare`` says in one line which and why (``ConfigError``, exit 2).
A disk that fills while the worker runs is ``StorageError`` (``streams.runtime.store``) and exit
74 (``streams.runtime.exits``), which supervisors do not restart in a loop.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from streams.errors import ConfigError

#: what a start must be able to write at least: the probe file's size
PROBE_BYTES = 1 << 20

_WHY = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "it is on a read-only file system",
    errno.EACCES: "this user may not write there",
    errno.EPERM: "this user may not write there",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
}


def _problem(path: Path, exc: OSError) -> ConfigError:
    why = _WHY.get(exc.errno or 0, exc.strerror or str(exc))
    return ConfigError(f"DW_DATA_DIR={path} is not usable: {why}")


def prepare(path: Path) -> None:
    """Create ``path`` if needed and prove that a megabyte can be written and synced there."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"DW_DATA_DIR={path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _problem(path, exc) from None
    probe = path / ".write-probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _problem(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    free = shutil.disk_usage(path).free
    if free < PROBE_BYTES:
        raise ConfigError(f"DW_DATA_DIR={path} is not usable: the disk is full ({free:,} bytes free)")
