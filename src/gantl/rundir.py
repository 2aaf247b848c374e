"""Run directories: ``runs/NNNNN-<description>/``, never overwritten.

The next free number is one above the highest existing one, so deleting an old run
never makes a new run reuse its number, and two runs never share a folder (the
folder is created with ``exist_ok=False`` and the number retried on a race).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from gantl.config import dump_toml

_RUN_RE = re.compile(r"^(\d{5})-")


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-")
    return slug[:80] or "run"


def next_run_number(root: str | Path) -> int:
    """One more than the highest ``NNNNN-`` prefix under ``root`` (0 for an empty root)."""
    root = Path(root)
    if not root.is_dir():
        return 0
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_RE.match(p.name))]
    return max(numbers, default=-1) + 1


def make_run_dir(root: str | Path, description: str, config: Any | None = None) -> Path:
    """Create ``root/NNNNN-description`` and write ``config.toml`` into it when given."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        path = root / f"{next_run_number(root):05d}-{_slug(description)}"
        try:
            path.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        if config is not None:
            dump_toml(config, path / "config.toml")
        return path
    raise RuntimeError(f"could not create a new run directory under {root}")


class _SetupRecords(logging.Handler):
    """Holds the records logged while a run is being set up, before its folder and log file exist,
    so that ``attach_log_file`` can write them into ``log.txt`` (a partial load or a fresh D is worth
    finding in the run's own log, not only on a console that is gone)."""

    def __init__(self, limit: int = 500) -> None:
        super().__init__(logging.INFO)
        self.limit = limit
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < self.limit:
            self.records.append(record)


def buffer_setup_log(name: str = "gantl") -> None:
    """Start holding ``name``'s records for the next run's log file (replacing any earlier hold)."""
    take_setup_log(name)
    logging.getLogger(name).addHandler(_SetupRecords())


def take_setup_log(name: str = "gantl") -> list[logging.LogRecord]:
    """Stop holding records and return those held since ``buffer_setup_log`` (oldest first)."""
    logger = logging.getLogger(name)
    records: list[logging.LogRecord] = []
    for h in list(logger.handlers):
        if isinstance(h, _SetupRecords):
            logger.removeHandler(h)
            records += h.records
    return records


def attach_log_file(run_dir: str | Path, name: str = "gantl",
                    held: list[logging.LogRecord] | None = None) -> logging.Handler:
    """Send the ``gantl`` logger's records to ``run_dir/log.txt`` as well as the console, after
    writing the ``held`` set-up records into it. Returns the handler for ``detach_log_file``."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    path = Path(run_dir) / "log.txt"
    for h in logger.handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve():
            return h
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for record in held or ():
        handler.handle(record)
    logger.addHandler(handler)
    return handler


def detach_log_file(handler: logging.Handler, name: str = "gantl") -> None:
    """Stop writing to a run's ``log.txt``: a second run in the same process (the demo trains two)
    must not append its lines to the first run's log."""
    logging.getLogger(name).removeHandler(handler)
    handler.close()
