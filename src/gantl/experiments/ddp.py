"""One experiment run trained under torchrun: the launcher (runner side) and the rank entry point.

``gantl experiment run GRID --out DIR --nproc-per-run K`` (K > 1) trains each run as one torchrun
group of K data-parallel processes::

    python -m torch.distributed.run --standalone --nproc_per_node K \\
        -m gantl.experiments.ddp --threads T RUN_DIR ACTION OPTIONS_JSON

The runner prepares the run dir exactly as for an in-process run (``config.toml`` written, a run
killed before its first snapshot removed) and evaluates afterwards in its own process; the ranks
only train. They build their Trainer with the same calls as the in-process path -- ``Trainer(opts,
run_dir=...)`` to start, :func:`gantl.training.loop.resumed_trainer` with the runner's overrides to
resume -- so rank 0 writes the same snapshots, stats and log.txt, and a later ``experiment run``
(with or without ``--nproc-per-run``) skips, resumes or restarts the dir just as it would its own.

A rank that fails prints one marked line (``gantl-rank-error: rank R: message``) and leaves at once
without the barrier of a clean shutdown -- the other ranks may be blocked in a collective that
will never complete, and torchrun stops them when one rank exits non-zero. The launcher turns the
group's exit status into :class:`RankFailure`, carrying the first marked message (else the last
line of output) and the tail of the group's output for the run's error.txt.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, NoReturn

from gantl.errors import GantlError

log = logging.getLogger("gantl")

RANK_ERROR = "gantl-rank-error: "
TAIL_CHARS = 6000


class RankFailure(GantlError):
    """A torchrun group ended non-zero; ``tail`` is the end of its combined stdout/stderr."""

    def __init__(self, message: str, tail: str) -> None:
        super().__init__(message)
        self.tail = tail


# --------------------------------------------------------------------------------------------- launcher


def gpu_groups(jobs: int, nproc: int) -> list[str | None]:
    """``CUDA_VISIBLE_DEVICES`` for each of ``jobs`` concurrent groups of ``nproc`` ranks.

    With enough GPUs each group gets its own ``nproc`` of them (group i: the i-th block of the
    visible ones), so ``--jobs 2 --nproc-per-run 4`` on 8 GPUs uses all 8; with too few, every group
    sees all GPUs and its ranks use the first ``nproc`` (groups then share them). None: unchanged.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [x.strip() for x in visible.split(",") if x.strip()]
    else:
        import torch

        ids = [str(i) for i in range(torch.cuda.device_count())]
    if not ids:
        return [None] * jobs
    if len(ids) < jobs * nproc:
        if jobs > 1:
            log.warning("%d runs at once x %d processes each, but %d GPU(s) visible: the runs share GPUs",
                        jobs, nproc, len(ids))
        return [None] * jobs
    return [",".join(ids[i * nproc:(i + 1) * nproc]) for i in range(jobs)]


def rank_command(run_dir: Path, action: str, opts: dict[str, Any], nproc: int, threads: int) -> list[str]:
    """The torchrun command line that trains ``run_dir`` (``action``: start, restart or resume)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "gantl.experiments.ddp", "--threads", str(threads), str(run_dir), action, json.dumps(opts)]


def train_in_group(run_dir: Path, action: str, opts: dict[str, Any], *, nproc: int, threads: int,
                   gpus: str | None = None) -> None:
    """Train one run as a torchrun group of ``nproc`` ranks; raises :class:`RankFailure` if it fails.

    Output goes to a temporary file, not a pipe (a chatty rank cannot block on a full pipe), and
    only its tail is kept, for the error. If the runner itself is interrupted the group is stopped.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if gpus is not None and str(opts.get("device", "auto")) in ("auto", "cuda"):
        env["CUDA_VISIBLE_DEVICES"] = gpus
    cmd = rank_command(run_dir, action, opts, nproc, threads)
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = proc.wait()
        except BaseException:
            _stop(proc)
            raise
        if code == 0:
            return
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    raise RankFailure(failure_message(text, code, nproc), text[-TAIL_CHARS:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate torchrun (it forwards the signal to its ranks), then kill it if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def failure_message(output: str, code: int, nproc: int) -> str:
    """One line: the first rank's marked error; else (a rank killed, e.g. out of memory) the rank,
    exit code and traceback of torchrun's "Root Cause" summary; else its last line of text."""
    lines = output.splitlines()
    for line in lines:
        if RANK_ERROR in line:
            return line.split(RANK_ERROR, 1)[1].strip()
    cause: dict[str, str] = {}
    if any("Root Cause" in line for line in lines):
        after = lines[max(i for i, line in enumerate(lines) if "Root Cause" in line):]
        for line in after:
            key, sep, value = line.strip().partition(":")
            if sep and key.strip() in ("rank", "exitcode", "traceback") and key.strip() not in cause:
                cause[key.strip()] = value.strip()
    if cause:
        last = ", ".join(f"{k} {v}" for k, v in cause.items())
    else:
        last = next((line.strip() for line in reversed(lines) if line.strip(" =-")), "no output")
    return f"torchrun group of {nproc} processes exited with code {code}: {last}"


# --------------------------------------------------------------------------------------------- rank side


def _pin_gpu(device: str) -> None:
    """Give each rank its own GPU: ``cuda`` without an index means the current device, which is 0
    in every process unless set here from torchrun's LOCAL_RANK."""
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())


def _fail(message: str) -> NoReturn:
    """Report a rank's error in one marked line and leave without touching the process group."""
    rank = os.environ.get("RANK", "0")
    print(f"{RANK_ERROR}rank {rank}: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point of each rank: train the run dir to its ``kimg``, then leave the group together."""
    parser = argparse.ArgumentParser(prog="python -m gantl.experiments.ddp", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("action", choices=("start", "restart", "resume"))
    parser.add_argument("options", help="the run's TrainOptions as JSON")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, args.threads))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")  # as the gantl CLI
    from gantl import warnings_once

    warnings_once.install()
    from gantl.config import from_dict
    from gantl.experiments.runner import resume_overrides
    from gantl.training import distributed
    from gantl.training.loop import Trainer, resumed_trainer
    from gantl.training.options import TrainOptions

    try:
        opts = from_dict(TrainOptions, json.loads(args.options))
        _pin_gpu(opts.device)
        if args.action == "resume":
            trainer = resumed_trainer(args.run_dir, resume_overrides(opts))
        else:
            trainer = Trainer(opts, run_dir=args.run_dir)
        trainer.train()
    except GantlError as exc:
        _fail(exc.message)
    except Exception as exc:  # noqa: BLE001 - any rank error must end the group, not hang it
        traceback.print_exc()
        _fail(f"{type(exc).__name__}: {exc}")
    distributed.shutdown(trainer.dist)


if __name__ == "__main__":
    main()
