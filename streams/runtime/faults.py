"""Faults a test can switch on, to prove the runtime's claims against a real broker.

- ``DW_FAULT_HANG_FILE=<path>``: when the file exists after a batch, the counting loop removes it
  and hangs (holding its lock, as a stalled consumer would). The watchdog must notice and exit
  with code 75; the restarted worker must end exact.
- ``DW_FAULT_KILL_AFTER=<step>:<n>``: the process kills itself with SIGKILL right after step
  ``changelog``, ``commit`` or ``store`` of its n-th checkpoint (``streams.runtime.checkpoint``):
  each crash point of the checkpoint protocol, on demand. Under exactly-once, ``changelog`` is
  after the changelog records are acknowledged but before their transaction commits.

Both are off unless set; neither costs anything on the per-record path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)

STEPS = ("changelog", "commit", "store")


class Faults:
    def __init__(self, hang_file: Path | None = None, kill_after: str | None = None) -> None:
        self._hang_file = hang_file
        self._kill_step: str | None = None
        self._kill_at = 0
        if kill_after:
            step, _, n = kill_after.partition(":")
            self._kill_step, self._kill_at = step, int(n)
        self._checkpoints = 0

    async def maybe_hang(self) -> None:
        if self._hang_file is None or not self._hang_file.exists():
            return
        self._hang_file.unlink(missing_ok=True)
        log.warning("fault injected (DW_FAULT_HANG_FILE): the counting loop hangs")
        await asyncio.Event().wait()

    def after(self, step: str) -> None:
        """Called by the checkpoint after each of its steps."""
        if self._kill_step is None:
            return
        if step == STEPS[0]:
            self._checkpoints += 1
        if step == self._kill_step and self._checkpoints == self._kill_at:
            log.warning(
                "fault injected (DW_FAULT_KILL_AFTER): SIGKILL after %s of checkpoint %d", step, self._kill_at
            )
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)
