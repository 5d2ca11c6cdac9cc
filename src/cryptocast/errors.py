"""What a user can fix, told apart from what is a bug.

An error class that also derives from :class:`UserError` means bad data, a bad config,
a bad request or a state a person can change: the command line prints its message alone
(what is wrong, where, what to do), and keeps the traceback out of sight (``--debug`` or
``CRYPTOCAST_DEBUG=1`` prints it). Anything else is unexpected: one line, and where its
traceback was written.
"""

from __future__ import annotations

import os

DEBUG_ENV = "CRYPTOCAST_DEBUG"


class UserError(Exception):
    """Mixin of the errors whose message is the whole story for a user."""


def debug() -> bool:
    """Whether tracebacks are wanted (``--debug`` or ``CRYPTOCAST_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, "").lower() not in ("", "0", "false", "no")
