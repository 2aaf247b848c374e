"""On the command line a warning prints once, as one line (issue 14: skipped-image and KID warnings
printed twice, once as a raw ``UserWarning`` with its source line)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging, warnings
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
from gantl import warnings_once
warnings_once.install()
logging.getLogger("gantl.data.dataset").warning("skipped 1 image(s) that failed to decode in d: a.png (bad)")
warnings.warn("skipped 1 image(s) that failed to decode in d: a.png (bad)", UserWarning, stacklevel=1)
warnings.warn("KID: only 16 samples; subset size shrinks from 1000 to 16", stacklevel=1)
"""


def test_logged_then_warned_prints_once_and_warnings_are_one_line() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert lines == ["WARNING skipped 1 image(s) that failed to decode in d: a.png (bad)",
                     "WARNING KID: only 16 samples; subset size shrinks from 1000 to 16"], out.stderr
    assert "UserWarning" not in out.stderr and "warnings.warn" not in out.stderr


def test_the_cli_installs_it() -> None:
    script = ("import sys, warnings; from gantl.cli import main\n"
              "try:\n    main(['models', '--help'])\nexcept SystemExit:\n    pass\n"
              "from gantl import warnings_once\nprint(warnings.showwarning is warnings_once._show)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "True", out.stdout + out.stderr
