"""Build (or check) a bundled reference-feature entry and measure what quantising it costs.

Maintainer step behind :mod:`gantl.metrics.bundled_stats`: computes (or takes from the user's
cache) the FID-Inception features of a real image set exactly as ``gantl eval`` keys them, writes
the uint16-quantised entry into ``src/gantl/metrics/refstats/``, and prints one JSON line with the
largest quantisation error and the FID/KID between the set's two halves computed from the exact
and from the quantised features (so the effect on the metrics is a measured number, not a claim).

Usage: .venv/bin/python benchmarks/bundle_reference_stats.py [--real ZIP:PREFIX] [--check]
       (default real set: ../shared/datasets/cifar10.zip:train/horse, all 5,000 images)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10.zip"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", default=f"{CIFAR}:train/horse")
    parser.add_argument("--name", default="CIFAR-10 train/horse (../shared/datasets/cifar10.zip)")
    parser.add_argument("--check", action="store_true", help="only compare the bundled entry with fresh features")
    args = parser.parse_args()

    from gantl import __version__
    from gantl.data.dataset import ImageDataset
    from gantl.metrics import bundled_stats
    from gantl.metrics.api import real_features, real_features_key
    from gantl.metrics.features import get_extractor
    from gantl.metrics.fid import fid_from_features
    from gantl.metrics.kid import kernel_inception_distance

    ds = ImageDataset(args.real, use_labels=False, progress=False)
    extractor = get_extractor("inception-v3-fid")
    key = real_features_key(ds, extractor, len(ds))
    start = time.perf_counter()
    feats, _ = real_features(ds, {"inception-v3-fid": extractor}, None, progress=True)
    exact = feats["inception-v3-fid"]["features"]
    seconds = time.perf_counter() - start
    if not args.check:
        bundled_stats.save(key, {"features": exact}, {
            "dataset": args.name, "images": len(ds), "content_sha256": ds.content_hash(),
            "extractor": extractor.cache_key(), "gantl": __version__, "key": key})
    loaded = bundled_stats.load(key)
    if loaded is None:
        raise SystemExit(f"no bundled entry for {args.real} (key {key[:32]})")
    quant = loaded["features"]
    half = len(exact) // 2
    line = {"bench": "bundle_reference_stats", "real": args.real, "images": len(ds), "key": key[:32],
            "feature_seconds": round(seconds, 1),
            "max_abs_quantisation_error": float(np.abs(quant.astype(np.float64) - exact).max()),
            "fid_halves_exact": fid_from_features(exact[:half], exact[half:]),
            "fid_halves_quantised": fid_from_features(quant[:half], quant[half:]),
            "kid_halves_exact": kernel_inception_distance(exact[:half], exact[half:]),
            "kid_halves_quantised": kernel_inception_distance(quant[:half], quant[half:]),
            "file_mb": round(bundled_stats.entry_path(key).stat().st_size / 2**20, 2)}
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
