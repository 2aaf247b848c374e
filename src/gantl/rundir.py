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


def attach_log_file(run_dir: str | Path, name: str = "gantl") -> logging.Logger:
    """Send the ``gantl`` logger's records to ``run_dir/log.txt`` as well as the console."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    path = Path(run_dir) / "log.txt"
    for h in logger.handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve():
            return logger
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger
