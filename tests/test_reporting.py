"""Run report: reading run dirs (all metrics.jsonl shapes), tables, curves and image grids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantl.errors import ConfigError
from gantl.reporting import ReportInput, read_run, write_report
from gantl.reporting.runs import metric_points


def _png(path: Path, value: int) -> None:
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(path)


def _make_run(root: Path, name: str, fids: list[tuple[float, float]], total_sec: float) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.toml").write_text('data = "horses32.zip"\nresume = "cifar9-stylegan2-32"\n'
                                     'methods = ["freezed:2"]\n')
    with open(run / "metrics.jsonl", "w") as f:
        for kimg, fid in fids:
            f.write(json.dumps({"kimg": kimg, "snapshot": f"snapshot-{int(kimg):06d}.safetensors",
                                "results": {"fid": fid, "kid": fid / 1000}}) + "\n")
        f.write("not json\n")
    with open(run / "stats.jsonl", "w") as f:
        for i, (kimg, _) in enumerate(fids):
            f.write(json.dumps({"tick": i, "kimg": kimg, "loss_G": 1.0, "total_sec": total_sec * (i + 1) / len(fids)})
                    + "\n")
    _png(run / "reals.png", 200)
    _png(run / "fakes_init.png", 10)
    for kimg, _ in fids:
        _png(run / f"fakes{int(kimg):06d}.png", int(kimg))
    return run


def test_metric_points_accepts_the_three_line_shapes() -> None:
    assert metric_points({"kimg": 1, "fid": 3.5, "timestamp": 9}) == {"fid": 3.5}
    assert metric_points({"kimg": 1, "metric": "kid", "value": 0.01}) == {"kid": 0.01}
    assert metric_points({"results": {"fid50k_full": 2.4}, "snapshot_pkl": "network-snapshot-000200.pkl"}) == {
        "fid50k_full": 2.4}


def test_read_run_collects_curves_grids_and_time(tmp_path: Path) -> None:
    run = read_run(_make_run(tmp_path, "a", [(1, 90.0), (2, 70.0), (3, 75.0)], 60.0))
    assert run.curves["fid"] == [(1.0, 90.0), (2.0, 70.0), (3.0, 75.0)]
    assert run.final("fid") == 75.0 and run.best("fid") == (2.0, 70.0)
    assert run.last_kimg == 3.0 and run.wall_s == pytest.approx(60.0)
    assert [k for k, _ in run.fakes] == [1.0, 2.0, 3.0] and run.latest_fakes.name == "fakes000003.png"
    assert run.skipped_lines == 1  # the "not json" line is counted, not fatal


def test_read_run_refuses_a_non_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a run directory"):
        read_run(tmp_path / "missing")


def test_write_report_html_and_md_hold_table_curves_and_grids(tmp_path: Path) -> None:
    a = _make_run(tmp_path / "runs", "00000-scratch", [(1, 120.0), (2, 100.0)], 30.0)
    b = _make_run(tmp_path / "runs", "00001-transfer", [(1, 60.0), (2, 50.0)], 31.0)
    info = ReportInput(title="demo", final={"scratch": {"fid": 100.0, "kid": 0.1},
                                            "transfer": {"fid": 50.0, "kid": 0.05}},
                       notes=["numbers from 500 samples"])
    html, md = write_report([a, b], tmp_path / "out", info, names=["scratch", "transfer"])
    text = html.read_text()
    assert (tmp_path / "out" / "assets" / "curve-fid.png").is_file()
    assert (tmp_path / "out" / "assets" / "curve-kid.png").is_file()
    for rel in ("assets/curve-fid.png", "assets/scratch-fakes-latest.png", "assets/transfer-fakes-init.png",
                "assets/reals.png"):
        assert rel in text and (tmp_path / "out" / rel).is_file()
    # The best value per column is marked (transfer: lower FID and KID).
    assert text.count('class="best"') >= 2 and "<td class=\"best\">50.00</td>" in text
    assert "numbers from 500 samples" in text and "lower is better" in text
    mdtext = md.read_text()
    assert "| transfer | **50.00** | **0.0500** |" in mdtext
    assert "![fid vs kimg](assets/curve-fid.png)" in mdtext
    assert "from cifar9-stylegan2-32" in mdtext and "methods freezed:2" in mdtext


def test_single_run_report_into_its_own_dir(tmp_path: Path) -> None:
    run = _make_run(tmp_path, "00003-horse", [(1, 80.0)], 10.0)
    html, md = write_report([run], run)
    assert html.parent == run and "fakes000001" not in html.read_text()  # copied under assets/
    assert (run / "assets" / "00003-horse-fakes-latest.png").is_file()
