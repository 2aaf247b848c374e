"""`gantl eval` refuses counts that cannot give a number, in one line naming the option and its range.

Reproductions from issue 14: ``-n 0``, ``--num-real 0`` and ``--batch -1`` died with ``KeyError:
'features'``, ``--batch 0`` with a ``ValueError``, ``-n -8`` and ``--num-real -3`` silently reported a
FID of a couple of images, and ``--iw-steps -1`` was accepted.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gantl.errors import MetricError
from gantl.metrics.api import check_numbers, evaluate

EXTRACTOR = "test-pixels"


@pytest.mark.parametrize("args, flag", [
    (["-n", "0"], "--num-gen"),
    (["-n", "-8"], "--num-gen"),
    (["-n", "1"], "--num-gen"),
    (["--num-real", "0"], "--num-real"),
    (["--num-real", "-3"], "--num-real"),
    (["--batch", "-1"], "--batch"),
    (["--batch", "0"], "--batch"),
    (["--iw-steps", "-1"], "--iw-steps"),
    (["--iw-steps", "0"], "--iw-steps"),
    (["--mem-ratio", "nan"], "--mem-ratio"),
    (["--mem-ratio", "-1"], "--mem-ratio"),
    (["--mem-ratio", "inf"], "--mem-ratio"),
])
def test_cli_refuses_bad_numbers_in_one_line(tmp_path, pixel_extractor, make_images, args, flag):
    from gantl.cli import app

    real = make_images(tmp_path / "real", 8, seed=0)
    fake = make_images(tmp_path / "fake", 8, seed=1)
    result = CliRunner().invoke(app, ["eval", "--metrics", "fid", "--real", str(real), "--fake", str(fake),
                                      "--extractor", EXTRACTOR, *args])
    assert isinstance(result.exception, MetricError), (result.exception, result.output)
    message = str(result.exception)
    assert "\n" not in message and flag in message and (">=" in message or "> 0" in message)
    assert pixel_extractor.images == 0  # refused before any feature pass


@pytest.mark.parametrize("kwargs", [dict(num_gen=0), dict(num_gen=-8), dict(num_real=-3), dict(batch=0),
                                    dict(options={"iw_steps": -1})])
def test_library_entry_points_refuse_bad_numbers(tmp_path, pixel_extractor, make_images, kwargs):
    real = make_images(tmp_path / "real", 8, seed=0)
    fake = make_images(tmp_path / "fake", 8, seed=1)
    with pytest.raises(MetricError):
        evaluate(real, fake, ["fid"], extractor=EXTRACTOR, progress=False, **kwargs)
    assert pixel_extractor.images == 0


def test_valid_numbers_pass_and_still_evaluate(tmp_path, pixel_extractor, make_images):
    check_numbers(num_gen=2, num_real=2, batch=1, options={"iw_steps": 1, "mem_ratio": 0.5})
    real = make_images(tmp_path / "real", 8, seed=0)
    fake = make_images(tmp_path / "fake", 8, seed=1)
    res = evaluate(real, fake, ["fid"], num_gen=6, num_real=5, batch=3, extractor=EXTRACTOR, progress=False)
    assert res["fid"] > 0 and pixel_extractor.images == 11
