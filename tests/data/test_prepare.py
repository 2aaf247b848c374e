"""Dataset writing is confined to ``--out``: hostile zip member names (zip slip) never escape it.

A source zip can hold members such as ``../../evil.png``, ``/abs/path.png`` or
``good/../../../x.png``. Before the fix, ``gantl data build --labels`` joined the member's raw first
component into the output name, so images were written outside ``--out`` (one at ``/``), classes
were named ``""`` and ``".."`` and the dataset zip itself held ``../img00000000.png``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from gantl.commands.data import app
from gantl.data.curate import CurateConfig, curate
from gantl.data.prepare import DatasetWriter, check_member_name, class_of, output_name, safe_relpath
from gantl.errors import DatasetError

HOSTILE = ["../../evil.png", "/abs/path.png", "good/../../../x.png", "ok/y.png"]


def _png(seed: int) -> bytes:
    """A sharp, colourful 160x120 PNG that passes every default filter."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize((160, 120), Image.Resampling.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def _zip(path: Path, members: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for i, name in enumerate(members):
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), _png(i))
    return path


def _cfg(labels: bool) -> CurateConfig:
    cfg = CurateConfig(size=32, workers=1)
    cfg.filters.text.enabled = False
    cfg.filters.face.enabled = False
    cfg.filters.duplicate.enabled = False
    cfg.prepare.labels = labels
    return cfg


def _files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("raw, safe", [
    ("../../evil.png", "evil.png"),
    ("/abs/path.png", "abs/path.png"),
    ("good/../../../x.png", "x.png"),
    ("a/./b//c.png", "a/b/c.png"),
    ("..\\..\\win.png", "win.png"),
    ("C:\\Users\\x.png", "Users/x.png"),
    ("cat/a.png", "cat/a.png"),
])
def test_safe_relpath_never_climbs(raw: str, safe: str) -> None:
    assert safe_relpath(raw) == safe


def test_class_of_is_never_empty_or_dotdot() -> None:
    assert class_of("../../evil.png") is None
    assert class_of("/abs/path.png") == "abs"
    assert class_of("good/../../../x.png") is None
    assert class_of("../cat/a.png") == "cat"
    assert class_of("cat/a.png") == "cat"


@pytest.mark.parametrize("name", ["../x.png", "/x.png", "a/../../x.png", "", "a//x.png", "./x.png", "a\\..\\x.png",
                                  "C:/x.png"])
def test_writer_refuses_escaping_member_names(tmp_path: Path, name: str) -> None:
    for out in (tmp_path / "ds", tmp_path / "ds.zip"):
        writer = DatasetWriter(out)
        with pytest.raises(DatasetError) as err:
            writer.add(name, b"png")
        assert "\n" not in str(err.value)
    with pytest.raises(DatasetError):
        output_name(0, "..")
    with pytest.raises(DatasetError):
        output_name(0, "")
    assert check_member_name("cat/img00000000.png") == "cat/img00000000.png"


def test_hostile_zip_folder_output_stays_inside_out(tmp_path: Path) -> None:
    src = _zip(tmp_path / "hostile.zip", HOSTILE)
    work = tmp_path / "work"
    out = work / "outdir" / "sub" / "ds"
    before = set(os.listdir("/"))
    res = curate(str(src), _cfg(labels=False), manifest=work / "m.csv", out=out, progress=False)
    assert res.counts["kept"] == 4
    assert set(os.listdir("/")) == before  # nothing landed at the filesystem root
    assert _files_under(work / "outdir") == {f"sub/ds/img{i:08d}.png" for i in range(4)} | {"sub/ds/dataset.json"}
    assert not (tmp_path / "evil.png").exists() and not (work / "x.png").exists()


