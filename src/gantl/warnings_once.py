"""Python warnings on the command line: one line each, and never twice.

Library code warns in two ways on purpose: ``log.warning`` for the run's log and console, and
``warnings.warn`` for Python callers who do not configure logging (and for pytest). On the
command line that printed every skipped-image or KID warning twice, the second time as a raw
``file.py:327: UserWarning: ...`` followed by the source line. :func:`install` (called by the CLI)
sends warnings through logging as one line and drops a warning whose text was just logged.
"""

from __future__ import annotations

import logging
import warnings
from collections import deque
from typing import TextIO

_recent: deque[str] = deque(maxlen=64)


class _Remember(logging.Filter):
    """A handler filter that remembers the text of every warning-or-worse record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            try:
                _recent.append(record.getMessage())
            except Exception:  # noqa: BLE001 - a malformed record is logging's business, not ours
                pass
        return True


def _show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
          file: TextIO | None = None, line: str | None = None) -> None:
    text = str(message)
    if text in _recent:
        return  # already logged by the code that warned
    logging.getLogger("gantl").warning("%s", text)


def install(logger: logging.Logger | None = None) -> None:
    """Route ``warnings.warn`` to ``logger``'s handlers (default: the root's) as single lines, deduplicated."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, _Remember) for f in handler.filters):
            handler.addFilter(_Remember())
    warnings.showwarning = _show

