"""Run directories: ``runs/NNNNN-<description>/``, never overwritten, one writer at a time.

The next free number is one above the highest existing one, so deleting an old run
never makes a new run reuse its number, and two runs never share a folder (the
folder is created with ``exist_ok=False`` and the number retried on a race).

A writer holds an advisory lock on ``run.lock`` in its run dir (:class:`RunDirLock`), so two
``gantl train --resume-run SAME`` cannot both append ticks to one ``stats.jsonl``; the second is
refused in one line naming the holder's pid. Out-of-space and permission errors while a run
writes become one-line :class:`~gantl.errors.StorageError` s that say what to free or fix and
how to continue (:func:`storage_error`).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from gantl.config import dump_toml
from gantl.errors import RunDirLockedError, StorageError

LOCK_NAME = "run.lock"
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}
_NO_WRITE = {errno.EACCES, errno.EPERM, errno.EROFS}

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
    logger = logging.getLogger(name)
    # The run's log file records INFO (attach_log_file sets it); at the default WARNING the set-up's
    # INFO lines (which source file and sha256, what a conditional transfer copied) never reached it.
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(_SetupRecords())


def take_setup_log(name: str = "gantl") -> list[logging.LogRecord]:
    """Stop holding records and return those held since ``buffer_setup_log`` (oldest first)."""
    logger = logging.getLogger(name)
    records: list[logging.LogRecord] = []
    for h in list(logger.handlers):
        if isinstance(h, _SetupRecords):
            logger.removeHandler(h)
            records += h.records
    return records


class _RunLogHandler(logging.FileHandler):
    """``log.txt`` writer that reports a failed write (disk full, permission lost) once, in one line.

    logging's default prints a full traceback for every record it cannot write; when the disk is
    full that buries the one-line StorageError the run ends with.
    """

    _warned = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if not self._warned:
            self._warned = True
            import sys

            exc = sys.exc_info()[1]
            sys.stderr.write(f"warning: cannot write {self.baseFilename} ({exc}); log lines go to the console only\n")


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
    handler = _RunLogHandler(path, encoding="utf-8")
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


# ----------------------------------------------------------------------------------------------- lock


class RunDirLock:
    """An advisory, exclusive ``flock`` on ``run_dir/run.lock`` for as long as a run writes there.

    ``flock`` locks are released by the kernel when the holder exits, even on ``kill -9``, so a
    stale lock file never blocks a later resume; the pid written into it is only for the message.
    On systems without ``fcntl`` (Windows) the lock is a no-op.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunDirLock:
        """Take the lock or raise :class:`RunDirLockedError` naming the holder's pid."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise RunDirLockedError(f"run dir {self.run_dir} is in use by {holder}; wait for that run to finish or "
                                    f"stop it, then continue with: gantl train --resume-run {self.run_dir}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; an unlocked file means nothing)."""
        if self._fd is None:
            return
        import fcntl

        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        text = []
    if not text:
        return "another process"
    return f"process {text[0]}" + (f" on {text[1]}" if len(text) > 1 and text[1] != socket.gethostname() else "")


# ----------------------------------------------------------------------------------------------- disk errors


def _inside(file: str | os.PathLike[str], folder: Path) -> bool:
    try:
        return Path(os.path.abspath(file)).is_relative_to(os.path.abspath(folder))
    except (TypeError, ValueError):  # pragma: no cover - bytes file names
        return False


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def _continue_hint(run_dir: Path) -> str:
    """How to pick the run up again: resume if a complete snapshot exists, else start it again."""
    if any(run_dir.glob("training-state-*.pt")):
        return f"gantl train --resume-run {run_dir}"
    return f"gantl train --config {run_dir / 'config.toml'} (no snapshot was completed yet)"


def storage_error(exc: BaseException, run_dir: str | Path | None) -> StorageError | None:
    """A one-line :class:`StorageError` for a disk-full or permission ``OSError``; None for other errors.

    Says which file could not be written, what to free (with the size of the newest snapshot, the
    least a new one needs) or fix, and the command that continues the run. Snapshots already on disk
    are never touched: writes go to a temporary name first (see ``checkpoints.format.atomic_write``).
    """
    if not isinstance(exc, OSError) or exc.errno not in _NO_SPACE | _NO_WRITE:
        return None
    target = exc.filename or (run_dir if run_dir is not None else "a file")
    run = Path(run_dir) if run_dir is not None else None
    if exc.errno in _NO_WRITE and run is not None and exc.filename and not _inside(exc.filename, run):
        return None  # e.g. an unreadable dataset file: not a run-dir problem, keep the original error
    hint = f"; then continue with: {_continue_hint(run)}" if run is not None and run.is_dir() else ""
    if exc.errno in _NO_SPACE:
        need = ""
        if run is not None and run.is_dir():
            snaps = sorted(run.glob("snapshot-*.safetensors"), key=lambda p: p.stat().st_mtime)
            states = sorted(run.glob("training-state-*.pt"), key=lambda p: p.stat().st_mtime)
            if snaps and states:
                need = f" (a snapshot here takes {_size(snaps[-1].stat().st_size + states[-1].stat().st_size)})"
        try:
            free = f", {_size(shutil.disk_usage(run or Path(target).parent).free)} free"
        except OSError:
            free = ""
        return StorageError(f"no space left on the device writing {target}{free}: free space{need}, e.g. delete "
                            f"old runs or their early snapshot-*.safetensors / training-state-*.pt{hint}")
    what = "the file system is read-only" if exc.errno == errno.EROFS else "permission denied"
    fix = f"chmod -R u+w {run}" if run is not None else "fix its permissions"
    return StorageError(f"cannot write {target} ({what}): make the run dir writable again (e.g. {fix}){hint}")