def test_hostile_zip_dataset_zip_has_no_climbing_members(tmp_path: Path) -> None:
    src = _zip(tmp_path / "hostile.zip", HOSTILE)
    curate(str(src), _cfg(labels=False), manifest=tmp_path / "m.csv", out=tmp_path / "ds.zip", progress=False)
    with zipfile.ZipFile(tmp_path / "ds.zip") as zf:
        names = zf.namelist()
    assert len(names) == 5
    for name in names:
        assert not name.startswith("/") and ".." not in name.split("/") and "" not in name.split("/")


def test_hostile_zip_with_labels_to_zip_is_refused_not_written(tmp_path: Path) -> None:
    """The issue's reproduction: with --labels the old code wrote ``../img00000000.png`` into ds.zip."""
    src = _zip(tmp_path / "hostile.zip", HOSTILE)
    with pytest.raises(DatasetError) as err:
        curate(str(src), _cfg(labels=True), manifest=tmp_path / "m.csv", out=tmp_path / "ds.zip", progress=False)
    assert "\n" not in str(err.value)
    if (tmp_path / "ds.zip").exists():  # pragma: no cover - only without the fix
        with zipfile.ZipFile(tmp_path / "ds.zip") as zf:
            assert all(".." not in n.split("/") and not n.startswith("/") for n in zf.namelist())


def test_hostile_zip_with_labels_gets_sane_classes(tmp_path: Path) -> None:
    members = ["../../cat/a.png", "/cat/b.png", "dog/../../dog/c.png", "dog/d.png", "/dog/e.png"]
    src = _zip(tmp_path / "hostile.zip", members)
    for out in (tmp_path / "w" / "ds", tmp_path / "w" / "ds.zip"):
        curate(str(src), _cfg(labels=True), manifest=tmp_path / "m.csv", out=out, progress=False)
    with zipfile.ZipFile(tmp_path / "w" / "ds.zip") as zf:
        meta = json.loads(zf.read("dataset.json"))
        names = zf.namelist()
    assert meta["class_names"] == ["cat", "dog"]
    assert all(n == "dataset.json" or n.split("/")[0] in ("cat", "dog") for n in names)
    assert all(".." not in n.split("/") and not n.startswith("/") for n in names)
    folder = _files_under(tmp_path / "w")
    assert {f.split("/")[1] for f in folder if f.startswith("ds/")} == {"cat", "dog", "dataset.json"}


def test_cli_labels_with_top_level_climbers_is_one_line_error(tmp_path: Path) -> None:
    """``../../evil.png`` is a top-level file after sanitising, so --labels refuses in one line."""
    src = _zip(tmp_path / "hostile.zip", HOSTILE)
    out = tmp_path / "outdir" / "sub" / "ds"
    result = CliRunner().invoke(app, ["build", str(src), "--out", str(out), "--labels", "--size", "32",
                                      "--set", "filters.text.enabled=false", "--set", "filters.face.enabled=false",
                                      "--workers", "1", "--no-report"])
    assert isinstance(result.exception, DatasetError), result.output  # the CLI prints it as one line
    assert "\n" not in str(result.exception) and "--labels" in str(result.exception)
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "outdir" / "img00000000.png").exists()


def test_a_damaged_zip_member_is_recorded_and_skipped(tmp_path: Path) -> None:
    """A member whose bytes fail their CRC raised BadZipFile (not an OSError) and stopped the build."""
    src = _zip(tmp_path / "src.zip", ["a/1.png", "a/2.png", "b/3.png", "b/4.png"])
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = zf.getinfo("a/2.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    data[start:start + 8] = b"\0" * 8  # damage the stored bytes, not the directory
    src.write_bytes(bytes(data))
    res = curate(str(src), _cfg(labels=True), manifest=tmp_path / "m.csv", out=tmp_path / "ds.zip", progress=False)
    rows = {r["file"]: r for r in res.rows}
    assert rows["a/2.png"]["kept"] == 0 and "damaged zip member" in rows["a/2.png"]["error"]
    assert res.counts["kept"] == 3
