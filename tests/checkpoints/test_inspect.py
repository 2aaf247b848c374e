"""`gantl models inspect` recognises safetensors files by structure, as load_checkpoint does.

Issue 14 item 4: a safetensors file starts with its header length (u64, little-endian). When that
length's low byte is ``(``, ``]``, ``c``, ``}`` or 0x80 the file also starts like a pickle, and
``inspect`` sniffed for a pickle first, so it refused ~5 valid files in 256 ("not a readable
pickle") that ``eval`` and ``train --resume`` read fine.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from gantl.checkpoints.format import load_checkpoint, save_checkpoint
from gantl.checkpoints.inspect import describe
from gantl.errors import CheckpointError


def _repad(path: Path, low_byte: int) -> Path:
    """Rewrite ``path``'s JSON header with trailing spaces so its length's low byte is ``low_byte``."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header, body = data[8:8 + n].rstrip(b" "), data[8 + n:]
    m = len(header) + ((low_byte - len(header)) % 256)
    out = path.with_name(f"{path.stem}-{low_byte:02x}.safetensors")
    out.write_bytes(m.to_bytes(8, "little") + header.ljust(m, b" ") + body)
    assert out.read_bytes()[0] == low_byte
    return out


@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "snap.safetensors", {"G": nn.Linear(3, 4)}, {"kimg": 1.5})


@pytest.mark.parametrize("low_byte", [ord("("), ord("]"), ord("c"), ord("}"), 0x80])
def test_inspect_reads_safetensors_whose_length_looks_like_a_pickle(checkpoint: Path, low_byte: int) -> None:
    path = _repad(checkpoint, low_byte)
    renamed = path.with_suffix(".bin")
    renamed.write_bytes(path.read_bytes())
    for name in (path, renamed):  # recognised by structure, not by the file name
        desc = describe(name)
        assert desc["format"] == "gantl"
        assert desc["metadata"]["kimg"] == 1.5 and desc["total_parameters"] == 16
        assert torch.equal(load_checkpoint(name).tensors["G"]["weight"],
                           load_checkpoint(checkpoint).tensors["G"]["weight"])  # the same file eval reads


def test_every_header_length_low_byte_is_read_by_inspect(checkpoint: Path) -> None:
    """Every possible low byte, not only the five seen in the wild."""
    for low_byte in range(256):
        path = _repad(checkpoint, low_byte)
        assert describe(path)["format"] == "gantl", low_byte
        path.unlink()


def test_pickles_are_still_pickles_and_garbage_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "p.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    assert describe(tmp_path / "p.pkl")["format"] == "pickle"
    (tmp_path / "fake.safetensors").write_bytes(json.dumps({"a": 1}).encode())
    with pytest.raises(CheckpointError) as err:
        describe(tmp_path / "fake.safetensors")
    assert "\n" not in str(err.value)


def test_import_sniffs_by_structure_not_by_name(tmp_path: Path, checkpoint: Path) -> None:
    """Issue 14: a pickle named .safetensors given to `models import` got "already a gantl checkpoint"."""
    from gantl.checkpoints.importers import import_any
    from gantl.checkpoints.zoo import _sniff_format

    renamed_pickle = tmp_path / "network.safetensors"
    renamed_pickle.write_bytes(pickle.dumps({"G": [1.0]}, protocol=2))
    assert _sniff_format(renamed_pickle) == "nvidia-pkl"
    with pytest.raises(CheckpointError) as err:
        import_any(renamed_pickle, tmp_path / "out.safetensors")
    assert "already a gantl checkpoint" not in str(err.value)
    zipped = tmp_path / "dcgan.safetensors"
    torch.save({"w": torch.zeros(2)}, zipped)
    assert _sniff_format(zipped) == "dcgan-tutorial"
    for low_byte in (0x80, ord("("), ord("}")):  # a real safetensors file whose length starts like a pickle
        assert _sniff_format(_repad(checkpoint, low_byte)) == "gantl"
    renamed = tmp_path / "snap.bin"
    renamed.write_bytes(checkpoint.read_bytes())
    assert _sniff_format(renamed) == "gantl"
    with pytest.raises(CheckpointError, match="already a gantl checkpoint"):
        import_any(renamed, tmp_path / "again.safetensors")
