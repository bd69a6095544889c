"""Errors of the alerts package.

Hierarchy::

    AlertError
    └── RuleError    a rules file cannot be used (message: file, line, reason)
"""

from __future__ import annotations


class AlertError(Exception):
    """Base class of the alerts package's errors."""


class RuleError(AlertError):
    """A rules file is malformed; the message names the file, the line and the reason."""
