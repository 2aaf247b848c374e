"""Seeded fuzzing of the three parsers that face untrusted bytes.

* the restricted unpickler (:func:`gantl.checkpoints.safe_pickle.safe_loads`): raw pickles of every
  protocol, torch zip and legacy files, NVIDIA-like persistence records, a pickle that runs a shell
  command; and memory bombs (``bytearray(2**40)``, ``list(range(10**12))``, a 10 GB numpy shell, a
  deflated zip member that inflates to gigabytes);
* the safetensors/metadata reader (:func:`load_checkpoint`, ``Checkpoint.build``, ``models inspect``):
  byte mutations of whole files and structured mutations of the JSON metadata;
* image decoding (:func:`gantl.data.filters.fmt.decode`, what ``data build`` uses, and the training
  dataset's decoder): PNG/JPEG/WebP/BMP/TIFF/TGA/PPM/JPEG 2000/GIF seeds, mutated.

Every input must end in a correct result or a one-line error (GantlError, or the curation's
FormatError that becomes the manifest's ``error`` text), never another exception, never code run,
never a write outside the output, and within bounded time and memory. The generator is seeded
(``GANTL_FUZZ_SEED``, default 1405), so a failure names the input index that reproduces it. ``make test``
runs the fast counts; the ``slow`` variants (``make test-all``) run ten times as many;
``GANTL_FUZZ_SCALE`` multiplies both.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import random
import resource
import sys
import time
import traceback
import types
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gantl.checkpoints.format import METADATA_KEY, load_checkpoint, save_checkpoint
from gantl.checkpoints.inspect import describe
from gantl.checkpoints.safe_pickle import safe_loads
from gantl.data.filters.fmt import FormatConfig, FormatError, decode
from gantl.errors import GantlError
from gantl.models.registry import build

SEED = int(os.environ.get("GANTL_FUZZ_SEED", "1405"))
SCALE = float(os.environ.get("GANTL_FUZZ_SCALE", "1"))
FAST = {"pickle": 2000, "safetensors": 150, "image": 1000}
SLOW_FACTOR = 10
MAX_SECONDS_PER_INPUT = 10.0
MAX_RSS_GROWTH_MB = 1500  # the whole suite; a bomb that got through would take gigabytes
MAX_RSS_PER_INPUT_MB = 256
CODE_RAN = Path("/tmp/gantl-fuzz-code-ran")

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 2**40, 2**62]
PICKLE_OPCODES = [bytes([b]) for b in b"()*.0123cdeghijlmnopqrstuxB}KJNRS"
                  b"\x80\x81\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x93\x94\x95"]
FAST_AND_SLOW = [pytest.param(False, id="fast"), pytest.param(True, id="slow", marks=pytest.mark.slow)]


# --------------------------------------------------------------------------------------------- harness


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def mutate(rng: random.Random, data: bytes, tokens: list[bytes], others: list[bytes]) -> bytes:
    """1-4 random edits: bit flips, byte sets, interesting integers, token inserts, cuts, copies, splices."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip bits
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # random byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 2:  # an interesting little-endian integer
            value = rng.choice(INTERESTING)
            width = rng.choice((1, 2, 4, 8))
            buf[pos:pos + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
        elif op == 3 and tokens:
            buf[pos:pos] = rng.choice(tokens)
        elif op == 4 and buf:  # delete a range
            end = min(len(buf), pos + rng.randint(1, 64))
            del buf[pos:end]
        elif op == 5:  # truncate
            del buf[rng.randrange(len(buf) + 1):]
        elif op == 6 and buf:  # duplicate a range
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start:start + rng.randint(1, 64)]
        elif op == 7 and others:  # splice in part of another seed
            other = rng.choice(others)
            start = rng.randrange(len(other) + 1)
            buf[pos:pos + rng.randint(0, 64)] = other[start:start + rng.randint(1, 256)]
        else:  # random bytes
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(buf)


def _one_line(exc: BaseException) -> bool:
    message = str(exc)
    return bool(message.strip()) and "\n" not in message and len(message) < 2000


def run_fuzz(name: str, count: int, seeds: list[bytes], tokens: list[bytes],
             target: Callable[[bytes, int], None], ok_errors: tuple[type[BaseException], ...] = (GantlError,)
             ) -> dict[str, int]:
    """Feed ``count`` mutated seeds (and the seeds themselves) to ``target``; collect every bad outcome."""
    rng = random.Random(f"{SEED}-{name}")
    failures: list[str] = []
    outcomes: collections.Counter[str] = collections.Counter()
    rss0 = _rss_mb()
    inputs = [*seeds, *(mutate(rng, rng.choice(seeds), tokens, seeds) for _ in range(count))]
    for i, data in enumerate(inputs):
        t0, before = time.perf_counter(), _rss_mb()
        try:
            target(data, i)
            outcomes["ok"] += 1
        except ok_errors as exc:
            outcomes["refused"] += 1
            if not _one_line(exc):
                failures.append(f"#{i}: {type(exc).__name__} message is not one line: {str(exc)[:300]!r}")
        except Exception as exc:  # noqa: BLE001 - this is what the fuzzer hunts
            frames = traceback.extract_tb(exc.__traceback__)[-3:]
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames)
            failures.append(f"#{i}: {type(exc).__name__}: {str(exc)[:300]} (at {where})")
        seconds = time.perf_counter() - t0
        if seconds > MAX_SECONDS_PER_INPUT:
            failures.append(f"#{i}: took {seconds:.1f}s")
        jump = _rss_mb() - before  # peak RSS only grows, so a jump belongs to this input
        if jump > MAX_RSS_PER_INPUT_MB:
            failures.append(f"#{i}: peak memory grew by {jump:.0f} MB")
    growth = _rss_mb() - rss0
    print(f"fuzz {name}: {len(inputs)} inputs (seed {SEED}), {dict(outcomes)}, peak RSS +{growth:.0f} MB")
    assert not failures, f"{name}: {len(failures)} of {len(inputs)} inputs failed (seed {SEED}):\n" + \
        "\n".join(failures[:15])
    assert growth < MAX_RSS_GROWTH_MB, f"{name}: peak memory grew by {growth:.0f} MB"
    return {"inputs": len(inputs), **outcomes}


def _count(kind: str, slow: bool) -> int:
    return int(FAST[kind] * SCALE * (SLOW_FACTOR if slow else 1))


# --------------------------------------------------------------------------------------------- pickles


class _Shell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _persistence_pickle() -> bytes:
    """An NVIDIA ``torch_utils.persistence`` record (its embedded source is never run), built with a
    stand-in module so ``pickle`` can name the global."""
    fake = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - only named, never called here
        return meta

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    fake._reconstruct_persistent_obj = _reconstruct_persistent_obj
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence")}
    sys.modules["torch_utils"] = types.ModuleType("torch_utils")
    sys.modules["torch_utils.persistence"] = fake

    class Record:
        def __reduce__(self):
            meta = {"type": "class", "version": 6, "module_src": "import os\nos.system('touch /tmp/never')\n",
                    "class_name": "Generator", "state": {"_init_kwargs": {"z_dim": 8}, "w": torch.ones(3)}}
            return (_reconstruct_persistent_obj, (meta,))

    try:
        return pickle.dumps({"G_ema": Record(), "augment_pipe": None}, protocol=2)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def pickle_seeds(marker: Path) -> list[bytes]:
    plain = {"n": 1, "f": 2.5, "s": "text", "b": b"bytes", "t": (1, 2), "l": [None, True], "set": {1, 2},
             "od": collections.OrderedDict(a=1), "np": np.arange(4, dtype=np.float32), "sc": np.float32(1.5)}
    with_tensors = {**plain, "w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "h": torch.ones(2).half(),
                    "p": torch.nn.Parameter(torch.zeros(2)), "state": torch.nn.Linear(2, 2).state_dict()}
    seeds = [pickle.dumps(plain, protocol=p) for p in range(6)]
    seeds += [pickle.dumps(with_tensors, protocol=p) for p in (2, 4)]
    for new_zip in (True, False):
        buf = io.BytesIO()
        torch.save(with_tensors, buf, _use_new_zipfile_serialization=new_zip)
        seeds.append(buf.getvalue())
    seeds.append(_persistence_pickle())
    seeds.append(pickle.dumps({"x": _Shell(marker)}, protocol=2))
    seeds.append(pickle.dumps([_Shell(marker)], protocol=0))
    return seeds


PICKLE_TOKENS = PICKLE_OPCODES + [b"cos\nsystem\n", b"c__builtin__\neval\n", b"cbuiltins\nbytearray\n",
                                  b"cbuiltins\nrange\n", b"J\xff\xff\xff\x7f", b"\x8a\x08" + b"\xff" * 7 + b"\x7f",
                                  b"ctorch._utils\n_rebuild_tensor_v2\n", b"X\xff\xff\xff\x7f"]


def _pickle_target(marker: Path) -> Callable[[bytes, int], None]:
    def target(data: bytes, i: int) -> None:
        safe_loads(data, f"fuzz input #{i}")
        assert not marker.exists(), f"input #{i} ran code"
    return target


@pytest.mark.parametrize("slow", FAST_AND_SLOW)
def test_fuzz_restricted_unpickler(slow: bool) -> None:
    marker = CODE_RAN  # a fixed path keeps the seeds, and so every mutation, the same on every run
    marker.unlink(missing_ok=True)
    stats = run_fuzz("pickle", _count("pickle", slow), pickle_seeds(marker), PICKLE_TOKENS, _pickle_target(marker))
    assert stats["refused"] > 0 and stats["ok"] > 0 and not marker.exists()


def _huge_zip_member() -> bytes:
    """A torch zip whose storage member inflates to 256 MiB from about 256 KB (a zip bomb)."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if "/data/" in info.filename and info.filename.rsplit("/", 1)[-1].isdigit():
                zi = zipfile.ZipInfo(info.filename)
                zi.compress_type = zipfile.ZIP_DEFLATED
                with dst.open(zi, "w", force_zip64=True) as f:
                    chunk = b"\0" * (1 << 24)
                    for _ in range(16):
                        f.write(chunk)
            else:
                dst.writestr(info, src.read(info))
    return out.getvalue()


BOMBS: dict[str, bytes] = {
    "bytearray(2**40)": b"\x80\x02c__builtin__\nbytearray\n\x8a\x06\x00\x00\x00\x00\x00\x01\x85R.",
    "bytearray(2**33)": b"\x80\x02c__builtin__\nbytearray\n\x8a\x05\x00\x00\x00\x00\x02\x85R.",
    "bytes(2**33)": b"\x80\x02c__builtin__\nbytes\n\x8a\x05\x00\x00\x00\x00\x02\x85R.",
    "list(range(10**12))": (b"\x80\x02c__builtin__\nlist\nc__builtin__\nxrange\n"
                            b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85R\x85R."),
    "set(range(2**31))": b"\x80\x02c__builtin__\nset\nc__builtin__\nxrange\nJ\xff\xff\xff\x7f\x85R\x85R.",
    "numpy shell of 2**34 bytes": (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
                                   b"\x8a\x05\x00\x00\x00\x00\x04\x85C\x01b\x87R."),
    # found by the fuzzer: the C unpickler's memo is an array indexed by PUT's argument (32 GB here)
    "LONG_BINPUT 0xFFFFFFF0": b"\x80\x02K\x01r\xf0\xff\xff\xff.",
    # found by the fuzzer: BYTEARRAY8 allocates its declared length before reading
    "BYTEARRAY8 of 1 GB": b"\x80\x05\x96" + (1 << 30).to_bytes(8, "little") + b"xx.",
}


def _exponential_str() -> bytes:
    """``str()`` of 40 levels of a list holding the level below twice: 2**40 items by reference."""
    a: list = []
    for _ in range(40):
        a = [a, a]
    body = pickle.dumps(a, protocol=2)[2:-1]  # without PROTO and STOP
    return b"\x80\x02c__builtin__\nstr\n" + body + b"\x85R."


BOMBS["str() of a 2**40-item shared structure"] = _exponential_str()


HARMLESS = {"LONG_BINPUT 0xFFFFFFF0": 1}  # bombs only for the C unpickler: here a correct, small result


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_memory_bombs_are_refused_quickly(name: str) -> None:
    rss0, t0 = _rss_mb(), time.perf_counter()
    if name in HARMLESS:
        assert safe_loads(BOMBS[name], name) == HARMLESS[name]
    else:
        with pytest.raises(GantlError) as err:
            safe_loads(BOMBS[name], name)
        assert _one_line(err.value)
    assert time.perf_counter() - t0 < 5 and _rss_mb() - rss0 < 512


def test_shared_numpy_dtype_cannot_be_rewritten() -> None:
    """Found by the fuzzer: ``np.dtype('f4', copy=False)`` is numpy's shared float32, and a BUILD
    rewrote it for the whole process (later loads failed, or numpy crashed)."""
    evil = (b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x89\x87R"
            b"(K\x03X\x01\x00\x00\x00>NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb.")
    with pytest.raises(GantlError):
        safe_loads(evil, "evil")
    assert np.dtype("f4").byteorder == "=" and np.arange(3, dtype=np.float32).sum() == 3.0
    state_of_singleton = b"\x80\x02c__builtin__\nint\n}X\x01\x00\x00\x00aK\x01sb."  # BUILD on a class
    with pytest.raises(GantlError):
        safe_loads(state_of_singleton, "evil")


def test_zip_bomb_storage_is_refused_without_inflating() -> None:
    data = _huge_zip_member()
    rss0, t0 = _rss_mb(), time.perf_counter()
    with pytest.raises(GantlError) as err:
        safe_loads(data, "bomb.pt")
    assert _one_line(err.value) and time.perf_counter() - t0 < 10
    assert _rss_mb() - rss0 < 512


# --------------------------------------------------------------------------------------------- safetensors


def _checkpoint_seeds(tmp_path: Path) -> list[bytes]:
    torch.manual_seed(0)
    G = build("stylegan2", "G", dict(img_resolution=16, z_dim=16, w_dim=16, mapping_kwargs=dict(num_layers=2),
                                     synthesis_kwargs=dict(channel_base=128, channel_max=16)))
    D = build("dcgan", "D", dict(img_resolution=32, ndf=4))
    a = save_checkpoint(tmp_path / "a.safetensors", {"G": G, "D": D}, {"kimg": 1.0, "note": "seed"})
    from safetensors.torch import save

    plain = save({"x": torch.ones(3), "y": torch.zeros(2, 2, dtype=torch.int64)}, metadata={"k": "v"})
    return [a.read_bytes(), plain]


def _random_json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return rng.choice(INTERESTING) * rng.choice((1, -1))
    if kind == 1:
        return rng.choice((0.0, -1.5, 1e308, float("nan"), float("inf")))
    if kind == 2:
        return rng.choice(("", "stylegan2", "dcgan", "resnet", "G", "D", "x" * 1000, "../../etc"))
    if kind == 3:
        return None
    if kind == 4:
        return rng.choice((True, False))
    if kind == 5:
        return rng.randint(-4, 4096)
    if kind == 6:
        return [_random_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(("z_dim", "num_layers", "arch", "config", "kind", "a")): _random_json_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}


def _mutate_metadata(rng: random.Random, data: bytes) -> bytes:
    """Rewrite one or more values inside the gantl JSON metadata and re-frame the header correctly."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = json.loads(header.get("__metadata__", {}).get(METADATA_KEY, "{}"))

    def walk(node: Any) -> list[tuple[Any, Any]]:
        spots = []
        if isinstance(node, dict):
            for k, v in node.items():
                spots.append((node, k))
                spots += walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                spots.append((node, i))
                spots += walk(v)
        return spots

    for _ in range(rng.randint(1, 3)):
        spots = walk(meta)
        if not spots:
            break
        parent, key = rng.choice(spots)
        if rng.random() < 0.15 and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = _random_json_value(rng)
    header.setdefault("__metadata__", {})[METADATA_KEY] = json.dumps(meta, allow_nan=True)
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data[8 + n:]


