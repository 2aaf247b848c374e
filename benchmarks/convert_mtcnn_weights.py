"""Convert facenet-pytorch's MTCNN state dicts into the one safetensors file gantl ships.

Usage:
    pip download facenet-pytorch==2.6.0 --no-deps -d /tmp/fp && unzip -o /tmp/fp/*.whl -d /tmp/fp/x
    python benchmarks/convert_mtcnn_weights.py --src /tmp/fp/x/facenet_pytorch/data

facenet-pytorch itself is not installed (it pins an older torch): its wheel only supplies
``pnet.pt``, ``rnet.pt`` and ``onet.pt``. They are read with ``torch.load(weights_only=True)``
(tensors only, no code runs), loaded strictly into gantl's own networks (every name and shape must
match) and written under the prefixes ``pnet.``, ``rnet.``, ``onet.`` with their origin in the
file's metadata. Prints one JSON line with the output's size and sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from gantl.data.filters.mtcnn import WEIGHTS, MTCNNNets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True, help="facenet_pytorch/data folder from the unpacked wheel")
    ap.add_argument("--out", default=str(WEIGHTS))
    args = ap.parse_args()
    nets = MTCNNNets()
    for name in ("pnet", "rnet", "onet"):
        state = torch.load(Path(args.src) / f"{name}.pt", map_location="cpu", weights_only=True)
        getattr(nets, name).load_state_dict(state, strict=True)
    tensors = {k: v.contiguous() for k, v in nets.state_dict().items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={
        "origin": "facenet-pytorch 2.6.0 wheel, facenet_pytorch/data/{pnet,rnet,onet}.pt",
        "licence": "MIT (facenet-pytorch, Tim Esler); MTCNN weights by Zhang et al. 2016",
        "converted_by": "benchmarks/convert_mtcnn_weights.py"})
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(json.dumps({"out": str(out), "tensors": len(tensors), "bytes": out.stat().st_size, "sha256": digest}))


if __name__ == "__main__":
    main()
