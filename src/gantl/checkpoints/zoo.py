"""Named pretrained sources: bundled gantl checkpoints and NVIDIA's published networks.

A *source* is anything a transfer run can start from. Users name it (``--resume
cifar9-stylegan2-32``), point at a local file, or let gantl download a published
network on first use. Every entry in ``gantl/zoo/zoo.json`` carries the facts a user
needs before spending compute on it (architecture, resolution, training data, kimg,
FID, licence, sha256) so ``gantl models info`` can answer without loading weights.

Why the cache is keyed by sha256: the same file reached by two names (or a renamed
download) is stored and converted once, and a corrupted or swapped download is
caught instead of silently training from the wrong weights.

:func:`resolve` is the one entry point the trainer needs: it turns a zoo name or a
path (gantl ``.safetensors``, NVIDIA ``.pkl``, DCGAN-tutorial ``.pth``) into the path
of a gantl ``.safetensors`` checkpoint, converting foreign formats once into the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gantl.errors import CheckpointError, ConfigError

ZOO_PACKAGE = "gantl.zoo"
ZOO_INDEX = "zoo.json"
FOREIGN_FORMATS = ("nvidia-pkl", "dcgan-tutorial")


@dataclass(frozen=True)
class Source:
    """One zoo entry: where the weights are and what they are."""

    name: str
    arch: str
    resolution: int
    format: str  # "gantl", "nvidia-pkl" or "dcgan-tutorial"
    training_data: str
    licence: str
    description: str = ""
    kimg: float | None = None
    fid: dict[str, Any] | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    file: str | None = None  # bundled file name inside gantl/zoo/
    url: str | None = None
    card: str | None = None  # model card file name inside gantl/zoo/
    config: dict[str, Any] = field(default_factory=dict)
    c_dim: int = 0

    @property
    def bundled(self) -> bool:
        return self.file is not None

    def location(self) -> str:
        """Human-readable place the weights come from."""
        return f"bundled ({self.file})" if self.bundled else (self.url or "?")


def _zoo_dir() -> Path:
    return Path(str(resources.files(ZOO_PACKAGE)))


def load_index() -> dict[str, Source]:
    """All zoo entries by name, parsed from the packaged ``zoo.json``."""
    path = _zoo_dir() / ZOO_INDEX
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:  # pragma: no cover - packaging error
        raise CheckpointError(f"the model zoo index {path} is unreadable ({exc}); reinstall gantl") from None
    out = {}
    for name, entry in data["sources"].items():
        out[name] = Source(name=name, **entry)
    return out


def list_sources() -> list[Source]:
    """Zoo entries in a stable order: bundled first, then by name."""
    return sorted(load_index().values(), key=lambda s: (not s.bundled, s.name))


def get_source(name: str) -> Source:
    """The zoo entry ``name`` or a one-line error listing the known names."""
    index = load_index()
    if name not in index:
        raise ConfigError(
            f"unknown source '{name}': not a file and not a zoo name; known names: {', '.join(sorted(index))}"
        )
    return index[name]


def card_text(source: Source) -> str | None:
    """The model card (markdown) of a source, when it has one."""
    if source.card is None:
        return None
    path = _zoo_dir() / source.card
    return path.read_text(encoding="utf-8") if path.is_file() else None


def cache_dir() -> Path:
    """Where downloads and conversions live: ``$GANTL_CACHE_DIR`` or ``~/.cache/gantl``."""
    env = os.environ.get("GANTL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gantl"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks so large pickles don't fill memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str | None, what: str) -> str:
    """Hash ``path`` and refuse it when it differs from ``expected`` (when one is pinned)."""
    actual = sha256_file(path)
    if expected is not None and actual != expected:
        raise CheckpointError(
            f"{what} at {path} has sha256 {actual[:16]}…, expected {expected[:16]}…; "
            "the file is corrupt or was replaced — delete it and try again"
        )
    return actual


def bundled_path(source: Source, verify: bool = True) -> Path:
    """Path of a bundled source's weights inside the installed package, checked by sha256."""
    assert source.file is not None
    path = _zoo_dir() / source.file
    if not path.is_file():
        raise CheckpointError(f"bundled source '{source.name}' is missing its file {path}; reinstall gantl")
    if verify:
        verify_sha256(path, source.sha256, f"bundled source '{source.name}'")
    return path