def _checkpoint_target(tmp_path: Path) -> Callable[[bytes, int], None]:
    def target(data: bytes, i: int) -> None:
        path = tmp_path / f"in{i % 4}.safetensors"
        path.write_bytes(data)
        try:
            describe(path)
        except GantlError as exc:
            assert _one_line(exc), str(exc)
        ckpt = load_checkpoint(path)
        for net, info in (ckpt.metadata.get("networks") or {}).items():
            if isinstance(info, dict) and info.get("arch") and info.get("config") is not None:
                ckpt.build(net, allow_partial=bool(i % 2))
    return target


@pytest.mark.parametrize("slow", FAST_AND_SLOW)
def test_fuzz_safetensors_and_metadata_reader(tmp_path: Path, slow: bool) -> None:
    seeds = _checkpoint_seeds(tmp_path)
    rng = random.Random(f"{SEED}-metadata")
    structured = [_mutate_metadata(rng, seeds[0]) for _ in range(_count("safetensors", slow))]
    tokens = [b"{", b"}", b'"', b"\\u0000", b"__metadata__", b"data_offsets", b"F32", b"[0,1]", b"1e999"]
    target = _checkpoint_target(tmp_path)
    a = run_fuzz("safetensors-bytes", _count("safetensors", slow), seeds, tokens, target)
    b = run_fuzz("safetensors-metadata", 0, structured, [], target)
    assert a["refused"] > 0 and b["refused"] > 0 and b.get("ok", 0) > 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("in")) == ["a.safetensors"]


