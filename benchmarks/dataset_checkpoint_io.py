"""Dataset scan/decode speed and checkpoint save/load speed. One JSON line per measurement.

Usage: .venv/bin/python benchmarks/dataset_checkpoint_io.py [--quick]
Needs ../shared/datasets/cifar10.zip for the dataset part (skipped with a note otherwise).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10.zip"


def emit(**fields) -> None:
    fields.setdefault("machine", f"{platform.machine()} {os.cpu_count()} cpu")
    fields.setdefault("load_avg_1m", round(os.getloadavg()[0], 2))
    print(json.dumps(fields), flush=True)


def bench_dataset(quick: bool) -> None:
    from gantl.data.dataset import ImageDataset, load_all

    if not CIFAR.is_file():
        emit(name="dataset", skipped=f"{CIFAR} not found")
        return
    split = "test" if quick else "train"
    for verify in ("header", "full"):
        t0, c0 = time.perf_counter(), time.process_time()
        ds = ImageDataset(f"{CIFAR}:{split}", verify=verify, progress=False)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        emit(name="dataset_scan", source=f"cifar10.zip:{split}", verify=verify, images=ds.num_images,
             seconds=round(dt, 2), cpu_seconds=round(cpu, 2), images_per_cpu_s=round(ds.num_images / cpu))
    t0, c0 = time.perf_counter(), time.process_time()
    ds = ImageDataset(f"{CIFAR}:{split}", exclude_classes=["horse"], progress=False)
    emit(name="dataset_scan", source=f"cifar10.zip:{split} minus horse", verify=ds.verify, images=ds.num_images,
         seconds=round(time.perf_counter() - t0, 2), cpu_seconds=round(time.process_time() - c0, 2))
    t0, c0 = time.perf_counter(), time.process_time()
    horses = ImageDataset(f"{CIFAR}:train/horse", xflip=True, progress=False)
    images = load_all(horses, progress=False)
    emit(name="open+load_all", source="cifar10.zip:train/horse xflip", verify=horses.verify,
         items=int(images.shape[0]), seconds=round(time.perf_counter() - t0, 2),
         cpu_seconds=round(time.process_time() - c0, 2))
    # Training start-up as `open_dataset` + the batch stream do it: the full check, then every image
    # into memory. "before" decodes each file twice; "after" keeps the pixels the check decoded.
    from gantl.training.data_stream import DEFAULT_CACHE_BYTES

    for label, keep in (("before (decode twice)", 0), ("after (keep decoded)", DEFAULT_CACHE_BYTES // 2)):
        t0, c0 = time.perf_counter(), time.process_time()
        ds = ImageDataset(f"{CIFAR}:{split}", exclude_classes=["horse"], xflip=True, progress=False,
                          keep_decoded_bytes=keep)
        opened = time.perf_counter() - t0
        images = load_all(ds, progress=False)
        emit(name="training_startup", variant=label, source=f"cifar10.zip:{split} minus horse, xflip",
             items=int(images.shape[0]), open_s=round(opened, 2), seconds=round(time.perf_counter() - t0, 2),
             cpu_seconds=round(time.process_time() - c0, 2), pixel_sum=int(images.sum(dtype=torch.int64)))
        del ds, images
    t0 = time.perf_counter()
    n = 0
    loader = torch.utils.data.DataLoader(horses, batch_size=64, shuffle=True, num_workers=0)
    for batch, _ in loader:
        n += batch.shape[0]
    emit(name="dataloader_epoch", source="cifar10.zip:train/horse xflip", workers=0, items=n,
         items_per_s=round(n / (time.perf_counter() - t0)))


def bench_checkpoint() -> None:
    from gantl.checkpoints.format import load_checkpoint, save_checkpoint
    from gantl.models.stylegan2 import Discriminator, Generator

    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3)
    D = Discriminator(c_dim=0, img_resolution=256, img_channels=3)
    params = sum(t.numel() for net in (G, D, G) for t in net.state_dict().values())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "snap.safetensors"
        t0 = time.perf_counter()
        save_checkpoint(path, {"G": G, "D": D, "G_ema": G}, {"kimg": 0})  # G_ema aliases G: exercises de-dup
        save_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ckpt = load_checkpoint(path)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ckpt.build("G_ema")
        build_s = time.perf_counter() - t0
        emit(name="checkpoint_io", nets="stylegan2-256 G+D+G_ema", elements=params,
             megabytes=round(path.stat().st_size / 2**20, 1), save_s=round(save_s, 2), load_s=round(load_s, 2),
             build_G_ema_s=round(build_s, 2))


if __name__ == "__main__":
    torch.set_num_threads(1)
    quick = "--quick" in sys.argv
    bench_dataset(quick)
    bench_checkpoint()