def _download(url: str, dest: Path, expected_sha256: str | None, timeout: float = 60.0) -> str:
    """Stream ``url`` into ``dest`` atomically with a progress bar; return the file's sha256."""
    import requests

    from gantl.progress import make_progress

    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    try:
        with requests.get(url, stream=True, timeout=timeout) as resp:
            resp.raise_for_status()
            total = int(resp.headers.get("content-length") or 0) or None
            with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp, \
                    make_progress() as progress:
                task = progress.add_task(f"downloading {dest.name}", total=total)
                for block in resp.iter_content(chunk_size=1 << 20):
                    tmp.write(block)
                    h.update(block)
                    progress.advance(task, len(block))
    except requests.RequestException as exc:
        raise CheckpointError(
            f"could not download {url} ({type(exc).__name__}); check your internet connection, "
            f"or download it yourself and pass the local file path instead"
        ) from None
    digest = h.hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        Path(tmp.name).unlink(missing_ok=True)
        raise CheckpointError(
            f"download of {url} has sha256 {digest[:16]}…, expected {expected_sha256[:16]}…; try again later"
        )
    os.replace(tmp.name, dest)
    return digest


def fetch(source: Source) -> Path:
    """Local path of a source's original file, downloading it into the cache on first use.

    Pinned sources are cached under ``downloads/<sha256>/``; a source published without a
    pinned hash is downloaded once, its hash recorded in ``downloads/by-name/<name>.json``
    and checked on every later use (trust on first use, stated in ``gantl models info``).
    """
    if source.bundled:
        return bundled_path(source)
    if source.url is None:  # pragma: no cover - index error
        raise CheckpointError(f"source '{source.name}' has neither a bundled file nor a URL")
    root = cache_dir() / "downloads"
    filename = source.url.rsplit("/", 1)[-1]
    record = root / "by-name" / f"{source.name}.json"
    pinned = source.sha256
    if pinned is None and record.is_file():
        pinned = json.loads(record.read_text())["sha256"]
    if pinned is not None:
        path = root / pinned / filename
        if path.is_file():
            verify_sha256(path, pinned, f"cached source '{source.name}'")
            return path
    tmp_dest = root / "incoming" / filename
    digest = _download(source.url, tmp_dest, pinned)
    path = root / digest / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp_dest, path)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"sha256": digest, "url": source.url}))
    return path


def _sniff_format(path: Path) -> str:
    """Guess a checkpoint file's format from its first bytes (not its name alone)."""
    from gantl.checkpoints.format import is_safetensors_head

    with open(path, "rb") as f:
        head = f.read(16)
    # Structure first, the name last: a pickle renamed to .safetensors is still a pickle (it was
    # called "already a gantl checkpoint"), and a safetensors length can start with 0x80 or "PK".
    if is_safetensors_head(head[:9], path.stat().st_size):
        return "gantl"
    if head[:2] == b"PK":  # torch.save zip archive (DCGAN-tutorial state dicts)
        return "dcgan-tutorial"
    if head[:1] == b"\x80":  # a raw pickle: NVIDIA's network snapshots
        return "nvidia-pkl"
    if path.suffix == ".safetensors":
        return "gantl"  # reading it says, in one line, why it is not a readable safetensors file
    raise CheckpointError(
        f"{path} is not a gantl .safetensors, an NVIDIA stylegan2-ada .pkl or a DCGAN .pth file; "
        "pass one of those"
    )


def convert_foreign(path: Path, fmt: str | None = None, sha256: str | None = None) -> Path:
    """Import a foreign checkpoint once into ``cache/converted/<sha256>.safetensors``."""
    from gantl.checkpoints import importers

    fmt = fmt or _sniff_format(path)
    if fmt == "gantl":
        return path
    digest = sha256 or sha256_file(path)
    out = cache_dir() / "converted" / f"{digest}.safetensors"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    if fmt == "nvidia-pkl":
        importers.import_nvidia_pkl(path, out=tmp)
    elif fmt == "dcgan-tutorial":
        importers.import_dcgan_tutorial(path, out=tmp)
    else:
        raise CheckpointError(f"unknown checkpoint format '{fmt}' for {path}")
    shutil.move(tmp, out)
    return out


def resolve(name_or_path: str | Path) -> Path:
    """A gantl ``.safetensors`` path for a zoo name or a checkpoint file of any supported format.

    Order: an existing file wins (so a local file named like a zoo entry is never
    shadowed); otherwise the string must be a zoo name. Foreign formats are converted
    into the cache once; the returned file always loads with
    :func:`gantl.checkpoints.format.load_checkpoint`.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return convert_foreign(path)
    if path.exists():
        raise ConfigError(f"'{name_or_path}' is a folder, not a checkpoint file; pass a .safetensors/.pkl/.pth file")
    source = get_source(str(name_or_path))
    original = fetch(source)
    if source.format == "gantl":
        return original
    return convert_foreign(original, source.format, sha256_file(original))
