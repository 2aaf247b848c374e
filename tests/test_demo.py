"""`gantl demo`: data location/download, sampling, and a tiny end-to-end run (slow)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantl import demo
from gantl.errors import DatasetError


def _fake_cifar_binary(records_per_batch: int = 6) -> tuple[bytes, list[np.ndarray]]:
    """A tar.gz laid out like the official CIFAR-10 binary release; returns it and the horse images."""
    rng = np.random.default_rng(0)
    horses = []
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for b in range(1, 6):
            rows = []
            for r in range(records_per_batch):
                label = demo.HORSE if r % 3 == 0 else 2
                pixels = rng.integers(0, 256, 3 * 32 * 32, dtype=np.uint8)
                if label == demo.HORSE:
                    horses.append(pixels.reshape(3, 32, 32).transpose(1, 2, 0))
                rows.append(np.concatenate([[label], pixels]).astype(np.uint8))
            data = np.stack(rows).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/data_batch_{b}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), horses


class _FakeResponse:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def raise_for_status(self) -> None:
        pass

    def iter_content(self, chunk: int):
        for i in range(0, len(self.payload), chunk):
            yield self.payload[i:i + chunk]


def test_download_converts_the_binary_release_to_horse_pngs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    payload, horses = _fake_cifar_binary()
    monkeypatch.setattr(demo, "CIFAR10_BINARY_MD5", hashlib.md5(payload).hexdigest())
    calls = []
    monkeypatch.setattr(requests, "get", lambda url, **kw: calls.append(url) or _FakeResponse(payload))
    out = demo.download_cifar10_horses(tmp_path)
    assert calls == [demo.CIFAR10_BINARY_URL]
    with zipfile.ZipFile(out) as z:
        names = sorted(z.namelist())
        assert names == [f"train/horse/{i:04d}.png" for i in range(len(horses))]
        first = np.asarray(Image.open(io.BytesIO(z.read(names[0]))))
        last = np.asarray(Image.open(io.BytesIO(z.read(names[-1]))))
    np.testing.assert_array_equal(first, horses[0])  # channel-planar bytes -> HWC pixels, lossless
    np.testing.assert_array_equal(last, horses[-1])
    assert demo.download_cifar10_horses(tmp_path) == out and len(calls) == 1  # cached


def test_download_refuses_a_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    monkeypatch.setattr(requests, "get", lambda url, **kw: _FakeResponse(b"garbage"))
    with pytest.raises(DatasetError, match="MD5"):
        demo.download_cifar10_horses(tmp_path)


def test_offline_without_local_cifar_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    def offline(*args, **kwargs):
        raise requests.ConnectionError("Name or service not known")

    monkeypatch.setattr(requests, "get", offline)
    with pytest.raises(DatasetError) as info:
        demo.download_cifar10_horses(tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and "--cifar10" in msg and "internet" in msg


def test_explicit_missing_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        demo.find_cifar10(str(tmp_path / "nope.zip"))


def test_sample_horses_is_seeded_and_copies_original_bytes(cifar10_zip: Path, tmp_path: Path) -> None:
    a = demo.sample_horses(cifar10_zip, "train/horse", 20, 0, tmp_path / "a")
    b = demo.sample_horses(cifar10_zip, "train/horse", 20, 0, tmp_path / "b")
    c = demo.sample_horses(cifar10_zip, "train/horse", 20, 1, tmp_path / "c")
    assert a == b and a != c and len(set(a)) == 20
    assert all(n.startswith("train/horse/") for n in a)
    with zipfile.ZipFile(cifar10_zip) as z:
        assert (tmp_path / "a" / Path(a[0]).name).read_bytes() == z.read(a[0])
    with pytest.raises(DatasetError, match="has 5000 images"):
        demo.sample_horses(cifar10_zip, "train/horse", 6000, 0, tmp_path / "d")


def test_timeline_prints_steps_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    t = demo._Timeline({"a": 10, "b": 30})  # planned seconds
    t.start -= 20  # pretend step a took 20 s: twice the plan, so b is expected to take 60 s
    t.begin("a")
    t.end("a")
    t.begin("b")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[1/2] a (elapsed 0:20)")
    assert out[1] == "[2/2] b (elapsed 0:20, about 1:00 left)"
    # a step far quicker than planned (curation of a small set) does not promise a 10x faster rest
    quick = demo._Timeline({"a": 40, "b": 40})
    quick.start -= 4
    quick.end("a")
    quick.begin("b")
    assert capsys.readouterr().out.strip() == "[2/2] b (elapsed 0:04, about 0:30 left)"


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [False, True], ids=["one-after-the-other", "side-by-side"])
def test_demo_end_to_end_tiny_budget(cifar10_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     parallel: bool) -> None:
    """The real pipeline with a tiny budget: curation, both runs, evaluation, report, results.json."""
    monkeypatch.setenv("GANTL_CACHE_DIR", str(tmp_path / "cache"))
    cfg = demo.DemoConfig(out=str(tmp_path / "demo-output"), num_images=40, budget_kimg=0.064, curve_points=2,
                          curve_num_gen=64, final_num_gen=96, num_real=128, kid_subset_size=32,
                          cifar10=str(cifar10_zip), progress=False, threads=1, parallel=parallel)
    results = demo.run_demo(cfg)
    out = Path(cfg.out)
    saved = json.loads((out / "results.json").read_text())
    assert saved["budget_kimg"] == 0.064 and saved["wall_s"] > 0
    for run in ("scratch", "transfer"):
        assert set(saved[run]) == {"fid", "kid"} and saved[run]["fid"] > 0
        assert saved[run] == results[run]
    html = (out / "report.html").read_text()
    assert "assets/curve-fid.png" in html and "assets/transfer-fakes-latest.png" in html
    assert (out / "report.md").is_file() and (out / "assets" / "curve-kid.png").is_file()
    for run_dir in saved["details"]["runs"].values():
        lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == 2 and json.loads(lines[-1])["num_gen"] == 96
    # the transfer run starts from the conditional source's deer class (index 4 of its nine)
    assert saved["details"]["source"] == "cifar9-stylegan2-32-cond" and saved["details"]["source_class"] == "deer"
    log = (Path(saved["details"]["runs"]["transfer"]) / "log.txt").read_text()
    assert "source class 4 folded into the unconditional target (exact)" in log


def test_side_by_side_only_with_two_cores_and_no_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 2)
    assert demo.use_parallel(demo.DemoConfig())
    assert not demo.use_parallel(demo.DemoConfig(threads=1))  # an explicit thread count keeps one process
    assert not demo.use_parallel(demo.DemoConfig(parallel=False))
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 1)
    assert not demo.use_parallel(demo.DemoConfig())
    assert demo.use_parallel(demo.DemoConfig(parallel=True))
    plan = demo.planned_seconds(demo.DemoConfig(parallel=True))
    assert "train and score both runs side by side" in plan and "train from scratch" not in plan


def test_side_by_side_progress_reads_the_run_logs(tmp_path: Path) -> None:
    assert demo._progress(tmp_path, "scratch", 12) == "starting"
    run = tmp_path / "00001-horses32-stylegan2-cpu-tiny-scratch"
    run.mkdir()
    (run / "log.txt").write_text(
        "2026-12-02 16:47:12,715 INFO tick 0  kimg 2.016  loss_D 1.282  img_per_sec 82.94\n"
        "2026-12-02 16:47:38,768 INFO tick 1  kimg 4.032  loss_D 1.082  img_per_sec 77.38\n"
        "2026-12-02 16:47:39,000 INFO snapshot snapshot-000004.032.safetensors\n", encoding="utf-8")
    assert demo._progress(tmp_path, "scratch", 12) == "4.032/12 kimg"
    (run / "metrics.jsonl").write_text("{}\n", encoding="utf-8")
    assert demo._progress(tmp_path, "scratch", 12) == "4.032/12 kimg, scoring"


def test_source_class_applies_only_to_a_conditional_source() -> None:
    assert demo._source_class_used(demo.DemoConfig()) == "deer"  # the default: class deer of the cond source
    assert demo._class_note(demo.DemoConfig()) == ", class deer"
    # an unconditional source has no classes: the option is ignored, and the report says nothing of it
    assert demo._source_class_used(demo.DemoConfig(source="cifar9-stylegan2-32")) is None
    assert demo._class_note(demo.DemoConfig(source="cifar9-stylegan2-32")) == ""
    assert demo._source_class_used(demo.DemoConfig(source_class=None)) is None
