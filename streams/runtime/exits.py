"""How the worker leaves on purpose, and with which code, for its supervisor.

- ``EXIT_BUG`` (70, ``EX_SOFTWARE``): an unexpected error while processing a record or restoring
  a partition. Nothing past the last checkpoint was committed, so a restart replays from there.
- ``EXIT_STALLED`` (75, ``EX_TEMPFAIL``): the watchdog saw records waiting and no progress for
  ``DW_STALL_EXIT_S``, or the broker did not acknowledge changelog records; a restart resumes
  from the last commit.

``scripts/supervise.sh`` (``make run``) and the compose file's restart policy restart on both.
The process ends at once (``os._exit``): no shutdown hook may commit past what was processed.
"""

from __future__ import annotations

import logging
import os
from enum import IntEnum
from typing import NoReturn

log = logging.getLogger(__name__)


class ExitCode(IntEnum):
    BUG = 70
    STALLED = 75


def leave(code: ExitCode, message: str, *, exc_info: bool = False) -> NoReturn:
    """Log ``message`` as critical and end the process with ``code`` now."""
    log.critical("%s; exiting with code %d (%s)", message, code, code.name.lower(), exc_info=exc_info)
    logging.shutdown()
    os._exit(code)