# --------------------------------------------------------------------------------------------- images


def image_seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    seeds = []
    for fmt, img, kw in [("PNG", rgb, {}), ("PNG", rgb.convert("RGBA"), {}), ("PNG", rgb.convert("P"), {}),
                         ("PNG", Image.fromarray((rng.random((16, 16)) * 65535).astype(np.uint16)), {}),
                         ("JPEG", rgb, {"quality": 80}), ("JPEG", rgb.convert("CMYK"), {}),
                         ("WEBP", rgb, {"quality": 70}), ("BMP", rgb, {}), ("TIFF", rgb, {}),
                         ("TIFF", rgb, {"compression": "tiff_lzw"}), ("TGA", rgb, {}), ("PPM", rgb, {}),
                         ("JPEG2000", rgb, {}), ("GIF", rgb, {})]:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        seeds.append(buf.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the EXIF path
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", exif=exif.tobytes())
    seeds.append(buf.getvalue())
    return seeds


IMAGE_TOKENS = [b"IHDR", b"IDAT", b"IEND", b"\xff\xd8", b"\xff\xc0", b"\xff\xe1", b"Exif\0\0", b"RIFF", b"VP8 ",
                b"II*\0", b"MM\0*", b"\xff\xff\xff\x7f", b"\0\0\x01\0"]


def _image_target(data: bytes, i: int) -> None:
    try:
        dec = decode(data, FormatConfig(max_pixels=4_000_000), need_short=16)
    except FormatError as exc:
        assert _one_line(exc), f"FormatError is not one line: {exc!r}"
        raise GantlError(str(exc)) from None  # counted as a refusal
    assert dec.image.mode == "RGB" and min(dec.image.size) > 0
    arr = np.asarray(dec.image)
    assert arr.shape[2] == 3 and arr.dtype == np.uint8


@pytest.mark.parametrize("slow", FAST_AND_SLOW)
def test_fuzz_image_decoding(slow: bool) -> None:
    stats = run_fuzz("image", _count("image", slow), image_seeds(), IMAGE_TOKENS, _image_target)
    assert stats["ok"] > 0 and stats["refused"] > 0


def test_training_dataset_survives_mutated_images(tmp_path: Path) -> None:
    """The training loader's decoder on the same kind of inputs: bad files are skipped and reported,
    never crash a run (DESIGN: bad images are reported and skipped)."""
    from gantl.data.dataset import ImageDataset

    rng = random.Random(f"{SEED}-dataset")
    seeds = image_seeds()[:1]
    good = Image.open(io.BytesIO(seeds[0])).convert("RGB").resize((16, 16))
    buf = io.BytesIO()
    good.save(buf, format="PNG")
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
        for i in range(8):
            zf.writestr(f"good{i}.png", buf.getvalue())
        for i in range(24):
            zf.writestr(f"bad{i}.png", mutate(rng, buf.getvalue(), IMAGE_TOKENS, seeds))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the skipped-file report; the log has it too
            ds = ImageDataset(tmp_path / "d.zip", progress=False)
    except GantlError as exc:
        assert _one_line(exc)
        return
    for i in range(len(ds)):
        try:
            img, _ = ds[i]
        except GantlError as exc:
            assert _one_line(exc)
            continue
        assert tuple(img.shape) == (3, 16, 16) and img.dtype == torch.uint8
