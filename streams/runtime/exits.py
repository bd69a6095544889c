"""How the worker leaves on purpose, and with which code, for its supervisor.

- ``ExitCode.BUG`` (70, ``EX_SOFTWARE``): an unexpected error while processing a record or restoring
  a partition. Nothing past the last checkpoint was committed, so a restart replays from there.
- ``ExitCode.STORAGE`` (74, ``EX_IOERR``): the local store cannot be written (the disk is full or
  read-only). A restart cannot help until an operator frees space, so supervisors must not
  restart on it in a loop (``scripts/supervise.sh`` stops; systemd: ``RestartPreventExitStatus=74``).
- ``ExitCode.STALLED`` (75, ``EX_TEMPFAIL``): the watchdog saw records waiting and no progress for
  ``DW_STALL_EXIT_S``, the broker did not acknowledge what the worker produced, or a Kafka error
  reached the loop or a rebalance callback; a restart resumes from the last commit.

Which error gives which code is decided in one place, ``streams.runtime.loop.leave_on``.

``scripts/supervise.sh`` (``make run``) restarts on 70 and 75 only.
The process ends at once (``os._exit``): no shutdown hook may commit past what was processed.
Each such exit is counted in ``DW_DATA_DIR/exits.json`` (``record_in``), which the next start
reads into ``disposal_worker_exits_total{code}``: restarts on purpose stay visible to ops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from enum import IntEnum
from pathlib import Path
from typing import NoReturn

log = logging.getLogger(__name__)

#: where exits are counted (None: nowhere), set once at start
_record: Path | None = None


class ExitCode(IntEnum):
    BUG = 70
    STORAGE = 74
    STALLED = 75


def record_in(data_dir: Path) -> dict[str, int]:
    """Count later exits in ``data_dir``; returns the exits counted so far, by code."""
    global _record
    _record = data_dir / "exits.json"
    return _read(_record)


def _read(path: Path) -> dict[str, int]:
    try:
        doc = json.loads(path.read_text())
        return {str(k): int(v) for k, v in doc.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def leave(code: ExitCode, message: str, *, exc_info: bool = False) -> NoReturn:
    """Log ``message`` as critical, count the exit, and end the process with ``code`` now."""
    log.critical("%s; exiting with code %d (%s)", message, code, code.name.lower(), exc_info=exc_info)
    if _record is not None:
        with contextlib.suppress(OSError):  # counting must never keep the process alive
            counts = _read(_record)
            counts[str(int(code))] = counts.get(str(int(code)), 0) + 1
            _record.write_text(json.dumps(counts))
    logging.shutdown()
    os._exit(code)
